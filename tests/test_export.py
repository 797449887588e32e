"""Exports: GeoPackage layer ``lots`` in EPSG:25833, GeoJSON in EPSG:4326, CSV for Excel."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyogrio

from tomte import crm
from tomte.export import FIELDS, safe_cell
from tomte.store import open_store

CONTRACT = ["lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "area_m2", "score", "tier", "status", "flags"]


def _export(db: Path, fmt: str, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "tomte", "--db", str(db), "--quiet", "export", "--kommune", "3207",
                    "--format", fmt, "--out", str(out)], check=True, capture_output=True)


def test_gpkg_geojson_and_csv_carry_the_same_lots(demo_copy: Path, tmp_path: Path) -> None:
    store = open_store(demo_copy)
    n = store.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    lot = store.scalar("SELECT lot_id FROM lots WHERE kommunenummer = '3207' AND active = 1 LIMIT 1")
    crm.set_status(store, lot, "Vurderes", "=HYPERLINK(\"http://x\") ærlig talt", "test")
    store.close()
    for fmt in ("gpkg", "geojson", "csv-rfc4180"):
        _export(demo_copy, fmt, tmp_path / f"lots.{fmt}")

    info = pyogrio.read_info(tmp_path / "lots.gpkg", layer="lots")
    assert info["crs"] == "EPSG:25833" and info["features"] == n
    assert set(CONTRACT) <= set(info["fields"])
    gpkg = pyogrio.read_dataframe(tmp_path / "lots.gpkg", layer="lots")
    assert gpkg["area_m2"].min() >= 2000
    assert (gpkg.geometry.area - gpkg["area_m2"]).abs().max() < 1

    doc = json.loads((tmp_path / "lots.geojson").read_text())
    assert len(doc["features"]) == n and "crs" not in doc
    x, y = doc["features"][0]["geometry"]["coordinates"][0][0][:2] if doc["features"][0]["geometry"]["type"] == "Polygon" \
        else doc["features"][0]["geometry"]["coordinates"][0][0][0][:2]
    assert 10 < x < 11.5 and 59 < y < 60.5  # lon/lat around Nordre Follo
    assert set(CONTRACT) <= set(doc["features"][0]["properties"])

    raw = (tmp_path / "lots.csv-rfc4180").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and raw.splitlines(keepends=True)[0].endswith(b"\r\n")  # RFC 4180, for scripts
    rows = list(csv.DictReader((tmp_path / "lots.csv-rfc4180").open(encoding="utf-8", newline="")))
    assert len(rows) == n and list(rows[0]) == FIELDS
    noted = next(r for r in rows if r["lot_id"] == lot)
    assert noted["latest_note"].startswith("'=HYPERLINK") and "ærlig" in noted["latest_note"]
    assert noted["status"] == "Vurderes" and noted["explanation"].startswith(("Framtidig", "Videreutvikling"))


def test_formula_cells_are_neutralised() -> None:
    assert [safe_cell(v) for v in ["=1+1", "+47", "-2", "@SUM", "ok", 5]] == ["'=1+1", "'+47", "'-2", "'@SUM", "ok", 5]


def test_owner_names_only_when_asked(demo_copy: Path, tmp_path: Path) -> None:
    from tomte import owners

    s = open_store(demo_copy)
    lot = s.scalar("SELECT l.lot_id FROM lots l JOIN lot_parcels lp ON lp.lot_id = l.lot_id WHERE l.kommunenummer = '3207' LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Ingrid Eier"))
    s.close()
    _export(demo_copy, "csv", tmp_path / "plain.csv")
    assert b"Ingrid Eier" not in (tmp_path / "plain.csv").read_bytes()
    subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "--quiet", "export", "--kommune", "3207", "--format", "csv",
                    "--out", str(tmp_path / "owners.csv"), "--with-owners"], check=True, capture_output=True)
    rows = list(csv.DictReader((tmp_path / "owners.csv").open(encoding="utf-8-sig"), delimiter=";"))
    assert next(r for r in rows if r["Tomt"] == lot)["Eiere"] == "Ingrid Eier"


def test_csv_for_norwegian_excel_and_a_shortlist(demo_copy: Path, tmp_path: Path) -> None:
    """Issue 15: Norwegian Excel read the comma-separated file into one column; no daa, no factor points, no shortlist."""
    store = open_store(demo_copy)
    lots = {r["lot_id"]: r for r in store.rows("SELECT lot_id, area_m2, tier, score, score_detail FROM lots "
                                                "WHERE kommunenummer = '3207' AND active = 1")}
    dialog = sorted(lots)[:2]
    for lot in dialog:
        crm.set_status(store, lot, "I dialog", None, "test")
    store.close()
    _export(demo_copy, "csv", tmp_path / "alle.csv")
    raw = (tmp_path / "alle.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader((tmp_path / "alle.csv").open(encoding="utf-8-sig", newline=""), delimiter=";"))
    assert len(rows) == len(lots)
    head = list(rows[0])
    assert head[:6] == ["Tomt", "Kommunenr.", "Arealformål", "Status i kommuneplanen", "Areal (daa)", "Areal (m²)"]
    assert {"Poeng", "Klasse", "CRM-status", "Flagg", "Hvorfor", "Boliger (anslag)", "Poeng kapasitet", "Poeng eierstruktur"} <= set(head)
    for r in rows:
        lot = lots[r["Tomt"]]
        assert r["Areal (daa)"] == f"{lot['area_m2'] / 1000:.1f}".replace(".", ",") or r["Areal (daa)"] == str(round(lot["area_m2"] / 1000))
        assert "." not in r["Areal (daa)"] + r["Poeng"]  # decimal comma
        assert r["Arealformål"][:4].isdigit() and len(r["Arealformål"]) > 5  # the code with its name
        assert r["Status i kommuneplanen"] in ("Nåværende", "Framtidig", "Videreutvikling av nåværende")
        assert "_" not in r["Flagg"]  # flags in words
    points = json.loads(lots[rows[0]["Tomt"]]["score_detail"])["factors"]["capacity"]["points"]
    assert rows[0]["Poeng kapasitet"] == (str(int(points)) if float(points).is_integer() else f"{points:.1f}".replace(".", ","))

    subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "--quiet", "export", "--kommune", "3207", "--format", "csv",
                    "--out", str(tmp_path / "dialog.csv"), "--status", "i dialog"], check=True, capture_output=True)
    short = list(csv.DictReader((tmp_path / "dialog.csv").open(encoding="utf-8-sig", newline=""), delimiter=";"))
    assert sorted(r["Tomt"] for r in short) == dialog
    tier_a = sorted(k for k, v in lots.items() if v["tier"] == "A")
    _export_args = ["--tier", "A", "--format", "gpkg", "--out", str(tmp_path / "a.gpkg")]
    subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "--quiet", "export", "--kommune", "3207", *_export_args],
                   check=True, capture_output=True)
    assert sorted(pyogrio.read_dataframe(tmp_path / "a.gpkg")["lot_id"]) == tier_a
    bad = subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "export", "--kommune", "3207", "--format", "csv",
                          "--out", str(tmp_path / "x.csv"), "--tier", "Q"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("Feil: Ukjent klasse «Q»") and "Traceback" not in bad.stderr
