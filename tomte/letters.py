"""Owner letters (grunneierbrev): one per owner, a batch as one PDF, with fpdf2.

The text is ``data/brevmal.txt`` (Norwegian, edited by the team) with ``{placeholders}``; values
are inserted as plain text (never interpreted as markup), so names and notes cannot change the
letter's layout. Each letter has a small map excerpt drawn as vectors (the lot and its parcels),
the plan status in plain words and the GDPR art. 14 information. Reserved owners
(Reservasjonsregisteret) get no letter. A DejaVu font is used when installed (full Unicode);
otherwise characters outside Latin-1 are replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import shapely
from fpdf import FPDF

from tomte import owners as owners_mod
from tomte.config import DATA_DIR
from tomte.errors import InvalidData
from tomte.store import Store, loads

TEMPLATE = DATA_DIR / "brevmal.txt"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@dataclass(frozen=True)
class Sender:
    """Who signs the letters and how owners reach the team."""

    name: str = "Tredje Boligsektor"
    contact: str = "post@tredjeboligsektor.no"
    place: str = "Oslo"
    retention: str = "12 måneder"


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(True, margin=18)
        self.unicode = FONT.exists()
        if self.unicode:
            self.add_font("DejaVu", "", str(FONT))
            self.add_font("DejaVu", "B", str(FONT.with_name("DejaVuSans-Bold.ttf")))
        self.family = "DejaVu" if self.unicode else "Helvetica"

    def clean(self, text: str) -> str:
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")


def _map(pdf: _Pdf, lot: Any, parcels: list[Any], x: float, y: float, size: float) -> None:
    """The lot (filled) and its parcels (outlines) scaled into a square, with a scale note."""
    minx, miny, maxx, maxy = shapely.union_all([lot, *parcels]).bounds
    scale = size / max(maxx - minx, maxy - miny, 1.0)

    def points(geom: Any) -> list[list[tuple[float, float]]]:
        rings = []
        for poly in shapely.get_parts(geom):
            if poly.geom_type == "Polygon":
                rings.append([(x + (px - minx) * scale, y + size - (py - miny) * scale) for px, py in poly.exterior.coords])
        return rings

    pdf.set_draw_color(120, 120, 120)
    for p in parcels:
        for ring in points(p):
            pdf.polygon(ring, style="D")
    pdf.set_fill_color(166, 217, 106)
    pdf.set_draw_color(26, 150, 65)
    for ring in points(lot):
        pdf.polygon(ring, style="DF")
    pdf.set_font(pdf.family, "", 7)
    pdf.text(x, y + size + 4, pdf.clean(f"Tomten (grønn) og teigene (grå). Bredde ca. {max(maxx - minx, maxy - miny):.0f} m."))


def plan_words(store: Store, lot_id: str) -> str:
    """The plan status of a lot in plain words (from its explanation)."""
    text = loads(store.scalar("SELECT explanation FROM lots WHERE lot_id = ?", (lot_id,)), {}).get("text", "")
    return text.split(" Nyeste plandata")[0] or "Kommuneplanen åpner for boliger her."


def letters_pdf(store: Store, lot_ids: list[str], sender: Sender = Sender(), today: date | None = None,
                template: Path = TEMPLATE) -> tuple[bytes, dict[str, int]]:
    """One PDF with a letter per (non-reserved) owner of the lots; returns the PDF and counts."""
    text = template.read_text(encoding="utf-8")
    pdf = _Pdf()
    counts = {"letters": 0, "reserved_skipped": 0, "owners_missing": 0}
    for lot_id in lot_ids:
        rows = owners_mod.lot_parcels_and_owners(store, lot_id)
        geo = store.read_frame("SELECT AsBinary(geom) AS geom FROM lots WHERE lot_id = ?", (lot_id,))
        parcels = store.read_frame("SELECT AsBinary(p.geom) AS geom FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id "
                                   "WHERE lp.lot_id = ?", (lot_id,))
        address = store.scalar("SELECT adressetekst FROM lot_addresses WHERE lot_id = ?", (lot_id,))
        seen: set[tuple[str, str]] = set()
        for row in rows:
            if not row["name"]:
                counts["owners_missing"] += 1
                continue
            if row["reserved"]:
                counts["reserved_skipped"] += 1
                continue
            key = (row["name"], row["address"] or "")
            if key in seen:
                continue
            seen.add(key)
            values = {
                "navn": row["name"], "adresse": row["address"] or "", "sted": sender.place,
                "dato": (today or date.today()).strftime("%d.%m.%Y"), "tomt_sted": address or f"tomt {lot_id}",
                "matrikkel": f"gnr. {row['gnr']} bnr. {row['bnr']} i kommune {row['kommunenummer']}",
                "planstatus": plan_words(store, lot_id), "kontakt": sender.contact, "avsender": sender.name,
                "kilde": {"matrikkel": "Matrikkelen (Kartverket)", "csv": "en importert eierliste"}.get(row["source"], "offentlige eiendomsregistre"),
                "lagringstid": sender.retention,
            }
            pdf.add_page()
            pdf.set_font(pdf.family, "", 10.5)
            body = text.format_map(_Plain(values))
            heading_at = body.find("Forespørsel om tomten")
            for line in body.splitlines():
                bold = line.startswith("Forespørsel om tomten") or line.startswith("Om personopplysninger")
                pdf.set_font(pdf.family, "B" if bold else "", 10.5)
                pdf.multi_cell(0, 5.2, pdf.clean(line), new_x="LMARGIN", new_y="NEXT")
            if not geo.empty and heading_at >= 0:
                _map(pdf, geo.geometry.iloc[0], list(parcels.geometry), 150, 18, 40)
            counts["letters"] += 1
    if counts["letters"] == 0:
        raise InvalidData("Ingen brev å lage: tomtene mangler eiere, eller alle eiere er reservert.")
    return bytes(pdf.output()), counts


class _Plain(dict):
    """Template values as plain text; unknown placeholders stay visible instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
