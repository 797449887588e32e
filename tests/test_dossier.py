"""The site dossier (issue 18): sections in a PDF, owner names only when asked (and then logged), several lots in one."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader

from tomte import owners
from tomte.store import open_store


def _text(pdf: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read_bytes())).pages)


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tomte", "--db", str(db), "--quiet", "dossier", *args], capture_output=True, text=True)


def test_dossier_sections_and_owner_names_only_when_asked(demo_copy: Path, tmp_path: Path) -> None:
    s = open_store(demo_copy)
    lot, other = [r["lot_id"] for r in s.rows("SELECT l.lot_id FROM lots l WHERE l.kommunenummer = '3207' AND l.active = 1 "
                                               "AND EXISTS (SELECT 1 FROM lot_parcels lp WHERE lp.lot_id = l.lot_id) ORDER BY l.score DESC LIMIT 2")]
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Dossier Eiersen", address="Vei 1, 1400 Ski"))
    logged = s.scalar("SELECT COUNT(*) FROM owner_lookups")

    plain = tmp_path / "plain.pdf"
    out = _cli(demo_copy, "--lot", lot, "--out", str(plain))
    assert out.returncode == 0, out.stderr
    text = _text(plain)
    for section in ("Tomtedossier – Nordre Follo", "Hvorfor denne tomten", "Poeng, faktor for faktor", "Reguleringsplaner som berører tomten",
                    "Restriksjoner og hensyn", "Teiger", "CRM: status", "daa", "Klasse"):
        assert section in text, section
    assert f"{p['gnr']}/{p['bnr']}" in text and "Dossier Eiersen" not in text and "eiernavn" not in text
    assert s.scalar("SELECT COUNT(*) FROM owner_lookups") == logged  # nothing personal, nothing logged
    reader = PdfReader(io.BytesIO(plain.read_bytes()))
    links = [a.get_object()["/A"]["/URI"] for page in reader.pages for a in page.get("/Annots", []) if "/A" in a.get_object()]
    assert links and all(str(u).startswith("https://") for u in links)  # plan register links are clickable

    refused = _cli(demo_copy, "--lot", lot, "--out", str(tmp_path / "x.pdf"), "--with-owners")
    assert refused.returncode == 1 and refused.stderr.startswith("Feil:") and "grunnlag" in refused.stderr
    named = tmp_path / "named.pdf"
    assert _cli(demo_copy, "--lot", lot, "--lot", other, "--out", str(named), "--with-owners", "--basis", "styremøte").returncode == 0
    text = _text(named)
    assert "Dossier Eiersen" in text and "Inneholder eiernavn" in text.split("Hvorfor denne tomten")[0]  # said on the first page
    assert text.count("Tomtedossier – Nordre Follo") == 2  # two lots, one PDF
    row = s.rows("SELECT basis, outcome FROM owner_lookups ORDER BY id DESC LIMIT 1")[0]
    assert row["basis"] == "styremøte" and "dossier med eiernavn" in row["outcome"] and "Eiersen" not in row["outcome"]
    assert _cli(demo_copy, "--lot", lot, "--out", str(plain)).returncode == 1  # never overwritten without --overwrite
    assert _cli(demo_copy, "--lot", "3207-finnesikke", "--out", str(tmp_path / "y.pdf")).stderr.startswith("Feil:")
