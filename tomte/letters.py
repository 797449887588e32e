"""Owner letters (grunneierbrev): a Norwegian business letter on A4 per owner, a batch as one PDF (fpdf2).

Layout (millimetres from the top-left corner of the A4 sheet), chosen for Norwegian C5 and C65
envelopes with a window on the left (the common 90 × 45 mm window 20 mm from the left edge and
about 45–50 mm from the top; the same field as DIN 5008 form B, which Norwegian office templates
follow):

* letterhead from the settings (name, postal address, contact person, phone, e-mail) at the top;
* the recipient's name and postal address from 53 mm, 25 mm from the left, inside the window, with
  the sender's return line in small type above it; owners with no postal address get no letter;
* date, our reference (the lot id) and the contact person on the right, level with the address;
* fold marks at 105 and 210 mm (folding in three for C65; once for C5);
* then the body from ``data/brevmal.txt`` (edited by the team): ``# `` a heading, ``## `` a
  sub-heading, blank lines between paragraphs, ``[KART]`` where the map figure goes,
  ``{placeholders}`` filled as plain text (never markup, so names and notes cannot change the
  layout); unknown placeholders stay visible;
* the map as a figure in the flow of the text: a framed box with the lot and its parcels, a scale
  bar and a north arrow, the caption wrapped under it; the whole figure moves to the next page
  when it does not fit, so it never overlaps text;
* one signature (contact person, then the organisation), and the GDPR art. 14 information as
  paragraphs.

What the plans say is written for a landowner: the kommuneplan's purpose and status in words and
how much is not yet regulated, never zone keys, codes or lot ids. Owners reserved in
Reservasjonsregisteret and owners without a postal address are skipped and listed in the result.
A DejaVu font is used when installed (full Unicode); otherwise characters outside Latin-1 are replaced.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import shapely
from fpdf import FPDF

from tomte import codes
from tomte import owners as owners_mod
from tomte.config import DATA_DIR
from tomte.errors import InvalidData
from tomte.store import Store, loads

TEMPLATE = DATA_DIR / "brevmal.txt"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LEFT, RIGHT = 25.0, 20.0  # margins, mm
WINDOW = (20.0, 45.0, 90.0, 45.0)  # x, y, width, height of the envelope window, mm
ADDRESS_AT = (25.0, 53.0)  # the recipient's first line
BODY_TOP = 102.0
FIGURE = (80.0, 60.0)  # map box, mm


@dataclass(frozen=True)
class Sender:
    """Who signs the letters and how owners reach the team (``TOMTE_BREV_*``, see :meth:`from_env`)."""

    name: str = "Tredje Boligsektor"
    address: str = ""
    contact_person: str = ""
    phone: str = ""
    email: str = "post@tredjeboligsektor.no"
    place: str = "Oslo"
    retention: str = "12 måneder"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Sender:
        """``TOMTE_BREV_AVSENDER``, ``_ADRESSE`` (lines separated by commas), ``_KONTAKTPERSON``, ``_TELEFON``,
        ``_EPOST``, ``_STED``, ``_LAGRINGSTID``; unset ones keep the defaults."""
        e = os.environ if env is None else env
        names = {"name": "AVSENDER", "address": "ADRESSE", "contact_person": "KONTAKTPERSON", "phone": "TELEFON",
                 "email": "EPOST", "place": "STED", "retention": "LAGRINGSTID"}
        return cls(**{field: e[f"TOMTE_BREV_{key}"].strip() for field, key in names.items() if e.get(f"TOMTE_BREV_{key}", "").strip()})


class Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_margins(LEFT, 18, RIGHT)
        self.set_auto_page_break(True, margin=20)
        self.unicode = FONT.exists()
        if self.unicode:
            self.add_font("DejaVu", "", str(FONT))
            self.add_font("DejaVu", "B", str(FONT.with_name("DejaVuSans-Bold.ttf")))
        self.family = "DejaVu" if self.unicode else "Helvetica"

        self.reference = ""  # the letter being written, for the footer of its later pages
        self.first_page = 1

    def clean(self, text: str) -> str:
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        if self.page_no() > self.first_page:  # a letter's later pages say whose letter they belong to
            self.set_font(self.family, "", 7.5)
            self.set_xy(LEFT, -14)
            self.cell(0, 4, self.clean(f"{self.reference} · side {self.page_no() - self.first_page + 1}"), align="R")

    def write_lines(self, x: float, y: float, lines: list[str], size: float, height: float, bold_first: bool = False) -> None:
        for i, line in enumerate(lines):
            self.set_font(self.family, "B" if bold_first and i == 0 else "", size)
            self.text(x, y + i * height, self.clean(line))


def _nice_length(width_m: float) -> float:
    """A round scale-bar length of about a quarter of the shown width (10, 20, 50, 100, 200 m …)."""
    target = max(width_m / 4, 1.0)
    exp = 10 ** math.floor(math.log10(target))
    return next(m * exp for m in (1, 2, 5, 10) if m * exp >= target * 0.6)


def draw_map(pdf: Pdf, x: float, y: float, width: float, height: float, main: list[Any], context: list[Any],
             frame_of: list[Any] | None = None) -> None:
    """Geometries drawn as vectors inside a framed box: ``main`` filled green, ``context`` as grey lines over them,
    fitted to ``frame_of`` (default: all of them), with a scale bar and a north arrow (EPSG:25833, north up)."""
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.2)
    pdf.rect(x, y, width, height)  # the figure's frame
    pad = 4.0
    minx, miny, maxx, maxy = shapely.union_all(frame_of if frame_of is not None else [*main, *context]).bounds
    span_x, span_y = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad - 6) / span_y)
    ox = x + (width - span_x * scale) / 2
    oy = y + pad + (height - 2 * pad - 6 - span_y * scale) / 2

    def rings(geom: Any) -> list[list[tuple[float, float]]]:
        out = []
        for part in shapely.get_parts(geom):
            for ring in ([part.exterior] if part.geom_type == "Polygon" else [part] if part.geom_type == "LineString" else []):
                out.append([(ox + (px - minx) * scale, oy + (maxy - py) * scale) for px, py in ring.coords])
        return out

    pdf.set_fill_color(166, 217, 106)
    pdf.set_draw_color(26, 150, 65)
    for geom in main:
        for ring in rings(geom):
            pdf.polygon(ring, style="DF")
    pdf.set_draw_color(110, 110, 110)  # context lines over the lot, so parcels inside it show
    for geom in context:
        for ring in rings(geom.boundary if geom.geom_type.endswith("Polygon") else geom):
            pdf.polyline(ring)
    metres = _nice_length(span_x)
    bar_y = y + height - pad
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.5)
    pdf.line(x + pad, bar_y, x + pad + metres * scale, bar_y)
    pdf.set_font(pdf.family, "", 7)
    label = f"{metres / 1000:,.0f} km" if metres >= 1000 else f"{metres:,.0f} m"
    pdf.text(x + pad, bar_y - 1.2, pdf.clean(label.replace(",", " ")))
    nx, ny = x + width - pad - 2, y + pad + 1  # north arrow
    pdf.set_fill_color(0, 0, 0)
    pdf.polygon([(nx, ny), (nx - 1.6, ny + 4.5), (nx + 1.6, ny + 4.5)], style="F")
    pdf.text(nx - 1.1, ny + 8, "N")
    pdf.set_line_width(0.2)


def _figure(pdf: Pdf, lot: Any, parcels: list[Any]) -> None:
    """The map as a figure in the flow: a framed box (lot, parcels, scale bar, north arrow) and its caption."""
    width, height = FIGURE
    caption = "Kart: eiendommen vi spør om (grønn) og teigene rundt (grå linjer). Tegnet fra kartdata i tomte; nord er opp."
    if pdf.get_y() + height + 14 > pdf.h - pdf.b_margin:
        pdf.add_page()
    x, y = LEFT + (pdf.w - LEFT - RIGHT - width) / 2, pdf.get_y() + 2
    draw_map(pdf, x, y, width, height, [lot], parcels)
    pdf.set_xy(x, y + height + 1.5)
    pdf.set_font(pdf.family, "", 8)
    pdf.multi_cell(width, 3.8, pdf.clean(caption), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def plan_words(store: Store, lot_id: str) -> str:
    """What the plans say about the lot, for a landowner: no zone keys, codes or lot ids."""
    row = store.rows("SELECT l.explanation, l.flags, l.area_m2, l.regime, k.navn FROM lots l "
                     "LEFT JOIN kommuner k ON k.kommunenummer = l.kommunenummer WHERE l.lot_id = ?", (lot_id,))
    if not row:
        return "Kommuneplanen åpner for boliger her."
    r = row[0]
    exp = loads(r["explanation"], {})
    zone = exp.get("zone") or {}
    purpose = codes.arealformal_name(zone.get("arealformal"), r["regime"] or "2008").lower()
    status = str(zone.get("arealbruksstatus") or "")
    kommune = f"kommuneplanen for {r['navn']}" if r["navn"] else "kommuneplanen"
    daa = f"{(r['area_m2'] or 0) / 1000:.0f}" if (r["area_m2"] or 0) >= 10_000 else f"{(r['area_m2'] or 0) / 1000:.1f}".replace(".", ",")
    text = {"2": f"I {kommune} er området avsatt til framtidig {purpose}.",
            "1": f"I {kommune} er området avsatt til {purpose}, slik det brukes i dag.",
            "3": f"I {kommune} er området avsatt til {purpose}, som videreutvikling av dagens bruk."}.get(
        status, f"I {kommune} er området avsatt til {purpose}.")
    if exp.get("cut_by"):
        text += f" En del av området er allerede regulert; den delen vi spør om, om lag {daa} dekar, har ennå ingen vedtatt reguleringsplan."
    else:
        text += f" Området, om lag {daa} dekar, har ennå ingen vedtatt reguleringsplan."
    flags = [f for f in str(r["flags"] or "").split(",") if f]
    if "mulig_bolig" in flags:
        text += " Formålet kan åpne for boliger; hvor mange og hvordan avgjøres av kommunens bestemmelser og en reguleringsplan."
    if exp.get("in_progress"):
        text += " Kommunen har registrert planarbeid som berører området."
    return text


def _postal_lines(address: str | None) -> list[str]:
    """A stored postal address as envelope lines ("Fjellveien 3, 1400 Ski" → two lines)."""
    return [part.strip() for part in str(address or "").replace("\n", ",").split(",") if part.strip()]


def letters_pdf(store: Store, lot_ids: list[str], sender: Sender | None = None, today: date | None = None,
                template: Path = TEMPLATE) -> tuple[bytes, dict[str, Any]]:
    """One PDF with a letter per owner of the lots who can get one; returns the PDF and counts.

    The counts are ``letters``, ``reserved_skipped``, ``no_address`` and ``owners_missing``
    (parcels without a known owner); ``skipped`` lists who got no letter and why (name, lot, reason),
    for the analyst who made the batch, never for a log.
    """
    sender = sender or Sender.from_env()
    text = template.read_text(encoding="utf-8")
    pdf = Pdf()
    counts: dict[str, Any] = {"letters": 0, "reserved_skipped": 0, "no_address": 0, "owners_missing": 0, "skipped": []}
    stamp = (today or date.today()).strftime("%d.%m.%Y")
    for lot_id in lot_ids:
        rows = owners_mod.lot_parcels_and_owners(store, lot_id)
        geo = store.read_frame("SELECT AsBinary(geom) AS geom FROM lots WHERE lot_id = ?", (lot_id,))
        parcels = store.read_frame("SELECT AsBinary(p.geom) AS geom FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id "
                                   "WHERE lp.lot_id = ?", (lot_id,))
        place = store.scalar("SELECT adressetekst FROM lot_addresses WHERE lot_id = ?", (lot_id,))
        seen: set[tuple[str, str]] = set()
        for row in rows:
            if not row["name"]:
                counts["owners_missing"] += 1
                continue
            if row["reserved"]:
                counts["reserved_skipped"] += 1
                counts["skipped"].append({"name": row["name"], "lot_id": lot_id, "reason": "reservert i Reservasjonsregisteret"})
                continue
            postal = _postal_lines(row["address"])
            if not postal:
                counts["no_address"] += 1
                counts["skipped"].append({"name": row["name"], "lot_id": lot_id, "reason": "mangler postadresse"})
                continue
            key = (row["name"], row["address"] or "")
            if key in seen:
                continue
            seen.add(key)
            _letter(pdf, text, sender, row, postal, lot_id, place, stamp, geo, parcels, store)
            counts["letters"] += 1
    if counts["letters"] == 0:
        raise InvalidData("Ingen brev å lage: tomtene mangler eiere med postadresse, eller alle eiere er reservert.")
    return bytes(pdf.output()), counts


def _letter(pdf: Pdf, text: str, sender: Sender, row: dict[str, Any], postal: list[str], lot_id: str, place: str | None,
            stamp: str, geo: Any, parcels: Any, store: Store) -> None:
    """One letter from the top of a new page."""
    pdf.add_page()
    pdf.first_page, pdf.reference = pdf.page_no(), f"{sender.name} · vår ref. {lot_id}"
    pdf.write_lines(LEFT, 18, [sender.name], 13, 6, bold_first=True)
    contact = " · ".join(x for x in (sender.address, sender.contact_person, sender.phone and f"tlf. {sender.phone}", sender.email) if x)
    pdf.write_lines(LEFT, 23.5, [contact], 8, 4)
    pdf.set_draw_color(26, 150, 65)
    pdf.set_line_width(0.4)
    pdf.line(LEFT, 27, pdf.w - RIGHT, 27)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(180, 180, 180)
    for fold in (105.0, 210.0):  # fold marks for the window envelope
        pdf.line(4, fold, 8, fold)
    pdf.write_lines(ADDRESS_AT[0], ADDRESS_AT[1] - 5, ["Avsender: " + ", ".join(x for x in (sender.name, sender.address) if x)], 6.5, 3)
    pdf.write_lines(ADDRESS_AT[0], ADDRESS_AT[1], [row["name"], *postal][:6], 10.5, 5)
    right = pdf.w - RIGHT - 55
    pdf.write_lines(right, ADDRESS_AT[1], [f"{sender.place}, {stamp}", f"Vår ref.: {lot_id}",
                                           *([f"Kontakt: {sender.contact_person}"] if sender.contact_person else [])], 9, 5)
    matrikkel = f"gnr. {row['gnr']} bnr. {row['bnr']}" + (f" fnr. {row['fnr']}" if row.get("fnr") else "") + \
        (f" i {name}" if (name := store.scalar("SELECT navn FROM kommuner WHERE kommunenummer = ?", (row["kommunenummer"],))) else "")
    values = {
        "navn": row["name"], "hilsen": "Hei,", "matrikkel": matrikkel, "ved": f" ved {place}" if place else "",
        "planstatus": plan_words(store, lot_id), "avsender": sender.name,
        "avsender_adresse": f", {sender.address}" if sender.address else "", "epost": sender.email,
        "kontaktperson": sender.contact_person or "oss",
        "telefon_og_epost": " eller ".join(x for x in (sender.phone and f"telefon {sender.phone}", sender.email) if x),
        "signatur": "\n".join(x for x in (sender.contact_person, sender.name) if x),
        "kilde": {"matrikkel": "Matrikkelen (Kartverket)", "csv": "en importert eierliste"}.get(row["source"], "offentlige eiendomsregistre"),
        "lagringstid": sender.retention, "dato": stamp, "sted": sender.place,
    }
    pdf.set_xy(LEFT, BODY_TOP)
    fine_print = False  # the paragraphs after the "## " heading (the GDPR information) in smaller type
    for block in text.format_map(_Plain(values)).split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        if block == "[KART]":
            if not geo.empty:
                _figure(pdf, geo.geometry.iloc[0], list(parcels.geometry))
            continue
        if block.startswith("## "):
            fine_print = True
            pdf.ln(2)
            pdf.set_font(pdf.family, "B", 10)
            pdf.multi_cell(0, 5, pdf.clean(block[3:]), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
            continue
        if block.startswith("# "):
            pdf.set_font(pdf.family, "B", 12)
            pdf.multi_cell(0, 6, pdf.clean(block[2:]), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
            continue
        pdf.set_font(pdf.family, "", 9 if fine_print else 10.5)
        # Left-aligned, ragged right, as Norwegian business letters are; line breaks kept (the signature).
        pdf.multi_cell(0, 4.4 if fine_print else 5.2, pdf.clean(block), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2 if fine_print else 3)


class _Plain(dict):
    """Template values as plain text; unknown placeholders stay visible instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
