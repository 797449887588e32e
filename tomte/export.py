"""Exports for QGIS, Excel and other tools: GeoPackage, GeoJSON and CSV.

GeoPackage, GeoJSON and ``csv-rfc4180`` carry the same fields (issue 4's contract): ``lot_id,
kommunenummer, arealformal, arealbruksstatus, area_m2, score, tier, status, flags`` plus
``adresse``, ``latest_note`` and ``explanation``. GeoPackage is EPSG:25833 (layer ``lots``),
GeoJSON EPSG:4326 (RFC 7946).

Two CSVs (issue 15). ``csv`` is for Excel set to Norwegian, which is what the team opens:
``;`` between fields and a decimal comma (Norwegian Excel reads a comma-separated file into one
column, and ``14.5`` as a date or text), UTF-8 with BOM so æøå survive, readable Norwegian
headers, codes with their names, flags in words, the area in daa, the estimated dwellings and
each factor's points. ``csv-rfc4180`` is for scripts: RFC 4180 (``,``, CRLF), decimal point,
UTF-8 without BOM, the GeoPackage's field names. In both, cells starting (after leading spaces)
with ``= + - @`` are prefixed with ``'`` against formula injection.

Any export can be limited to tiers, CRM statuses or a list of lots (the shortlist the analyst
filtered in the app, or ``--tier``/``--status``/``--lot`` on the command line). Owner names are added (column
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
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio

from tomte.analysis import lot_rows
from tomte.errors import InvalidData
from tomte.owners import NAME_SEPARATOR, owner_names_by_lot
from tomte.store import Store

FIELDS = ["lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "area_m2", "score", "tier", "status", "flags",
          "adresse", "latest_note", "explanation"]
FORMATS = ("gpkg", "geojson", "csv", "csv-rfc4180")


TIER_CHOICES = ("A", "B", "C", "D", "–")  # "–": not scored


@dataclass(frozen=True)
class Selection:
    """Which lots an export holds: every active lot, or only these tiers, statuses or ids."""

    tiers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    lot_ids: tuple[str, ...] = ()

    def keeps(self, row: dict) -> bool:
        return ((not self.tiers or (row.get("tier") or "–") in self.tiers)
                and (not self.statuses or row.get("status") in self.statuses)
                and (not self.lot_ids or row.get("lot_id") in self.lot_ids))


def lots_frame(store: Store, kommunenummer: str, with_owners: bool = False, selection: Selection | None = None) -> gpd.GeoDataFrame:
    """Active lots with export fields and geometry (EPSG:25833); owner names only when asked."""
    choice = selection or Selection()
    rows = {r["lot_id"]: r for r in lot_rows(store, kommunenummer) if choice.keeps(r)}
    geo = store.read_frame(
        "SELECT lot_id, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1", (kommunenummer,)
    )
    geo = geo[geo["lot_id"].isin(list(rows)).to_numpy(bool)]
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
    """RFC 4180 CSV for scripts: ``,``, CRLF, decimal point, UTF-8 without BOM, GeoPackage field names."""
    fields = [c for c in frame.columns if c != "geometry"]
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for row in frame[fields].itertuples(index=False):
            writer.writerow(["" if v is None or v != v else safe_cell(v) for v in row])


EXCEL_HEADERS = {"lot_id": "Tomt", "kommunenummer": "Kommunenr.", "arealformal": "Arealformål", "arealbruksstatus": "Status i kommuneplanen",
                 "daa": "Areal (daa)", "area_m2": "Areal (m²)", "boliger": "Boliger (anslag)", "score": "Poeng", "tier": "Klasse",
                 "status": "CRM-status", "flags": "Flagg", "adresse": "Adresse", "latest_note": "Siste notat", "explanation": "Hvorfor",
                 "eiere": "Eiere"}


def _number(value: float | int | None, decimals: int = 1) -> str:
    """A number as Norwegian Excel reads it: decimal comma, no thousands separator."""
    if value is None or value != value:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.{decimals}f}".replace(".", ",")


def write_excel_csv(store: Store, frame: gpd.GeoDataFrame, out: Path) -> None:
    """CSV for Excel in Norwegian: ``;``, decimal comma, UTF-8 with BOM, Norwegian headers and words."""
    from tomte import codes
    from tomte.scoring import FACTOR_NAMES, FACTORS
    from tomte.store import loads

    ids = frame["lot_id"].tolist()
    details: dict[str, dict] = {}
    regimes: dict[str, str] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for r in store.rows(f"SELECT lot_id, regime, score_detail FROM lots WHERE lot_id IN ({','.join('?' * len(part))})", part):
            details[r["lot_id"]] = loads(r["score_detail"], {})
            regimes[r["lot_id"]] = r["regime"] or "2008"
    owners = "eiere" in frame.columns
    fields = ["lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "daa", "area_m2", "boliger", "score", "tier", "status",
              "flags", "adresse", "latest_note", "explanation", *(["eiere"] if owners else [])]
    header = [EXCEL_HEADERS[f] for f in fields] + [f"Poeng {FACTOR_NAMES[f].lower()}" for f in FACTORS]
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(header)
        for row in frame.drop(columns="geometry").to_dict("records"):
            lot = row["lot_id"]
            detail = details.get(lot, {})
            formal = row.get("arealformal")
            cells = {
                **row,
                "arealformal": f"{formal} {codes.arealformal_name(formal, regimes.get(lot, '2008'))}" if formal else "",
                "arealbruksstatus": codes.AREALBRUKSSTATUS.get(str(row.get("arealbruksstatus")), row.get("arealbruksstatus") or ""),
                "daa": _number((row.get("area_m2") or 0) / 1000), "area_m2": _number(row.get("area_m2"), 0),
                "boliger": _number(detail.get("dwellings")), "score": _number(row.get("score")),
                "tier": row.get("tier") or "", "flags": codes.flag_words(row.get("flags")),
            }
            points = [_number((detail.get("factors", {}).get(f) or {}).get("points")) for f in FACTORS]
            writer.writerow([safe_cell("" if cells.get(f) is None else cells[f]) for f in fields] + points)


def checked_target(store: Store, out: str | Path, overwrite: bool) -> Path:
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
                overwrite: bool = False, selection: Selection | None = None) -> int:
    """Write the kommune's lots (or the ``selection`` of them) to ``out`` in ``fmt``; returns the number of
    lots (owners only when asked)."""
    if fmt not in FORMATS:
        raise InvalidData(f"Ukjent format «{fmt}»; velg {', '.join(FORMATS)}.")
    path = checked_target(store, out, overwrite)
    frame = lots_frame(store, kommunenummer, with_owners, selection)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()  # the writers create the file themselves
        if fmt == "csv":
            write_excel_csv(store, frame, tmp)
        elif fmt == "csv-rfc4180":
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
