"""Political will per kommune: a score 0-1 and a note, set by the analysts or imported from CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from tomte.errors import InvalidData
from tomte.store import Store


def set_will(store: Store, kommunenummer: str, score: float, note: str = "") -> None:
    """Set a kommune's political will (0 = against, 1 = eager)."""
    if not 0.0 <= float(score) <= 1.0:
        raise InvalidData("Politisk vilje må være et tall fra 0 til 1.")
    with store.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO political_will VALUES (?, ?, ?)", (str(kommunenummer).zfill(4), float(score), note.strip()))


def get_will(store: Store, kommunenummer: str) -> tuple[float, str] | None:
    """(score, note) of a kommune, or None when not assessed."""
    row = store.rows("SELECT score, note FROM political_will WHERE kommunenummer = ?", (kommunenummer,))
    return (float(row[0]["score"]), row[0]["note"] or "") if row and row[0]["score"] is not None else None


def import_csv(store: Store, path: str | Path) -> int:
    """``kommunenummer,score[,note]`` rows (comma or semicolon; score 0-1 or 0-100)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;")
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if not rows or not {"kommunenummer", "score"} <= set(rows[0]):
        raise InvalidData("CSV-filen må ha kolonnene kommunenummer og score (og gjerne note).")
    for i, row in enumerate(rows, start=2):
        try:
            value = float(str(row["score"]).replace(",", "."))
        except ValueError as exc:
            raise InvalidData(f"Linje {i}: score må være et tall.") from exc
        set_will(store, row["kommunenummer"], value / 100 if value > 1 else value, row.get("note") or "")
    return len(rows)


def population_growth(store: Store, kommunenummer: str) -> tuple[float, str, str] | None:
    """(growth %, first year, last year) from SSB table 06913 when fetched."""
    rows = store.rows("SELECT period, value FROM ssb_values WHERE table_id = '06913' AND region = ? AND value IS NOT NULL ORDER BY period",
                      (kommunenummer,))
    if len(rows) < 2 or not rows[0]["value"]:
        return None
    return (rows[-1]["value"] / rows[0]["value"] - 1) * 100, rows[0]["period"], rows[-1]["period"]
