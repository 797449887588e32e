"""Exports for QGIS, Excel and other tools: GeoPackage, GeoJSON and CSV.

All three carry the same fields (issue 4's contract): ``lot_id, kommunenummer, arealformal,
arealbruksstatus, area_m2, score, tier, status, flags`` plus ``latest_note`` and
``explanation``. GeoPackage is EPSG:25833 (layer ``lots``), GeoJSON EPSG:4326 (RFC 7946).
CSV is UTF-8 with BOM so Excel reads æøå, and cells starting with ``= + - @`` are prefixed
with ``'`` against formula injection. Owner names are added (column ``eiere``) only when the
analyst asks for them explicitly (``--with-owners``; in the app, after login).
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import pyogrio

from tomte.analysis import lot_rows
from tomte.errors import InvalidData
from tomte.owners import owner_names_by_lot
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
            row["eiere"] = names.get(lot_id, "")
    data = [{f: rows[i].get(f) for f in fields} for i in geo["lot_id"]]
    frame = gpd.GeoDataFrame(data, columns=fields, geometry=geo.geometry.values, crs=geo.crs)
    return frame.sort_values(["score", "area_m2"], ascending=False, na_position="last").reset_index(drop=True)


def safe_cell(value: object) -> object:
    """Neutralise spreadsheet formulas: text starting with = + - @ (or tab/CR) gets a leading '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
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


def export_lots(store: Store, kommunenummer: str, fmt: str, out: str | Path, with_owners: bool = False) -> int:
    """Write the kommune's lots to ``out`` in ``fmt``; returns the number of lots (owners only when asked)."""
    if fmt not in FORMATS:
        raise InvalidData(f"Ukjent format «{fmt}»; velg {', '.join(FORMATS)}.")
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise InvalidData(f"Mappen {path.parent} finnes ikke.")
    frame = lots_frame(store, kommunenummer, with_owners)
    if fmt == "csv":
        write_csv(frame, path)
    elif fmt == "gpkg":
        pyogrio.write_dataframe(frame, path, layer="lots", driver="GPKG")
    else:
        if path.exists():
            path.unlink()
        pyogrio.write_dataframe(frame.to_crs(4326), path, driver="GeoJSON", layer_options={"RFC7946": "YES"})
    return len(frame)
