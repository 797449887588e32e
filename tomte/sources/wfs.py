"""WFS 2.0 client: GetCapabilities, then GetFeature with COUNT/STARTINDEX paging.

Paging stops when a page comes back short, or - for servers that send ``next`` links - when a
page has no ``next`` link. ``numberMatched``/``numberReturned`` are never trusted (the real
teig WFS says ``numberReturned="0"`` while returning 3 members): members are counted.
EPSG:25833 is requested when the capabilities offer it; otherwise the default CRS is used
and the parser transforms. Request builders are pure functions so tests can assert on them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from tomte.errors import BadResponse
from tomte.sources._http import Http, body
from tomte.sources.gml import RawFeature, check_exception, local, parse_gml, parse_xml
from tomte.sources.registry import Source

Progress = Callable[[str], None]
MAX_PAGES = 10_000


def capabilities_params() -> dict[str, str]:
    """Query parameters of a WFS 2.0 GetCapabilities request."""
    return {"SERVICE": "WFS", "REQUEST": "GetCapabilities", "ACCEPTVERSIONS": "2.0.0"}


def getfeature_params(typename: str, start: int, count: int, srs: str | None = None,
                      bbox: tuple[float, float, float, float] | None = None, extra: dict | None = None) -> dict[str, str]:
    """Query parameters of one GetFeature page (bbox in EPSG:25833)."""
    params = {"SERVICE": "WFS", "VERSION": "2.0.0", "REQUEST": "GetFeature", "TYPENAMES": typename,
              "COUNT": str(count), "STARTINDEX": str(start)}
    if srs:
        params["SRSNAME"] = srs
    if bbox:
        params["BBOX"] = ",".join(f"{v:.2f}" for v in bbox) + ",urn:ogc:def:crs:EPSG::25833"
    params.update({k: str(v) for k, v in (extra or {}).items()})
    return params


def with_params(url: str, params: dict[str, str]) -> str:
    """``url`` with query parameters appended (keeps parameters already in the URL)."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def offered_crs(capabilities: bytes, typename: str) -> list[str]:
    """The CRSs a feature type is offered in; raises when the type is not served."""
    root = parse_xml(capabilities)
    check_exception(root)
    wanted = typename.split(":")[-1]
    for ft in root.iter():
        if local(ft.tag) != "FeatureType":
            continue
        name = next((c.text or "" for c in ft if local(c.tag) == "Name"), "")
        if name == typename or name.split(":")[-1] == wanted:
            return [c.text.strip() for c in ft if local(c.tag) in {"DefaultCRS", "OtherCRS", "DefaultSRS", "OtherSRS"} and c.text]
    raise BadResponse(f"Tjenesten har ikke objekttypen {typename}; sjekk «typename» i kildelisten.")


def pick_srs(offered: list[str]) -> str | None:
    """EPSG:25833 in the server's own spelling when offered, else None (server default)."""
    for srs in offered:
        if srs.rstrip().endswith(("::25833", "/25833", ":25833")):
            return srs
    return None


def fetch(http: Http, source: Source, bbox: tuple[float, float, float, float] | None = None,
          progress: Progress | None = None) -> list[RawFeature]:
    """All features of a WFS source, page by page."""
    say = progress or (lambda _m: None)
    assert source.url and source.typename
    caps_resp = http.get(with_params(source.url, capabilities_params()), source.label)
    try:
        srs = pick_srs(offered_crs(body(caps_resp, source.label), source.typename))
    except BadResponse as exc:
        http.forget(caps_resp)
        raise BadResponse(f"{source.label}: {exc}", detail=exc.detail) from exc
    features: list[RawFeature] = []
    start, seen_next = 0, False
    for page in range(MAX_PAGES):
        url = with_params(source.url, getfeature_params(source.typename, start, source.page_size, srs,
                                                        bbox if source.bbox else None, source.params))
        resp = http.get(url, source.label)
        try:
            data = body(resp, source.label)
            root = parse_xml(data)
            batch = parse_gml(data, default_srs=source.crs)
        except BadResponse as exc:
            http.forget(resp)
            raise BadResponse(f"{source.label}: {exc}", detail=exc.detail) from exc
        members = sum(1 for el in root if isinstance(el.tag, str) and local(el.tag) in {"member", "featureMember"})
        features.extend(batch)
        say(f"{source.label}: side {page + 1}, {members} objekter (totalt {len(features)})")
        has_next = bool(root.get("next"))
        seen_next = seen_next or has_next
        if members < source.page_size or (seen_next and not has_next):
            break
        start += members
    return features
