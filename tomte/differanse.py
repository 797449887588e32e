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

Why it is fast (see ``make bench``): an STRtree finds the plans that meet each zone; zones no
plan meets are kept without any overlay; zones a single plan covers become empty without one;
the rest subtract their plans in turn *by rank* — one vectorised GEOS call per rank across all
zones, split over one thread per CPU (GEOS releases the GIL) — so a kommune needs about as many
calls as the most plans meeting one zone. The seed algorithm (one union of every plan, then a
difference per zone) and ``geopandas.overlay`` are timed against it in the same run.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
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
    formal = codes.code_series(zones["arealformal"])
    status = codes.code_series(zones["arealbruksstatus"])
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
    status = codes.code_series(plans["planstatus"])
    level = codes.code_series(plans["vertikalniva"])
    level_ok = level.isna() | level.isin(settings.subtracting_levels)
    approved = plans[status.isin(settings.approved_planstatus) & level_ok]
    in_progress = plans[status.isin(settings.in_progress_planstatus)]
    return approved, in_progress


def _threads(n_items: int) -> int:
    """Threads for GEOS work: one per CPU (``TOMTE_THREADS`` overrides), fewer for small inputs."""
    cpus = int(os.environ.get("TOMTE_THREADS") or os.cpu_count() or 1)
    return max(1, min(cpus, n_items // 500 or 1))


def parallel(fn: Any, *arrays: np.ndarray) -> np.ndarray:
    """Apply a vectorised shapely function in one thread per CPU (GEOS releases the GIL)."""
    n = _threads(len(arrays[0]))
    if n == 1:
        return np.asarray(fn(*arrays))
    bounds = np.linspace(0, len(arrays[0]), n + 1).astype(int)
    with ThreadPoolExecutor(n) as pool:
        parts = list(pool.map(lambda k: fn(*(a[bounds[k]:bounds[k + 1]] for a in arrays)), range(n)))
    return np.concatenate(parts)


def meeting_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) where the interiors of ``left[i]`` and ``right[j]`` meet.

    Bounding boxes first (STRtree), then one DE-9IM test per candidate pair: a plan that only
    shares a boundary with a zone neither cuts it nor is listed in its explanation.
    """
    if len(left) == 0 or len(right) == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    li, ri = shapely.STRtree(right).query(left)
    keep = parallel(lambda a, b: shapely.relate_pattern(a, b, INTERIORS_MEET), left[li], right[ri]).astype(bool)
    return li[keep], ri[keep]


MIN_CUT_M2 = 0.01  # a plan that removes less than this has not cut the zone


def subtract(zone_geoms: np.ndarray, cut_geoms: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``zone_geoms[i]`` minus the union of the ``cut_geoms`` that meet it.

    Returns the differences and, per zone, the indices of the cuts whose interiors meet it.

    The plans meeting each zone are subtracted in turn, *by rank*: step k subtracts every zone's
    k-th plan in one vectorised GEOS call spread over the CPUs (GEOS releases the GIL), so a
    kommune needs about as many calls as the most plans meeting one zone, not one per zone.
    Zones a single plan covers become empty without an overlay. A plan that removes area has cut
    the zone; only pairs that removed nothing (touching, or inside an earlier plan) get the
    DE-9IM test for meeting interiors.
    """
    result = zone_geoms.copy()
    cuts_per_zone: list[np.ndarray] = [np.empty(0, dtype=int)] * len(zone_geoms)
    if not len(zone_geoms) or not len(cut_geoms):
        return result, cuts_per_zone
    zi, ci = shapely.STRtree(cut_geoms).query(zone_geoms, predicate="intersects")
    if not len(zi):
        return result, cuts_per_zone
    order = np.argsort(zi, kind="stable")
    zi, ci = zi[order], ci[order]
    starts = np.flatnonzero(np.r_[True, zi[1:] != zi[:-1]])
    rank = np.arange(len(zi)) - np.repeat(starts, np.diff(np.r_[starts, len(zi)]))
    covering = parallel(shapely.covers, cut_geoms[ci], zone_geoms[zi]).astype(bool)
    covered = np.zeros(len(zone_geoms), dtype=bool)
    covered[zi[covering]] = True
    removed = np.zeros(len(zi), dtype=bool)
    for r in range(int(rank.max()) + 1):
        sel = np.flatnonzero((rank == r) & ~covered[zi])
        if not len(sel):
            continue
        zs = zi[sel]
        before = shapely.area(result[zs])
        result[zs] = parallel(shapely.difference, result[zs], cut_geoms[ci[sel]])
        removed[sel] = before - shapely.area(result[zs]) > MIN_CUT_M2
    result[covered] = shapely.MultiPolygon()
    unsure = np.flatnonzero(~removed)
    if len(unsure):
        removed[unsure] = parallel(lambda a, b: shapely.relate_pattern(a, b, INTERIORS_MEET),
                                   zone_geoms[zi[unsure]], cut_geoms[ci[unsure]]).astype(bool)
    met_z, met_c = zi[removed], ci[removed]
    bounds = np.flatnonzero(np.r_[True, met_z[1:] != met_z[:-1]]) if len(met_z) else np.empty(0, dtype=int)
    for z, group in zip(met_z[bounds].tolist(), np.split(met_c, bounds[1:]) if len(met_z) else [], strict=True):
        cuts_per_zone[z] = group
    return result, cuts_per_zone


def lot_ids(kommunenummer: str, zone_keys: list[str], geoms: np.ndarray) -> list[str]:
    """Stable lot ids: from the zone key and the lot's area, bounds and centroid rounded to centimetres.

    GEOS is deterministic, so the same data give the same geometry and the same id; two parts
    of one zone never share all of area, bounds and centroid.
    """
    if not len(geoms):
        return []
    centroids = shapely.centroid(geoms)
    numbers = np.column_stack([shapely.area(geoms), shapely.bounds(geoms), shapely.get_x(centroids), shapely.get_y(centroids)])
    rounded = np.nan_to_num(np.round(numbers, 2))
    out = []
    for key, row in zip(zone_keys, rounded, strict=True):
        digest = hashlib.sha1(key.encode() + row.tobytes()).hexdigest()
        out.append(f"{kommunenummer}-{digest[:10]}")
    return out


def repair_many(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repair` for an array; only invalid geometries take the slow path."""
    out = np.array(geoms, dtype=object)
    invalid = ~parallel(shapely.is_valid, out).astype(bool) & ~shapely.is_missing(out)
    for i in np.flatnonzero(invalid):
        out[i] = repair(out[i])[0]
    return out, invalid


@dataclass
class LotFrame:
    """Result of :func:`compute_lots`: the lots and what was used."""

    lots: gpd.GeoDataFrame
    zones_considered: int = 0
    approved_plans: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


LOT_COLUMNS = ["lot_id", "kommunenummer", "zone_key", "arealformal", "arealbruksstatus", "regime",
               "area_m2", "flags", "explanation"]


def _plan_refs(plans: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """What the explanation says about each plan, by position."""
    cols = ["planid", "plannavn", "planstatus", "ikrafttredelsesdato", "area_key"]
    frame = plans.reindex(columns=cols).astype(object).where(plans.reindex(columns=cols).notna(), None)
    refs = frame.to_dict("records")
    for ref in refs:
        ref["planstatus"] = codes.code(ref["planstatus"])
    return refs


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
    zone_geoms, fixed = repair_many(candidates.geometry.to_numpy())
    was_repaired = fixed | candidates["repaired"].fillna(0).astype(bool).to_numpy()
    plan_geoms, _ = repair_many(approved.geometry.to_numpy())
    plan_refs = _plan_refs(approved)
    diffs, cuts = subtract(zone_geoms, plan_geoms)
    zone_areas = shapely.area(zone_geoms)
    share_cut = np.clip(1.0 - shapely.area(diffs) / np.where(zone_areas > 0, zone_areas, 1.0), 0.0, 1.0)
    if settings.mode == "whole_zone":
        keep_zone = (share_cut < settings.whole_zone_max_covered) & (zone_areas > 0)
        parts, owner = zone_geoms[keep_zone], np.flatnonzero(keep_zone)
    else:
        parts, owner = shapely.get_parts(diffs, return_index=True)
        polygonal = shapely.get_type_id(parts) == 3
        parts, owner = parts[polygonal], owner[polygonal]
    part_areas = shapely.area(parts)
    kept = (part_areas >= settings.min_area_m2) & (part_areas > 0)
    parts, owner, part_areas = parts[kept], owner[kept], part_areas[kept]

    # Per-zone values computed once (a zone often yields several lots).
    def column(name: str) -> list[Any]:
        return [None if v is None or v != v else v for v in candidates[name].astype(object).tolist()]

    keys = [str(k) for k in column("zone_key")]
    formals = codes.code_series(candidates["arealformal"]).tolist()
    statuses = codes.code_series(candidates["arealbruksstatus"]).tolist()
    regimes = [str(v or "2008") for v in column("regime")]
    planids, names = column("planid"), column("omradenavn")
    mulig = candidates["mulig_bolig"].to_numpy(bool)
    used = np.unique(owner)
    zone_info = {int(z): {"key": keys[z], "arealformal": formals[z], "navn": codes.arealformal_name(formals[z], regimes[z]),
                          "arealbruksstatus": statuses[z], "planid": planids[z], "omradenavn": names[z],
                          "area_m2": round(float(zone_areas[z]), 1)} for z in used.tolist()}
    zone_flags = {int(z): [f for f, on in (("mulig_bolig", mulig[z]), ("geometri_reparert", was_repaired[z]),
                                           ("mangler_reguleringsplaner", not has_plan_source)) if on] for z in used.tolist()}
    owners = owner.tolist()
    ids = lot_ids(kommunenummer, [keys[z] for z in owners], parts)
    rows: list[dict[str, Any]] = []
    for lid, z, area in zip(ids, owners, part_areas.tolist(), strict=True):
        rows.append({
            "lot_id": lid, "kommunenummer": kommunenummer, "zone_key": keys[z], "arealformal": formals[z],
            "arealbruksstatus": statuses[z], "regime": regimes[z], "area_m2": round(area, 1), "flags": list(zone_flags[z]),
            "explanation": {"zone": zone_info[z], "cut_by": [plan_refs[j] for j in cuts[z]],
                            "share_cut": round(float(share_cut[z]), 4), "mode": settings.mode, "in_progress": []},
        })
    geoms = list(parts)

    lots = gpd.GeoDataFrame(rows, columns=LOT_COLUMNS, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
    if len(lots) and len(in_progress):
        ip_geoms, _ = repair_many(in_progress.geometry.to_numpy())
        ip_refs = _plan_refs(in_progress)
        li, pi = meeting_pairs(lots.geometry.to_numpy(), ip_geoms)
        for lot_idx, plan_idx in zip(li, pi, strict=True):
            lots.at[lots.index[lot_idx], "explanation"]["in_progress"].append(ip_refs[plan_idx])
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
