"""Real servers on 127.0.0.1 for the network tests (never the internet).

* :class:`FakeServer` — a small HTTP server whose routes a test scripts (status codes,
  Retry-After, bodies, truncation, hangs), counting requests per path.
* :func:`mapserver_wfs` — MapServer's ``mapserv`` (Debian ``mapserver-bin``) serving WFS 2.0
  from an OGR file, behind a tiny CGI bridge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[["Handler", dict[str, list[str]]], Reply | None]


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        self.server.hits[parts.path] += 1
        route = self.server.routes.get(parts.path)
        if route is None:
            self.send_error(404)
            return
        reply = route(self, parse_qs(parts.query))
        if reply is None:
            return  # the route wrote (or withheld) the response itself
        status, headers, body = reply
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


    do_POST = do_GET  # noqa: N815  routes read the body themselves
    do_PATCH = do_GET  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    hits: Counter


@contextmanager
def fake_server(routes: dict[str, Route]) -> Iterator[tuple[str, _Server]]:
    """Serve ``routes`` on 127.0.0.1; yields (base URL, server)."""
    server = _Server(("127.0.0.1", 0), Handler)
    server.routes, server.hits = routes, Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def sequence(*replies: Reply) -> Route:
    """A route that answers with the given replies in turn, repeating the last."""
    state = {"i": 0}

    def route(_h: Handler, _q: dict[str, list[str]]) -> Reply:
        reply = replies[min(state["i"], len(replies) - 1)]
        state["i"] += 1
        return reply
    return route


def truncated(body: bytes) -> Route:
    """Promise the whole body, send half, close the connection."""
    def route(h: Handler, _q: dict[str, list[str]]) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "text/xml")
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
    return route


def hanging(seconds: float) -> Route:
    """Accept the request and say nothing for a while."""
    def route(_h: Handler, _q: dict[str, list[str]]) -> None:
        time.sleep(seconds)
    return route


# --- MapServer ------------------------------------------------------------------------------------

MAPFILE = """MAP
  NAME "tomte_test"
  EXTENT {extent}
  PROJECTION "init=epsg:25833" END
  WEB
    METADATA
      "wfs_title" "tomte test"
      "wfs_onlineresource" "{url}/wfs?"
      "wfs_srs" "EPSG:25833 EPSG:25832 EPSG:4326"
      "wfs_enable_request" "*"
      "wfs_namespace_prefix" "app"
      "wfs_namespace_uri" "http://example.invalid/tomte"{extra}
    END
  END
  LAYER
    NAME "{layer}"
    TYPE POLYGON
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "{data}"
    PROJECTION "init=epsg:25833" END
    METADATA
      "wfs_title" "{layer}"
      "gml_include_items" "all"
      "gml_types" "auto"
      "wfs_featureid" "zone_id"
    END
  END
END
"""


def mapserv_available() -> bool:
    """True when Debian's mapserv binary is installed."""
    return shutil.which("mapserv") is not None


@contextmanager
def mapserver_wfs(data: Path, layer: str, extent: tuple[float, float, float, float], workdir: Path,
                  max_features: int | None = None) -> Iterator[tuple[str, _Server]]:
    """WFS 2.0 at ``<url>/wfs`` from ``data`` through ``mapserv`` as CGI.

    ``max_features`` caps every page as a real server's configuration does (``wfs_maxfeatures``:
    MapServer then advertises ``CountDefault`` and sends ``next`` links).
    """
    mapfile = workdir / "test.map"
    config = workdir / "mapserver.conf"
    config.write_text(f'CONFIG\n  ENV\n    MS_MAPFILE "{mapfile}"\n  END\nEND\n')

    def route(h: Handler, _q: dict[str, list[str]]) -> Reply:
        env = {**os.environ, "REQUEST_METHOD": "GET", "QUERY_STRING": urlsplit(h.path).query,
               "MAPSERVER_CONFIG_FILE": str(config), "SERVER_NAME": "127.0.0.1", "SCRIPT_NAME": "/wfs"}
        out = subprocess.run(["mapserv"], env=env, capture_output=True, timeout=60).stdout
        head, _, body = out.partition(b"\r\n\r\n") if b"\r\n\r\n" in out else out.partition(b"\n\n")
        headers = dict(line.split(": ", 1) for line in head.decode("latin-1").splitlines() if ": " in line)
        status = int(headers.pop("Status", "200").split()[0])
        return status, {"Content-Type": headers.get("Content-Type", "text/xml")}, body

    with fake_server({"/wfs": route}) as (url, server):
        extra = f'\n      "wfs_maxfeatures" "{max_features}"' if max_features else ""
        mapfile.write_text(MAPFILE.format(extent=" ".join(map(str, extent)), url=url, layer=layer, data=data, extra=extra))
        yield url + "/wfs", server


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary (Debian keeps them under /usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return str(found[-1]) if found else shutil.which(name)


def postgis_available() -> bool:
    """True when a PostgreSQL server and the PostGIS extension are installed."""
    return _pg_bin("initdb") is not None and any(Path("/usr/share/postgresql").glob("*/extension/postgis.control"))


@contextmanager
def postgis_server() -> Iterator[Callable[[str], str]]:
    """A throwaway PostgreSQL + PostGIS on 127.0.0.1 (free port); yields ``psql(sql) -> output``.

    The cluster lives in its own directory under the system temp directory and is stopped and
    removed afterwards. PostgreSQL refuses to run as root, so as root the server runs as the
    ``postgres`` system user, which cannot enter root's private directories (pytest's
    ``tmp_path`` is one, a relative path another); hence the directory is not the caller's.
    """
    import pwd
    import socket
    import tempfile

    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="tomte-pg-")).resolve()
    data = workdir / "pgdata"
    data.mkdir()
    if as_user:
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "tomte", "--no-sync"],
                   check=True, capture_output=True)
    ctl = [*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-w"]
    subprocess.run([*ctl, "-o", f"-k {data} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off", "-l", str(data / "log"), "start"],
                   check=True, capture_output=True)

    def psql(sql: str) -> str:
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "tomte", "-d", "postgres",
                              "-At", "-f", "-"], input=sql, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr.strip())
        return out.stdout

    try:
        psql("CREATE EXTENSION postgis;")
        yield psql
    finally:
        subprocess.run([*ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
