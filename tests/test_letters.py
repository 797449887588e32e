"""Owner letters: rendered as PDF with the owner's name and the GDPR information; reserved owners get none."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from tomte import letters, owners
from tomte.errors import InvalidData
from tomte.store import open_store


def test_letters_render_and_reserved_owners_get_none(demo_copy: Path) -> None:
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels GROUP BY lot_id HAVING COUNT(*) >= 2 LIMIT 1")
    parcels = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 2", (lot,))
    a, b = parcels
    owners.add_owner(s, owners.Owner(a["kommunenummer"], a["gnr"], a["bnr"], 0, 0, "Åse Ødegård-Ærø", address="Fjellveien 3, 1400 Ski"))
    reserved = owners.add_owner(s, owners.Owner(b["kommunenummer"], b["gnr"], b["bnr"], 0, 0, "Reidar Reservert", address="Dalen 1"))
    owners.set_reserved(s, reserved, True)
    owners.add_owner(s, owners.Owner(b["kommunenummer"], b["gnr"], b["bnr"], 0, 0, "{navn} <b>Mallory</b>", address="**fet**"))
    pdf, counts = letters.letters_pdf(s, [lot], today=date(2026, 11, 22))
    assert counts["letters"] == 2 and counts["reserved_skipped"] == 1
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Åse Ødegård-Ærø" in text and "Fjellveien 3" in text and "1400 Ski" in text and "22.11.2026" in text
    assert "Reidar Reservert" not in text
    assert "{navn} <b>Mallory</b>" in text  # inserted as plain text, not re-interpreted
    assert "artikkel 14" in text and "protestere" in text and "Datatilsynet" in text and "berettigede interesse" in text
    assert "boligbebyggelse" in text.lower()  # the plan status in plain words


def test_no_letters_when_every_owner_is_reserved(demo_copy: Path) -> None:
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    oid = owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Kun Reservert"))
    owners.set_reserved(s, oid, True)
    s.execute("DELETE FROM owners WHERE id != ?", (oid,))
    with pytest.raises(InvalidData, match="reservert"):
        letters.letters_pdf(s, [lot])


def _layout(pdf: bytes) -> list[tuple[list[tuple[str, float, float]], list[tuple[float, float, float, float]]]]:
    """Per page: text chunks (text, x mm, y mm from the top) and rectangles drawn (x, y, w, h in mm from the top)."""
    from pypdf.generic import ContentStream

    pt = 25.4 / 72
    pages = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        height = float(page.mediabox.height)
        chunks: list[tuple[str, float, float]] = []

        def seen(t: str, cm: object, tm: list[float], *_: object, chunks: list = chunks, height: float = height) -> None:
            if t.strip():
                chunks.append((t.strip(), tm[4] * pt, (height - tm[5]) * pt))

        page.extract_text(visitor_text=seen)
        rects = [(float(a[0]) * pt, (height - max(float(a[1]), float(a[1]) + float(a[3]))) * pt, abs(float(a[2])) * pt, abs(float(a[3])) * pt)
                 for a, op in ContentStream(page.get_contents(), page.pdf).operations if op == b"re"]  # fpdf draws with a negative height
        pages.append((chunks, rects))
    return pages


def test_a_letter_fit_to_send(demo_copy: Path) -> None:
    """Issue 15: the recipient in the envelope window, one signature, no codes for the landowner, GDPR as its
    own section, the map a figure that overlaps no text, owners without a postal address listed and skipped."""
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels GROUP BY lot_id HAVING COUNT(*) >= 2 LIMIT 1")
    a, b = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 2", (lot,))
    owners.add_owner(s, owners.Owner(a["kommunenummer"], a["gnr"], a["bnr"], 0, 0, "Kari Grunneier", address="Fjellveien 3, 1400 Ski"))
    owners.add_owner(s, owners.Owner(b["kommunenummer"], b["gnr"], b["bnr"], 0, 0, "Uten Adresse"))
    sender = letters.Sender(name="Tredje Boligsektor", address="Storgata 1, 0155 Oslo", contact_person="Per Saksbehandler",
                            phone="22 00 00 00", email="post@tredjeboligsektor.no")
    pdf, counts = letters.letters_pdf(s, [lot], sender=sender, today=date(2026, 12, 3))
    assert counts["letters"] == 1 and counts["no_address"] == 1
    assert counts["skipped"] == [{"name": "Uten Adresse", "lot_id": lot, "reason": "mangler postadresse"}]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Uten Adresse" not in text
    pages = _layout(pdf)
    chunks, rects = pages[0]
    wx, wy, ww, wh = letters.WINDOW
    in_window = [t for t, x, y in chunks if wx <= x <= wx + ww and wy <= y <= wy + wh]
    assert in_window[-3:] == ["Kari Grunneier", "Fjellveien 3", "1400 Ski"], in_window  # name and postal address, in the window
    body = text.split("Med vennlig hilsen")
    assert len(body) == 2, "one signature"
    signature = body[1].split("Om personopplysninger")[0]
    assert signature.count("Per Saksbehandler") == 1 and signature.count("Tredje Boligsektor") == 1
    assert "Om personopplysninger (personvernforordningen artikkel 14)" in text
    for internal in (lot, "KP", "kode 1", "sjekk bestemmelsene", "sone "):
        assert internal not in body[0].split("Forespørsel om eiendommen")[1], internal  # the landowner reads words, not codes
    figure = [r for page_rects in (p[1] for p in pages) for r in page_rects if abs(r[2] - letters.FIGURE[0]) < 0.5]
    assert len(figure) == 1, "the map is one framed figure"
    fx, fy, fw, fh = figure[0]
    page_of_figure = next(i for i, p in enumerate(pages) if figure[0] in p[1])
    inside = [t for t, x, y in pages[page_of_figure][0] if fx - 0.5 <= x <= fx + fw and fy - 0.5 <= y <= fy + fh + 0.5]
    assert "N" in inside and any(t.endswith(" m") for t in inside), inside  # the check sees the figure's own labels …
    assert all(t == "N" or t.endswith(" m") for t in inside), inside  # … and no other text
