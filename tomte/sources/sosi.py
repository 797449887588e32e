"""A reader for SOSI text files (``.sos``, SOSI 4.0–4.5), detected by content (``.HODE``).

Why our own reader: Debian's GDAL SOSI driver (fyba) refuses real UTF-8 files ("ORIGO-NØ
mangler i filhodet"), and many kommuner send exactly those. The format is line based:

* a line starting with dots is an attribute; the number of dots is its level (``.FLATE 12:`` an
  object, ``..OBJTYPE`` its attribute, ``...PLANID`` nested under the ``..`` line above it);
  ``!`` starts a comment outside quotes; values may be quoted;
* ``.HODE`` gives ``..TEGNSETT`` (UTF-8, ISO8859-1, ISO8859-10, DOSN8, ANSI, ND7/DECN7),
  ``...KOORDSYS`` (SOSI code → EPSG, :data:`KOORDSYS`), ``...ORIGO-NØ`` and ``...ENHET``:
  a stored integer pair ``n e`` means northing ``origo_n + n·enhet``, easting ``origo_e + e·enhet``;
* ``..NØ``/``..NØH`` start coordinate lines (``N E [H] [...KP n]``);
* ``.KURVE``/``.LINJE`` are lines, ``.BUEP`` an arc through three points, ``.SIRKELP`` a circle
  through three points, ``.SIRKEL`` a centre with ``..RADIUS`` (arcs densified like GML arcs,
  :func:`tomte.geom.arc_points`); ``.PUNKT``/``.SVERM``/``.TEKST`` points;
* ``.FLATE`` is built from ``..REF :12 :-13 (:14)``: curves by serial number, a minus sign
  reverses a curve, a parenthesised group is a hole. The ``..NØ`` of a flate is its
  representative point, not its outline.

Features come out as :class:`~tomte.sources.gml.RawFeature` in EPSG:25833 with attribute keys
as written (``RPAREALFORMÅL``, ``NASJONALAREALPLANID.PLANID``, ``IDENT.LOKALID``), which
:mod:`tomte.sources.normalize` maps onto the same model as SOSI-GML (``KPAREALFORMÅL`` →
``arealformål``, ``PLANSTAT`` → ``planstatus``, ``VERTNIV``, ``IKRAFT`` …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from tomte.errors import InvalidData
from tomte.geom import arc_points, to_25833
from tomte.sources.gml import RawFeature

# SOSI KOORDSYS → EPSG (SOSI realisering, "Koordinatsystem"): NGO1948 axes I–VIII, EUREF89 UTM
# zones 31–36, ED50 UTM zones 31–36, EUREF89 geographic.
KOORDSYS: dict[int, int] = {
    **{i: 27390 + i for i in range(1, 9)},
    21: 25831, 22: 25832, 23: 25833, 24: 25834, 25: 25835, 26: 25836,
    31: 23031, 32: 23032, 33: 23033, 34: 23034, 35: 23035, 36: 23036,
    84: 4326,
}
CODECS = {"UTF-8": "utf-8", "UTF8": "utf-8", "ISO8859-1": "latin-1", "ISO8859-10": "iso8859_10",
          "DOSN8": "cp865", "ANSI": "cp1252", "ISO8859-15": "iso8859_15", "WINDOWS-1252": "cp1252"}
ND7 = str.maketrans("[\\]{|}", "ÆØÅæøå")  # 7-bit Norwegian (ND7, DECN7)
CURVES = {"KURVE", "LINJE", "BUEP", "SIRKELP", "SIRKEL", "BUE", "KLOTOIDE"}
POINTS = {"PUNKT", "SVERM", "TEKST", "SYMBOL"}


@dataclass
class _Object:
    kind: str
    serial: int | None
    attrs: dict[str, Any] = field(default_factory=dict)
    coords: list[tuple[float, float]] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)


def _decode(data: bytes) -> str:
    """The text, decoded with the charset the head names (UTF-8 when it names none and decodes)."""
    match = re.search(rb"\.\.TEGNSETT\s+([A-Za-z0-9_-]+)", data[:4000])
    name = match.group(1).decode("ascii").upper() if match else ""
    if name in ("ND7", "DECN7"):
        return data.decode("ascii", errors="strict").translate(ND7)
    codec = CODECS.get(name)
    if name and codec is None:
        raise InvalidData(f"SOSI-filen har ukjent tegnsett «{name}»; tomte leser {', '.join(sorted(CODECS))}, ND7 og DECN7.")
    try:
        return data.decode(codec or "utf-8")
    except UnicodeDecodeError as exc:
        if codec is None:
            return data.decode("latin-1")
        raise InvalidData(f"SOSI-filen sier TEGNSETT {name}, men er ikke skrevet i det tegnsettet (byte {exc.start}).") from exc


def _strip_comment(line: str) -> str:
    if "!" not in line:
        return line
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "!" and not quoted:
            return line[:i]
    return line


def _value(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" else text


def _objects(text: str) -> list[_Object]:
    """Split the file into objects with attributes (dotted keys), coordinates and REF tokens."""
    objects: list[_Object] = []
    current: _Object | None = None
    parents: dict[int, str] = {}
    mode = ""  # "nø" after ..NØ/..NØH, "ref" after ..REF
    dims = 2
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if re.match(r"\.+[^\d\s.-]", line):
            dots = len(line) - len(line.lstrip("."))
            word, _, rest = line[dots:].partition(" ")
            key = word.upper()
            if dots == 1:
                if key == "SLUTT":
                    break
                serial = re.match(r"\s*(\d+)\s*:", rest)
                current = _Object(key, int(serial.group(1)) if serial else None)
                objects.append(current)
                parents, mode = {}, ""
                continue
            if current is None:
                raise InvalidData(f"SOSI-filen mangler objektstart før linje {lineno} ({line[:40]}).")
            if key in ("NØ", "NØH"):
                dims = 2 if key == "NØ" else 3
                mode = "nø"
                current.coords.extend(_pairs(rest, dims, lineno))
                continue
            if key == "REF" and dots == 2:
                mode = "ref"
                current.refs.extend(_ref_tokens(rest))
                continue
            if key == "KP" and dots > 2 and mode == "nø":
                continue  # a node mark on its own line between coordinates
            mode = ""
            parents[dots] = key
            path = ".".join(parents[d] for d in sorted(parents) if 2 <= d <= dots)
            for deeper in [d for d in parents if d > dots]:
                del parents[deeper]
            value = _value(rest)
            if path in current.attrs and value:
                prev = current.attrs[path]
                current.attrs[path] = [*prev, value] if isinstance(prev, list) else [prev, value]
            elif value or path not in current.attrs:
                current.attrs[path] = value
            continue
        if current is None:
            raise InvalidData(f"SOSI-filen har data før første objekt (linje {lineno}).")
        if mode == "nø":
            current.coords.extend(_pairs(line, dims, lineno))
        elif mode == "ref":
            current.refs.extend(_ref_tokens(line))
        elif current.attrs:  # a value continued on the next line
            last = list(current.attrs)[-1]
            current.attrs[last] = f"{current.attrs[last]} {_value(line)}".strip()
    return objects


def _pairs(text: str, dims: int, lineno: int) -> list[tuple[float, float]]:
    """(N, E) pairs of a coordinate line ``N E [H] [N E [H] …] [...KP n]``."""
    words = text.split("...")[0].split()
    if not words:
        return []
    try:
        numbers = [float(w) for w in words]
    except ValueError as exc:
        raise InvalidData(f"SOSI-filen har en ugyldig koordinatlinje {lineno}: «{text.strip()[:40]}».") from exc
    if len(numbers) % dims or not all(np.isfinite(numbers)):
        raise InvalidData(f"SOSI-filen har en ugyldig koordinatlinje {lineno}: «{text.strip()[:40]}».")
    return [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), dims)]


def _ref_tokens(text: str) -> list[str]:
    return re.findall(r"\(|\)|:-?\d+", text.split("...")[0])


@dataclass(frozen=True)
class _Head:
    epsg: int
    origo_n: float
    origo_e: float
    enhet: float


def _head(objects: list[_Object], default_epsg: int | None) -> _Head:
    head = next((o for o in objects if o.kind == "HODE"), None)
    if head is None:
        raise InvalidData("SOSI-filen mangler .HODE.")
    attrs = {k.rsplit(".", 1)[-1]: v for k, v in head.attrs.items()}
    code = attrs.get("KOORDSYS")
    if code in (None, ""):
        if default_epsg is None:
            raise InvalidData("SOSI-filen mangler KOORDSYS i hodet; oppgi koordinatsystemet (f.eks. --crs EPSG:25832).")
        epsg = default_epsg
    else:
        try:
            epsg = KOORDSYS[int(str(code).split()[0])]
        except (KeyError, ValueError) as exc:
            raise InvalidData(f"SOSI-filen har KOORDSYS {code}, som tomte ikke kjenner; oppgi koordinatsystemet med --crs.") from exc
    try:
        origo = [float(v) for v in str(attrs.get("ORIGO-NØ") or "0 0").split()[:2]]
        enhet = float(str(attrs.get("ENHET") or "1").split()[0])
    except ValueError as exc:
        raise InvalidData("SOSI-filen har ugyldig ORIGO-NØ eller ENHET i hodet.") from exc
    if len(origo) != 2 or not enhet > 0:
        raise InvalidData("SOSI-filen har ugyldig ORIGO-NØ eller ENHET i hodet.")
    return _Head(epsg, origo[0], origo[1], enhet)


def _xy(obj: _Object, head: _Head) -> list[tuple[float, float]]:
    """Coordinates as (x = easting/longitude, y = northing/latitude) in the file's CRS."""
    return [(head.origo_e + e * head.enhet, head.origo_n + n * head.enhet) for n, e in obj.coords]


def _curve_points(obj: _Object, head: _Head) -> list[tuple[float, float]]:
    pts = _xy(obj, head)
    if obj.kind == "BUEP" and len(pts) == 3:
        return arc_points(pts[0], pts[1], pts[2])
    if obj.kind == "SIRKELP" and len(pts) == 3:
        ring = LineString(arc_points(pts[0], pts[1], pts[2]) + arc_points(pts[2], _opposite(pts), pts[0])[1:])
        return list(ring.coords)
    if obj.kind == "SIRKEL" and pts:
        radius = float(str(obj.attrs.get("RADIUS", "0")).split()[0]) * head.enhet
        if radius > 0:
            return list(Point(pts[0]).buffer(radius, quad_segs=90).exterior.coords)
    return pts


def _opposite(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """The point of the circle through three points opposite the middle one (to close a SIRKELP)."""
    (x1, y1), (x2, y2), (x3, y3) = pts
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    if abs(d) < 1e-12:
        raise InvalidData("SOSI-filen har en SIRKELP med tre punkter på linje.")
    s1, s2, s3 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2, x3 * x3 + y3 * y3
    cx = (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d
    cy = (s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d
    return 2 * cx - x2, 2 * cy - y2


def _ring(refs: list[int], curves: dict[int, list[tuple[float, float]]], serial: int | None) -> list[tuple[float, float]]:
    """Chain the referenced curves (negative = reversed) into one closed ring."""
    ring: list[tuple[float, float]] = []
    for ref in refs:
        pts = curves.get(abs(ref))
        if pts is None:
            raise InvalidData(f"SOSI-filen: flate {serial} viser til kurve {abs(ref)}, som ikke finnes.")
        pts = pts[::-1] if ref < 0 else pts
        if ring and _close(ring[-1], pts[0]):
            ring.extend(pts[1:])
        elif ring and _close(ring[-1], pts[-1]):  # drawn the other way round without a minus sign
            ring.extend(pts[-2::-1])
        else:
            ring.extend(pts)
    if len(ring) < 3:
        raise InvalidData(f"SOSI-filen: flate {serial} har for få punkter til en flate.")
    if not _close(ring[0], ring[-1]):
        ring.append(ring[0])
    return ring


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


def _flate(obj: _Object, curves: dict[int, list[tuple[float, float]]]) -> BaseGeometry:
    """The polygon of a FLATE from its REF list: outer boundary, then parenthesised holes."""
    outer: list[int] = []
    holes: list[list[int]] = []
    target = outer
    for token in obj.refs:
        if token == "(":
            holes.append([])
            target = holes[-1]
        elif token == ")":
            target = outer
        else:
            target.append(int(token[1:]))
    if not outer:
        raise InvalidData(f"SOSI-filen: flate {obj.serial} mangler REF til avgrensningen.")
    shell = _ring(outer, curves, obj.serial)
    interiors = [_ring(h, curves, obj.serial) for h in holes if h]
    polygon = Polygon(shell, interiors)
    if not polygon.is_valid:  # e.g. a boundary listed out of order: rebuild from the lines
        lines = [LineString(curves[abs(r)]) for r in outer]
        rebuilt = shapely.unary_union(list(shapely.polygonize(lines).geoms)) if lines else polygon
        holes_geom = [Polygon(h) for h in interiors]
        polygon = rebuilt.difference(shapely.unary_union(holes_geom)) if holes_geom else rebuilt
    return polygon


def parse_sosi(data: bytes, default_epsg: int | None = None) -> list[RawFeature]:
    """Features of a SOSI text file, in EPSG:25833 (``default_epsg`` when the head has no KOORDSYS)."""
    objects = _objects(_decode(data))
    head = _head(objects, default_epsg)
    curves = {o.serial: _curve_points(o, head) for o in objects if o.kind in CURVES and o.serial is not None and o.coords}
    out: list[RawFeature] = []
    for obj in objects:
        if obj.kind in ("HODE",):
            continue
        ftype = str(obj.attrs.get("OBJTYPE") or obj.kind.title())
        geom: BaseGeometry | None
        if obj.kind == "FLATE":
            geom = _flate(obj, curves)
        elif obj.kind in CURVES:
            pts = curves.get(obj.serial) if obj.serial is not None else None
            geom = LineString(pts) if pts and len(pts) >= 2 else None
        elif obj.kind in POINTS and obj.coords:
            pts = _xy(obj, head)
            geom = Point(pts[0]) if len(pts) == 1 else shapely.MultiPoint(pts)
        else:
            geom = None
        attrs = {k: v for k, v in obj.attrs.items() if k != "OBJTYPE"}
        gid = f"sosi.{obj.kind.lower()}.{obj.serial}" if obj.serial is not None else None
        out.append(RawFeature(ftype, attrs, to_25833(geom, head.epsg) if geom is not None else None, gid, {}, head.epsg))
    return out
