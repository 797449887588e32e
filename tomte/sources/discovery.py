"""Find a kommune's plan services in Geonorge's Kartkatalog and propose ``sources.toml`` entries.

The analyst confirms the proposals (they are printed, never stored silently). Kartkatalog's
search API (``/api/search``) returns ``Results`` with ``Title``, ``Organization``,
``DistributionProtocol`` and ``DistributionUrl``; for each WFS found, GetCapabilities tells
which feature types are kommuneplan zones or reguleringsplan areas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tomte.errors import BadResponse, TomteError
from tomte.sources._http import Http, body
from tomte.sources.gml import local, parse_xml
from tomte.sources.normalize import fold
from tomte.sources.wfs import capabilities_params, with_params

KARTKATALOG = "https://kartkatalog.geonorge.no/api/search"
ROLE_TYPES = {"kparealformalomrade": "kommuneplan", "kparealbrukomrade": "kommuneplan", "rpomrade": "reguleringsplan"}


@dataclass(frozen=True)
class Proposal:
    """A proposed source entry."""

    kommune: str
    role: str
    kind: str
    url: str
    typename: str
    title: str

    def toml(self) -> str:
        """The entry in ``sources.toml`` syntax."""
        return (f'# {self.title}\n[[source]]\nkommune = "{self.kommune}"\nrole = "{self.role}"\nkind = "{self.kind}"\n'
                f'url = "{self.url}"\ntypename = "{self.typename}"\n')


def search_params(kommunenavn: str, limit: int = 50) -> dict[str, str]:
    """Query parameters of a Kartkatalog service search for a kommune's plans."""
    return {"text": f"{kommunenavn} plan", "limit": str(limit), "facets[0]name": "type", "facets[0]value": "service"}


def parse_results(doc: dict[str, Any], kommunenavn: str) -> list[dict[str, str]]:
    """WFS services in a Kartkatalog answer whose title or owner mentions the kommune."""
    out = []
    for item in doc.get("Results", []) or []:
        protocol = str(item.get("DistributionProtocol") or "")
        url = str(item.get("DistributionUrl") or "")
        text = f"{item.get('Title', '')} {item.get('Organization', '')}".lower()
        if "wfs" in protocol.lower() and url and kommunenavn.lower() in text:
            out.append({"title": str(item.get("Title")), "url": url.split("?")[0]})
    return out


def plan_types(capabilities: bytes) -> list[tuple[str, str]]:
    """(typename, role) for the plan feature types a WFS offers."""
    root = parse_xml(capabilities)
    found = []
    for ft in root.iter():
        if local(ft.tag) == "FeatureType":
            name = next((c.text or "" for c in ft if local(c.tag) == "Name"), "")
            role = ROLE_TYPES.get(fold(name.split(":")[-1]))
            if role:
                found.append((name, role))
    return found


def discover(http: Http, kommunenummer: str, kommunenavn: str, base: str = KARTKATALOG) -> list[Proposal]:
    """Search Kartkatalog and inspect each WFS found; unreachable services are skipped."""
    resp = http.get(base, f"Kartkatalog ({kommunenavn})", params=search_params(kommunenavn))
    try:
        doc = json.loads(body(resp, "Kartkatalog"))
    except json.JSONDecodeError as exc:
        raise BadResponse("Kartkatalog svarte ikke med JSON; prøv igjen senere.") from exc
    proposals = []
    for service in parse_results(doc, kommunenavn):
        try:
            caps = body(http.get(with_params(service["url"], capabilities_params()), service["title"]), service["title"])
            types = plan_types(caps)
        except TomteError:
            continue
        proposals += [Proposal(kommunenummer, role, "wfs", service["url"], name, service["title"]) for name, role in types]
    return proposals
