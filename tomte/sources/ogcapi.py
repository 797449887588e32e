"""OGC API - Features client (DiBK's national plan copy NAP is one).

Items are paged by ``next`` links; EPSG:25833 is requested with ``crs=`` and the response's
``Content-Crs`` header is honoured (OGC API defaults to CRS84 lon/lat otherwise). An API key
is read from the environment variable the source names and sent as a header.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from tomte.errors import BadResponse, InvalidData
from tomte.sources._http import Http, body
from tomte.sources.gml import RawFeature
from tomte.sources.planfile import parse_geojson
from tomte.sources.registry import Source

CRS_25833 = "http://www.opengis.net/def/crs/EPSG/0/25833"
Progress = Callable[[str], None]
MAX_PAGES = 10_000


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


def fetch(http: Http, source: Source, bbox: tuple[float, float, float, float] | None = None,
          progress: Progress | None = None) -> list[RawFeature]:
    """All features of an OGC API collection, following ``next`` links."""
    say = progress or (lambda _m: None)
    assert source.url and source.collection
    headers = _headers(source)
    url: str | None = items_url(source.url, source.collection)
    params: dict[str, str] | None = items_params(source.page_size, bbox if source.bbox else None, source.params)
    features: list[RawFeature] = []
    for page in range(MAX_PAGES):
        if url is None:
            break
        resp = http.get(url, source.label, params=params, headers=headers)
        data = body(resp, source.label)
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            http.forget(resp)
            raise BadResponse(f"{source.label}: svaret er ikke gyldig JSON (avkuttet eller ødelagt); prøv igjen.", detail=str(exc)) from exc
        content_crs = resp.headers.get("Content-Crs", "").strip("<> ")
        crs = content_crs or (CRS_25833 if params and params.get("crs") else None) or source.crs
        if isinstance(doc, dict) and doc.get("type") != "FeatureCollection":
            http.forget(resp)
            raise BadResponse(f"{source.label}: tjenesten svarte ikke med en FeatureCollection ({str(doc)[:120]}).")
        batch = parse_geojson(doc, crs_override=crs)
        features.extend(batch)
        say(f"{source.label}: side {page + 1}, {len(batch)} objekter (totalt {len(features)})")
        url, params = next_link(doc), None
    return features
