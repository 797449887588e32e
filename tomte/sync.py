"""``sync``: fetch → differanse → enrichment → scoring for every watched kommune, and what changed.

* Kommuner run in parallel in a process pool sized to the machine; each worker opens its own
  store connection (WAL and the busy timeout let them write in turn). One kommune's failure is
  recorded and the others go on.
* Each sync is a run (``sync_runs``) with one item per kommune (``sync_items``). A run that was
  interrupted is picked up again by the next ``sync``: kommuner already done are skipped.
* Crash-safe (issue 13): workers die with their parent (``PR_SET_PDEATHSIG`` on Linux, and a
  thread that watches the parent's pid elsewhere), so a killed sync leaves no process behind. The
  report is built from the durable change log (``changes``, written by each analysis in its own
  transaction) between the previous completed report and now, not from what one process saw, so
  a resumed sync reports every change since the last report. Notifications go through an outbox
  (``notifications``): written with the finished report, marked sent after sending, retried by the
  next sync when sending failed; each is sent once.
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
import signal
import smtplib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from tomte import pipeline
from tomte.codes import IN_PROGRESS_PLANSTATUS
from tomte.config import Settings
from tomte.errors import TomteError
from tomte.plans import data_age_days
from tomte.sources.registry import merged
from tomte.store import Store, crash_point, dumps, loads, now, open_store

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
    restored_lots: list[dict[str, Any]] = field(default_factory=list)
    stale: str | None = None
    lots: int = 0
    summary: str = ""
    seconds: float = 0.0  # the kommune's fetch and analysis, in its worker


WORKER_BUSY_S = 1800.0
LOCK_RETRIES = 3


def _lot_info(store: Store, lot_ids: set[str]) -> dict[str, dict[str, Any]]:
    if not lot_ids:
        return {}
    ids = sorted(lot_ids)
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out.update({r["lot_id"]: r for r in store.rows(
            "SELECT lot_id, tier, score, status, active FROM lots WHERE lot_id IN (" + ",".join("?" for _ in chunk) + ")", chunk)})
    return out


def _plans_touching_watched_lots(store: Store, kommunenummer: str, area_keys: set[str]) -> list[dict[str, Any]]:
    """New plans in progress that overlap (> 1 m²) a shortlisted (A/B) or pipeline lot: one STRtree
    pass in Python, linear in plans and lots (as SQL it was a spatial join per plan, issue 14)."""
    import shapely

    from tomte.differanse import intersecting_pairs

    marks = ",".join(f"'{c}'" for c in sorted(IN_PROGRESS_PLANSTATUS))
    plans = store.read_frame("SELECT area_key, planid, plannavn, planstatus, AsBinary(geom) AS geom FROM rp_areas "
                             f"WHERE kommunenummer = ? AND planstatus IN ({marks})", (kommunenummer,))
    plans = plans[plans["area_key"].isin(area_keys)]
    lots = store.read_frame("SELECT lot_id, tier, status, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1 "
                            "AND (tier IN ('A', 'B') OR status != 'Ny')", (kommunenummer,))
    if plans.empty or lots.empty:
        return []
    pg, lg = plans.geometry.to_numpy(), lots.geometry.to_numpy()
    pi, li = intersecting_pairs(pg, lg)
    big = shapely.area(shapely.intersection(pg[pi], lg[li])) > 1
    seen: dict[tuple, dict[str, Any]] = {}
    for p, lot in zip(pi[big], li[big], strict=True):
        row = {"planid": plans["planid"].iloc[p], "plannavn": plans["plannavn"].iloc[p], "planstatus": plans["planstatus"].iloc[p],
               "lot_id": lots["lot_id"].iloc[lot], "tier": lots["tier"].iloc[lot], "status": lots["status"].iloc[lot]}
        seen.setdefault(tuple(row.values()), row)
    return list(seen.values())


def changes_between(store: Store, kommunenummer: str, after_id: int, upto_id: int) -> KommuneChanges:
    """What changed in a kommune according to the change log rows ``after_id < id <= upto_id``."""
    rows = store.rows("SELECT kind, lot_id, detail FROM changes WHERE kommunenummer = ? AND id > ? AND id <= ? ORDER BY id",
                      (kommunenummer, after_id, upto_id))
    info = _lot_info(store, {r["lot_id"] for r in rows if r["lot_id"]})
    changes = KommuneChanges(kommunenummer)
    changes.lots = int(store.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = ? AND active = 1", (kommunenummer,)) or 0)
    new_plans: list[str] = []
    for r in rows:
        detail, lot = loads(r["detail"], {}), info.get(r["lot_id"] or "", {})
        if r["kind"] == "ny" and lot.get("active"):
            changes.new_lots.append({"lot_id": r["lot_id"], "tier": lot.get("tier"), "score": lot.get("score")})
        elif r["kind"] == "forsvunnet":
            changes.gone_lots.append({"lot_id": r["lot_id"], "reason": detail.get("reason"), "tier": detail.get("tier"),
                                      "status": detail.get("status")})
        elif r["kind"] == "gjenopprettet":
            changes.restored_lots.append({"lot_id": r["lot_id"], "from": detail.get("from"), "why": detail.get("why")})
        elif r["kind"] == "klasse":
            changes.tier_changes.append({"lot_id": r["lot_id"], "from": detail.get("from"), "to": detail.get("to")})
        elif r["kind"] == "ny_plan_under_arbeid" and detail.get("area_key"):
            new_plans.append(detail["area_key"])
    gone_ids = {g["lot_id"] for g in changes.gone_lots}
    changes.new_lots = [n for n in changes.new_lots if n["lot_id"] not in gone_ids]  # came and went between reports
    new_plans = sorted(set(new_plans))  # a plan logged twice (two imports between reports) is asked for once
    if new_plans:
        changes.new_plans_in_progress = _plans_touching_watched_lots(store, kommunenummer, set(new_plans))
    state = store.rows("SELECT newest_data_date FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
    age = data_age_days(state[0]["newest_data_date"]) if state else None
    stale = [pipeline.describe_stale(u) for u in pipeline.stale_units(store, kommunenummer)]
    if age is not None and age > STALE_DAYS:
        stale.append(f"nyeste plandata er {age} dager gamle")
    changes.stale = "; ".join(stale) or None
    return changes


def sync_kommune(db_path: str, settings: Settings, kommunenummer: str, sources_file: str | None, refresh: bool) -> KommuneChanges:
    """One kommune: fetch, then analyse (differanse, enrichment, scores) what was stored. Runs in a worker.

    A unit that failed keeps its previous data and makes the kommune fail in the report; what the
    other units brought is stored and analysed.
    """
    # A worker waits for the others' writes as long as it takes: a large kommune's analysis holds
    # the write lock for tens of seconds, and a lock wait must not fail a nightly kommune (issue 14).
    store = open_store(db_path, busy_timeout_s=WORKER_BUSY_S)
    try:
        try:
            fetched = pipeline.fetch_kommune(store, settings, kommunenummer, sources_file, refresh)
        except TomteError as exc:
            return KommuneChanges(kommunenummer, ok=False, error=str(exc))
        changes = KommuneChanges(kommunenummer, ok=fetched.ok, error="; ".join(str(e) for e in fetched.failed.values()) or None)
        if fetched.counts:
            result = pipeline.analyse(store, settings, kommunenummer)
            changes.summary = f"{fetched.summary()}; {result.summary()}"
            changes.lots = result.lots
        else:
            changes.summary = fetched.summary()
        return changes
    finally:
        store.close()


@dataclass
class SyncReport:
    """A run's outcome per kommune."""

    run_id: int
    kommuner: dict[str, KommuneChanges] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # kommunenummer → name, for headings

    def label(self, knr: str) -> str:
        return f"{self.names[knr]} ({knr})" if knr in self.names else knr

    def important(self) -> list[str]:
        """What an analyst must see first, across kommuner: pipeline lots that vanished or got a plan
        in progress, new A and B lots (issue 15: a vanished pipeline lot was line 13 of 47)."""
        items = []
        for knr, c in sorted(self.kommuner.items()):
            where = self.label(knr)
            items += [f"{where}: tomt {g['lot_id']} i pipeline (status {g['status']}) er forsvunnet – {g['reason']}"
                      for g in c.gone_lots if g.get("status") not in (None, "Ny")]
            items += [f"{where}: plan under arbeid {p['planid']} berører {p['lot_id']} i pipeline (status {p['status']})"
                      for p in c.new_plans_in_progress if p["status"] != "Ny"]
            items += [f"{where}: ny {n['tier']}-tomt {n['lot_id']}" for n in c.new_lots if n["tier"] in ("A", "B")]
            if not c.ok:
                items.append(f"{where}: synken feilet ({c.error}); tidligere data er beholdt")
        return items

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
        first = self.important()
        if first:
            lines += ["## Viktigst først", *(f"- {item}" for item in first), ""]
        for knr, c in sorted(self.kommuner.items()):
            lines.append(f"## {self.label(knr)}" + ("" if c.ok else " – FEILET"))
            if c.error:
                lines.append(f"- Kilde feilet: {c.error} (tidligere data er beholdt)")
            if c.stale:
                lines.append(f"- Utdaterte data: {c.stale}")
            # Pipeline lots and better tiers first within the kommune too.
            gone = sorted(c.gone_lots, key=lambda g: (g.get("status") in (None, "Ny"), g.get("tier") or "E"))
            lines += [f"- Ny tomt {n['lot_id']} (klasse {n['tier'] or '–'})" for n in sorted(c.new_lots, key=lambda n: n["tier"] or "E")]
            lines += [f"- Forsvunnet: {g['lot_id']}" + (f" (status {g['status']})" if g.get("status") not in (None, "Ny") else "")
                      + f" – {g['reason']}" for g in gone]
            lines += [f"- Klasse endret: {t['lot_id']} {t['from'] or '–'} → {t['to'] or '–'}" for t in c.tier_changes]
            lines += [f"- Gjenopprettet: {r['lot_id']} (fra {r['from']}; {r['why']})" for r in c.restored_lots]
            lines += [f"- Ny plan under arbeid {p['planid']} ({p['plannavn'] or 'uten navn'}) berører {p['lot_id']} "
                      f"(klasse {p['tier'] or '–'}, status {p['status']})" for p in c.new_plans_in_progress]
            if c.ok and not (c.new_lots or c.gone_lots or c.tier_changes or c.new_plans_in_progress or c.stale or c.restored_lots):
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


def _worker_init(parent: int) -> None:
    """Make a sync worker die with its parent, however the parent dies (kill -9 included).

    ``parent`` is the sync's pid: a worker whose parent died while it was still starting (before
    this ran) sees another parent already and exits at once.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _run_ids(store: Store, wanted: list[str], progress: Callable[[str], None]) -> tuple[int, int]:
    """(run id, last change already reported): resume an interrupted run of the same kommuner, or start one."""
    last = store.rows("SELECT changes_to FROM sync_runs WHERE finished_at IS NOT NULL AND changes_to IS NOT NULL ORDER BY id DESC LIMIT 1")
    unfinished = store.rows("SELECT id, kommuner, changes_from FROM sync_runs WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1")
    if unfinished and set(loads(unfinished[0]["kommuner"], [])) == set(wanted):
        progress(f"Fortsetter avbrutt synk {unfinished[0]['id']}")
        start = unfinished[0]["changes_from"]
        return int(unfinished[0]["id"]), int(start if start is not None else last[0]["changes_to"] if last else 0)
    # The first sync reports from now on; later ones from where the previous report stopped.
    start = int(last[0]["changes_to"]) if last else int(store.scalar("SELECT COALESCE(MAX(id), 0) FROM changes"))
    with store.transaction() as conn:
        run_id = int(conn.execute("INSERT INTO sync_runs (started_at, kommuner, changes_from) VALUES (?, ?, ?)",
                                  (now(), dumps(wanted), start)).lastrowid)
        conn.executemany("INSERT INTO sync_items (run_id, kommunenummer, status) VALUES (?, ?, 'venter')", [(run_id, k) for k in wanted])
    return run_id, start


def send_outbox(store: Store, progress: Callable[[str], None], env: dict[str, str] | None = None) -> int:
    """Send every notification not yet sent; returns how many were sent (a failure stays for the next sync)."""
    sent = 0
    for row in store.rows("SELECT id, items FROM notifications WHERE sent_at IS NULL ORDER BY id"):
        items = loads(row["items"], [])
        try:
            channels = notify(items, env)
        except (OSError, requests.RequestException) as exc:
            progress(f"Varsling feilet (prøves igjen ved neste synk): {exc}")
            continue
        store.execute("UPDATE notifications SET sent_at = ?, channels = ? WHERE id = ?", (now(), ",".join(channels) or "ingen", row["id"]))
        if channels:
            progress(f"Varslet {len(items)} funn via {', '.join(channels)}")
            sent += 1
    return sent


def run_sync(store: Store, settings: Settings, kommuner: list[str] | None, sources_file: str | None, refresh: bool,
             progress: Callable[[str], None], workers: int | None = None) -> SyncReport:
    """Sync the kommuner (default: every kommune with sources), resuming an interrupted run."""
    store.execute(f"PRAGMA busy_timeout = {int(WORKER_BUSY_S * 1000)}")  # the parent records results while workers write
    wanted = [pipeline.resolve_kommune(store, k).kommunenummer for k in kommuner] if kommuner else _watched(store, settings, sources_file)
    run_id, changes_from = _run_ids(store, wanted, progress)
    report = SyncReport(run_id, names={r["kommunenummer"]: r["navn"] for r in store.rows("SELECT kommunenummer, navn FROM kommuner")})
    outcome: dict[str, KommuneChanges] = {}
    done = {r["kommunenummer"]: r for r in store.rows("SELECT * FROM sync_items WHERE run_id = ? AND status != 'venter'", (run_id,))}
    for knr, row in done.items():
        outcome[knr] = KommuneChanges(knr, ok=row["status"] == "ok", error=None if row["status"] == "ok" else row["message"])
        report.resumed.append(knr)
    todo = [k for k in wanted if k not in done]
    n = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    progress(f"Synk {run_id}: {len(todo)} kommuner ({len(done)} allerede ferdig), {n} parallelle")

    def record(changes: KommuneChanges) -> None:
        outcome[changes.kommunenummer] = changes
        store.execute("UPDATE sync_items SET status = ?, finished_at = ?, message = ?, changes = ? WHERE run_id = ? AND kommunenummer = ?",
                      ("ok" if changes.ok else "feilet", now(), changes.error or changes.summary,
                       dumps({"seconds": round(changes.seconds, 2), "lots": changes.lots}), run_id, changes.kommunenummer))
        log.info("kommune=%s ok=%s lots=%d", changes.kommunenummer, changes.ok, changes.lots)
        progress(f"{changes.kommunenummer}: " + (changes.summary if changes.ok else f"FEILET: {changes.error}"))

    db = str(store.path)
    if n == 1:
        for knr in todo:
            record(_safe(db, settings, knr, sources_file, refresh))
    else:
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_safe, db, settings, knr, sources_file, refresh) for knr in todo]
            for future in as_completed(futures):
                record(future.result())
    crash_point("sync_before_report")
    with store.transaction() as conn:
        changes_to = int(store.scalar("SELECT COALESCE(MAX(id), 0) FROM changes"))
        for knr in wanted:
            c = changes_between(store, knr, changes_from, changes_to)
            c.ok, c.error, c.summary = outcome[knr].ok, outcome[knr].error, outcome[knr].summary
            report.kommuner[knr] = c
        items = notifications(report)
        conn.execute("UPDATE sync_runs SET finished_at = ?, ok = ?, report = ?, changes_to = ? WHERE id = ?",
                     (now(), int(report.ok), report.render(), changes_to, run_id))
        if items:
            conn.execute("INSERT INTO notifications (run_id, created_at, items) VALUES (?, ?, ?)", (run_id, now(), dumps(items)))
    send_outbox(store, progress)
    return report


def _safe(db: str, settings: Settings, knr: str, sources_file: str | None, refresh: bool) -> KommuneChanges:
    """A worker's job; unexpected errors become a failed kommune, not a crashed sync."""
    started = time.perf_counter()
    for attempt in range(LOCK_RETRIES + 1):
        try:
            changes = sync_kommune(db, settings, knr, sources_file, refresh)
            break
        except Exception as exc:  # noqa: BLE001 - one kommune must not stop the others
            # SQLite can refuse a write at once (no busy wait) when two workers' snapshots cross; every
            # unit is written atomically, so the kommune is simply run again (2 of 357 in the national bench).
            if "database is locked" in str(exc) and attempt < LOCK_RETRIES:
                log.warning("kommune=%s låst database, forsøk %d av %d", knr, attempt + 2, LOCK_RETRIES + 1)
                time.sleep(1.0 + attempt)
                continue
            log.error("kommune=%s uventet feil", knr, exc_info=True)  # the traceback for whoever reads the sync log
            changes = KommuneChanges(knr, ok=False, error=f"{type(exc).__name__}: {exc}")
            break
    changes.seconds = time.perf_counter() - started
    return changes
