"""SSB's PxWebApi v2 (``https://data.ssb.no/api/pxwebapi/v2``): POST selections, JSON-stat2 out.

* :func:`data_request` — the pure request builder (URL and JSON body).
* :func:`split_selection` — splits a value list so each request stays under SSB's 800,000
  cells (empty cells count).
* :class:`MinuteLimiter` — at most 30 requests per minute (SSB's guide; the server enforces it
  with HTTP 429, which the shared HTTP layer also retries with back-off).
* :func:`parse_jsonstat2` — JSON-stat2 to rows, keeping ``null`` values and their ``status``
  symbols (``..`` missing, ``.`` not applicable, ``:`` confidential).

Tables used by tomte: 04317 (population per grunnkrets, dimension ``Grunnkretser``, codes
KKKKDDGG) and 06913 (population change per kommune, dimension ``Region``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

from tomte.errors import BadResponse
from tomte.sources._http import Http, body

BASE = "https://data.ssb.no/api/pxwebapi/v2"
MAX_CELLS = 800_000
PER_MINUTE = 30


@dataclass(frozen=True)
class Selection:
    """One variable's selection: codes or expressions such as ``*``, ``top(5)``, ``3207*``."""

    variable: str
    values: tuple[str, ...]
    codelist: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The selection in PxWebApi's POST body format."""
        out: dict[str, Any] = {"variableCode": self.variable, "valueCodes": list(self.values)}
        if self.codelist:
            out["codelist"] = self.codelist
        return out


def data_request(table: str, selections: list[Selection], lang: str = "no", base: str = BASE) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) of a POST data request in JSON-stat2."""
    url = f"{base.rstrip('/')}/tables/{table}/data?lang={lang}&outputFormat=json-stat2"
    return url, {"selection": [s.as_json() for s in selections]}


def cells(selections: list[Selection], sizes: dict[str, int] | None = None) -> int:
    """Cells a request asks for; ``sizes`` gives the count for expressions (``*``, ``top(n)``)."""
    total = 1
    for sel in selections:
        total *= (sizes or {}).get(sel.variable, len(sel.values))
    return total


def split_selection(selections: list[Selection], variable: str, max_cells: int = MAX_CELLS,
                    sizes: dict[str, int] | None = None) -> list[list[Selection]]:
    """Split ``variable``'s explicit codes into chunks so each request stays under ``max_cells``."""
    target = next(s for s in selections if s.variable == variable)
    others = cells([s for s in selections if s.variable != variable], sizes)
    per_request = max(1, max_cells // max(others, 1))
    chunks = [target.values[i:i + per_request] for i in range(0, len(target.values), per_request)]
    return [[Selection(s.variable, chunk, s.codelist) if s.variable == variable else s for s in selections] for chunk in chunks]


class MinuteLimiter:
    """A sliding window of at most ``per_minute`` calls (thread-safe)."""

    def __init__(self, per_minute: int = PER_MINUTE, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.per_minute, self.clock, self.sleep = per_minute, clock, sleep
        self.calls: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Block until another call is allowed."""
        with self.lock:
            now = self.clock()
            while self.calls and now - self.calls[0] >= 60:
                self.calls.popleft()
            if len(self.calls) >= self.per_minute:
                delay = 60 - (now - self.calls[0])
                self.sleep(delay)
                now += delay
                self.calls.popleft()
            self.calls.append(now)


@dataclass(frozen=True)
class Cell:
    """One value of a JSON-stat2 dataset."""

    codes: dict[str, str]
    value: float | None
    status: str | None


def parse_jsonstat2(doc: dict[str, Any] | bytes) -> tuple[dict[str, Any], list[Cell]]:
    """(metadata, cells) of a JSON-stat2 dataset; last dimension varies fastest (row-major)."""
    if isinstance(doc, bytes | str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise BadResponse(f"SSB svarte ikke med gyldig JSON-stat2: {exc}.") from exc
    if not isinstance(doc, dict) or doc.get("class") != "dataset" or "id" not in doc:
        raise BadResponse("SSB-svaret er ikke et JSON-stat2-datasett.")
    ids: list[str] = doc["id"]
    sizes: list[int] = doc["size"]
    codes_by_dim = []
    for dim in ids:
        index = doc["dimension"][dim]["category"]["index"]
        ordered = sorted(index, key=lambda c: index[c]) if isinstance(index, dict) else list(index)
        codes_by_dim.append(ordered)
    values = doc.get("value", [])
    if isinstance(values, dict):  # sparse form {"index": value}
        values = [values.get(str(i)) for i in range(math.prod(sizes))]
    status = doc.get("status") or {}
    if isinstance(status, list):
        status = {str(i): s for i, s in enumerate(status) if s}
    if len(values) != math.prod(sizes):
        raise BadResponse(f"SSB-svaret har {len(values)} verdier, men dimensjonene gir {math.prod(sizes)}.")
    out = []
    for i, combo in enumerate(product(*codes_by_dim)):
        out.append(Cell(dict(zip(ids, combo, strict=True)), None if values[i] is None else float(values[i]), status.get(str(i))))
    meta = {"label": doc.get("label"), "updated": doc.get("updated"), "role": doc.get("role", {}), "note": doc.get("note", [])}
    return meta, out


class SsbClient:
    """PxWebApi v2 through the shared HTTP layer, with the per-minute limit."""

    def __init__(self, http: Http, base: str = BASE, limiter: MinuteLimiter | None = None) -> None:
        self.http, self.base = http, base
        self.limiter = limiter or MinuteLimiter()

    def data(self, table: str, selections: list[Selection], split_on: str | None = None,
             sizes: dict[str, int] | None = None) -> Iterator[Cell]:
        """All cells of a selection, split into requests under the cell limit."""
        batches = split_selection(selections, split_on, sizes=sizes) if split_on else [selections]
        for batch in batches:
            url, payload = data_request(table, batch, base=self.base)
            self.limiter.wait()
            resp = self.http.request("POST", url, f"SSB tabell {table}", json=payload)
            try:
                _, rows = parse_jsonstat2(body(resp, f"SSB tabell {table}"))
            except BadResponse:
                self.http.forget(resp)
                raise
            yield from rows


def grunnkrets_population(client: SsbClient, kommunenummer: str) -> list[Cell]:
    """Latest population per grunnkrets in a kommune (table 04317)."""
    selections = [Selection("Grunnkretser", (f"{kommunenummer}*",), "agg_GrkretsNy"),
                  Selection("ContentsCode", ("*",)), Selection("Tid", ("top(1)",))]
    return list(client.data("04317", selections))


def kommune_population(client: SsbClient, kommunenummer: str, years: int = 6) -> list[Cell]:
    """Population of the kommune in the last ``years`` years (table 06913, ``Folkemengde``)."""
    selections = [Selection("Region", (kommunenummer,)), Selection("ContentsCode", ("Folkemengde",)),
                  Selection("Tid", (f"top({years})",))]
    return list(client.data("06913", selections))
