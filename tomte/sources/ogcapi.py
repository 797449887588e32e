"""OGC API - Features client (DiBK's national plan copy NAP is one).

Items are paged by ``next`` links, whatever a page's length (servers cap ``limit``); the
:class:`~tomte.sources.paging.Pager` refuses a ``next`` already followed, repeated feature ids,
more than ``max_pages`` pages, and a total that does not match ``numberMatched``. EPSG:25833 is requested with ``crs=`` and the response's
``Content-Crs`` header is honoured (OGC API defaults to CRS84 lon/lat otherwise). An API key
is read from the environment variable the source names and sent as a header.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urljoin

from tomte.errors import BadResponse, InvalidData, TomteError
from tomte.sources._http import Http, body
from tomte.sources.gml import RawFeature
from tomte.sources.paging import Pager
from tomte.sources.planfile import parse_geojson
from tomte.sources.registry import Source

CRS_25833 = "http://www.opengis.net/def/crs/EPSG/0/25833"
Progress = Callable[[str], None]


def items_url(base: str, collection: str) -> str:
    """The items endpoint of a collection."""
    return f"{base.rstrip('/')}/collections/{collection}/items"


def items_params(limit: int, bbox: tuple[float, float, float, float] | None = None, extra: dict | None = None) -> dict[str, str]:
    """Query parameters of the first items page (bbox in EPSG:25833)."""
    params = {"f": "json", "limit": str(limit), "crs": CRS_25833}
    if bbox:
        params["bbox"] = ",".join(f"{v:.2f}" for v in bbox)
        params["bbox-crs"] = CRS_25833
    params.update({k: str(v) for k, v in (extra or {}).items()})
    return params


def next_link(doc: dict[str, Any]) -> str | None:
    """The ``rel="next"`` link of a page, if any."""
    for link in doc.get("links", []) or []:
        if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


def _headers(source: Source) -> dict[str, str]:
    headers = {"Accept": "application/geo+json, application/json"}
    if source.api_key_env:
        key = os.environ.get(source.api_key_env)
        if not key:
            raise InvalidData(f"{source.label}: miljøvariabelen {source.api_key_env} med API-nøkkel er ikke satt.")
        headers[source.api_key_header] = key
    return headers


def _first_xy(value: Any) -> tuple[float, float] | None:
    while isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, list) and len(value) >= 2 and all(isinstance(v, int | float) for v in value[:2]):
        return float(value[0]), float(value[1])
    return None


def _guess_crs(doc: dict[str, Any]) -> str:
    """The CRS of a page without ``Content-Crs``: EPSG:25833 (as asked) when the coordinates are
    metres, else CRS84, the OGC API default for a server that ignored ``crs=``."""
    for feat in doc.get("features") or []:
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        xy = _first_xy(geom.get("coordinates")) if isinstance(geom, dict) else None
        if xy is not None:
            return CRS_25833 if abs(xy[0]) > 180 or abs(xy[1]) > 90 else "urn:ogc:def:crs:OGC:1.3:CRS84"
    return CRS_25833


def fetch(http: Http, source: Source, bbox: tuple[float, float, float, float] | None = None,
          progress: Progress | None = None) -> list[RawFeature]:
    """All features of an OGC API collection, following ``next`` links; fails rather than return part."""
    say = progress or (lambda _m: None)
    assert source.url and source.collection
    headers = _headers(source)
    params = items_params(source.page_size, bbox if source.bbox else None, source.params)
    url: str | None = items_url(source.url, source.collection) + "?" + urlencode(params)
    pager = Pager(source.label, http.settings.max_pages)
    while url is not None:
        pager.visit(url)
        resp = http.get(url, source.label, headers=headers)
        data = body(resp, source.label)
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            http.forget(resp)
            raise BadResponse(f"{source.label}: svaret er ikke gyldig JSON (avkuttet eller ødelagt); prøv igjen.", detail=str(exc)) from exc
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            http.forget(resp)
            raise BadResponse(f"{source.label}: tjenesten svarte ikke med en FeatureCollection ({str(doc)[:120]}).")
        content_crs = resp.headers.get("Content-Crs", "").strip("<> ")
        try:
            batch = parse_geojson(doc, crs_override=content_crs or source.crs or _guess_crs(doc))
            pager.add(batch)
            pager.state(doc.get("numberMatched"))
        except TomteError as exc:
            http.forget(resp)
            raise type(exc)(str(exc) if str(exc).startswith(source.label) else f"{source.label}: {exc}", detail=exc.detail) from exc
        say(f"{source.label}: side {pager.pages}, {len(batch)} objekter (totalt {len(pager.features)}"
            + (f" av {pager.matched})" if pager.matched is not None else ")"))
        link = next_link(doc)
        url = urljoin(url, link) if link else None
    return pager.finish()
