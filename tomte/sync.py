"""``sync``: fetch → differanse → enrichment → scoring for every watched kommune, and what changed.

* Kommuner run in parallel in a process pool sized to the machine; each worker opens its own
  store connection (WAL and the busy timeout let them write in turn). One kommune's failure is
  recorded and the others go on.
* Each sync is a run (``sync_runs``) with one item per kommune (``sync_items``). A run that was
  interrupted is picked up again by the next ``sync``: kommuner already done are skipped.
* Per kommune the report lists new lots, lots that disappeared and why, tier changes, new plans in
  progress (planstatus 1/2) touching lots on the shortlist (tier A/B) or in the pipeline (status
  other than Ny), and sources that failed or went stale (newest plan data older than
  ``STALE_DAYS``). Markdown, or HTML when the report file ends in ``.html``.
* Notifications (new A-tier lots; plans in progress touching pipeline lots) go by SMTP and/or a
  webhook when configured (``TOMTE_NOTIFY_SMTP`` host:port, ``TOMTE_NOTIFY_FROM``,
  ``TOMTE_NOTIFY_TO``, ``TOMTE_NOTIFY_WEBHOOK``). Owner data is never part of a report or message.
"""

from __future__ import annotations

import html
import logging
import multiprocessing as mp
import os
import smtplib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from tomte import pipeline
from tomte.config import Settings
from tomte.errors import TomteError
from tomte.plans import data_age_days
from tomte.sources.registry import merged
from tomte.store import Store, dumps, loads, now, open_store

STALE_DAYS = 730
SHORTLIST_TIERS = ("A", "B")
log = logging.getLogger("tomte.sync")


@dataclass
class KommuneChanges:
    """What changed in one kommune during a sync."""

    kommunenummer: str
    ok: bool = True
    error: str | None = None
    new_lots: list[dict[str, Any]] = field(default_factory=list)
    gone_lots: list[dict[str, Any]] = field(default_factory=list)
    tier_changes: list[dict[str, Any]] = field(default_factory=list)
    new_plans_in_progress: list[dict[str, Any]] = field(default_factory=list)
    stale: str | None = None
    lots: int = 0
    summary: str = ""


def _snapshot(store: Store, kommunenummer: str) -> dict[str, Any]:
    lots = {r["lot_id"]: r for r in store.rows(
        "SELECT lot_id, tier, status, score FROM lots WHERE kommunenummer = ? AND active = 1", (kommunenummer,))}
    plans = {r["area_key"] for r in store.rows(
        "SELECT area_key FROM rp_areas WHERE kommunenummer = ? AND planstatus IN ('1', '2')", (kommunenummer,))}
    return {"lots": lots, "in_progress": plans}


def detect_changes(store: Store, kommunenummer: str, before: dict[str, Any], moved: dict[str, str],
                   archived: dict[str, str]) -> KommuneChanges:
    """Compare the kommune's lots and plans in progress with a snapshot taken before the sync."""
    after = _snapshot(store, kommunenummer)
    changes = KommuneChanges(kommunenummer, lots=len(after["lots"]))
    moved_to = set(moved.values())
    for lot_id, row in after["lots"].items():
        if lot_id not in before["lots"] and lot_id not in moved_to:
            changes.new_lots.append({"lot_id": lot_id, "tier": row["tier"], "score": row["score"]})
    for lot_id, reason in archived.items():
        old = before["lots"].get(lot_id, {})
        changes.gone_lots.append({"lot_id": lot_id, "reason": reason, "tier": old.get("tier"), "status": old.get("status")})
    pairs = [(i, i) for i in after["lots"] if i in before["lots"]] + [(o, n) for o, n in moved.items() if n in after["lots"]]
    for old_id, new_id in pairs:
        old_tier, new_tier = before["lots"].get(old_id, {}).get("tier"), after["lots"][new_id]["tier"]
        if old_tier != new_tier:
            changes.tier_changes.append({"lot_id": new_id, "from": old_tier, "to": new_tier})
    new_plans = after["in_progress"] - before["in_progress"]
    if new_plans:
        rows = store.rows(
            "SELECT DISTINCT r.planid, r.plannavn, r.planstatus, l.lot_id, l.tier, l.status FROM rp_areas r "
            "JOIN lots l ON l.kommunenummer = r.kommunenummer AND l.active = 1 AND ST_Intersects(l.geom, r.geom) "
            "AND ST_Area(ST_Intersection(l.geom, r.geom)) > 1 WHERE r.kommunenummer = ? AND r.area_key IN ("
            + ",".join("?" for _ in new_plans) + ") AND (l.tier IN ('A', 'B') OR l.status != 'Ny')",
            (kommunenummer, *sorted(new_plans)))
        changes.new_plans_in_progress = rows
    state = store.rows("SELECT newest_data_date FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
    age = data_age_days(state[0]["newest_data_date"]) if state else None
    if age is not None and age > STALE_DAYS:
        changes.stale = f"nyeste plandata er {age} dager gamle"
    return changes


def sync_kommune(db_path: str, settings: Settings, kommunenummer: str, sources_file: str | None, refresh: bool) -> KommuneChanges:
    """One kommune: fetch, analyse (differanse, enrichment, scores), detect changes. Runs in a worker."""
    store = open_store(db_path)
    try:
        before = _snapshot(store, kommunenummer)
        try:
            fetched = pipeline.fetch_kommune(store, settings, kommunenummer, sources_file, refresh)
        except TomteError as exc:
            # The previous data stay; the analysis still runs on them so scores stay current.
            changes = KommuneChanges(kommunenummer, ok=False, error=str(exc))
            changes.lots = len(before["lots"])
            return changes
        result = pipeline.analyse(store, settings, kommunenummer)
        changes = detect_changes(store, kommunenummer, before, result.moved, result.archived)
        changes.summary = f"{fetched.summary()}; {result.summary()}"
        return changes
    finally:
        store.close()


@dataclass
class SyncReport:
    """A run's outcome per kommune."""

    run_id: int
    kommuner: dict[str, KommuneChanges] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no kommune failed."""
        return all(c.ok for c in self.kommuner.values())

    def summary(self) -> str:
        """One line."""
        failed = [k for k, c in self.kommuner.items() if not c.ok]
        new = sum(len(c.new_lots) for c in self.kommuner.values())
        gone = sum(len(c.gone_lots) for c in self.kommuner.values())
        return (f"Synk {self.run_id}: {len(self.kommuner)} kommuner, {new} nye og {gone} forsvunne tomter"
                + (f"; feilet: {', '.join(failed)}" if failed else "; ingen feil"))

    def render(self, as_html: bool = False) -> str:
        """The report: Markdown, or HTML (every data value escaped)."""
        lines = [f"# Endringer siden sist – synk {self.run_id}", ""]
        for knr, c in sorted(self.kommuner.items()):
            lines.append(f"## {knr}" + ("" if c.ok else " – FEILET"))
            if c.error:
                lines.append(f"- Kilde feilet: {c.error} (tidligere data er beholdt)")
            if c.stale:
                lines.append(f"- Utdaterte data: {c.stale}")
            lines += [f"- Ny tomt {n['lot_id']} (klasse {n['tier'] or '–'})" for n in c.new_lots]
            lines += [f"- Forsvunnet: {g['lot_id']} – {g['reason']}" for g in c.gone_lots]
            lines += [f"- Klasse endret: {t['lot_id']} {t['from'] or '–'} → {t['to'] or '–'}" for t in c.tier_changes]
            lines += [f"- Ny plan under arbeid {p['planid']} ({p['plannavn'] or 'uten navn'}) berører {p['lot_id']} "
                      f"(klasse {p['tier'] or '–'}, status {p['status']})" for p in c.new_plans_in_progress]
            if c.ok and not (c.new_lots or c.gone_lots or c.tier_changes or c.new_plans_in_progress or c.stale):
                lines.append("- Ingen endringer")
            lines.append("")
        text = "\n".join(lines)
        if not as_html:
            return text
        body = []
        for line in lines:
            if line.startswith("# "):
                body.append(f"<h1>{html.escape(line[2:])}</h1>")
            elif line.startswith("## "):
                body.append(f"<h2>{html.escape(line[3:])}</h2>")
            elif line.startswith("- "):
                body.append(f"<li>{html.escape(line[2:])}</li>")
        return "<!doctype html><html lang=\"no\"><meta charset=\"utf-8\"><title>tomte synk</title>" + "".join(body) + "</html>"


def notifications(report: SyncReport) -> list[str]:
    """What deserves a message: new A-tier lots and plans in progress touching pipeline lots."""
    items = []
    for knr, c in sorted(report.kommuner.items()):
        items += [f"{knr}: ny A-tomt {n['lot_id']}" for n in c.new_lots if n["tier"] == "A"]
        items += [f"{knr}: plan under arbeid {p['planid']} berører {p['lot_id']} (status {p['status']})"
                  for p in c.new_plans_in_progress if p["status"] != "Ny"]
    return items


def notify(items: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Send the items by SMTP and/or webhook when configured; returns the channels used."""
    e = os.environ if env is None else env
    used: list[str] = []
    if not items:
        return used
    text = "tomte har funnet:\n" + "\n".join(f"- {i}" for i in items)
    if e.get("TOMTE_NOTIFY_SMTP") and e.get("TOMTE_NOTIFY_TO"):
        host, _, port = e["TOMTE_NOTIFY_SMTP"].partition(":")
        msg = EmailMessage()
        msg["Subject"] = f"tomte: {len(items)} nye funn"
        msg["From"] = e.get("TOMTE_NOTIFY_FROM", "tomte@localhost")
        msg["To"] = e["TOMTE_NOTIFY_TO"]
        msg.set_content(text)
        with smtplib.SMTP(host, int(port or 25), timeout=30) as smtp:
            smtp.send_message(msg)
        used.append("smtp")
    if e.get("TOMTE_NOTIFY_WEBHOOK"):
        requests.post(e["TOMTE_NOTIFY_WEBHOOK"], json={"text": text, "items": items}, timeout=30).raise_for_status()
        used.append("webhook")
    return used


def _watched(store: Store, settings: Settings, sources_file: str | None) -> list[str]:
    return sorted({s.kommune for s in merged(settings.sources_file, store, Path(sources_file) if sources_file else None)})


def run_sync(store: Store, settings: Settings, kommuner: list[str] | None, sources_file: str | None, refresh: bool,
             progress: Callable[[str], None], workers: int | None = None) -> SyncReport:
    """Sync the kommuner (default: every kommune with sources), resuming an interrupted run."""
    wanted = [pipeline.resolve_kommune(store, k).kommunenummer for k in kommuner] if kommuner else _watched(store, settings, sources_file)
    unfinished = store.rows("SELECT id, kommuner FROM sync_runs WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1")
    if unfinished and set(loads(unfinished[0]["kommuner"], [])) == set(wanted):
        run_id = int(unfinished[0]["id"])
        progress(f"Fortsetter avbrutt synk {run_id}")
    else:
        run_id = int(store.execute("INSERT INTO sync_runs (started_at, kommuner) VALUES (?, ?)", (now(), dumps(wanted))).lastrowid)
        store.conn.executemany("INSERT INTO sync_items (run_id, kommunenummer, status) VALUES (?, ?, 'venter')",
                               [(run_id, k) for k in wanted])
    report = SyncReport(run_id)
    done = {r["kommunenummer"]: r for r in store.rows("SELECT * FROM sync_items WHERE run_id = ? AND status != 'venter'", (run_id,))}
    for knr, row in done.items():
        report.kommuner[knr] = KommuneChanges(**loads(row["changes"], {"kommunenummer": knr}))
        report.resumed.append(knr)
    todo = [k for k in wanted if k not in done]
    n = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    progress(f"Synk {run_id}: {len(todo)} kommuner ({len(done)} allerede ferdig), {n} parallelle")

    def record(changes: KommuneChanges) -> None:
        report.kommuner[changes.kommunenummer] = changes
        store.execute("UPDATE sync_items SET status = ?, finished_at = ?, message = ?, changes = ? WHERE run_id = ? AND kommunenummer = ?",
                      ("ok" if changes.ok else "feilet", now(), changes.error or changes.summary, dumps(asdict(changes)), run_id,
                       changes.kommunenummer))
        log.info("kommune=%s ok=%s lots=%d new=%d gone=%d", changes.kommunenummer, changes.ok, changes.lots,
                 len(changes.new_lots), len(changes.gone_lots))
        progress(f"{changes.kommunenummer}: " + (changes.summary if changes.ok else f"FEILET: {changes.error}"))

    db = str(store.path)
    if n == 1:
        for knr in todo:
            record(_safe(db, settings, knr, sources_file, refresh))
    else:
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_safe, db, settings, knr, sources_file, refresh) for knr in todo]
            for future in as_completed(futures):
                record(future.result())
    items = notifications(report)
    try:
        channels = notify(items)
        if channels:
            progress(f"Varslet {len(items)} funn via {', '.join(channels)}")
    except (OSError, requests.RequestException) as exc:
        progress(f"Varsling feilet: {exc}")
    store.execute("UPDATE sync_runs SET finished_at = ?, ok = ?, report = ? WHERE id = ?", (now(), int(report.ok), report.render(), run_id))
    return report


def _safe(db: str, settings: Settings, knr: str, sources_file: str | None, refresh: bool) -> KommuneChanges:
    """A worker's job; unexpected errors become a failed kommune, not a crashed sync."""
    try:
        return sync_kommune(db, settings, knr, sources_file, refresh)
    except Exception as exc:  # noqa: BLE001 - one kommune must not stop the others
        return KommuneChanges(knr, ok=False, error=f"{type(exc).__name__}: {exc}")
