"""A pure parser for GML 3.2 feature collections (SOSI-GML Plan 4.5/5.0, WFS 2.0 responses).

Returns :class:`RawFeature` objects: the feature type's local name, a flat attribute dict and
the polygonal geometry in EPSG:25833. Attribute keys are dotted paths of property names with
SOSI's capitalised type wrappers left out (``identifikasjon/Identifikasjon/lokalId`` →
``identifikasjon.lokalId``), which is also how DiBK's NAP flattens them. xlink references
between features are kept in ``links`` (property → target gml:ids) so Plan 5.0 ``Arealplan``
attributes can be joined onto ``RpOmråde``.

Geometry: ``MultiSurface``, ``Surface``/``PolygonPatch``, ``Polygon`` (with holes),
``CompositeSurface``, ``MultiPolygon``; rings as ``LinearRing`` (``posList``/``pos``/
``coordinates``) or ``Ring`` of ``Curve``s with ``LineStringSegment``, ``Arc``, ``ArcString``
and ``Circle`` segments (arcs densified, see :func:`tomte.geom.arc_points`); xlinked geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import shapely
from lxml import etree
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from tomte.errors import BadResponse, InvalidData
from tomte.geom import arc_points, parse_srs, to_25833

GML_NS = {"http://www.opengis.net/gml/3.2", "http://www.opengis.net/gml"}
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
GML_ID = ("{http://www.opengis.net/gml/3.2}id", "{http://www.opengis.net/gml}id")
MEMBER_NAMES = {"featureMember", "member", "featureMembers"}
POLYGONAL = {"Polygon", "Surface", "MultiSurface", "CompositeSurface", "MultiPolygon", "PolygonPatch", "OrientableSurface"}
LINEAR = {"LineString", "Curve", "OrientableCurve", "CompositeCurve", "MultiCurve", "MultiLineString"}
PUNCTUAL = {"Point", "MultiPoint"}


@dataclass
class RawFeature:
    """A feature as read from a source, before normalisation."""

    feature_type: str
    attrs: dict[str, Any]
    geometry: BaseGeometry | None
    gml_id: str | None = None
    links: dict[str, list[str]] = field(default_factory=dict)
    epsg: int | None = None


def local(tag: Any) -> str:
    """Local name of an lxml tag."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _ns(tag: Any) -> str:
    return etree.QName(tag).namespace or "" if isinstance(tag, str) else ""


def _gml_id(el: etree._Element) -> str | None:
    for key in GML_ID:
        if key in el.attrib:
            return el.attrib[key]
    return None


def check_exception(root: etree._Element) -> None:
    """Raise :class:`BadResponse` for OWS/WMS exception reports (often sent with HTTP 200)."""
    name = local(root.tag)
    if name in {"ExceptionReport", "ServiceExceptionReport"}:
        texts = [" ".join(t.split()) for t in root.itertext() if t.strip()]
        codes = [e.get("exceptionCode") or e.get("code") for e in root.iter() if local(e.tag) in {"Exception", "ServiceException"}]
        code = next((c for c in codes if c), "ukjent")
        raise BadResponse(f"Tjenesten svarte med en feilmelding ({code}): {' '.join(texts)[:300]}", detail=name)


def parse_xml(data: bytes) -> etree._Element:
    """Parse XML bytes; malformed or truncated XML raises :class:`BadResponse`."""
    try:
        parser = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
        return etree.fromstring(data.lstrip(b"\xef\xbb\xbf \r\n\t"), parser)
    except etree.XMLSyntaxError as exc:
        raise BadResponse(f"Svaret er ikke gyldig XML (avkuttet eller ødelagt): {exc}.", detail=str(exc)) from exc


class _GeometryReader:
    """Reads GML geometry elements into shapely, in the source CRS with x = easting/longitude."""

    def __init__(self, ids: dict[str, etree._Element], default_srs: str | None) -> None:
        self.ids = ids
        self.default_srs = default_srs

    def srs_of(self, el: etree._Element) -> str | None:
        node: etree._Element | None = el
        while node is not None:
            srs = node.get("srsName")
            if srs:
                return srs
            node = node.getparent()
        return self.default_srs

    def _coords(self, el: etree._Element, lat_first: bool) -> list[tuple[float, float]]:
        dim = int(el.get("srsDimension") or el.getparent().get("srsDimension") or self._dim(el) or 2)
        name = local(el.tag)
        try:
            if name == "coordinates":
                cs, ts = el.get("cs", ","), el.get("ts", " ")
                tuples = [t.split(cs) for t in (el.text or "").strip().split(ts) if t]
                values = [(float(t[0]), float(t[1])) for t in tuples]
                nums = [v for pair in values for v in pair]
            else:
                nums = [float(v) for v in (el.text or "").split()]
        except (ValueError, IndexError) as exc:
            raise InvalidData(f"En koordinatliste (gml:{name}) inneholder noe som ikke er tall: «{(el.text or '').strip()[:40]}».") from exc
        if not all(map(math.isfinite, nums)):
            raise InvalidData(f"En koordinatliste (gml:{name}) inneholder NaN eller uendelig; filen er ødelagt.")
        if name != "coordinates":
            if len(nums) % dim:
                raise InvalidData(f"Koordinatlisten har {len(nums)} tall, som ikke går opp i dimensjon {dim}.")
            values = [(nums[i], nums[i + 1]) for i in range(0, len(nums), dim)]
        return [(y, x) for x, y in values] if lat_first else values

    def _dim(self, el: etree._Element) -> str | None:
        node: etree._Element | None = el
        while node is not None:
            if node.get("srsDimension"):
                return node.get("srsDimension")
            node = node.getparent()
        return None

    def _points(self, el: etree._Element, lat_first: bool) -> list[tuple[float, float]]:
        """Coordinates directly under a LinearRing/segment (posList, pos*, pointProperty, coordinates)."""
        pts: list[tuple[float, float]] = []
        for child in el:
            name = local(child.tag)
            if name in {"posList", "coordinates"}:
                pts.extend(self._coords(child, lat_first))
            elif name == "pos":
                pts.extend(self._coords(child, lat_first))
            elif name in {"pointProperty", "pointRep"}:
                point = self._resolve(child)
                pos = next((p for p in point.iter() if local(p.tag) == "pos"), None) if point is not None else None
                if pos is not None:
                    pts.extend(self._coords(pos, lat_first))
        return pts

    def _resolve(self, prop: etree._Element) -> etree._Element | None:
        """The geometry element inside a property, following ``xlink:href="#id"``."""
        href = prop.get(XLINK_HREF)
        if href:
            target = self.ids.get(href.lstrip("#"))
            if target is None:
                raise InvalidData(f"Geometrireferansen {href} peker ikke på noe i filen.")
            return target
        return next((c for c in prop if isinstance(c.tag, str)), None)

    def _curve(self, el: etree._Element, lat_first: bool) -> list[tuple[float, float]]:
        name = local(el.tag)
        if name in {"LineString", "LinearRing"}:
            return self._points(el, lat_first)
        if name == "OrientableCurve":
            base = self._resolve(next(c for c in el if local(c.tag) == "baseCurve"))
            pts = self._curve(base, lat_first) if base is not None else []
            return pts[::-1] if el.get("orientation") == "-" else pts
        if name == "CompositeCurve":
            joined: list[tuple[float, float]] = []
            for member in el:
                target = self._resolve(member)
                if target is not None:
                    joined = _join(joined, self._curve(target, lat_first))
            return joined
        if name != "Curve":
            raise InvalidData(f"Ukjent kurvetype gml:{name}.")
        pts = []
        segments = next((c for c in el if local(c.tag) == "segments"), None)
        for seg in segments if segments is not None else []:
            kind = local(seg.tag)
            raw = self._points(seg, lat_first)
            if kind in {"Arc", "ArcString"}:
                dense: list[tuple[float, float]] = [raw[0]] if raw else []
                for i in range(0, len(raw) - 2, 2):
                    dense = _join(dense, arc_points(raw[i], raw[i + 1], raw[i + 2]))
                pts = _join(pts, dense)
            elif kind == "Circle":
                pts = _join(pts, arc_points(raw[0], raw[1], raw[2]) + arc_points(raw[2], _opposite(raw), raw[0])[1:])
            elif kind in {"LineStringSegment", "GeodesicString", "Geodesic"}:
                pts = _join(pts, raw)
            else:
                raise InvalidData(f"Kurvesegmentet gml:{kind} støttes ikke.")
        return pts

    def _ring(self, el: etree._Element, lat_first: bool) -> list[tuple[float, float]]:
        name = local(el.tag)
        if name == "LinearRing":
            return self._points(el, lat_first)
        if name == "Ring":
            pts: list[tuple[float, float]] = []
            for member in el:
                if local(member.tag) == "curveMember":
                    target = self._resolve(member)
                    if target is not None:
                        pts = _join(pts, self._curve(target, lat_first))
            return pts
        raise InvalidData(f"Ukjent ringtype gml:{name}.")

    def _polygon(self, el: etree._Element, lat_first: bool) -> Polygon:
        shell: list[tuple[float, float]] = []
        holes: list[list[tuple[float, float]]] = []
        for child in el:
            name = local(child.tag)
            if name in {"exterior", "outerBoundaryIs", "interior", "innerBoundaryIs"}:
                ring_el = self._resolve(child)
                if ring_el is None:
                    continue
                ring = self._ring(ring_el, lat_first)
                if name in {"exterior", "outerBoundaryIs"}:
                    shell = ring
                else:
                    holes.append(ring)
        if not shell:
            return Polygon()
        for ring in (shell, *holes):
            if len(set(ring)) < 3:
                raise InvalidData(f"En flate har en ring med bare {len(set(ring))} ulike punkter; en ring trenger minst tre.")
        return Polygon(shell, holes)

    def polygons(self, el: etree._Element, lat_first: bool) -> list[Polygon]:
        name = local(el.tag)
        if name in {"Polygon", "PolygonPatch"}:
            return [self._polygon(el, lat_first)]
        if name in {"Surface", "OrientableSurface"}:
            out: list[Polygon] = []
            for child in el:
                if local(child.tag) in {"patches", "baseSurface"}:
                    for patch in child if local(child.tag) == "patches" else [self._resolve(child)]:
                        if patch is not None and isinstance(patch.tag, str):
                            out.extend(self.polygons(patch, lat_first))
            return out
        if name in {"MultiSurface", "CompositeSurface", "MultiPolygon"}:
            out = []
            for member in el:
                mname = local(member.tag)
                if mname in {"surfaceMember", "polygonMember"}:
                    target = self._resolve(member)
                    if target is not None:
                        out.extend(self.polygons(target, lat_first))
                elif mname in {"surfaceMembers", "polygonMembers"}:
                    for target in member:
                        if isinstance(target.tag, str):
                            out.extend(self.polygons(target, lat_first))
            return out
        return []

    def lines(self, el: etree._Element, lat_first: bool) -> list[LineString]:
        name = local(el.tag)
        if name in {"LineString", "Curve", "OrientableCurve", "CompositeCurve"}:
            pts = self._curve(el, lat_first)
            return [LineString(pts)] if len(pts) >= 2 else []
        out: list[LineString] = []
        for member in el:
            if local(member.tag) in {"curveMember", "lineStringMember"}:
                target = self._resolve(member)
                if target is not None:
                    out.extend(self.lines(target, lat_first))
            elif local(member.tag) == "curveMembers":
                for target in member:
                    if isinstance(target.tag, str):
                        out.extend(self.lines(target, lat_first))
        return out

    def points(self, el: etree._Element, lat_first: bool) -> list[Point]:
        if local(el.tag) == "Point":
            return [Point(p) for p in self._points(el, lat_first)[:1]]
        out: list[Point] = []
        for member in el.iter():
            if isinstance(member.tag, str) and local(member.tag) == "Point" and member is not el:
                out.extend(Point(p) for p in self._points(member, lat_first)[:1])
        return out

    def read(self, el: etree._Element) -> tuple[BaseGeometry, int | None]:
        """(geometry in EPSG:25833, source EPSG): polygonal, linear or point geometry."""
        epsg, lat_first = parse_srs(self.srs_of(el))
        name = local(el.tag)
        geom: BaseGeometry
        if name in LINEAR:
            lines = self.lines(el, lat_first)
            geom = lines[0] if len(lines) == 1 else shapely.MultiLineString(lines)
        elif name in PUNCTUAL:
            points = self.points(el, lat_first)
            geom = points[0] if len(points) == 1 else shapely.MultiPoint(points)
        else:
            polys = [p for p in self.polygons(el, lat_first) if not p.is_empty]
            geom = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
        if epsg is None:
            raise InvalidData("Geometrien mangler koordinatsystem (srsName); oppgi crs for kilden.")
        return to_25833(geom, epsg), epsg


def _join(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if a and b and a[-1] == b[0]:
        return a + b[1:]
    return a + b


def _opposite(raw: list[tuple[float, float]]) -> tuple[float, float]:
    # Point diametrically opposite raw[1] on the circle through the three points.
    import numpy as np

    (x1, y1), (x2, y2), (x3, y3) = raw[:3]
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    s1, s2, s3 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2, x3 * x3 + y3 * y3
    cx = (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d
    cy = (s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d
    return (float(2 * cx - x2), float(2 * cy - y2)) if np.isfinite(cx) else raw[1]


def _flatten(el: etree._Element, prefix: str, attrs: dict[str, Any], links: dict[str, list[str]],
             geoms: list[tuple[str, etree._Element]]) -> None:
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = local(child.tag)
        if _ns(child.tag) in GML_NS and name in {"boundedBy", "name", "description", "identifier"}:
            continue
        key = f"{prefix}.{name}" if prefix else name
        href = child.get(XLINK_HREF)
        elements = [c for c in child if isinstance(c.tag, str)]
        if href is not None and not elements:
            links.setdefault(key, []).append(href.split("#")[-1])
            geoms.append((key, child))  # may be an xlinked geometry; checked later
            continue
        if not elements:
            text = (child.text or "").strip()
            if key in attrs and text:
                attrs[key] = f"{attrs[key]},{text}"  # repeated simple property
            elif text or key not in attrs:
                attrs[key] = text or None
            continue
        first = elements[0]
        if _ns(first.tag) in GML_NS:
            geoms.append((key, first))
            continue
        if local(first.tag)[:1].isupper() and len(elements) == 1:
            _flatten(first, key, attrs, links, geoms)  # SOSI type wrapper: property/Type/fields
        else:
            _flatten(child, key, attrs, links, geoms)


def parse_gml(data: bytes, default_srs: str | None = None) -> list[RawFeature]:
    """All features in a GML document; polygonal geometry in EPSG:25833 (or None)."""
    root = parse_xml(data)
    check_exception(root)
    ids = {gid: el for el in root.iter() if isinstance(el.tag, str) and (gid := _gml_id(el))}
    envelope_srs = next((e.get("srsName") for e in root.iter() if local(e.tag) == "Envelope" and e.get("srsName")), None)
    reader = _GeometryReader(ids, default_srs or envelope_srs)
    features: list[RawFeature] = []
    members = [el for el in root.iter() if isinstance(el.tag, str) and local(el.tag) in MEMBER_NAMES]
    if not members and local(root.tag) not in {"FeatureCollection"}:
        raise InvalidData(f"XML-dokumentet ({local(root.tag)}) er ikke en GML-objektsamling.")
    for member in members:
        for feat in member:
            if not isinstance(feat.tag, str):
                continue
            if local(feat.tag) == "FeatureCollection":
                continue  # nested collections are visited through iter()
            attrs: dict[str, Any] = {}
            links: dict[str, list[str]] = {}
            geoms: list[tuple[str, etree._Element]] = []
            _flatten(feat, "", attrs, links, geoms)
            geometry, epsg = None, None
            candidates: list[etree._Element] = []
            for key, el in geoms:
                target = el
                if el.get(XLINK_HREF) is not None:
                    target = ids.get(el.get(XLINK_HREF).split("#")[-1])
                    if target is None or _ns(target.tag) not in GML_NS:
                        continue
                    links.pop(key, None)
                if local(target.tag) in POLYGONAL | LINEAR | PUNCTUAL:
                    candidates.append(target)
            # A polygon (område) beats a line (grense) beats a point (representasjonspunkt).
            candidates.sort(key=lambda t: 0 if local(t.tag) in POLYGONAL else 1 if local(t.tag) in LINEAR else 2)
            if candidates:
                geometry, epsg = reader.read(candidates[0])
            features.append(RawFeature(local(feat.tag), attrs, geometry, _gml_id(feat), links, epsg))
    return features
