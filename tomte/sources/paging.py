"""Paging bookkeeping shared by the WFS 2.0 and OGC API Features clients (issue 12).

Real servers cap pages (MapServer's and GeoServer's max features, ArcGIS Server's 1000,
Geonorge's 10,000), ignore ``STARTINDEX``, send ``next`` links that point back to themselves,
or state a total they do not deliver. A client that trusts its own page size loses features
silently. :class:`Pager` turns each of these into an error instead of data:

* a ``next`` link (or computed page) already fetched is a loop;
* a feature already received (by ``gml:id`` / feature id, else by content) is a repeat;
* more than ``max_pages`` pages is an error naming the setting;
* when the server states a total (``numberMatched`` on a page, or a ``RESULTTYPE=hits``
  answer), what was received must add up to it: "fikk 25 av 72 objekter".

Nothing is stored by a fetch that fails here: the caller raises before any write.
"""

from __future__ import annotations

import hashlib

import shapely

from tomte.errors import BadResponse
from tomte.sources.gml import RawFeature


def stated_number(value: object) -> int | None:
    """A server's ``numberMatched`` as an int; ``"unknown"``, empty or negative → None."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def feature_key(feature: RawFeature) -> str:
    """The identity of a feature within one fetch: its id, else a hash of geometry and attributes."""
    if feature.gml_id:
        return f"id:{feature.gml_id}"
    wkb = shapely.to_wkb(feature.geometry) if feature.geometry is not None else b""
    return "h:" + hashlib.sha1(wkb + repr(sorted(feature.attrs.items(), key=str)).encode()).hexdigest()


class Pager:
    """Counts pages and features of one source and refuses loops, repeats and short totals."""

    def __init__(self, label: str, max_pages: int) -> None:
        self.label = label
        self.max_pages = max_pages
        self.pages = 0
        self.features: list[RawFeature] = []
        self.matched: int | None = None
        self._keys: set[str] = set()
        self._urls: set[str] = set()

    def visit(self, url: str) -> None:
        """Record that ``url`` is about to be fetched."""
        if url in self._urls:
            raise BadResponse(f"{self.label}: neste side peker tilbake til en side som alt er hentet; tjenesten blar i ring "
                              f"(etter {len(self.features)} objekter), så ingenting er lagret.", detail=url)
        if self.pages >= self.max_pages:
            raise BadResponse(f"{self.label}: mer enn {self.max_pages} sider uten å bli ferdig (TOMTE_MAX_PAGES); "
                              "ingenting er lagret. Øk grensen eller begrens kilden med bbox/filter.", detail=url)
        self._urls.add(url)
        self.pages += 1

    def add(self, batch: list[RawFeature]) -> None:
        """Add one page's features; a feature seen before is an error."""
        for feature in batch:
            key = feature_key(feature)
            if key in self._keys:
                raise BadResponse(
                    f"{self.label}: side {self.pages} gjentar objekter som alt er mottatt ({key.split(':', 1)[1][:40]}); "
                    "tjenesten ser ut til å overse STARTINDEX/offset, så ingenting er lagret.")
            self._keys.add(key)
        self.features.extend(batch)

    def state(self, value: object) -> None:
        """Record a total the server stated; two different totals in one fetch are an error."""
        number = stated_number(value)
        if number is None:
            return
        if self.matched is not None and number != self.matched:
            raise BadResponse(f"{self.label}: tjenesten oppga først {self.matched} og så {number} objekter; "
                              "dataene endret seg underveis, prøv igjen.")
        self.matched = number

    @property
    def complete(self) -> bool:
        """True when the server stated a total and it has been received."""
        return self.matched is not None and len(self.features) >= self.matched

    def finish(self) -> list[RawFeature]:
        """The features, after checking them against the stated total."""
        if self.matched is not None and len(self.features) != self.matched:
            raise BadResponse(f"{self.label}: fikk {len(self.features)} av {self.matched} objekter fra tjenesten; "
                              "ingenting er lagret (tidligere data er beholdt).")
        return self.features
