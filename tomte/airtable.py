"""Airtable sync with pyairtable: upsert the lots on ``lot_id``, 10 records per request, ≤ 5 req/s.

Upserts use Airtable's ``performUpsert`` (``PATCH`` with ``fieldsToMergeOn: ["lot_id"]``), so
running the sync twice updates the same rows and creates no duplicates. tomte spaces requests
at least 0.2 s apart (Airtable allows 5 per second per base) and backs off on HTTP 429 (Airtable
then blocks for 30 s; the back-off is a setting). The token and base come from Streamlit secrets
or the environment (``TOMTE_AIRTABLE_TOKEN``, ``TOMTE_AIRTABLE_BASE``, ``TOMTE_AIRTABLE_TABLE``),
never from the database. Owner fields are sent only when the analyst asks for them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from pyairtable import Api

from tomte.analysis import lot_rows
from tomte.errors import InvalidData, SourceUnavailable
from tomte.export import FIELDS
from tomte.owners import NAME_SEPARATOR, owner_names_by_lot
from tomte.store import Store

BATCH = 10
MIN_INTERVAL = 0.21  # Airtable allows 5 requests per second per base; keep a margin


@dataclass(frozen=True)
class AirtableConfig:
    """Where to sync; ``endpoint`` is Airtable's API unless a test points elsewhere."""

    token: str
    base: str
    table: str = "Tomter"
    endpoint: str = "https://api.airtable.com"
    backoff: float = 30.0
    retries: int = 5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AirtableConfig:
        """From the environment (the app maps Streamlit secrets to the same names)."""
        e = os.environ if env is None else env
        token, base = e.get("TOMTE_AIRTABLE_TOKEN"), e.get("TOMTE_AIRTABLE_BASE")
        if not (token and base):
            raise InvalidData("Airtable er ikke satt opp: sett TOMTE_AIRTABLE_TOKEN og TOMTE_AIRTABLE_BASE (i miljøet eller secrets).")
        return cls(token, base, e.get("TOMTE_AIRTABLE_TABLE", "Tomter"), e.get("TOMTE_AIRTABLE_URL", "https://api.airtable.com"))

    def __repr__(self) -> str:
        return f"AirtableConfig(base={self.base!r}, table={self.table!r}, token='***')"


RETRY_STATUS = {429, 500, 502, 503, 504}


def _upsert(table: Any, batch: list[dict[str, Any]], config: AirtableConfig, sleep: Callable[[float], None]) -> Any:
    """One batch, retried on 429/5xx after ``backoff``, 2 × ``backoff``, … (Airtable blocks 30 s after a 429)."""
    for attempt in range(config.retries + 1):
        _wait_for_slot(config.base, sleep)
        try:
            return table.batch_upsert(batch, key_fields=["lot_id"])
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in (401, 403):
                raise InvalidData("Airtable avviste tokenet (HTTP 401/403); sjekk TOMTE_AIRTABLE_TOKEN og tilgangen til basen.") from exc
            if status not in RETRY_STATUS or attempt == config.retries:
                raise SourceUnavailable(f"Airtable svarte HTTP {status}; prøv igjen senere.", detail=str(exc)) from exc
        except requests.RequestException as exc:
            if attempt == config.retries:
                raise SourceUnavailable("Får ikke kontakt med Airtable; prøv igjen senere.", detail=repr(exc)) from exc
        sleep(config.backoff * 2**attempt)
    raise AssertionError("unreachable")


_last_request: dict[str, float] = {}  # per base, shared by every sync in this process (the limit is per base)
_slot_lock = threading.Lock()


def _wait_for_slot(base: str, sleep: Callable[[float], None]) -> None:
    with _slot_lock:
        now = time.monotonic()
        slot = max(now, _last_request.get(base, 0.0) + MIN_INTERVAL)
        _last_request[base] = slot
    if slot > now:
        sleep(slot - now)


def records(store: Store, kommunenummer: str, with_owners: bool = False) -> list[dict[str, Any]]:
    """The kommune's lots as Airtable field dicts (owners only when asked)."""
    names = owner_names_by_lot(store, kommunenummer) if with_owners else {}
    out = []
    for r in lot_rows(store, kommunenummer):
        fields = {f: r.get(f) for f in FIELDS if r.get(f) is not None}
        if with_owners:
            fields["eiere"] = NAME_SEPARATOR.join(names.get(r["lot_id"], []))
        out.append({"fields": fields})
    return out


def sync(store: Store, kommunenummer: str, config: AirtableConfig, with_owners: bool = False,
         progress: Callable[[int, int], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Upsert the kommune's lots; returns counts of created and updated records."""
    # Retries are ours (not urllib3's), so every attempt, retries included, waits for a slot.
    api = Api(config.token, timeout=(10, 60), endpoint_url=config.endpoint, retry_strategy=False)
    table = api.table(config.base, config.table)
    items = records(store, kommunenummer, with_owners)
    created = updated = 0
    for start in range(0, len(items), BATCH):
        result = _upsert(table, items[start:start + BATCH], config, sleep)
        created += len(result.get("createdRecords", []))
        updated += len(result.get("updatedRecords", []))
        if progress:
            progress(min(start + BATCH, len(items)), len(items))
    return {"records": len(items), "created": created, "updated": updated}
