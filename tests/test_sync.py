"""Scheduled sync: parallel kommuner, change reports, notifications, resume, and analysts' data kept safe."""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from tests.servers import fake_server, sequence
from tests.test_fetch import EXCEPTION, wfs_routes
from tomte import crm, owners
from tomte.config import Settings
from tomte.store import open_store
from tomte.sync import KommuneChanges, SyncReport, run_sync


def export_sources(db: Path, tmp: Path, kommuner: list[str]) -> Path:
    """Write each kommune's stored plans as GeoJSON files and a sources.toml pointing at them."""
    s = open_store(db)
    lines = []
    for knr in kommuner:
        kp = s.read_frame("SELECT zone_key AS lokalId, arealformal AS arealformål, arealbruksstatus, AsBinary(geom) AS geom "
                          "FROM kp_zones WHERE kommunenummer = ?", (knr,))
        rp = s.read_frame("SELECT area_key AS lokalId, 'RpOmråde' AS objekttypenavn, planid AS planidentifikasjon, plannavn, planstatus, "
                          "vertikalniva AS vertikalnivå, ikrafttredelsesdato, AsBinary(geom) AS geom FROM rp_areas WHERE kommunenummer = ?", (knr,))
        kp.to_file(tmp / f"kp_{knr}.geojson")
        rp.to_file(tmp / f"rp_{knr}.geojson")
        for role, name in (("kommuneplan", "kp"), ("reguleringsplan", "rp")):
            lines.append(f'[[source]]\nkommune = "{knr}"\nrole = "{role}"\nkind = "file"\npath = "{tmp / f"{name}_{knr}.geojson"}"\ncrs = "EPSG:25833"\n')
    s.close()
    path = tmp / "sources.toml"
    path.write_text("".join(lines))
    return path


def settings_for(db: Path, tmp: Path) -> Settings:
    return Settings.from_env(db).with_(sources_file=tmp / "none.toml")


class _Smtp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 localhost ESMTP test\r\n")
        data = False
        while line := self.rfile.readline():
            if data:
                if line == b".\r\n":
                    data = False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    self.server.messages[-1] += line.decode()
                continue
            cmd = line[:4].upper()
            if cmd in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 localhost\r\n")
            elif cmd == b"DATA":
                self.server.messages.append("")
                data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif cmd == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_failing_source_keeps_notes_status_and_owners_and_others_go_on(demo_copy: Path, tmp_path: Path) -> None:
    sources = export_sources(demo_copy, tmp_path, ["3218", "3212"])
    s = open_store(demo_copy)
    lot = s.scalar("SELECT l.lot_id FROM lots l JOIN lot_parcels lp ON lp.lot_id = l.lot_id WHERE l.kommunenummer = '3212' AND l.active = 1 LIMIT 1")
    crm.set_status(s, lot, "I dialog", "Eier positiv, ring tilbake i januar", "test")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Berit Beholdt"))
    before = (s.rows("SELECT lot_id, status, score, tier FROM lots WHERE kommunenummer = '3212' ORDER BY lot_id"),
              s.rows("SELECT * FROM crm_events WHERE lot_id LIKE '3212-%' ORDER BY id"), s.rows("SELECT name FROM owners"))
    all_events = s.rows("SELECT * FROM crm_events ORDER BY id")
    with fake_server(wfs_routes(sequence((200, {"Content-Type": "text/xml"}, EXCEPTION)))) as (url, _):
        # 3212's reguleringsplan now comes from a WFS that fails midway (after the kommuneplan file was read).
        text = sources.read_text().replace(
            f'[[source]]\nkommune = "3212"\nrole = "reguleringsplan"\nkind = "file"\npath = "{tmp_path / "rp_3212.geojson"}"\ncrs = "EPSG:25833"\n',
            f'[[source]]\nkommune = "3212"\nrole = "reguleringsplan"\nkind = "wfs"\nurl = "{url}/wfs"\ntypename = "app:KpArealformalOmrade"\n')
        sources.write_text(text)
        report = run_sync(s, settings_for(demo_copy, tmp_path), None, str(sources), False, lambda _m: None, workers=2)
    assert not report.ok and report.kommuner["3212"].ok is False and "NoApplicableCode" in report.kommuner["3212"].error
    assert report.kommuner["3218"].ok
    after = (s.rows("SELECT lot_id, status, score, tier FROM lots WHERE kommunenummer = '3212' ORDER BY lot_id"),
             s.rows("SELECT * FROM crm_events WHERE lot_id LIKE '3212-%' ORDER BY id"), s.rows("SELECT name FROM owners"))
    assert after == before  # the failed kommune: every lot, status, note and owner as it was
    events_now = s.rows("SELECT * FROM crm_events ORDER BY id")
    assert events_now[:len(all_events)] == all_events  # the log is only ever appended to
    text = report.render()
    assert "## Nesodden (3212) – FEILET" in text and "tidligere data er beholdt" in text
    assert text.index("## Viktigst først") < text.index("## Nesodden (3212)")  # the failure is named first


def test_changes_are_reported_and_notified(demo_copy: Path, tmp_path: Path, smtp_server, monkeypatch) -> None:
    sources = export_sources(demo_copy, tmp_path, ["3218"])
    s = open_store(demo_copy)
    settings = settings_for(demo_copy, tmp_path)
    run_sync(s, settings, ["3218"], str(sources), False, lambda _m: None, workers=1)  # baseline from the files
    lots = s.read_frame("SELECT lot_id, tier, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = '3218' AND active = 1 ORDER BY score DESC")
    covered, watched = lots.iloc[0], lots.iloc[1]
    crm.set_status(s, covered.lot_id, "Kontaktet", "Brev sendt", "test")
    crm.set_status(s, watched.lot_id, "I dialog", None, "test")
    rp = gpd.read_file(tmp_path / "rp_3218.geojson")
    new = gpd.GeoDataFrame([
        {"lokalId": "ny-vedtatt", "objekttypenavn": "RpOmråde", "planidentifikasjon": "2026099", "plannavn": "Ny plan", "planstatus": "3",
         "vertikalnivå": "2", "geometry": covered.geometry.buffer(5)},
        {"lokalId": "ny-forslag", "objekttypenavn": "RpOmråde", "planidentifikasjon": "2026100", "plannavn": "Forslag <b>X</b>", "planstatus": "2",
         "vertikalnivå": "2", "geometry": box(*watched.geometry.centroid.buffer(30).bounds)}], crs=25833)
    gpd.GeoDataFrame(list(rp.to_dict("records")) + list(new.to_dict("records")), crs=25833).to_file(tmp_path / "rp_3218.geojson")
    hooks = []
    with fake_server({"/hook": lambda h, q: (hooks.append(json.loads(h.rfile.read(int(h.headers["Content-Length"])))), (200, {}, b"ok"))[1]}) as (url, _):
        monkeypatch.setenv("TOMTE_NOTIFY_SMTP", f"127.0.0.1:{smtp_server.server_address[1]}")
        monkeypatch.setenv("TOMTE_NOTIFY_TO", "team@example.invalid")
        monkeypatch.setenv("TOMTE_NOTIFY_WEBHOOK", f"{url}/hook")
        report = run_sync(s, settings, ["3218"], str(sources), False, lambda _m: None, workers=1)
    c = report.kommuner["3218"]
    gone = {g["lot_id"]: g for g in c.gone_lots}
    assert gone[covered.lot_id]["reason"] == "nå dekket av reguleringsplan 2026099, vedtatt"
    assert any(p["planid"] == "2026100" and p["lot_id"] == watched.lot_id for p in c.new_plans_in_progress)
    md = report.render()
    assert f"Forsvunnet: {covered.lot_id} (status Kontaktet) – nå dekket av reguleringsplan 2026099, vedtatt" in md
    # The pipeline lot that vanished and the plan touching a pipeline lot come first (issue 15)
    top = md.split("## Ås (3218)")[0]
    assert "## Viktigst først" in top and f"tomt {covered.lot_id} i pipeline (status Kontaktet) er forsvunnet" in top
    assert f"plan under arbeid 2026100 berører {watched.lot_id} i pipeline (status I dialog)" in top
    html = report.render(as_html=True)
    assert "Forslag &lt;b&gt;X&lt;/b&gt;" in html and "<b>X</b>" not in html
    assert hooks and any("2026100" in i for i in hooks[0]["items"])
    assert smtp_server.messages and "2026100" in smtp_server.messages[0]
    assert "Brev sendt" not in md  # reports carry no notes or owner data
    assert s.scalar("SELECT report FROM sync_runs ORDER BY id DESC LIMIT 1") == md


def test_interrupted_sync_picks_up_where_it_stopped(demo_copy: Path, tmp_path: Path) -> None:
    sources = export_sources(demo_copy, tmp_path, ["3218", "3212"])
    s = open_store(demo_copy)
    run_id = s.execute("INSERT INTO sync_runs (started_at, kommuner) VALUES ('2026-11-22', ?)", (json.dumps(["3212", "3218"]),)).lastrowid
    s.execute("INSERT INTO sync_items (run_id, kommunenummer, status, changes) VALUES (?, '3212', 'ok', ?)",
              (run_id, json.dumps({"kommunenummer": "3212", "lots": 7})))
    s.execute("INSERT INTO sync_items (run_id, kommunenummer, status) VALUES (?, '3218', 'venter')", (run_id,))
    said: list[str] = []
    report = run_sync(s, settings_for(demo_copy, tmp_path), None, str(sources), False, said.append, workers=1)
    assert report.run_id == run_id and report.resumed == ["3212"]
    assert any("Fortsetter avbrutt synk" in m for m in said)
    assert s.rows("SELECT kommunenummer, status FROM sync_items WHERE run_id = ? ORDER BY kommunenummer", (run_id,)) == [
        {"kommunenummer": "3212", "status": "ok"}, {"kommunenummer": "3218", "status": "ok"}]
    assert s.scalar("SELECT finished_at IS NOT NULL FROM sync_runs WHERE id = ?", (run_id,)) == 1


def test_cli_without_terminal_logs_structured_lines_and_exit_code(demo_copy: Path, tmp_path: Path, monkeypatch) -> None:
    sources = export_sources(demo_copy, tmp_path, ["3218"])
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("TOMTE_SOURCES", str(tmp_path / "empty.toml"))  # only the kommune this test configures
    out = subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "sync", "--sources", str(sources), "--workers", "1",
                          "--report", str(tmp_path / "rapport.html")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "kommune=3218 ok=True" in out.stderr and "level=INFO" in out.stderr
    assert (tmp_path / "rapport.html").read_text().startswith("<!doctype html>")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[source]]\nkommune = "3218"\nrole = "kommuneplan"\nkind = "file"\npath = "/nonexistent.gml"\n')
    out = subprocess.run([sys.executable, "-m", "tomte", "--db", str(demo_copy), "sync", "--sources", str(bad), "--workers", "1"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "feilet: 3218" in out.stdout


def test_report_without_changes() -> None:
    report = SyncReport(7, {"3207": KommuneChanges("3207", lots=12)})
    assert "Ingen endringer" in report.render() and report.ok
