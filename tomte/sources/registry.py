"""The source registry: which service or file provides which data for which kommune.

Format (contract, ``data/sources.toml``)::

    [[source]]
    kommune = "3207"            # string, 4 digits
    role = "kommuneplan"        # kommuneplan | reguleringsplan | teig | constraint | infrastruktur | grunnkrets | ssb | adresse
    kind = "wfs"                # wfs | ogcapi | file (| pxwebapi for ssb, rest for adresse)
    url = "https://…"           # or: path = "plans/3207_kp.gml" for kind = "file"
    typename = "app:KpArealformalOmrade"   # WFS
    collection = "kparealformalomrade"     # OGC API
    # optional:
    crs = "EPSG:25832"          # CRS to request / to assume for files without one
    api_key_env = "NAP_KEY"     # environment variable holding an API key
    api_key_header = "X-API-Key"
    page_size = 1000
    bbox = true                 # restrict by the kommune's bounding box
    params = { kommunenummer = "3207" }     # extra query parameters
    renames = { KPAREALFORMAL = "arealformål" }   # attribute renames before normalising
    layer = "flomsone"          # constraint/infrastruktur: the layer's name (infrastruktur: veg, holdeplass, sentrum)
    name_field = "navn"         # attribute with a feature's name;  code_field: its code (grunnkrets: the 8-digit number)

Precedence: shipped ``data/sources.toml`` < sources added in the app (stored in the database)
< ``--sources FILE``. An entry replaces earlier entries with the same kommune and role.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tomte.errors import InvalidData
from tomte.store import Store, dumps, loads, now

ROLES = ("kommuneplan", "reguleringsplan", "teig", "constraint", "infrastruktur", "grunnkrets", "ssb", "adresse")
KINDS = ("wfs", "ogcapi", "file", "pxwebapi", "rest")
LAYER_ROLES = ("constraint", "infrastruktur", "grunnkrets")


@dataclass(frozen=True)
class Source:
    """One configured source."""

    kommune: str
    role: str
    kind: str
    url: str | None = None
    path: str | None = None
    typename: str | None = None
    collection: str | None = None
    crs: str | None = None
    api_key_env: str | None = None
    api_key_header: str = "X-API-Key"
    page_size: int = 1000
    bbox: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    layer: str | None = None
    name_field: str | None = None
    code_field: str | None = None
    origin: str = "sources.toml"

    @property
    def label(self) -> str:
        """Short description for messages: "3207 kommuneplan (WFS)"."""
        return f"{self.kommune} {self.role} ({self.kind.upper() if self.kind != 'ogcapi' else 'OGC API'})"

    def options(self) -> dict[str, Any]:
        """Optional keys, for storage."""
        data = asdict(self)
        for key in ("kommune", "role", "kind", "url", "path", "typename", "collection", "origin"):
            data.pop(key)
        return data


def parse_source(entry: dict[str, Any], origin: str, base_dir: Path | None = None) -> Source:
    """Validate one ``[[source]]`` entry."""
    where = f"{origin}: kilde {entry.get('kommune', '?')}/{entry.get('role', '?')}"
    kommune = str(entry.get("kommune", "")).strip().zfill(4)
    if not kommune.isdigit() or len(kommune) != 4:
        raise InvalidData(f"{where}: «kommune» må være et kommunenummer som tekst, f.eks. \"3207\".")
    role, kind = entry.get("role"), entry.get("kind")
    if not role or not isinstance(role, str):
        raise InvalidData(f"{where}: mangler «role».")
    if kind not in KINDS:
        raise InvalidData(f"{where}: «kind» må være en av {', '.join(KINDS)}.")
    if kind == "file":
        if not entry.get("path"):
            raise InvalidData(f"{where}: filkilder trenger «path».")
        path = Path(entry["path"])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        entry = {**entry, "path": str(path)}
    elif not entry.get("url"):
        raise InvalidData(f"{where}: tjenestekilder trenger «url».")
    if role in LAYER_ROLES and not entry.get("layer"):
        if role == "grunnkrets":
            entry = {**entry, "layer": "grunnkrets"}
        else:
            raise InvalidData(f"{where}: lag-kilder trenger «layer» (f.eks. \"flomsone\", \"veg\", \"holdeplass\", \"sentrum\").")
    if kind == "wfs" and not entry.get("typename"):
        raise InvalidData(f"{where}: WFS-kilder trenger «typename».")
    if kind == "ogcapi" and not entry.get("collection"):
        raise InvalidData(f"{where}: OGC API-kilder trenger «collection».")
    known = set(Source.__dataclass_fields__) - {"origin"}
    unknown = set(entry) - known
    if unknown:
        raise InvalidData(f"{where}: ukjente nøkler {', '.join(sorted(unknown))}.")
    return Source(**{**entry, "kommune": kommune, "page_size": int(entry.get("page_size", 1000)), "origin": origin})


def load_file(path: str | Path) -> list[Source]:
    """Sources from a TOML file."""
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidData(f"Kildefilen {file} finnes ikke.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidData(f"Kildefilen {file} er ikke gyldig TOML: {exc}.") from exc
    entries = doc.get("source", [])
    if not isinstance(entries, list):
        raise InvalidData(f"Kildefilen {file}: bruk en TOML-liste [[source]].")
    return [parse_source(e, file.name, file.parent) for e in entries]


def stored_sources(store: Store) -> list[Source]:
    """Sources added in the app."""
    out = []
    for row in store.rows("SELECT * FROM sources ORDER BY id"):
        entry = {k: row[k] for k in ("url", "path", "typename", "collection") if row[k]}
        entry.update(kommune=row["kommunenummer"], role=row["role"], kind=row["kind"], **loads(row["options"], {}))
        out.append(parse_source(entry, "database"))
    return out


def add_source(store: Store, source: Source) -> None:
    """Store a source added in the app (replaces the kommune's source for the same role)."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM sources WHERE kommunenummer = ? AND role = ?", (source.kommune, source.role))
        conn.execute(
            "INSERT INTO sources (kommunenummer, role, kind, url, path, typename, collection, options, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source.kommune, source.role, source.kind, source.url, source.path, source.typename, source.collection,
             dumps(source.options()), now()),
        )


def merged(shipped: Path | None, store: Store | None = None, extra: Path | None = None) -> list[Source]:
    """All sources, later layers replacing earlier entries with the same kommune and role."""
    layers: list[list[Source]] = []
    if shipped is not None and Path(shipped).exists():
        layers.append(load_file(shipped))
    if store is not None:
        layers.append(stored_sources(store))
    if extra is not None:
        layers.append(load_file(extra))
    result: dict[tuple[str, str], list[Source]] = {}
    for layer in layers:
        replaced: set[tuple[str, str]] = set()
        for src in layer:
            key = (src.kommune, src.role)
            if key not in replaced:
                result[key] = []
                replaced.add(key)
            result[key].append(src)
    return [s for group in result.values() for s in group]


def for_kommune(sources: list[Source], kommunenummer: str) -> list[Source]:
    """Sources of one kommune."""
    return [s for s in sources if s.kommune == kommunenummer]


def save_upload(base_dir: Path, kommunenummer: str, name: str, data: bytes) -> Path:
    """Keep a file uploaded in the app as a source (``<db dir>/uploads/<kommune>/<name>``).

    A file already there under the same name is never overwritten, since another source may
    read it: the same bytes reuse it, other bytes get the name with a short content hash
    (``plan-3fa2c1d0.gml``).
    """
    import hashlib

    safe = "".join(c for c in Path(name).name if c.isalnum() or c in "._-").lstrip(".") or "kilde"
    folder = Path(base_dir) / "uploads" / kommunenummer
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if path.exists() and path.read_bytes() != data:
        path = folder / f"{path.stem}-{hashlib.sha256(data).hexdigest()[:8]}{path.suffix}"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.resolve()
