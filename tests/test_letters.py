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
    assert "Til Åse Ødegård-Ærø" in text and "Fjellveien 3, 1400 Ski" in text and "22.11.2026" in text
    assert "Reidar Reservert" not in text
    assert "{navn} <b>Mallory</b>" in text  # inserted as plain text, not re-interpreted
    assert "art. 14" in text and "protestere" in text and "Datatilsynet" in text and "berettigede interesse" in text
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
