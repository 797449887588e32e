"""Plan files a kommune sends: SOSI text, SOSI-GML 3.2, GeoJSON and GeoPackage, detected by content.

Every reader runs behind :func:`guarded`: whatever a hostile or broken file does to a parser
(nesting thousands deep, letters for coordinates, a two-point ring, a corrupt GeoPackage) ends
in one :class:`~tomte.errors.InvalidData` sentence that names the file, never a traceback.

Each reader returns :class:`~tomte.sources.gml.RawFeature` objects in EPSG:25833, which
:func:`tomte.sources.normalize.to_plan_frames` turns into plan frames. The same readers parse
service responses (WFS GML, OGC API GeoJSON), so a file and a service give the same result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry import shape

from tomte.errors import BadResponse, InvalidData, TomteError
from tomte.geom import parse_srs, to_25833
from tomte.sources.gml import RawFeature, parse_gml
from tomte.sources.sosi import parse_sosi

T = TypeVar("T")
FORMATS_TEXT = "SOSI (tekst), SOSI-GML 3.2, GeoJSON og GeoPackage"


def detect_format(head: bytes) -> str:
    """``gpkg``, ``geojson``, ``gml`` or ``sosi`` from the first bytes of a file."""
    if head.startswith(b"SQLite format 3"):
        return "gpkg"
    text = head.lstrip(b"\xef\xbb\xbf \r\n\t")
    if text.startswith((b"{", b"[")):
        return "geojson"
    if text.startswith(b"<"):
        return "gml"
    if re.match(rb"(?:![^\n]*\n|\s)*\.HODE", text):
        return "sosi"
    raise InvalidData(f"Ukjent filformat; tomte leser {FORMATS_TEXT}.")


def guarded(what: str, read: Callable[[], T], error: type[TomteError] = InvalidData) -> T:
    """Run a reader; any failure it was not written for becomes one sentence about ``what``."""
    try:
        return read()
    except TomteError:
        raise
    except RecursionError as exc:
        raise error(f"{what} er nestet for dypt til å leses (ødelagt eller fiendtlig fil).", detail=repr(exc)) from exc
    except MemoryError as exc:
        raise error(f"{what} er for stor til å leses i minnet.", detail=repr(exc)) from exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ShapelyError, GEOSException,
            DataSourceError, DataLayerError, OverflowError, UnicodeError) as exc:
        raise error(f"{what} kunne ikke leses: {_plain(exc)}.", detail=repr(exc)) from exc


def _plain(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160].rstrip(".")
    return text or type(exc).__name__


def _flatten(props: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in props.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if "xlink:href" in value or "href" in value:
                continue  # links are handled by the caller
            inner = list(value.items())
            if len(inner) == 1 and str(inner[0][0])[:1].isupper() and isinstance(inner[0][1], dict):
                out.update(_flatten(inner[0][1], name))  # SOSI type wrapper
            else:
                out.update(_flatten(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.update(_flatten(value[0], name))
        elif isinstance(value, list):
            out[name] = value[0] if len(value) == 1 else ",".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def _links(props: dict[str, Any]) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for key, value in props.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, dict) and ("xlink:href" in v or "href" in v):
                links.setdefault(key, []).append(str(v.get("xlink:href") or v.get("href")).split("#")[-1])
    return links


def geojson_epsg(doc: dict[str, Any], crs_override: str | None = None) -> int:
    """The CRS of a GeoJSON document: override, ``crs`` member, DiBK ``_source_meta``, else 4326."""
    if crs_override:
        return parse_srs(crs_override)[0] or 4326
    crs = doc.get("crs")
    if isinstance(crs, dict):
        name = (crs.get("properties") or {}).get("name")
        if name:
            return parse_srs(name)[0] or 4326
    meta = doc.get("_source_meta", {})
    if isinstance(meta, dict) and isinstance(meta.get("epsg"), dict) and meta["epsg"].get("code"):
        return parse_srs(meta["epsg"]["code"])[0] or 4326
    return 4326


def parse_geojson(data: bytes | dict[str, Any], crs_override: str | None = None) -> list[RawFeature]:
    """Features of a GeoJSON FeatureCollection (nested SOSI properties are flattened)."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadResponse(f"GeoJSON-dokumentet er ugyldig eller avkuttet: {exc}.", detail=str(exc)) from exc
        except RecursionError as exc:
            raise InvalidData("GeoJSON-dokumentet er nestet for dypt til å leses (ødelagt eller fiendtlig fil).") from exc
    if not isinstance(doc, dict) or doc.get("type") not in {"FeatureCollection", "Feature"}:
        raise InvalidData("JSON-dokumentet er ikke en GeoJSON FeatureCollection.")
    features = doc.get("features", [doc] if doc.get("type") == "Feature" else [])
    if not isinstance(features, list):
        raise InvalidData(f"GeoJSON-dokumentets «features» skal være en liste, ikke {type(features).__name__}.")
    epsg = geojson_epsg(doc, crs_override)
    out = []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise InvalidData(f"Objekt nr. {i + 1} i GeoJSON-dokumentet er ikke et Feature-objekt.")
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidData(f"Objekt nr. {i + 1} i GeoJSON-dokumentet har «properties» som ikke er et objekt.")
        geom = _shape(feat.get("geometry"), i) if feat.get("geometry") else None
        if geom is not None and epsg in (4326, 4258) and not geom.is_empty:
            minx, miny, maxx, maxy = geom.bounds
            if max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
                raise InvalidData("GeoJSON uten «crs» skal være i lengde/bredde (RFC 7946), men koordinatene er i meter; oppgi koordinatsystemet (f.eks. --crs EPSG:25832).")
        ftype = str(props.get("objekttypenavn") or props.get("name") or feat.get("featureType") or "")
        fid = props.get("id") or feat.get("id")
        geom25833 = to_25833(geom, epsg) if geom is not None else None
        out.append(RawFeature(ftype, _flatten({k: v for k, v in props.items() if k not in {"id"}}), geom25833, str(fid) if fid else None, _links(props), epsg))
    return out


def _shape(geometry: Any, i: int) -> Any:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in GEOJSON_TYPES:
        raise InvalidData(f"Objekt nr. {i + 1} i GeoJSON-dokumentet har ukjent geometritype «{str(kind)[:40]}».")
    geom = shape(geometry)
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InvalidData(f"Objekt nr. {i + 1} i GeoJSON-dokumentet har koordinater som ikke er endelige tall.")
    return geom


GEOJSON_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}


def parse_gpkg(path: Path) -> list[RawFeature]:
    """Features of every polygon layer of a GeoPackage; the layer name is the feature type."""
    try:
        layers = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidData(f"{path.name} er ikke en gyldig GeoPackage-fil (ødelagt, eller en annen SQLite-fil).", detail=str(exc)) from exc
    if not len(layers):
        raise InvalidData(f"{path.name} er ikke en GeoPackage med kartlag (ingen lag funnet).")
    out = []
    for layer, geom_type in layers:
        if geom_type is None:
            continue
        frame = pyogrio.read_dataframe(path, layer=layer)
        if frame.crs is None:
            raise InvalidData(f"Laget {layer} i GeoPackage-filen mangler koordinatsystem.")
        epsg = frame.crs.to_epsg() or 25833
        frame = frame.to_crs(25833) if epsg != 25833 else frame
        cols = [c for c in frame.columns if c != "geometry"]
        for row, geom in zip(frame[cols].to_dict("records"), frame.geometry, strict=True):
            ftype = str(row.get("objekttypenavn") or row.get("OBJTYPE") or layer)
            out.append(RawFeature(ftype, row, geom if geom is not None and not shapely.is_empty(geom) else None,
                                  None, {}, epsg))
    return out


def read_plan_file(path: str | Path, crs_override: str | None = None) -> list[RawFeature]:
    """Read any supported plan file into raw features (EPSG:25833); every failure is one sentence."""
    file = Path(path)
    if not file.is_file():
        raise InvalidData(f"Filen {file} finnes ikke.")
    try:
        with open(file, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InvalidData(f"Filen {file} kan ikke leses: {exc.strerror}.") from exc
    fmt = detect_format(head)
    what = f"Filen {file.name}"
    try:
        if fmt == "gpkg":
            return guarded(what, lambda: parse_gpkg(file))
        data = file.read_bytes()
        if fmt == "geojson":
            return guarded(what, lambda: parse_geojson(data, crs_override))
        if fmt == "sosi":
            epsg = parse_srs(crs_override)[0] if crs_override else None
            return guarded(what, lambda: parse_sosi(data, epsg))
        return guarded(what, lambda: parse_gml(data, default_srs=crs_override))
    except TomteError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith(what) else f"{what}: {message}", detail=exc.detail) from exc
