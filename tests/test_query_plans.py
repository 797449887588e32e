"""Hot queries use their indexes (issue 14): no full scan of a large table where a join or a filter should search.

The test runs the commands' own code paths (analyse, scoring, export with owners, the lot list,
owners, the funnel, CRM writes, the sync report) on the demo database, records every statement
SQLite runs (with its parameters), and asks SQLite for the plan of each. A ``SCAN`` of a table
that grows with the data is a failure unless it is listed in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tomte import crm, export, owners, pipeline, sync
from tomte.analysis import lot_rows
from tomte.config import Settings
from tomte.store import open_store

LARGE = {"lots", "kp_zones", "rp_areas", "parcels", "lot_parcels", "owners", "crm_events", "layers", "lot_features",
         "changes", "lot_lineage", "outreach", "lot_addresses", "letters", "owner_lookups", "ssb_values"}
# (table, start of the statement) → why a full scan is right there.
ALLOWED: dict[tuple[str, str], str] = {}
ALIAS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(?!ON\b|WHERE\b|JOIN\b|LEFT\b|USING\b|GROUP\b|ORDER\b|LIMIT\b)(\w+))?", re.I)


def _tables(sql: str) -> dict[str, str]:
    """Alias (or name) → table, from the FROM and JOIN clauses."""
    out = {}
    for table, alias in ALIAS.findall(sql):
        out[table.lower()] = table.lower()
        if alias:
            out[alias.lower()] = table.lower()
    return out


def scans(store, sql: str) -> list[str]:
    """The large tables a statement scans in full (by SQLite's own query plan)."""
    plan = store.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    names = _tables(sql)
    bad = []
    for *_, detail in plan:
        match = re.match(r"SCAN (\w+)", detail)
        if not match or "VIRTUAL TABLE" in detail:
            continue
        table = names.get(match.group(1).lower(), match.group(1).lower())
        if table in LARGE and not any(t == table and sql.lstrip().startswith(start) for t, start in ALLOWED):
            bad.append(f"{table}: {detail}")
    return bad


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("plans") / "demo.sqlite"
    store = open_store(path)
    settings = Settings.from_env(path)
    pipeline.build_demo_database(store, settings)
    return store, settings, tmp_path_factory.mktemp("out")


def test_the_commands_hot_queries_search_not_scan(demo) -> None:
    store, settings, out = demo
    lot = store.scalar("SELECT lot_id FROM lot_parcels LIMIT 1")
    parcel = store.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lp.lot_id = ?", (lot,))[0]
    owners.add_owner(store, owners.Owner(parcel["kommunenummer"], parcel["gnr"], parcel["bnr"], 0, 0, "Nordmann, Kari"))
    plan = store.scalar("SELECT area_key FROM rp_areas WHERE kommunenummer = '3207' AND planstatus IN ('1', '2') LIMIT 1")
    store.execute("INSERT INTO changes (kommunenummer, at, kind, lot_id, detail) VALUES ('3207', 'x', 'ny_plan_under_arbeid', NULL, ?)",
                  (f'{{"area_key": "{plan}"}}',))
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        pipeline.analyse(store, settings, "3207")
        pipeline.score_kommune(store, "3207", settings.scoring)
        for fmt in ("csv", "gpkg"):
            export.export_lots(store, "3207", fmt, out / f"lots.{fmt}", with_owners=True, overwrite=True)
        lot_rows(store, "3207")
        owners.owner_names_by_lot(store, "3207")
        crm.funnel(store)
        crm.set_status(store, lot, "Vurderes", "Ringte", "test")
        sync.changes_between(store, "3207", 0, int(store.scalar("SELECT MAX(id) FROM changes")))
    finally:
        store.conn.set_trace_callback(None)
    statements = {s for s in seen if re.match(r"\s*(SELECT|WITH|UPDATE|DELETE|INSERT\s.*\sSELECT\s)", s, re.I | re.S)}
    assert len(statements) > 20, "the commands ran their queries"
    found = {s[:300]: b for s in sorted(statements) if (b := scans(store, s))}
    assert not found, "\n".join(f"{sql}\n  → {', '.join(b)}" for sql, b in found.items())


def test_the_check_catches_an_unindexed_join(demo) -> None:
    store, _, _ = demo
    sql = "SELECT l.lot_id FROM lots l JOIN kp_zones z ON z.omradenavn = l.arealformal WHERE l.kommunenummer = '3207'"
    assert any(b.startswith("kp_zones") for b in scans(store, sql))
    assert not scans(store, "SELECT l.lot_id FROM lots l JOIN kp_zones z ON z.zone_key = l.zone_key AND z.kommunenummer = l.kommunenummer "
                            "WHERE l.kommunenummer = '3207'")


def test_alias_parsing() -> None:
    assert _tables("SELECT x FROM lots l JOIN lot_parcels AS lp ON lp.lot_id = l.lot_id LEFT JOIN owners o ON 1 WHERE 1") == {
        "lots": "lots", "l": "lots", "lot_parcels": "lot_parcels", "lp": "lot_parcels", "owners": "owners", "o": "owners"}
    assert Path(__file__).name == "test_query_plans.py"
