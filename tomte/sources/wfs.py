"""WFS 2.0 client: GetCapabilities, a ``RESULTTYPE=hits`` count, then GetFeature pages.

Paging (issue 12) never trusts the client's own page size:

* the page size is the source's ``page_size``, or the server's ``CountDefault`` from the
  capabilities when that is smaller (MapServer's ``wfs_maxfeatures``, GeoServer's max features);
* a ``next`` link is followed whenever a page has one, whatever the page's length; without one,
  a full page is followed by the next ``STARTINDEX``, and paging stops on a short page, or on a
  page without ``next`` once the server has been sending them;
* a ``RESULTTYPE=hits`` answer that itself carries a ``next`` link is capped like a page (MapServer
  with ``wfs_maxfeatures`` says ``numberMatched="25"`` for 72 features) and is not a total;
* ``numberReturned`` is never trusted (the real teig WFS says ``numberReturned="0"`` while
  returning 3 members): members are counted. ``numberMatched`` (on a page or from the hits
  request) must equal what was received, see :class:`~tomte.sources.paging.Pager`, which also
  refuses repeated features, loops and more than ``max_pages`` pages.

EPSG:25833 is requested when the capabilities offer it; otherwise the default CRS is used and
the parser transforms. Request builders are pure functions so tests can assert on them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urljoin

from lxml import etree

from tomte.errors import BadResponse, TomteError
from tomte.sources._http import Http, body
from tomte.sources.gml import RawFeature, check_exception, local, parse_gml, parse_xml
from tomte.sources.paging import Pager, stated_number
from tomte.sources.registry import Source

Progress = Callable[[str], None]


def capabilities_params() -> dict[str, str]:
    """Query parameters of a WFS 2.0 GetCapabilities request."""
    return {"SERVICE": "WFS", "REQUEST": "GetCapabilities", "ACCEPTVERSIONS": "2.0.0"}


def getfeature_params(typename: str, start: int, count: int, srs: str | None = None,
                      bbox: tuple[float, float, float, float] | None = None, extra: dict | None = None,
                      hits: bool = False) -> dict[str, str]:
    """Query parameters of one GetFeature page (bbox in EPSG:25833); ``hits`` asks only for the count."""
    params = {"SERVICE": "WFS", "VERSION": "2.0.0", "REQUEST": "GetFeature", "TYPENAMES": typename}
    if hits:
        params["RESULTTYPE"] = "hits"
    else:
        params.update({"COUNT": str(count), "STARTINDEX": str(start)})
    if srs:
        params["SRSNAME"] = srs
    if bbox:
        params["BBOX"] = ",".join(f"{v:.2f}" for v in bbox) + ",urn:ogc:def:crs:EPSG::25833"
    params.update({k: str(v) for k, v in (extra or {}).items()})
    return params


def with_params(url: str, params: dict[str, str]) -> str:
    """``url`` with query parameters appended (keeps parameters already in the URL)."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def count_default(root: etree._Element) -> int | None:
    """The server's ``CountDefault`` (its largest page) from parsed capabilities, if it states one."""
    for el in root.iter():
        if local(el.tag) == "Constraint" and el.get("name") == "CountDefault":
            for child in el.iter():
                if local(child.tag) in {"DefaultValue", "Value"} and stated_number(child.text):
                    return stated_number(child.text)
    return None


def offered_crs(capabilities: bytes | etree._Element, typename: str) -> list[str]:
    """The CRSs a feature type is offered in; raises when the type is not served."""
    root = parse_xml(capabilities) if isinstance(capabilities, bytes) else capabilities
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


def _hits(http: Http, source: Source, bbox: tuple[float, float, float, float] | None) -> int | None:
    """The server's count for the query (``RESULTTYPE=hits``), or None when it gives none."""
    assert source.url and source.typename
    url = with_params(source.url, getfeature_params(source.typename, 0, 0, None, bbox, source.params, hits=True))
    try:
        resp = http.get(url, source.label)
        root = parse_xml(body(resp, source.label))
        check_exception(root)
    except TomteError:  # hits are optional in WFS 2.0; the pages are checked on their own
        return None
    if root.get("next"):  # MapServer caps the count too ("25" with a next link): a lower bound, not a total
        return None
    return stated_number(root.get("numberMatched"))


def fetch(http: Http, source: Source, bbox: tuple[float, float, float, float] | None = None,
          progress: Progress | None = None) -> list[RawFeature]:
    """All features of a WFS source, page by page; fails rather than return part of them."""
    say = progress or (lambda _m: None)
    assert source.url and source.typename
    caps_resp = http.get(with_params(source.url, capabilities_params()), source.label)
    try:
        caps = parse_xml(body(caps_resp, source.label))
        srs = pick_srs(offered_crs(caps, source.typename))
    except BadResponse as exc:
        http.forget(caps_resp)
        raise BadResponse(f"{source.label}: {exc}", detail=exc.detail) from exc
    cap = count_default(caps)
    count = min(source.page_size, cap) if cap else source.page_size
    box = bbox if source.bbox else None
    pager = Pager(source.label, http.settings.max_pages)
    pager.state(_hits(http, source, box))
    start, seen_next = 0, False
    url: str | None = with_params(source.url, getfeature_params(source.typename, start, count, srs, box, source.params))
    while url is not None:
        pager.visit(url)
        resp = http.get(url, source.label)
        try:
            data = body(resp, source.label)
            root = parse_xml(data)
            batch = parse_gml(data, default_srs=source.crs)
            pager.add(batch)
            pager.state(root.get("numberMatched"))
        except BadResponse as exc:
            http.forget(resp)
            raise BadResponse(exc.args[0] if str(exc).startswith(source.label) else f"{source.label}: {exc}",
                              detail=exc.detail) from exc
        members = sum(1 for el in root if isinstance(el.tag, str) and local(el.tag) in {"member", "featureMember"})
        say(f"{source.label}: side {pager.pages}, {members} objekter (totalt {len(pager.features)}"
            + (f" av {pager.matched})" if pager.matched is not None else ")"))
        link = root.get("next")
        seen_next = seen_next or bool(link)
        start += members
        if link:
            url = urljoin(url, link)
        elif seen_next or pager.complete or members != count:
            url = None  # the server's last page, everything stated, a short page, or COUNT ignored
        else:
            url = with_params(source.url, getfeature_params(source.typename, start, count, srs, box, source.params))
    return pager.finish()
