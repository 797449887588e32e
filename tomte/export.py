"""Exports for QGIS, Excel and other tools: GeoPackage, GeoJSON and CSV.

All three carry the same fields (issue 4's contract): ``lot_id, kommunenummer, arealformal,
arealbruksstatus, area_m2, score, tier, status, flags`` plus ``latest_note`` and
``explanation``. GeoPackage is EPSG:25833 (layer ``lots``), GeoJSON EPSG:4326 (RFC 7946).
CSV is UTF-8 with BOM so Excel reads æøå, and cells starting (after leading spaces) with
``= + - @`` are prefixed with ``'`` against formula injection. Owner names are added (column
``eiere``, one name per line: a line break cannot occur in a stored name) only when the analyst
asks for them explicitly (``--with-owners``; in the app, after login), and that read is logged
like an owner look-up.

Writing is safe (issue 13): ``out`` may not be the store or its ``-wal``/``-shm``; an existing
file is refused unless ``overwrite``; the export is written to a temporary file in the same
folder and renamed into place, so a failed export leaves nothing half-written; every file-system
error is one :class:`~tomte.errors.InvalidData` sentence.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pyogrio

from tomte.analysis import lot_rows
from tomte.errors import InvalidData
from tomte.owners import NAME_SEPARATOR, owner_names_by_lot
from tomte.store import Store

FIELDS = ["lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "area_m2", "score", "tier", "status", "flags",
          "adresse", "latest_note", "explanation"]
FORMATS = ("gpkg", "geojson", "csv")


def lots_frame(store: Store, kommunenummer: str, with_owners: bool = False) -> gpd.GeoDataFrame:
    """Active lots with export fields and geometry (EPSG:25833); owner names only when asked."""
    rows = {r["lot_id"]: r for r in lot_rows(store, kommunenummer)}
    geo = store.read_frame(
        "SELECT lot_id, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1", (kommunenummer,)
    )
    fields = [*FIELDS, "eiere"] if with_owners else FIELDS
    if with_owners:
        names = owner_names_by_lot(store, kommunenummer)
        for lot_id, row in rows.items():
            row["eiere"] = NAME_SEPARATOR.join(names.get(lot_id, []))
    data = [{f: rows[i].get(f) for f in fields} for i in geo["lot_id"]]
    frame = gpd.GeoDataFrame(data, columns=fields, geometry=geo.geometry.values, crs=geo.crs)
    return frame.sort_values(["score", "area_m2"], ascending=False, na_position="last").reset_index(drop=True)


def safe_cell(value: object) -> object:
    """Neutralise spreadsheet formulas: text whose first non-space character is = + - @ (or tab/CR) gets a leading '."""
    if isinstance(value, str) and (value[:1] in ("\t", "\r") or value.lstrip(" \u00a0")[:1] in ("=", "+", "-", "@")):
        return "'" + value
    return value


def write_csv(frame: gpd.GeoDataFrame, out: Path) -> None:
    """CSV that Excel opens correctly (UTF-8 BOM, comma separator, formulas neutralised)."""
    fields = [c for c in frame.columns if c != "geometry"]
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for row in frame[fields].itertuples(index=False):
            writer.writerow(["" if v is None or v != v else safe_cell(v) for v in row])


def _target(store: Store, out: str | Path, overwrite: bool) -> Path:
    """The checked output path: never the store, never an existing file unless asked, a folder that exists."""
    path = Path(out)
    resolved = path.resolve()
    if store.path is not None:
        db = Path(store.path).resolve()
        if resolved in {db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")}:
            raise InvalidData(f"{path} er selve databasen; velg et annet filnavn for eksporten.")
    if resolved.is_dir():
        raise InvalidData(f"{path} er en mappe; oppgi et filnavn (f.eks. {path / 'tomter.gpkg'}).")
    if not resolved.parent.is_dir():
        raise InvalidData(f"Mappen {path.parent} finnes ikke.")
    if resolved.exists() and not overwrite:
        raise InvalidData(f"{path} finnes fra før; velg et annet navn eller kjør igjen med --overwrite.")
    return resolved


def export_lots(store: Store, kommunenummer: str, fmt: str, out: str | Path, with_owners: bool = False,
                overwrite: bool = False) -> int:
    """Write the kommune's lots to ``out`` in ``fmt``; returns the number of lots (owners only when asked)."""
    if fmt not in FORMATS:
        raise InvalidData(f"Ukjent format «{fmt}»; velg {', '.join(FORMATS)}.")
    path = _target(store, out, overwrite)
    frame = lots_frame(store, kommunenummer, with_owners)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()  # the writers create the file themselves
        if fmt == "csv":
            write_csv(frame, tmp)
        elif fmt == "gpkg":
            pyogrio.write_dataframe(frame, tmp, layer="lots", driver="GPKG")
        else:
            pyogrio.write_dataframe(frame.to_crs(4326), tmp, driver="GeoJSON", layer_options={"RFC7946": "YES"})
        os.replace(tmp, path)
    except OSError as exc:
        raise InvalidData(f"Kunne ikke skrive {path}: {exc.strerror or exc}.", detail=repr(exc)) from exc
    except Exception as exc:
        if "No space" in str(exc) or "disk" in str(exc).lower():
            raise InvalidData(f"Kunne ikke skrive {path}: disken er full.", detail=repr(exc)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return len(frame)
