"""Kartverket's address API (``/adresser/v1``): the nearest address to each lot.

``/punktsok`` takes ``lat``/``lon`` in EPSG:4258 (``koordsys=4258``) and a radius in whole
metres; the answer lists ``adresser`` with ``meterDistanseTilPunkt``. ``bokstav`` is an empty
string (not null) when the address has no letter. ``asciiKompatibel=false`` keeps æøå.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyproj import Transformer

from tomte.errors import BadResponse
from tomte.sources._http import Http, body

BASE = "https://ws.geonorge.no/adresser/v1"
_TO_4258 = Transformer.from_crs(25833, 4258, always_xy=True)


@dataclass(frozen=True)
class Address:
    """The address nearest a point."""

    adressetekst: str
    postnummer: str | None
    poststed: str | None
    kommunenummer: str | None
    distance_m: float | None


def punktsok_params(x: float, y: float, radius: int = 1000, hits: int = 1) -> dict[str, str]:
    """Query parameters for the address nearest an EPSG:25833 point."""
    lon, lat = _TO_4258.transform(x, y)
    return {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "radius": str(int(radius)), "koordsys": "4258",
            "utkoordsys": "4258", "treffPerSide": str(hits), "side": "0", "asciiKompatibel": "false"}


def format_address(item: dict[str, Any]) -> str:
    """``adressetekst``, or street + number + letter when the text is missing."""
    if item.get("adressetekst"):
        return str(item["adressetekst"])
    return f"{item.get('adressenavn', '')} {item.get('nummer', '')}{item.get('bokstav') or ''}".strip()


def parse_punktsok(doc: dict[str, Any] | bytes) -> Address | None:
    """The nearest address in a ``/punktsok`` (or ``/sok``) answer, or None when there is none."""
    if isinstance(doc, bytes | str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise BadResponse(f"Adresse-API-et svarte ikke med JSON: {exc}.") from exc
    if not isinstance(doc, dict) or "adresser" not in doc:
        raise BadResponse("Adresse-API-et svarte uten «adresser».")
    items = sorted(doc["adresser"], key=lambda a: a.get("meterDistanseTilPunkt") or 0.0)
    if not items:
        return None
    first = items[0]
    return Address(format_address(first), first.get("postnummer"), first.get("poststed"), first.get("kommunenummer"),
                   first.get("meterDistanseTilPunkt"))


def nearest(http: Http, x: float, y: float, base: str = BASE, radius: int = 1000) -> Address | None:
    """The address nearest an EPSG:25833 point (None when none within ``radius``)."""
    resp = http.get(f"{base.rstrip('/')}/punktsok", "Adresse-API", params=punktsok_params(x, y, radius))
    try:
        return parse_punktsok(body(resp, "Adresse-API"))
    except BadResponse:
        http.forget(resp)
        raise
