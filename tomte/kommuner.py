"""The 357 kommuner of 2024, their boundaries and their former numbers.

Boundaries: ``data/kommuner_2024.geojson`` (robhop/fylker-og-kommuner "Kommuner-S", Kartverket
data, CC BY 4.0). Former numbers: ``data/kommune_aliases.csv`` (see
``scripts/build_kommune_aliases.py``). Numbers are always 4-character strings.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import geopandas as gpd

from tomte.config import DATA_DIR
from tomte.errors import InvalidData, NotFound
from tomte.store import SRID, Store

BOUNDARIES = DATA_DIR / "kommuner_2024.geojson"
ALIASES = DATA_DIR / "kommune_aliases.csv"


@dataclass(frozen=True)
class Kommune:
    """A kommune as stored."""

    kommunenummer: str
    navn: str
    fylkesnummer: str


def load_kommuner(store: Store) -> int:
    """Load boundaries and aliases into the store (idempotent). Returns the number of kommuner."""
    frame = gpd.read_file(BOUNDARIES).to_crs(SRID)
    records = [
        {"kommunenummer": str(k).zfill(4), "navn": str(n).split(" - ")[0].strip(), "fylkesnummer": str(k).zfill(4)[:2]}
        for k, n in zip(frame["kommunenummer"], frame["kommunenavn"], strict=True)
    ]
    with open(ALIASES, encoding="utf-8") as fh:
        aliases = [(r["alias"], r["kommunenummer"], r["note"]) for r in csv.DictReader(fh)]
    with store.transaction() as conn:
        conn.execute("DELETE FROM kommuner")
        conn.execute("DELETE FROM kommune_alias")
        store.insert_features("kommuner", records, list(frame.geometry.make_valid()))
        conn.executemany("INSERT INTO kommune_alias VALUES (?, ?, ?)", aliases)
    return len(records)


def normalise_number(text: str) -> str:
    """``"301"`` → ``"0301"``; rejects anything that is not 3-4 digits."""
    value = str(text).strip()
    if not re.fullmatch(r"\d{3,4}", value):
        raise InvalidData(f"«{text}» er ikke et kommunenummer (fire siffer, f.eks. 3207).")
    return value.zfill(4)


def resolve(store: Store, text: str) -> Kommune:
    """A kommune from its current or former number (``3020`` and ``0213`` give Nordre Follo 3207)."""
    number = normalise_number(text)
    row = store.rows("SELECT kommunenummer, navn, fylkesnummer FROM kommuner WHERE kommunenummer = ?", (number,))
    if not row:
        row = store.rows(
            "SELECT k.kommunenummer, k.navn, k.fylkesnummer FROM kommune_alias a "
            "JOIN kommuner k ON k.kommunenummer = a.kommunenummer WHERE a.alias = ?",
            (number,),
        )
    if not row:
        raise NotFound(f"Fant ingen kommune med nummer {number}; sjekk nummeret (2024-inndeling).")
    return Kommune(**row[0])


def search(store: Store, query: str, limit: int = 20) -> list[Kommune]:
    """Kommuner whose name starts with / contains ``query``, or whose current or former number matches."""
    q = query.strip()
    if not q:
        rows = store.rows("SELECT kommunenummer, navn, fylkesnummer FROM kommuner ORDER BY kommunenummer")
        return [Kommune(**r) for r in rows[:limit]]
    if q.isdigit():
        try:
            return [resolve(store, q)]
        except (NotFound, InvalidData):
            rows = store.rows(
                "SELECT kommunenummer, navn, fylkesnummer FROM kommuner WHERE kommunenummer LIKE ? ORDER BY kommunenummer LIMIT ?",
                (q + "%", limit),
            )
            return [Kommune(**r) for r in rows]
    rows = store.rows(
        "SELECT kommunenummer, navn, fylkesnummer FROM kommuner WHERE navn LIKE ? "
        "ORDER BY (navn NOT LIKE ?), navn LIMIT ?",
        (f"%{q}%", f"{q}%", limit),
    )
    return [Kommune(**r) for r in rows]


def boundary(store: Store, kommunenummer: str) -> gpd.GeoSeries:
    """The kommune's boundary in EPSG:25833."""
    frame = store.read_frame("SELECT AsBinary(geom) AS geom FROM kommuner WHERE kommunenummer = ?", (kommunenummer,))
    if frame.empty:
        raise NotFound(f"Kommune {kommunenummer} har ingen grense i databasen; kjør `python -m tomte demo` på nytt.")
    return frame.geometry
