"""CRS handling and coordinate transformation to EPSG:25833.

``srsName`` comes in many styles; :func:`parse_srs` returns the EPSG code and whether the
coordinates are latitude-first. Rule (as GeoServer, deegree and Geonorge services behave):
URN (``urn:ogc:def:crs:EPSG::4326``) and OGC URI (``http://www.opengis.net/def/crs/EPSG/0/4326``)
forms follow the EPSG axis order, so 4258/4326 are lat,lon; the legacy ``EPSG:4326`` and
``http://www.opengis.net/gml/srs/epsg.xml#4326`` forms are lon,lat. Projected Norwegian CRSs
(25832/25833/25835) are easting,northing in every style.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from tomte.errors import InvalidData

TARGET = 25833
LAT_FIRST = {4258, 4326, 4230, 4273}


def parse_srs(srs: str | None) -> tuple[int | None, bool]:
    """(EPSG code, latitude-first?) from an ``srsName``; (None, False) when absent."""
    if not srs:
        return None, False
    text = srs.strip()
    # OGC's lon/lat WGS 84 in every spelling GIS tools write: CRS84, OGC:CRS84,
    # urn:ogc:def:crs:OGC:1.3:CRS84 (ogr2ogr, GeoPandas, QGIS), urn:ogc:def:crs:OGC::CRS84,
    # http://www.opengis.net/def/crs/OGC/1.3/CRS84 (OGC API); CRS84h is the 3D variant.
    if re.fullmatch(r"(?i)(?:(?:urn:ogc:def:crs:)?ogc:(?:[\d.]*:)?|https?://www\.opengis\.net/def/crs/ogc/[\d.]+/)?crs84h?", text):
        return 4326, False
    match = re.search(r"(?<![\d.])(\d{4,6})\s*$", text)
    if not match:
        raise InvalidData(f"Ukjent koordinatsystem «{srs}»; oppgi EPSG-kode (f.eks. EPSG:25833).")
    code = int(match.group(1))
    modern = text.lower().startswith("urn:") or "/def/crs/" in text.lower()
    return code, modern and code in LAT_FIRST


@lru_cache(maxsize=32)
def _transformer(epsg: int) -> Transformer:
    try:
        source = CRS.from_epsg(epsg)
    except CRSError as exc:
        raise InvalidData(f"Ukjent koordinatsystem EPSG:{epsg}; oppgi en gyldig EPSG-kode (f.eks. EPSG:25833).") from exc
    return Transformer.from_crs(source, CRS.from_epsg(TARGET), always_xy=True)


def to_25833(geom: BaseGeometry, epsg: int) -> BaseGeometry:
    """Transform x,y (easting/longitude first) from ``epsg`` to EPSG:25833."""
    if epsg == TARGET or geom.is_empty:
        return geom
    tr = _transformer(epsg)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def arc_points(p1: tuple[float, float], p2: tuple[float, float], p3: tuple[float, float], max_step_deg: float = 1.0) -> list[tuple[float, float]]:
    """Densify a circular arc through three points (start, mid, end); collinear → straight.

    Steps of at most ``max_step_deg`` keep the polygon area within about 0.005 % of the true
    area (relative area error of an n-gon is about (2π/n)²/6).
    """
    (x1, y1), (x2, y2), (x3, y3) = p1, p2, p3
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    if abs(d) < 1e-12 or p1 == p3:
        if p1 == p3 and p1 != p2:  # a full circle given by start=end and the opposite point
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            r = float(np.hypot(x1 - cx, y1 - cy))
            a0 = float(np.arctan2(y1 - cy, x1 - cx))
            n = int(np.ceil(360 / max_step_deg))
            ang = a0 + np.linspace(0, 2 * np.pi, n + 1)
            return list(zip(cx + r * np.cos(ang), cy + r * np.sin(ang), strict=True))
        return [p1, p2, p3] if p1 != p3 else [p1]
    s1, s2, s3 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2, x3 * x3 + y3 * y3
    cx = (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d
    cy = (s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d
    r = float(np.hypot(x1 - cx, y1 - cy))
    a1, a2, a3 = (float(np.arctan2(y - cy, x - cx)) for x, y in (p1, p2, p3))
    ccw = d > 0  # orientation of p1→p2→p3
    def sweep(a: float, b: float) -> float:
        delta = (b - a) % (2 * np.pi)
        return delta if ccw else delta - 2 * np.pi
    total = sweep(a1, a3)
    n = max(2, int(np.ceil(abs(np.degrees(total)) / max_step_deg)))
    ang = a1 + np.linspace(0, total, n + 1)
    pts = list(zip(cx + r * np.cos(ang), cy + r * np.sin(ang), strict=True))
    pts[0], pts[-1] = p1, p3  # exact end points keep rings closed
    return pts
