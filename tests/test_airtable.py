"""Airtable sync against a local server that follows Airtable's REST format and limits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.servers import fake_server
from tomte import airtable, owners
from tomte.errors import InvalidData
from tomte.store import open_store


class FakeAirtable:
    """Records keyed by lot_id; 5 requests/s per base (429 beyond), max 10 records per request."""

    def __init__(self, fail_first: int = 0) -> None:
        self.rows: dict[str, dict] = {}
        self.times: list[float] = []
        self.all_times: list[float] = []
        self.rate_limited = 0  # requests beyond 5 in one second (Airtable's rule)
        self.batches: list[int] = []
        self.fail_first = fail_first
        self.token_seen: set[str] = set()

    def route(self, h, q):
        if h.command != "PATCH":
            return 405, {}, b""
        self.token_seen.add(h.headers.get("Authorization", ""))
        now = time.monotonic()
        self.all_times.append(now)
        if self.fail_first:
            self.fail_first -= 1
            return 429, {"Content-Type": "application/json"}, json.dumps({"errors": [{"error": "RATE_LIMIT_REACHED"}]}).encode()
        recent = [t for t in self.times if now - t < 1.0]
        self.times.append(now)
        if len(recent) >= 5:
            self.rate_limited += 1
            return 429, {"Content-Type": "application/json"}, b'{"errors":[{"error":"RATE_LIMIT_REACHED"}]}'
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        assert body["performUpsert"]["fieldsToMergeOn"] == ["lot_id"]
        if len(body["records"]) > 10:
            return 422, {}, b'{"error": {"type": "INVALID_RECORDS"}}'
        self.batches.append(len(body["records"]))
        out, created, updated = [], [], []
        for rec in body["records"]:
            key = rec["fields"]["lot_id"]
            rid = self.rows.get(key, {}).get("id") or f"rec{len(self.rows):05d}"
            (updated if key in self.rows else created).append(rid)
            self.rows[key] = {"id": rid, "fields": rec["fields"], "createdTime": "2026-11-22T00:00:00.000Z"}
            out.append(self.rows[key])
        return 200, {"Content-Type": "application/json"}, json.dumps({"records": out, "createdRecords": created, "updatedRecords": updated}).encode()


def patch_route(server_impl):
    return server_impl.route


def test_upsert_twice_batches_rate_limit_and_no_duplicates(demo_copy: Path) -> None:
    s = open_store(demo_copy)
    n = s.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3212' AND active = 1")
    fake = FakeAirtable(fail_first=1)
    with fake_server({"/v0/appTEST/Tomter": patch_route(fake)}) as (base, _):
        config = airtable.AirtableConfig("patTEST", "appTEST", endpoint=base, backoff=0.05)
        seen = []
        first = airtable.sync(s, "3212", config, progress=lambda done, total: seen.append((done, total)))
        second = airtable.sync(s, "3212", config)
    assert first == {"records": n, "created": n, "updated": 0}
    assert second == {"records": n, "created": 0, "updated": n}
    assert len(fake.rows) == n  # no duplicates
    assert max(fake.batches) <= 10 and seen[-1] == (n, n)
    # Airtable's rule: at most 5 requests in any second. The server counts them as it handles them, so a
    # request handled late on a busy machine can shorten one measured gap; none may break the rule.
    assert fake.rate_limited == 0
    gaps = sorted(b - a for a, b in zip(fake.times, fake.times[1:], strict=False))
    assert gaps[len(gaps) // 2] >= 0.2  # spaced ~0.21 s apart
    assert fake.all_times[1] - fake.all_times[0] >= 0.05  # backed off after the 429
    assert fake.token_seen == {"Bearer patTEST"}
    assert all("eiere" not in r["fields"] for r in fake.rows.values())


def test_owner_fields_only_when_chosen(demo_copy: Path) -> None:
    s = open_store(demo_copy)
    lot = s.scalar("SELECT l.lot_id FROM lots l JOIN lot_parcels lp ON lp.lot_id = l.lot_id WHERE l.kommunenummer = '3212' LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Eva Eier"))
    plain = {r["fields"]["lot_id"]: r["fields"] for r in airtable.records(s, "3212")}
    chosen = {r["fields"]["lot_id"]: r["fields"] for r in airtable.records(s, "3212", with_owners=True)}
    assert "eiere" not in plain[lot] and chosen[lot]["eiere"] == "Eva Eier"


def test_missing_settings_and_bad_token(demo_copy: Path) -> None:
    with pytest.raises(InvalidData, match="TOMTE_AIRTABLE_TOKEN"):
        airtable.AirtableConfig.from_env({})
    s = open_store(demo_copy)
    with fake_server({"/v0/appTEST/Tomter": lambda h, q: (401, {}, b'{"error":"AUTHENTICATION_REQUIRED"}')}) as (base, _):
        with pytest.raises(InvalidData, match="401"):
            airtable.sync(s, "3212", airtable.AirtableConfig("bad", "appTEST", endpoint=base, backoff=0.01))
    assert "bad" not in repr(airtable.AirtableConfig("bad", "appTEST"))
