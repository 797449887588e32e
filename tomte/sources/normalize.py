"""Turn raw features (any spelling, any channel) into tomte's plan frames.

The same concept is spelled differently per channel (domain.md §1.1, REPORT §1): NAP JSON
``arealformål``, WMS/SLD ``arealformal``, ArcGIS exports ``KPAREALFORMAL``; nested
``arealplanId.planidentifikasjon`` or flat ``planidentifikasjon``/``PLANID``. Keys are
compared after folding case and æøå, on the full dotted path and on its last part.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import shapely

from tomte.codes import code
from tomte.differanse import repair
from tomte.plans import KP_COLUMNS, RP_COLUMNS, empty_frame
from tomte.sources.gml import RawFeature
from tomte.store import SRID

KP_TYPES = {"kparealformalomrade": "2008", "kparealbrukomrade": "1985"}
RP_TYPES = {"rpomrade"}
PLAN_TYPES = {"arealplan"}

ALIASES: dict[str, tuple[str, ...]] = {
    "arealformal": ("arealformal", "kparealformal", "arealformaal"),
    "arealbruk": ("arealbruk", "kparealbruk", "reguleringsformal", "regform"),
    "arealbruksstatus": ("arealbruksstatus", "arealst"),
    "planstatus": ("planstatus", "planstat"),
    "plantype": ("plantype",),
    "vertikalniva": ("vertikalniva", "vertniv"),
    "planid": ("arealplanid.planidentifikasjon", "nasjonalarealplanid.planidentifikasjon", "planidentifikasjon", "planid"),
    "plannavn": ("plannavn",),
    "link": ("link", "lenke", "planlenke"),
    "omradenavn": ("omradenavn", "feltnavn", "feltbetegnelse"),
    "beskrivelse": ("beskrivelse",),
    "utnyttingstype": ("utnytting.utnyttingstype", "utnyttingstype"),
    "utnyttingstall": ("utnytting.utnyttingstall", "utnyttingstall"),
    "ikrafttredelsesdato": ("ikrafttredelsesdato", "ikraft", "vedtakendeligplandato"),
    "oppdateringsdato": ("oppdateringsdato", "kopidata.kopidato", "kopidato"),
    "lokalid": ("identifikasjon.lokalid", "lokalid"),
    "objid": ("objid", "objectid", "fid"),
    "objekttype": ("objekttypenavn", "objtype", "objekttype", "name"),
    "kommunenummer": ("arealplanid.kommunenummer", "nasjonalarealplanid.administrativenhet.kommunenummer",
                      "kommunenummer", "komm"),
}


def _http_link(value: Any) -> str | None:
    """A plan register link when it is an http(s) URL (anything else is not shown as a link)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else None


def fold(key: str) -> str:
    """Lower-case, æ→ae, ø→o, å→a, and drop anything but letters, digits and dots."""
    key = key.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    return re.sub(r"[^a-z0-9.]", "", key)


class Attrs:
    """Case- and spelling-insensitive access to a feature's attributes."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.full: dict[str, Any] = {}
        self.last: dict[str, Any] = {}
        for key, value in attrs.items():
            folded = fold(key)
            self.full.setdefault(folded, value)
            self.last.setdefault(folded.rsplit(".", 1)[-1], value)

    def get(self, field: str) -> Any:
        for alias in ALIASES[field]:
            for table in (self.full, self.last):
                value = table.get(alias)
                if value is not None and value != "":
                    return value
        return None


def parse_date(value: Any) -> str | None:
    """ISO date from ``2023-05-31Z``, ISO timestamps, ``20190619`` or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value:
            return None
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).date().isoformat()
    text = str(value).strip()
    if re.fullmatch(r"-?\d{11,14}", text):
        return datetime.fromtimestamp(int(text) / 1000, UTC).date().isoformat()
    if re.fullmatch(r"\d{8}", text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = re.match(r"(\d{4}-\d{2}-\d{2})", text)
    return match.group(1) if match else None


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).replace(",", "."))
    except (TypeError, ValueError):
        return None  # e.g. NAP's leaked "[Ljava.lang.Double;@493a67bb"
    return number if number == number else None


def feature_kind(feature_type: str, attrs: Attrs) -> str:
    """``kp2008`` / ``kp1985`` / ``rp`` / ``arealplan`` / ``other`` for a feature."""
    name = fold(feature_type or "") or fold(str(attrs.get("objekttype") or ""))
    if name in KP_TYPES:
        return "kp" + KP_TYPES[name]
    if name in RP_TYPES:
        return "rp"
    if name in PLAN_TYPES:
        return "arealplan"
    return "other"


def _key(attrs: Attrs, feature: RawFeature, prefix: str) -> str:
    for value in (attrs.get("lokalid"), feature.gml_id, attrs.get("objid")):
        if value:
            return f"{prefix}:{value}"
    wkb = shapely.to_wkb(feature.geometry) if feature.geometry is not None else b""
    return f"{prefix}:h{hashlib.sha1(repr(sorted(feature.attrs.items())).encode() + wkb).hexdigest()[:12]}"


def to_plan_frames(features: Iterable[RawFeature], role_hint: str | None = None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, int]]:
    """(kommuneplan zones, reguleringsplan areas, counts) from raw features.

    Features of other types are ignored (counted under ``ignored``). Untyped features (flat
    GeoJSON/GPKG exports) are classified by ``role_hint`` and their attributes: with
    ``arealformål``/``arealbruk`` as kommuneplan zones, with ``planstatus`` as plan areas.
    """
    feats = list(features)
    plans_by_id: dict[str, Attrs] = {}
    plan_for_area: dict[str, Attrs] = {}
    for f in feats:
        attrs = Attrs(f.attrs)
        if feature_kind(f.feature_type, attrs) == "arealplan":
            if f.gml_id:
                plans_by_id[f.gml_id] = attrs
            for target in f.links.get("rpOmråde", []) + f.links.get("rpOmrade", []):
                plan_for_area[target] = attrs
    # A flat export (no feature types) where some features carry the code: the others are zones
    # (plans) without one, counted in the summary rather than dropped in silence.
    untyped = [Attrs(f.attrs) for f in feats if feature_kind(f.feature_type, Attrs(f.attrs)) == "other"]
    flat_kp = role_hint == "kommuneplan" and any(a.get("arealformal") or a.get("arealbruk") for a in untyped)
    flat_rp = role_hint == "reguleringsplan" and any(a.get("planstatus") for a in untyped)
    kp_rows, rp_rows, kp_geoms, rp_geoms = [], [], [], []
    counts = {"kp": 0, "rp": 0, "ignored": 0, "repaired": 0, "no_geometry": 0, "kp_no_code": 0, "rp_no_status": 0}
    for f in feats:
        attrs = Attrs(f.attrs)
        kind = feature_kind(f.feature_type, attrs)
        if kind == "other" and f.geometry is not None and f.geometry.geom_type in ("Polygon", "MultiPolygon"):
            if role_hint == "kommuneplan" and (attrs.get("arealformal") or attrs.get("arealbruk") or flat_kp):
                kind = "kp1985" if attrs.get("arealbruk") and not attrs.get("arealformal") else "kp2008"
            elif role_hint == "reguleringsplan" and (attrs.get("planstatus") or flat_rp) and not attrs.get("arealformal"):
                kind = "rp"
        if kind not in {"kp2008", "kp1985", "rp"}:
            counts["ignored"] += 1
            continue
        if f.geometry is None or f.geometry.is_empty or f.geometry.geom_type not in ("Polygon", "MultiPolygon"):
            counts["no_geometry"] += 1
            continue
        geom, repaired = repair(f.geometry)
        counts["repaired"] += int(repaired)
        if kind.startswith("kp"):
            regime = kind[2:]
            kp_rows.append({
                "zone_key": _key(attrs, f, "kp"), "feature_type": f.feature_type or "KpArealformålOmråde", "regime": regime,
                "arealformal": code(attrs.get("arealformal") if regime == "2008" else attrs.get("arealbruk") or attrs.get("arealformal")),
                "arealbruksstatus": code(attrs.get("arealbruksstatus")), "planid": code(attrs.get("planid")),
                "plannavn": attrs.get("plannavn"), "omradenavn": attrs.get("omradenavn"), "beskrivelse": attrs.get("beskrivelse"),
                "utnyttingstype": code(attrs.get("utnyttingstype")), "utnyttingstall": _number(attrs.get("utnyttingstall")),
                "oppdateringsdato": parse_date(attrs.get("oppdateringsdato")), "repaired": int(repaired),
            })
            kp_geoms.append(geom)
            counts["kp"] += 1
            counts["kp_no_code"] += kp_rows[-1]["arealformal"] is None
        else:
            plan = None
            for target in f.links.get("arealplan", []):
                plan = plans_by_id.get(target) or plan
            plan = plan or plan_for_area.get(f.gml_id or "")

            def pick(field: str, attrs: Attrs = attrs, plan: Attrs | None = plan) -> Any:
                value = attrs.get(field)
                return plan.get(field) if value is None and plan is not None else value

            rp_rows.append({
                "area_key": _key(attrs, f, "rp"), "planid": code(pick("planid")), "plannavn": pick("plannavn"),
                "planstatus": code(pick("planstatus")), "plantype": code(pick("plantype")),
                "vertikalniva": code(attrs.get("vertikalniva")),
                "ikrafttredelsesdato": parse_date(pick("ikrafttredelsesdato")),
                "oppdateringsdato": parse_date(pick("oppdateringsdato")), "repaired": int(repaired),
                "link": _http_link(pick("link")),
            })
            rp_geoms.append(geom)
            counts["rp"] += 1
            counts["rp_no_status"] += rp_rows[-1]["planstatus"] is None
    kp = gpd.GeoDataFrame(kp_rows, columns=KP_COLUMNS, geometry=gpd.GeoSeries(kp_geoms, crs=SRID), crs=SRID) if kp_rows else empty_frame(KP_COLUMNS)
    rp = gpd.GeoDataFrame(rp_rows, columns=RP_COLUMNS, geometry=gpd.GeoSeries(rp_geoms, crs=SRID), crs=SRID) if rp_rows else empty_frame(RP_COLUMNS)
    return kp, rp, counts


HENSYN_TYPES = ("faresone", "sikringsone", "stoysone", "bandleggingsone", "angitthensynsone", "infrastruktursone")
NAME_FIELDS = ("navn", "name", "hensynsonenavn", "omradenavn", "stedsnavn", "tekst")
CODE_FIELDS = ("grunnkretsnummer", "grunnkrets", "kode", "code", "fare", "stoy", "bandlegging", "sikring", "angitthensyn")


def layer_frame(features: Iterable[RawFeature], name_field: str | None = None, code_field: str | None = None) -> gpd.GeoDataFrame:
    """A context layer (constraints, infrastructure, grunnkretser): name, code and any geometry type."""
    rows, geoms = [], []
    for f in features:
        if f.geometry is None or f.geometry.is_empty:
            continue
        folded = {fold(k).rsplit(".", 1)[-1]: v for k, v in f.attrs.items()}
        name = f.attrs.get(name_field) if name_field else next((folded[k] for k in NAME_FIELDS if folded.get(k)), None)
        code_ = f.attrs.get(code_field) if code_field else next((folded[k] for k in CODE_FIELDS if folded.get(k)), None)
        geom = repair(f.geometry)[0] if f.geometry.geom_type.endswith("Polygon") else f.geometry
        rows.append({"name": None if name is None else str(name), "code": code(code_), "value": None})
        geoms.append(geom)
    return gpd.GeoDataFrame(rows, columns=["name", "code", "value"], geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)


def hensyn_frames(features: Iterable[RawFeature]) -> dict[str, gpd.GeoDataFrame]:
    """Hensynssoner in plan data (KpFareSone, RpStøySone, …) by feature type: they constrain building."""
    groups: dict[str, list[RawFeature]] = {}
    for f in features:
        name = fold(f.feature_type or "")
        if name[:2] in ("kp", "rp") and name[2:] in HENSYN_TYPES:
            groups.setdefault(f.feature_type, []).append(f)
    return {ftype: layer_frame(feats) for ftype, feats in groups.items()}
