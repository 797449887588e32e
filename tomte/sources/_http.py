"""The one place tomte talks HTTP.

Limits that a slow, lying or hostile server cannot get past (issue 12), each a setting in
:class:`~tomte.config.HttpSettings`:

* ``deadline``: one overall deadline per request attempt, connection, headers and body included.
  A socket timeout alone does not do this: a server that sends a byte every two seconds never
  trips a 3 s read timeout. A watchdog shuts down the request's socket when the deadline passes.
* ``max_mb``: a cap on the *decompressed* body, checked while it is read, so a small gzip body
  that expands to a gigabyte fails early instead of filling memory.
* redirects only to http(s), at most ``MAX_REDIRECTS``.

Timeouts; retries with exponential back-off on connection errors, 429 and 5xx (honouring
``Retry-After``, capped by ``HttpSettings.max_retry_after``); a per-host rate limit; a disk
cache with a max age (requests-cache, SQLite backend): a second fetch within the max age makes
no request, ``refresh=True`` asks the service again; a User-Agent naming tomte. Responses that
fail validation are removed from the cache so a bad answer is never served twice.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import requests_cache
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tomte.config import HttpSettings
from tomte.errors import BadResponse, SourceUnavailable

RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_REDIRECTS = 5
CHUNK = 16 * 1024
Sleep = Callable[[float], None]

# Sockets used by the request now running in this thread, so its watchdog can cut them.
_watched = threading.local()


def _watch(sock: socket.socket | None) -> None:
    watch = getattr(_watched, "socks", None)
    if watch is not None and sock is not None:
        watch.append(sock)


class _WatchedConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self.sock)  # a kept-alive connection is reused without connect()
        super().request(*args, **kwargs)
        _watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self.sock)
        super().request(*args, **kwargs)
        _watch(self.sock)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection  # type: ignore[assignment]


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections report their sockets to the request's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _Cut(Exception):
    """Raised inside a request by tomte's own limits (size, redirect scheme)."""


class _Watchdog:
    """Shuts down the sockets of one request attempt when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.socks: list[socket.socket] = []
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.expired = True
        for sock in list(self.socks):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _Watchdog:
        _watched.socks = self.socks
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        _watched.socks = None


class _HostLimiter:
    """At most ``rate`` requests per second per host (shared by threads of one client)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = {}
        self.lock = threading.Lock()

    def wait(self, host: str, sleep: Sleep) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(host, 0.0))
            self.next_slot[host] = slot + self.interval
        if slot > now:
            sleep(slot - now)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class Http:
    """An HTTP client with tomte's policies. One per fetch run; thread-safe for GETs."""

    def __init__(self, settings: HttpSettings, refresh: bool = False, sleep: Sleep = time.sleep) -> None:
        self.settings = settings
        self.refresh = refresh
        self.sleep = sleep
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        self.session = requests_cache.CachedSession(
            str(settings.cache_dir / "http_cache"),
            backend="sqlite",
            expire_after=timedelta(hours=settings.cache_hours),
            allowable_codes=(200,),
            allowable_methods=("GET", "POST"),
            stale_if_error=False,
        )
        self.session.headers["User-Agent"] = settings.user_agent
        self.session.max_redirects = MAX_REDIRECTS
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, _WatchedAdapter())
        self.session.hooks["response"].append(self._guard)
        self.limiter = _HostLimiter(settings.rate_per_host)
        self.requests_made = 0

    def _guard(self, resp: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        """Response hook: refuse redirects to other schemes; read the body under the size cap."""
        if resp.is_redirect:
            target = urlsplit(resp.headers.get("Location", "")).scheme.lower()
            if target and target not in ("http", "https"):
                resp.close()
                raise _Cut(f"tjenesten videresendte til en adresse som ikke er http(s) ({target}:)")
            return resp
        if resp._content is not False:  # already read (a cached response)
            return resp
        cap = int(self.settings.max_mb * 1024 * 1024)
        chunks, total = [], 0
        for chunk in resp.iter_content(CHUNK):
            total += len(chunk)
            if total > cap:
                resp.close()
                raise _Cut(f"svaret er større enn grensen på {self.settings.max_mb:g} MB (utpakket); "
                           "sett TOMTE_HTTP_MAX_MB høyere hvis det er riktig")
            chunks.append(chunk)
        resp._content = b"".join(chunks)  # what requests itself does after reading
        return resp

    def request(self, method: str, url: str, label: str, **kwargs: Any) -> requests.Response:
        """Send a request with retries; returns a 2xx response or raises a :class:`TomteError`.

        ``label`` names the kommune and source in error messages ("3207 kommuneplan (WFS)").
        Each attempt has an overall deadline (``HttpSettings.deadline``); a body over the size cap
        or a redirect to another scheme fails at once, without retries.
        """
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise BadResponse(f"{label}: adressen {url[:80]} er ikke http(s); sjekk kildelisten.")
        host = urlsplit(url).netloc
        attempts = self.settings.retries + 1
        last_problem = ""
        for attempt in range(attempts):
            self.limiter.wait(host, self.sleep)
            watchdog = _Watchdog(self.settings.deadline)
            try:
                with watchdog:
                    resp = self.session.request(
                        method, url, timeout=self.settings.timeout, force_refresh=self.refresh, **kwargs
                    )
            except _Cut as exc:
                raise BadResponse(f"{label}: {exc}.", detail=str(exc)) from exc
            except requests.TooManyRedirects as exc:
                raise BadResponse(f"{label}: tjenesten videresendte mer enn {MAX_REDIRECTS} ganger; sjekk adressen.",
                                  detail=repr(exc)) from exc
            except requests.RequestException as exc:
                if watchdog.expired:  # no retry: a server this slow is not faster a second later
                    raise self._too_slow(label, repr(exc)) from exc
                if isinstance(exc, requests.Timeout):
                    last_problem = f"tidsavbrudd etter {self.settings.timeout:g} s"
                elif isinstance(exc, requests.ConnectionError):
                    last_problem = "får ikke kontakt"
                else:  # e.g. a body cut off mid-transfer
                    last_problem = "svaret ble avbrutt underveis"
                delay = self.settings.backoff * 2**attempt
                exc_detail = repr(exc)
            else:
                if watchdog.expired:  # the cut may look like a clean end of a body without a length
                    self.forget(resp)
                    raise self._too_slow(label, "deadline")
                if not getattr(resp, "from_cache", False):
                    self.requests_made += 1
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUS:
                    raise BadResponse(
                        f"{label}: tjenesten svarte HTTP {resp.status_code}; sjekk adressen og typenavnet i kildelisten.",
                        detail=resp.text[:500],
                    )
                last_problem = f"HTTP {resp.status_code}"
                exc_detail = resp.text[:200]
                wait = _retry_after(resp)
                delay = min(wait, self.settings.max_retry_after) if wait is not None else self.settings.backoff * 2**attempt
            if attempt + 1 < attempts:
                self.sleep(delay)
        raise SourceUnavailable(
            f"{label}: tjenesten svarer ikke ({last_problem}) etter {attempts} forsøk; prøv igjen senere eller sjekk nettverket.",
            detail=exc_detail,
        )

    def _too_slow(self, label: str, detail: str) -> SourceUnavailable:
        return SourceUnavailable(f"{label}: tjenesten ga ikke hele svaret innen fristen på {self.settings.deadline:g} s "
                                 "(TOMTE_HTTP_DEADLINE); prøv igjen senere.", detail=detail)

    def get(self, url: str, label: str, **kwargs: Any) -> requests.Response:
        """GET with retries and cache."""
        return self.request("GET", url, label, **kwargs)

    def forget(self, resp: requests.Response) -> None:
        """Drop a response from the cache (it failed validation)."""
        key = getattr(resp, "cache_key", None)
        if key:
            self.session.cache.delete(key)

    def close(self) -> None:
        """Close the session and its cache connection."""
        self.session.close()


def body(resp: requests.Response, label: str) -> bytes:
    """The full body; a truncated transfer becomes :class:`BadResponse`."""
    try:
        data = resp.content
    except requests.exceptions.ChunkedEncodingError as exc:
        raise BadResponse(f"{label}: svaret ble avbrutt underveis; prøv igjen.", detail=repr(exc)) from exc
    expected = resp.headers.get("Content-Length")
    if expected and expected.isdigit() and int(expected) > len(data) and "gzip" not in resp.headers.get("Content-Encoding", ""):
        raise BadResponse(f"{label}: svaret ble avkuttet ({len(data)} av {expected} byte); prøv igjen.")
    return data
