"""Differanse: kommuneplan housing zones minus approved reguleringsplaner.

Pure computation on GeoDataFrames in EPSG:25833 (no I/O); :mod:`tomte.analysis` stores the
result. The rules are issue 4's and every set and number comes from
:class:`tomte.config.DifferanseSettings`:

1. housing zones: ``arealformål`` in the sure set, or the possible set (flag ``mulig_bolig``);
   PBL-1985 ``arealbruk`` likewise; ``arealbruksstatus`` in the candidate statuses;
2. approved plans (``planstatus`` 3, 6, 7, 8) on ``vertikalnivå`` 2 or with no level are
   subtracted; tunnels, bridges and sea-bottom levels never subtract;
3. plans in progress (1, 2) flag a lot ``plan_under_arbeid``; 4 and 5 are ignored;
4. per zone: repair without losing area, subtract the union of the approved plans whose
   interiors meet it, split into single polygons, keep parts of at least ``min_area_m2``.

Why it is fast (see ``make bench``): an STRtree finds the plans that meet each zone and a
DE-9IM test drops plans that only share a boundary; zones no plan meets are kept without any
overlay; plans are clipped to the zone's bounding box (cheap) before their union; zones with a
single plan are differenced in one vectorised GEOS call. The seed algorithm (one national union,
then a difference per zone) and ``geopandas.overlay`` are timed against it in the same run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from tomte import codes
from tomte.config import DifferanseSettings
from tomte.store import SRID

INTERIORS_MEET = "T********"


def repair(geom: BaseGeometry | None) -> tuple[BaseGeometry, bool]:
    """Make a polygonal geometry valid without losing area (never ``buffer(0)``).

    A bowtie becomes its two lobes; collapsed lines and points are dropped.
    Returns the geometry and whether it was repaired.
    """
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon(), False
    if geom.is_valid:
        return geom, False
    fixed = shapely.make_valid(geom)
    polys = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
    parts = [q for p in polys for q in shapely.get_parts(p)]
    return (shapely.MultiPolygon(parts) if parts else shapely.MultiPolygon()), True


def select_zones(zones: gpd.GeoDataFrame, settings: DifferanseSettings) -> gpd.GeoDataFrame:
    """The candidate housing zones, with a boolean column ``mulig_bolig``."""
    if zones.empty:
        out = zones.copy()
        out["mulig_bolig"] = []
        return out
    formal = zones["arealformal"].map(codes.code)
    status = zones["arealbruksstatus"].map(codes.code)
    is_1985 = zones["regime"].astype(str).eq("1985")
    sure = np.where(is_1985, formal.isin(settings.housing_sure_1985), formal.isin(settings.sure_codes()))
    possible = np.where(is_1985, formal.isin(settings.housing_possible_1985), formal.isin(settings.housing_possible))
    # PBL-1985 arealbruk has no arealbruksstatus in many datasets; missing status passes there.
    status_ok = status.isin(settings.candidate_statuses()) | (is_1985 & status.isna())
    mask = (sure | possible) & status_ok
    out = zones[mask].copy()
    out["mulig_bolig"] = ~np.asarray(sure)[np.asarray(mask)]
    return out


def select_plans(plans: gpd.GeoDataFrame, settings: DifferanseSettings) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(approved plans that subtract, plans in progress)."""
    if plans.empty:
        return plans.copy(), plans.copy()
    status = plans["planstatus"].map(codes.code)
    level = plans["vertikalniva"].map(codes.code)
    level_ok = level.isna() | level.isin(settings.subtracting_levels)
    approved = plans[status.isin(settings.approved_planstatus) & level_ok]
    in_progress = plans[status.isin(settings.in_progress_planstatus)]
    return approved, in_progress


def meeting_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) where the interiors of ``left[i]`` and ``right[j]`` meet."""
    if len(left) == 0 or len(right) == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    tree = shapely.STRtree(right)
    li, ri = tree.query(left, predicate="intersects")
    keep = shapely.relate_pattern(left[li], right[ri], INTERIORS_MEET)
    return li[keep], ri[keep]


def subtract(zone_geoms: np.ndarray, cut_geoms: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``zone_geoms[i]`` minus the union of the ``cut_geoms`` that meet it.

    Returns the differences and, per zone, the indices of the cuts that met it.
    """
    zi, ci = meeting_pairs(zone_geoms, cut_geoms)
    result = zone_geoms.copy()
    order = np.argsort(zi, kind="stable")
    zi, ci = zi[order], ci[order]
    starts = np.flatnonzero(np.r_[True, zi[1:] != zi[:-1]]) if len(zi) else np.empty(0, dtype=int)
    groups = np.split(ci, starts[1:]) if len(zi) else []
    hit_zones = zi[starts] if len(zi) else np.empty(0, dtype=int)
    cuts_per_zone: list[np.ndarray] = [np.empty(0, dtype=int)] * len(zone_geoms)
    single_z, single_c, multi = [], [], []
    for z, group in zip(hit_zones, groups, strict=True):
        cuts_per_zone[z] = group
        if len(group) == 1:
            single_z.append(z)
            single_c.append(group[0])
        else:
            multi.append((z, group))
    if single_z:
        result[single_z] = shapely.difference(zone_geoms[single_z], cut_geoms[single_c])
    for z, group in multi:
        zone = zone_geoms[z]
        clipped = shapely.clip_by_rect(cut_geoms[group], *zone.bounds)
        result[z] = shapely.difference(zone, shapely.union_all(clipped))
    return result, cuts_per_zone


def lot_id(kommunenummer: str, zone_key: str, geom: BaseGeometry) -> str:
    """A stable id: the same zone and the same geometry give the same id on every run."""
    digest = hashlib.sha1(zone_key.encode())
    digest.update(shapely.to_wkb(shapely.normalize(shapely.set_precision(geom, 0.01))))
    return f"{kommunenummer}-{digest.hexdigest()[:10]}"


@dataclass
class LotFrame:
    """Result of :func:`compute_lots`: the lots and what was used."""

    lots: gpd.GeoDataFrame
    zones_considered: int = 0
    approved_plans: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


LOT_COLUMNS = ["lot_id", "kommunenummer", "zone_key", "arealformal", "arealbruksstatus", "regime",
               "area_m2", "flags", "explanation"]


def _plan_ref(plans: gpd.GeoDataFrame, idx: int) -> dict[str, Any]:
    row = plans.iloc[idx]
    return {"planid": row.get("planid"), "plannavn": row.get("plannavn"), "planstatus": codes.code(row.get("planstatus")),
            "ikrafttredelsesdato": row.get("ikrafttredelsesdato"), "area_key": row.get("area_key")}


def compute_lots(
    zones: gpd.GeoDataFrame,
    plans: gpd.GeoDataFrame,
    kommunenummer: str,
    settings: DifferanseSettings,
    has_plan_source: bool = True,
) -> LotFrame:
    """Compute the lots of one kommune from its zones and plans (both EPSG:25833)."""
    candidates = select_zones(zones, settings)
    approved, in_progress = select_plans(plans, settings)
    repaired = [repair(g) for g in candidates.geometry]
    zone_geoms = np.array([g for g, _ in repaired], dtype=object)
    was_repaired = np.array([r for _, r in repaired], dtype=bool) | candidates.get("repaired", 0).fillna(0).astype(bool).to_numpy()
    plan_geoms = np.array([repair(g)[0] for g in approved.geometry], dtype=object)
    diffs, cuts = subtract(zone_geoms, plan_geoms)
    zone_areas = shapely.area(zone_geoms)
    diff_areas = shapely.area(diffs)

    rows: list[dict[str, Any]] = []
    geoms: list[BaseGeometry] = []
    for i, zone in enumerate(candidates.itertuples(index=False)):
        zarea = float(zone_areas[i])
        if zarea <= 0:
            continue
        share_cut = max(0.0, 1.0 - float(diff_areas[i]) / zarea)
        if settings.mode == "whole_zone":
            parts = [zone_geoms[i]] if share_cut < settings.whole_zone_max_covered else []
            parts = [shapely.MultiPolygon(list(shapely.get_parts(p))) if p.geom_type == "Polygon" else p for p in parts]
        else:
            parts = [p for p in shapely.get_parts(diffs[i]) if p.geom_type == "Polygon"]
        base_flags = []
        if zone.mulig_bolig:
            base_flags.append("mulig_bolig")
        if was_repaired[i]:
            base_flags.append("geometri_reparert")
        if not has_plan_source:
            base_flags.append("mangler_reguleringsplaner")
        cut_refs = [_plan_ref(approved, int(j)) for j in cuts[i]]
        for part in parts:
            area = float(part.area)
            if area < settings.min_area_m2:
                continue
            regime = str(zone.regime or "2008")
            rows.append({
                "lot_id": lot_id(kommunenummer, str(zone.zone_key), part),
                "kommunenummer": kommunenummer, "zone_key": zone.zone_key,
                "arealformal": codes.code(zone.arealformal), "arealbruksstatus": codes.code(zone.arealbruksstatus),
                "regime": regime, "area_m2": round(area, 1), "flags": list(base_flags),
                "explanation": {
                    "zone": {"key": zone.zone_key, "arealformal": codes.code(zone.arealformal),
                             "navn": codes.arealformal_name(codes.code(zone.arealformal), regime),
                             "arealbruksstatus": codes.code(zone.arealbruksstatus), "planid": zone.planid,
                             "omradenavn": zone.omradenavn, "area_m2": round(zarea, 1)},
                    "cut_by": cut_refs, "share_cut": round(share_cut, 4), "mode": settings.mode,
                    "in_progress": [],
                },
            })
            geoms.append(part)

    lots = gpd.GeoDataFrame(rows, columns=LOT_COLUMNS, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
    if len(lots) and len(in_progress):
        ip_geoms = np.array([repair(g)[0] for g in in_progress.geometry], dtype=object)
        li, pi = meeting_pairs(lots.geometry.to_numpy(), ip_geoms)
        for lot_idx, plan_idx in zip(li, pi, strict=True):
            lots.at[lots.index[lot_idx], "explanation"]["in_progress"].append(_plan_ref(in_progress, int(plan_idx)))
            flags = lots.at[lots.index[lot_idx], "flags"]
            if "plan_under_arbeid" not in flags:
                flags.append("plan_under_arbeid")
    return LotFrame(lots=lots, zones_considered=len(candidates), approved_plans=len(approved))


def explain(explanation: dict[str, Any], flags: list[str] | str, area_m2: float | None = None) -> str:
    """The chain that made a lot, in Norwegian words."""
    if isinstance(flags, str):
        flags = [f for f in flags.split(",") if f]
    if "mangler_kommuneplan" in flags:
        return "Kommunen mangler kommuneplandata i tomte: hele kommunen er listet for manuell vurdering."
    zone = explanation.get("zone", {})
    status = codes.AREALBRUKSSTATUS.get(str(zone.get("arealbruksstatus")), "ukjent status").lower()
    text = f"{status.capitalize()} {zone.get('navn', 'formål').lower()} i kommuneplanen (sone {zone.get('key')}, kode {zone.get('arealformal')})"
    share = explanation.get("share_cut", 0.0)
    cut = explanation.get("cut_by", [])
    if cut:
        plans = ", ".join(_plan_words(p) for p in cut[:4]) + (f" og {len(cut) - 4} til" if len(cut) > 4 else "")
        noun = "plan" if len(cut) == 1 else "planene"
        text += f"; {round(share * 100)} % av sonen er regulert av {noun} {plans}"
    else:
        text += "; ingen vedtatt reguleringsplan dekker sonen"
    if area_m2 is not None:
        text += f"; gjenstår {area_m2 / 1000:.1f} daa".replace(".", ",")
    text += "."
    notes = {
        "mulig_bolig": "Formålet tillater kanskje bolig (sjekk bestemmelsene).",
        "geometri_reparert": "Geometrien var ugyldig og er reparert uten arealtap.",
        "mangler_reguleringsplaner": "Ingen reguleringsplandata for kommunen: ingenting er trukket fra.",
    }
    for flag in flags:
        if flag in notes:
            text += " " + notes[flag]
    ip = explanation.get("in_progress", [])
    if ip:
        text += " Plan under arbeid: " + ", ".join(_plan_words(p) for p in ip[:3]) + "."
    age = explanation.get("data_age_days")
    if age is not None:
        text += f" Nyeste plandata er {age} dager gamle."
    return text


def _plan_words(plan: dict[str, Any]) -> str:
    status = codes.PLANSTATUS_SHORT.get(str(plan.get("planstatus")), "ukjent status")
    year = str(plan.get("ikrafttredelsesdato") or "")[:4]
    return f"{plan.get('planid')} ({status}{' ' + year if year.isdigit() else ''})"
