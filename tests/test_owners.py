"""Owners: the Matrikkel SOAP flow on a local server, manual/CSV owners, GDPR controls, outreach."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import shared
from tomte import owners
from tomte.errors import InvalidData, NotFound
from tomte.store import open_store


@pytest.fixture
def wsdl_dir() -> Path:
    return shared("matrikkel-wsdl/StoreServiceWS.wsdl").parent


@pytest.fixture
def lot_with_parcels(demo_copy: Path) -> tuple[Path, str]:
    """A demo lot whose two biggest parcels are renumbered to parcels the local Matrikkel knows."""
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels GROUP BY lot_id HAVING COUNT(*) >= 3 ORDER BY lot_id LIMIT 1")
    ids = [r["parcel_id"] for r in s.rows("SELECT parcel_id FROM lot_parcels WHERE lot_id = ? ORDER BY overlap_m2 DESC", (lot,))]
    knr = s.scalar("SELECT kommunenummer FROM lots WHERE lot_id = ?", (lot,))
    with s.transaction() as conn:
        for pid, (gnr, bnr) in zip(ids, [(12, 34), (12, 35), (99, 1)], strict=False):
            conn.execute("UPDATE parcels SET kommunenummer = '3207', gnr = ?, bnr = ?, matrikkelnummer = ? WHERE id = ?",
                         (gnr, bnr, f"{gnr}/{bnr}", pid))
        conn.execute("DELETE FROM lot_parcels WHERE lot_id = ? AND parcel_id NOT IN (?, ?, ?)", (lot, *ids[:3]))
    assert knr
    s.close()
    return demo_copy, lot


def run_cli(db: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "tomte", "--db", str(db), "--quiet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_soap_flow_end_to_end_on_a_local_server(lot_with_parcels, wsdl_dir: Path) -> None:
    from tests.matrikkel_server import matrikkel_server

    db, lot = lot_with_parcels
    with matrikkel_server(wsdl_dir) as (base, server, errors):
        env = {"TOMTE_MATRIKKEL_URL": base, "TOMTE_MATRIKKEL_USER": "tomte", "TOMTE_MATRIKKEL_PASSWORD": "hemmelig"}
        out = run_cli(db, "owners", "--lot", lot, "--lookup", "--basis", "berettiget interesse, utleveringsforskriften § 4", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert errors == [], errors  # every response the client read was valid against the XSDs
    assert set(server.calls) == {"findMatrikkelenhetIdForIdent", "getObject", "getObjects"}
    rows = json.loads(out.stdout)
    names = {r["name"]: r for r in rows if r["name"]}
    assert set(names) == {"Kari Nordmann", "Follo Tomteselskap AS"}
    assert names["Kari Nordmann"]["kind"] == "person" and names["Kari Nordmann"]["share"] == "1/2"
    assert names["Follo Tomteselskap AS"]["kind"] == "organisasjon" and names["Kari Nordmann"]["source"] == "matrikkel"
    assert "01017012345" not in db.read_bytes().decode("latin-1")  # the identity number is never stored
    log = owners.lookup_log(open_store(db))
    assert log[0]["basis"] == "berettiget interesse, utleveringsforskriften § 4" and log[0]["lot_id"] == lot
    assert "1 teiger ukjent" in log[0]["outcome"] and "Kari" not in json.dumps(log)  # the log holds no owner data


def test_bad_credentials_and_missing_settings_are_clear(lot_with_parcels, wsdl_dir: Path) -> None:
    from tests.matrikkel_server import matrikkel_server

    db, lot = lot_with_parcels
    with matrikkel_server(wsdl_dir) as (base, _, _):
        env = {"TOMTE_MATRIKKEL_URL": base, "TOMTE_MATRIKKEL_USER": "tomte", "TOMTE_MATRIKKEL_PASSWORD": "feil"}
        out = run_cli(db, "owners", "--lot", lot, "--lookup", "--basis", "test", env=env)
    assert out.returncode == 1 and "401" in out.stderr and "Traceback" not in out.stderr
    assert "feil" not in out.stderr  # the password is never shown
    out = run_cli(db, "owners", "--lot", lot, "--lookup", "--basis", "test", env={"TOMTE_MATRIKKEL_URL": ""})
    assert out.returncode == 1 and "TOMTE_MATRIKKEL_URL" in out.stderr
    out = run_cli(db, "owners", "--lot", lot, "--lookup", env={})
    assert out.returncode == 1 and "rettslig grunnlag" in out.stderr
    log = owners.lookup_log(open_store(db))
    assert any(r["outcome"].startswith("feilet") for r in log)


def test_unknown_parcel_is_a_soap_fault_reported_per_parcel(wsdl_dir: Path) -> None:
    from tests.matrikkel_server import matrikkel_server
    from tomte.sources.matrikkel import MatrikkelClient, MatrikkelConfig

    with matrikkel_server(wsdl_dir) as (base, _, errors):
        client = MatrikkelClient(MatrikkelConfig(base, "tomte", "hemmelig", wsdl=str(wsdl_dir)))
        with pytest.raises(NotFound):
            client.owners("3207", 99, 1)
        many = client.owners_many([("3207", 12, 34, 0, 0), ("3207", 99, 1, 0, 0)])
        assert len(many[("3207", 12, 34, 0, 0)]) == 2 and isinstance(many[("3207", 99, 1, 0, 0)], NotFound)
        assert client.owners("3207", 12, 35) == []
    assert errors == []


def test_manual_and_csv_owners_reservations_and_purge(demo_copy: Path, tmp_path: Path) -> None:
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    oid = owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Ola Testesen", address="Bakken 2"))
    csv_file = tmp_path / "eiere.csv"
    csv_file.write_text(f"kommunenummer;gnr;bnr;navn;type;adresse\n{p['kommunenummer']};{p['gnr']};{p['bnr']};Testbedrift AS;organisasjon;Postboks 1\n")
    assert owners.import_csv(s, csv_file) == 1
    names = {r["name"] for r in owners.lot_parcels_and_owners(s, lot)}
    assert {"Ola Testesen", "Testbedrift AS"} <= names
    wash = tmp_path / "reservert.csv"
    wash.write_text("navn,adresse\nOla Testesen,Bakken 2\n")
    assert owners.import_reservations(s, wash) == 1
    assert s.scalar("SELECT reserved FROM owners WHERE id = ?", (oid,)) == 1
    with pytest.raises(InvalidData):
        owners.add_owner(s, owners.Owner("3207", 1, 1, 0, 0, " "))
    s.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    out = run_cli(demo_copy, "purge-owners")
    assert out.returncode == 0 and "Slettet 2" in out.stdout
    raw = demo_copy.read_bytes() + (Path(str(demo_copy) + "-wal").read_bytes() if Path(str(demo_copy) + "-wal").exists() else b"")
    assert b"Ola Testesen" not in raw and b"Testbedrift AS" not in raw


def test_purge_older_than_keeps_recent_owners(store) -> None:
    owners.add_owner(store, owners.Owner("3207", 1, 1, 0, 0, "Gammel Eier"))
    store.execute("UPDATE owners SET created_at = '2020-01-01T00:00:00+00:00'")
    owners.add_owner(store, owners.Owner("3207", 1, 2, 0, 0, "Ny Eier"))
    assert owners.purge(store, older_than_days=30) == 1
    assert [r["name"] for r in store.rows("SELECT name FROM owners")] == ["Ny Eier"]


def test_outreach_sequence_and_due_list(store) -> None:
    oid = owners.add_owner(store, owners.Owner("3207", 1, 1, 0, 0, "Kari"))
    reserved = owners.add_owner(store, owners.Owner("3207", 1, 2, 0, 0, "Reservert"))
    owners.set_reserved(store, reserved, True)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    owners.start_outreach(store, "L1", oid, start)
    owners.start_outreach(store, "L1", reserved, start)
    assert [r["action"] for r in owners.due(store, "2026-11-01") if r["name"] == "Kari"] == ["brev"]
    due_15 = owners.due(store, "2026-11-15")
    assert [r["action"] for r in due_15 if r["name"] == "Kari"] == ["brev", "e-post", "telefon"]
    assert [r["action"] for r in due_15 if r["name"] == "Reservert"] == ["e-post", "telefon"]  # no letters
    owners.mark_done(store, due_15[0]["id"], "test")
    assert len([r for r in owners.due(store, "2026-11-15") if r["name"] == "Kari"]) == 2
    assert [r["action"] for r in owners.due(store, "2026-12-01") if r["name"] == "Kari"][-1] == "brev 2"


def test_shortlist_lookup_logs_each_lot(lot_with_parcels, wsdl_dir: Path) -> None:
    from tests.matrikkel_server import matrikkel_server
    from tomte import pipeline
    from tomte.config import Settings

    db, lot = lot_with_parcels
    s = open_store(db)
    other = s.scalar("SELECT lot_id FROM lots WHERE lot_id != ? AND active = 1 AND lot_id IN (SELECT lot_id FROM lot_parcels) LIMIT 1", (lot,))
    with matrikkel_server(wsdl_dir) as (base, _, errors):
        env = {"TOMTE_MATRIKKEL_URL": base, "TOMTE_MATRIKKEL_USER": "tomte", "TOMTE_MATRIKKEL_PASSWORD": "hemmelig",
               "TOMTE_MATRIKKEL_WSDL": str(wsdl_dir)}
        total = pipeline.lookup_owners_many(s, Settings.from_env(db), [lot, other], "berettiget interesse", "kari", env=env)
    assert total["lots"] == 2 and total["owners"] == 2 and errors == []
    assert [r["lot_id"] for r in owners.lookup_log(s)][:2] == [other, lot]


def test_making_letters_again_keeps_the_outreach_dates(demo_copy: Path) -> None:
    """Issue 15: regenerating letters reset every follow-up date to today."""
    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    first = owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Først Eier", address="Bakken 2"))
    owners.start_outreach(s, lot, first, datetime(2026, 11, 1, tzinfo=UTC))
    before = s.rows("SELECT step, due FROM outreach WHERE owner_id = ? ORDER BY step", (first,))
    later = owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Senere Eier", address="Bakken 4"))
    assert owners.start_outreach_for_lots(s, [lot]) == 1  # only the owner without a sequence
    assert s.rows("SELECT step, due FROM outreach WHERE owner_id = ? ORDER BY step", (first,)) == before
    assert s.scalar("SELECT COUNT(*) FROM outreach WHERE owner_id = ?", (later,)) == len(owners.OUTREACH_STEPS)
    assert owners.start_outreach_for_lots(s, [lot]) == 0


def test_owner_share_is_a_fraction_or_percent(store, tmp_path: Path) -> None:
    """Issue 15: a manual owner was saved silently with the share «halvparten»."""
    assert [owners.normalise_share(v) for v in ["1/2", "50 %", "0,25", "100%", "", "2/6", " 1 / 3 "]] == \
        ["1/2", "1/2", "1/4", "1/1", "", "1/3", "1/3"]
    for bad in ["halvparten", "3/2", "120 %", "0", "1/0", "-1/2"]:
        with pytest.raises(InvalidData, match="Andelen"):
            owners.normalise_share(bad)
    with pytest.raises(InvalidData, match="Andelen «halvparten»"):
        owners.add_owner(store, owners.Owner("3207", 1, 1, 0, 0, "Kari", share="halvparten"))
    bad_csv = tmp_path / "eiere.csv"
    bad_csv.write_text("kommunenummer;gnr;bnr;navn;andel\n3207;1;1;Ola;1/2\n3207;1;2;Per;mye\n")
    with pytest.raises(InvalidData, match="Linje 3"):
        owners.import_csv(store, bad_csv)
    assert store.scalar("SELECT COUNT(*) FROM owners") == 0  # nothing from a bad file
