"""Nothing lost, nothing leaked (issue 13): real SpatiaLite files and real processes.

Round trips that used to reset statuses, CRM writes to archived lots, exports aimed at the store,
purge under a concurrent reader, names with commas and formulas, kill -9 in the middle of an
analysis and of a sync.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from tests.test_fetch import X0, Y0
from tests.test_sync import export_sources
from tomte import crm, kommuner, owners, pipeline
from tomte.config import Settings
from tomte.errors import InvalidData
from tomte.store import open_store


def cli(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tomte", "--db", str(db), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def zone_file(path: Path, n: int, dx: float = 0.0) -> Path:
    gpd.GeoDataFrame({"arealformål": ["1110"] * n, "arealbruksstatus": ["2"] * n},
                     geometry=[box(X0 + dx + i * 400, Y0, X0 + dx + i * 400 + 300, Y0 + 300) for i in range(n)], crs=25833).to_file(path)
    return path


@pytest.fixture
def five_lots(store, tmp_path: Path):
    kommuner.load_kommuner(store)
    settings = Settings.from_env(store.path).with_(sources_file=tmp_path / "none.toml")
    pipeline.import_plans(store, "3207", zone_file(tmp_path / "right.geojson", 5), None)
    pipeline.analyse(store, settings, "3207")
    lots = [r["lot_id"] for r in store.rows("SELECT lot_id FROM lots WHERE active = 1 ORDER BY lot_id")]
    for lot in lots:
        crm.set_status(store, lot, "I dialog", f"Notat for {lot}", "kari")
    return store, settings, tmp_path, lots


def test_wrong_file_then_right_file_keeps_every_status_and_note(five_lots) -> None:
    store, settings, tmp, lots = five_lots
    pipeline.import_plans(store, "3207", zone_file(tmp / "wrong.geojson", 5, dx=6000), None)  # other zones, same kommune
    pipeline.analyse(store, settings, "3207")
    assert store.scalar("SELECT COUNT(*) FROM lots WHERE active = 1 AND lot_id IN (" + ",".join("?" * len(lots)) + ")", lots) == 0
    archived = store.rows("SELECT archived_version FROM lots WHERE lot_id = ?", (lots[0],))[0]
    assert archived["archived_version"] is not None  # which data version archived it
    events = crm.events(store, lots[0])
    assert "kommuneplanen ble byttet ut (fil: wrong.geojson" in events[-1]["note"]
    with pytest.raises(InvalidData, match="den lever videre som|ingen etterfølger"):
        crm.set_status(store, lots[0], "Kontaktet", None, "kari")  # archived: refused, not stranded
    pipeline.import_plans(store, "3207", tmp / "right.geojson", None)
    result = pipeline.analyse(store, settings, "3207")
    rows = store.rows("SELECT lot_id, status, active FROM lots WHERE lot_id IN (" + ",".join("?" * len(lots)) + ") ORDER BY lot_id", lots)
    assert rows == [{"lot_id": lot, "status": "I dialog", "active": 1} for lot in lots]  # 5 of 5 back, not "Ny"
    assert set(result.restored) == set(lots)
    kinds = [e["kind"] for e in crm.events(store, lots[0])]
    assert kinds[-2:] == ["arkivert", "gjenopprettet"] and any(e["note"] == f"Notat for {lots[0]}" for e in crm.events(store, lots[0]))
    changes = [r["kind"] for r in store.rows("SELECT kind FROM changes WHERE lot_id = ?", (lots[0],))]
    assert changes[-2:] == ["forsvunnet", "gjenopprettet"]


def test_crm_set_on_a_replaced_lot_refuses_with_the_successor_or_follows(five_lots) -> None:
    store, settings, tmp, lots = five_lots
    gpd.GeoDataFrame({"arealformål": ["1110"] * 5, "arealbruksstatus": ["2"] * 5},  # each zone a little larger: new ids, ≥ 50 % overlap
                     geometry=[box(X0 + i * 400, Y0, X0 + i * 400 + 320, Y0 + 300) for i in range(5)], crs=25833).to_file(tmp / "v2.geojson")
    pipeline.import_plans(store, "3207", tmp / "v2.geojson", None)
    result = pipeline.analyse(store, settings, "3207")
    heir = result.moved[lots[0]]
    out = cli(store.path, "crm", "set", "--lot", lots[0], "--status", "Kontaktet")
    assert out.returncode == 1 and heir in out.stderr and "--follow" in out.stderr
    out = cli(store.path, "crm", "set", "--lot", lots[0], "--status", "Kontaktet", "--follow")
    assert out.returncode == 0 and heir in out.stdout
    assert store.scalar("SELECT status FROM lots WHERE lot_id = ?", (heir,)) == "Kontaktet"


def test_analyse_killed_after_lots_changes_nothing(five_lots) -> None:
    store, settings, tmp, lots = five_lots
    before = store.rows("SELECT lot_id, status, score, tier, active FROM lots ORDER BY lot_id")
    pipeline.import_plans(store, "3207", zone_file(tmp / "more.geojson", 8), None)
    out = cli(store.path, "analyse", "--kommune", "3207", env={"TOMTE_CRASH_AT": "after_lots"})
    assert out.returncode == -signal.SIGKILL
    after = open_store(store.path)
    assert after.rows("SELECT lot_id, status, score, tier, active FROM lots ORDER BY lot_id") == before
    assert after.scalar("SELECT COUNT(*) FROM lots WHERE active = 1 AND score IS NULL") == 0


def test_exports_never_touch_the_database_or_overwrite(demo_copy: Path, tmp_path: Path) -> None:
    size = demo_copy.stat().st_size
    for fmt in ("gpkg", "geojson", "csv"):
        for target in (demo_copy, Path(str(demo_copy) + "-wal")):
            out = cli(demo_copy, "export", "--kommune", "3207", "--format", fmt, "--out", str(target))
            assert out.returncode == 1 and "selve databasen" in out.stderr
    assert open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots") > 0 and demo_copy.stat().st_size >= size * 0.5
    first = tmp_path / "t.csv"
    assert cli(demo_copy, "export", "--kommune", "3207", "--format", "csv", "--out", str(first)).returncode == 0
    out = cli(demo_copy, "export", "--kommune", "3207", "--format", "csv", "--out", str(first))
    assert out.returncode == 1 and "--overwrite" in out.stderr
    assert cli(demo_copy, "export", "--kommune", "3207", "--format", "csv", "--out", str(first), "--overwrite").returncode == 0
    for bad in (tmp_path, tmp_path / "nope" / "x.csv"):
        out = cli(demo_copy, "export", "--kommune", "3207", "--format", "csv", "--out", str(bad))
        assert out.returncode == 1 and out.stderr.startswith("Feil:") and "Uventet" not in out.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_names_with_commas_and_formulas_are_rows_and_guarded(demo_copy: Path, tmp_path: Path) -> None:
    s = open_store(demo_copy)
    lot = s.scalar("SELECT l.lot_id FROM lots l JOIN lot_parcels lp ON lp.lot_id = l.lot_id WHERE l.kommunenummer = '3207' "
                   "AND l.active = 1 GROUP BY l.lot_id HAVING COUNT(*) = 1 LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ?", (lot,))[0]
    for name in ("Nordmann, Kari", "Hansen Eiendom AS, avd. Ski", ' =HYPERLINK("http://x")'):
        owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, name))
    pipeline.score_kommune(s, "3207", Settings.from_env(demo_copy).scoring)
    from tomte.enrich import stored_features

    assert stored_features(s, "3207").loc[lot, "n_owners"] == 3  # three owners, not five pieces
    out = tmp_path / "eiere.csv"
    assert cli(demo_copy, "export", "--kommune", "3207", "--format", "csv-rfc4180", "--out", str(out), "--with-owners").returncode == 0
    with open(out, encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["lot_id"] == lot)
    assert row["eiere"].split("\n") == ["'=HYPERLINK(\"http://x\")", "Hansen Eiendom AS, avd. Ski", "Nordmann, Kari"]
    assert any("eksport med eiernavn" in r["outcome"] for r in owners.lookup_log(s))  # the CLI read is logged


READER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("BEGIN")
conn.execute("SELECT COUNT(*) FROM lots").fetchone()
print("holding", flush=True)
time.sleep(60)
"""


def test_purge_is_proven_or_reported_blocked(demo_copy: Path, tmp_path: Path) -> None:
    s = open_store(demo_copy)
    planted = "Planta Navnesen Testersen"
    owners.add_owner(s, owners.Owner("3207", 1, 1, 0, 0, planted))
    s.close()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(demo_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        out = cli(demo_copy, "purge-owners")
        assert out.returncode == 1 and "holder filen åpen" in out.stderr and "for godt" not in out.stdout
    finally:
        reader.kill()
        reader.wait()
    out = cli(demo_copy, "purge-owners")
    assert out.returncode == 0 and "for godt" in out.stdout
    for file in (demo_copy, Path(str(demo_copy) + "-wal")):
        if file.exists():
            assert planted.encode() not in file.read_bytes()


def test_killed_sync_leaves_no_workers_and_the_next_report_misses_nothing(demo_copy: Path, tmp_path: Path) -> None:
    sources = export_sources(demo_copy, tmp_path, ["3218", "3212"])
    (tmp_path / "empty.toml").write_text("")
    env = {"TOMTE_SOURCES": str(tmp_path / "empty.toml"), "TOMTE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", env=env).returncode == 0  # baseline report
    # A new approved plan over 3218's best lot, then a sync whose parent is killed while its workers run.
    s = open_store(demo_copy)
    top = s.read_frame("SELECT lot_id, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = '3218' AND active = 1 ORDER BY score DESC LIMIT 1")
    rp = gpd.read_file(tmp_path / "rp_3218.geojson")
    extra = gpd.GeoDataFrame([{"lokalId": "dekker", "objekttypenavn": "RpOmråde", "planidentifikasjon": "2026777", "planstatus": "3",
                               "vertikalnivå": "2", "geometry": top.geometry.iloc[0].buffer(5)}], crs=25833)
    gpd.GeoDataFrame(list(rp.to_dict("records")) + list(extra.to_dict("records")), crs=25833).to_file(tmp_path / "rp_3218.geojson")
    s.close()
    proc = subprocess.Popen([sys.executable, "-m", "tomte", "--db", str(demo_copy), "sync", "--sources", str(sources), "--workers", "2"],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(workers) < 2:
        workers |= {int(p.name) for p in Path("/proc").glob("[0-9]*") if _ppid(p) == proc.pid}
        time.sleep(0.05)
    assert workers, "the sync started no worker processes"
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    time.sleep(3.0)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and _state(w) != "Z"]  # no worker outlives its parent
    out = cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", "--report", str(tmp_path / "r.md"), env=env)
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "r.md").read_text()
    assert f"Forsvunnet: {top['lot_id'].iloc[0]} – nå dekket av reguleringsplan 2026777, vedtatt" in report


def _ppid(proc: Path) -> int | None:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _state(pid: int) -> str:
    try:
        return next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return "gone"


def test_notification_is_sent_once_even_when_the_sync_dies_before_its_report(demo_copy: Path, tmp_path: Path, monkeypatch) -> None:
    from tests.servers import fake_server

    sources = export_sources(demo_copy, tmp_path, ["3218"])
    (tmp_path / "empty.toml").write_text("")
    env = {"TOMTE_SOURCES": str(tmp_path / "empty.toml"), "TOMTE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", env=env).returncode == 0
    s = open_store(demo_copy)
    top = s.read_frame("SELECT lot_id, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = '3218' AND active = 1 "
                       "AND tier IN ('A', 'B') ORDER BY score DESC LIMIT 1")
    crm.set_status(s, top["lot_id"].iloc[0], "I dialog", None, "kari")
    rp = gpd.read_file(tmp_path / "rp_3218.geojson")
    extra = gpd.GeoDataFrame([{"lokalId": "forslag", "objekttypenavn": "RpOmråde", "planidentifikasjon": "2026888", "planstatus": "2",
                               "vertikalnivå": "2", "geometry": box(*top.geometry.iloc[0].centroid.buffer(20).bounds)}], crs=25833)
    gpd.GeoDataFrame(list(rp.to_dict("records")) + list(extra.to_dict("records")), crs=25833).to_file(tmp_path / "rp_3218.geojson")
    s.close()
    hooks: list[bytes] = []
    with fake_server({"/hook": lambda h, q: (hooks.append(h.rfile.read(int(h.headers["Content-Length"]))), (200, {}, b"ok"))[1]}) as (url, _):
        hook = {**env, "TOMTE_NOTIFY_WEBHOOK": f"{url}/hook"}
        died = cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", env={**hook, "TOMTE_CRASH_AT": "sync_before_report"})
        assert died.returncode == -signal.SIGKILL and not hooks
        assert cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", env=hook).returncode == 0  # resumes, reports, notifies
        assert cli(demo_copy, "sync", "--sources", str(sources), "--workers", "1", env=hook).returncode == 0  # nothing new
    assert len(hooks) == 1 and b"2026888" in hooks[0]
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
