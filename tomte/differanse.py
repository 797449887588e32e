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

Why it is fast (see ``make bench``): an STRtree gives the zone–plan pairs whose boxes meet and
an exact test on all CPUs keeps those that intersect; zones no plan meets are kept without an
overlay and zones one plan covers become empty without one. The rest subtract their plans in
turn *by rank*, biggest box overlap first — one vectorised GEOS call per rank for a whole block
of zones — and from the second plan on, a plan that no longer meets what is left costs only a
predicate. With several CPUs the zones are cut into blocks of about equal work, one per thread
(GEOS releases the GIL), and the calling thread turns finished blocks into rows meanwhile. The
seed algorithm (one union of every plan, then a difference per zone) and ``geopandas.overlay``
are timed against it in the same run.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from tomte import codes
from tomte.config import DifferanseSettings
from tomte.store import SRID


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


_local = threading.local()


def _threads(n_items: int) -> int:
    """Threads for GEOS work: one per CPU (``TOMTE_THREADS`` overrides), fewer for small inputs.

    One inside a block of :func:`compute_lots`, which already runs one block per CPU.
    """
    if getattr(_local, "serial", False):
        return 1
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

    Intersecting polygons whose interiors do not meet only touch: a plan that only shares a
    boundary with a zone neither cuts it nor is listed in its explanation.
    """
    li, ri = intersecting_pairs(left, right)
    keep = ~parallel(shapely.touches, left[li], right[ri]).astype(bool)
    return li[keep], ri[keep]


Pairs = tuple[np.ndarray, np.ndarray]


def box_pairs(left: np.ndarray, right: np.ndarray) -> Pairs:
    """Index pairs (i, j) where the boxes of ``left[i]`` and ``right[j]`` meet (one STRtree query)."""
    if len(left) == 0 or len(right) == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    li, ri = shapely.STRtree(right).query(left)
    return li, ri


def intersecting_pairs(left: np.ndarray, right: np.ndarray, boxes: Pairs | None = None) -> Pairs:
    """Index pairs (i, j) where ``left[i]`` and ``right[j]`` intersect.

    :func:`box_pairs` (or ``boxes``, when the caller has them, perhaps a superset) gives the
    candidates; the exact test then runs on all CPUs, which is faster than the tree's own
    single-threaded predicate query.
    """
    li, ri = box_pairs(left, right) if boxes is None else boxes
    hit = parallel(shapely.intersects, left[li], right[ri]).astype(bool)
    return li[hit], ri[hit]


MIN_CUT_M2 = 0.01  # a plan that removes less than this has not cut the zone


def subtract(zone_geoms: np.ndarray, cut_geoms: np.ndarray, boxes: Pairs | None = None) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``zone_geoms[i]`` minus the union of the ``cut_geoms`` that meet it.

    Returns the differences and, per zone that any cut meets, the indices of the cuts whose
    interiors meet it.

    The plans meeting each zone are subtracted in turn, *by rank*: step k subtracts every zone's
    k-th plan in one vectorised GEOS call (spread over the CPUs, unless the caller already runs
    one block per CPU), so it takes about as many calls as the most plans meeting one zone.
    Each zone takes its plans in order of how much their boxes overlap it, biggest first; from
    the second plan on, a plan that no longer meets what is left costs only a predicate, and one
    that covers what is left empties it, without an overlay. Zones a single plan covers become
    empty the same way. A plan that removes area has cut the zone; only pairs that removed
    nothing (touching, or inside an earlier plan) get the test for meeting interiors.
    """
    result = zone_geoms.copy()
    cuts_per_zone: dict[int, list[int]] = {}
    if not len(zone_geoms) or not len(cut_geoms):
        return result, cuts_per_zone
    zi, ci = intersecting_pairs(zone_geoms, cut_geoms, boxes)
    if not len(zi):
        return result, cuts_per_zone
    zb, cb = shapely.bounds(zone_geoms)[zi], shapely.bounds(cut_geoms)[ci]
    overlap = (np.minimum(zb[:, 2], cb[:, 2]) - np.maximum(zb[:, 0], cb[:, 0])) * (np.minimum(zb[:, 3], cb[:, 3]) - np.maximum(zb[:, 1], cb[:, 1]))
    order = np.lexsort((-overlap, zi))
    zi, ci = zi[order], ci[order]
    starts = np.flatnonzero(np.r_[True, zi[1:] != zi[:-1]])
    rank = np.arange(len(zi)) - np.repeat(starts, np.diff(np.r_[starts, len(zi)]))
    covering = parallel(shapely.covers, cut_geoms[ci], zone_geoms[zi]).astype(bool)
    covered = np.zeros(len(zone_geoms), dtype=bool)
    covered[zi[covering]] = True
    removed = covering.copy()
    for r in range(int(rank.max()) + 1):
        sel = np.flatnonzero((rank == r) & ~covered[zi])
        if r > 0 and len(sel):
            sel = sel[parallel(shapely.intersects, result[zi[sel]], cut_geoms[ci[sel]]).astype(bool)]
            now_covered = parallel(shapely.covers, cut_geoms[ci[sel]], result[zi[sel]]).astype(bool)
            removed[sel[now_covered]] = True
            covered[zi[sel[now_covered]]] = True
            sel = sel[~now_covered]
        if not len(sel):
            continue
        zs = zi[sel]
        before = parallel(shapely.area, result[zs])
        result[zs] = parallel(shapely.difference, result[zs], cut_geoms[ci[sel]])
        removed[sel] = before - parallel(shapely.area, result[zs]) > MIN_CUT_M2
    result[covered] = shapely.MultiPolygon()
    # The pairs intersect, so their interiors meet unless they only touch.
    unsure = np.flatnonzero(~removed)
    if len(unsure):
        removed[unsure] = ~parallel(shapely.touches, zone_geoms[zi[unsure]], cut_geoms[ci[unsure]]).astype(bool)
    met = np.flatnonzero(removed)
    met = met[np.lexsort((ci[met], zi[met]))]
    met_z, met_c = zi[met], ci[met].tolist()
    if len(met_z):
        firsts = np.flatnonzero(np.r_[True, met_z[1:] != met_z[:-1]])
        for z, a, b in zip(met_z[firsts].tolist(), firsts.tolist(), firsts[1:].tolist() + [len(met_c)], strict=True):
            cuts_per_zone[z] = met_c[a:b]
    return result, cuts_per_zone


def lot_id_numbers(geoms: np.ndarray) -> np.ndarray:
    """What a lot id is made from: area, bounds and centroid, rounded to centimetres (one row per lot)."""
    if not len(geoms):
        return np.empty((0, 7))
    centroids = parallel(shapely.centroid, geoms)
    numbers = np.column_stack([shapely.area(geoms), shapely.bounds(geoms), shapely.get_x(centroids), shapely.get_y(centroids)])
    return np.nan_to_num(np.round(numbers, 2))


def lot_ids(kommunenummer: str, zone_keys: list[str], numbers: np.ndarray) -> list[str]:
    """Stable lot ids: from the zone key and the lot's :func:`lot_id_numbers`.

    GEOS is deterministic, so the same data give the same geometry and the same id; two parts
    of one zone never share all of area, bounds and centroid.
    """
    return [f"{kommunenummer}-{hashlib.sha1(key.encode() + row.tobytes()).hexdigest()[:10]}"
            for key, row in zip(zone_keys, numbers, strict=True)]


def repair_many(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repair` for an array; only invalid geometries take the slow path."""
    out = np.array(geoms, dtype=object)
    invalid = ~parallel(shapely.is_valid, out).astype(bool) & ~shapely.is_missing(out)
    for i in np.flatnonzero(invalid):
        out[i] = repair(out[i])[0]
    return out, invalid


def repair_near(geoms: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repair_many` for the geometries whose boxes meet a box of ``others``.

    The rest are returned as they are: no zone can meet them, so they are never used (a kommune
    has many approved plans outside its housing zones, and validating them is not free).
    """
    return repair_at(geoms, np.unique(box_pairs(geoms, others)[0]))


def repair_at(geoms: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repair_many` for ``geoms[positions]``; the others are returned as they are."""
    out, invalid = np.array(geoms, dtype=object), np.zeros(len(geoms), dtype=bool)
    if len(positions):
        out[positions], invalid[positions] = repair_many(out[positions])
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


@dataclass
class _Zones:
    """The candidate zones' attributes as plain lists, by position (read once, sliced per block)."""

    keys: list[str]
    formals: list[Any]
    statuses: list[Any]
    regimes: list[str]
    planids: list[Any]
    names: list[Any]
    mulig: np.ndarray
    repaired: np.ndarray

    @classmethod
    def of(cls, candidates: gpd.GeoDataFrame) -> _Zones:
        def column(name: str) -> list[Any]:
            return [None if v is None or v != v else v for v in candidates[name].astype(object).tolist()]

        return cls([str(k) for k in column("zone_key")],
                   codes.code_series(candidates["arealformal"]).tolist(), codes.code_series(candidates["arealbruksstatus"]).tolist(),
                   [str(v or "2008") for v in column("regime")], column("planid"), column("omradenavn"),
                   candidates["mulig_bolig"].to_numpy(bool), candidates["repaired"].fillna(0).astype(bool).to_numpy())

    def __getitem__(self, s: slice) -> _Zones:
        return _Zones(self.keys[s], self.formals[s], self.statuses[s], self.regimes[s], self.planids[s],
                      self.names[s], self.mulig[s], self.repaired[s])


def compute_lots(
    zones: gpd.GeoDataFrame,
    plans: gpd.GeoDataFrame,
    kommunenummer: str,
    settings: DifferanseSettings,
    has_plan_source: bool = True,
) -> LotFrame:
    """Compute the lots of one kommune from its zones and plans (both EPSG:25833).

    With several CPUs the zones are cut into contiguous blocks. A pool of one thread per CPU
    does the geometry of each block (repair, subtract, split: GEOS, which releases the GIL) while
    the calling thread turns finished blocks into rows (ids, flags, explanations: Python), so the
    Python work hides behind the GEOS work instead of following it.
    """
    candidates = select_zones(zones, settings)
    approved, in_progress = select_plans(plans, settings)
    threads = _threads(len(candidates))
    geoms, plan_geoms = candidates.geometry.to_numpy(), approved.geometry.to_numpy()
    # One tree query serves everything: plans no zone box meets are never repaired or tested.
    box_z, box_p = box_pairs(geoms, plan_geoms)
    near_plans = np.unique(box_p)

    def rows(a: int, b: int, block: _Block) -> tuple[dict[str, list[Any]], np.ndarray]:
        return _block_rows(block, zones_all[a:b], plan_refs, kommunenummer, settings, has_plan_source), block.parts

    def boxes(a: int, b: int) -> Pairs:
        inside = (box_z >= a) & (box_z < b)
        return box_z[inside] - a, box_p[inside]

    if threads == 1:
        zones_all, plan_refs = _Zones.of(candidates), _plan_refs(approved)
        plans_ready: Future = Future()
        plans_ready.set_result(repair_at(plan_geoms, near_plans))
        blocks = [rows(0, len(geoms), _block_geometry(geoms, (box_z, box_p), plans_ready, settings))]
    else:
        # One block per thread: more, smaller blocks measured slower (more CPU time in total).
        edges = _balanced_edges(geoms, box_z, threads)

        def serially(fn: Any, *args: Any) -> Any:
            _local.serial = True
            try:
                return fn(*args)
            finally:
                _local.serial = False

        with ThreadPoolExecutor(threads) as pool:
            plans_ready = pool.submit(serially, repair_at, plan_geoms, near_plans)
            done = [pool.submit(serially, _block_geometry, geoms[a:b], boxes(a, b), plans_ready, settings)
                    for a, b in zip(edges[:-1], edges[1:], strict=True)]
            # While the pool runs GEOS, this thread reads the attributes and turns finished blocks into rows.
            zones_all, plan_refs = _Zones.of(candidates), _plan_refs(approved)
            blocks = [rows(a, b, future.result()) for a, b, future in zip(edges[:-1], edges[1:], done, strict=True)]
    columns = {name: [v for cols, _ in blocks for v in cols[name]] for name in LOT_COLUMNS}
    parts = np.concatenate([p for _, p in blocks]) if blocks else np.empty(0, dtype=object)
    lots = gpd.GeoDataFrame(columns, columns=LOT_COLUMNS, geometry=gpd.GeoSeries(parts, crs=SRID), crs=SRID)
    if len(lots) and len(in_progress):
        ip_geoms, _ = repair_near(in_progress.geometry.to_numpy(), lots.geometry.to_numpy())
        ip_refs = _plan_refs(in_progress)
        li, pi = meeting_pairs(lots.geometry.to_numpy(), ip_geoms)
        for lot_idx, plan_idx in zip(li, pi, strict=True):
            lots.at[lots.index[lot_idx], "explanation"]["in_progress"].append(ip_refs[plan_idx])
            flags = lots.at[lots.index[lot_idx], "flags"]
            if "plan_under_arbeid" not in flags:
                flags.append("plan_under_arbeid")
    return LotFrame(lots=lots, zones_considered=len(candidates), approved_plans=len(approved))


def _balanced_edges(zone_geoms: np.ndarray, zone_of_box_pair: np.ndarray, n: int) -> list[int]:
    """Cut the zones into ``n`` contiguous blocks of about equal work.

    A zone's work is estimated from its vertices times one plus the number of plans whose boxes
    meet it (each is a predicate and perhaps an overlay).
    """
    pairs = np.bincount(zone_of_box_pair, minlength=len(zone_geoms))
    work = np.cumsum(shapely.get_num_coordinates(zone_geoms) * (1 + pairs))
    cuts = np.unique(np.searchsorted(work, work[-1] * np.arange(1, n) / n, side="right")) if len(work) else np.empty(0, dtype=int)
    return [0, *cuts[(cuts > 0) & (cuts < len(zone_geoms))].tolist(), len(zone_geoms)]


@dataclass
class _Block:
    """The geometry work on one block of zones (positions local to the block)."""

    zone_areas: np.ndarray
    share_cut: np.ndarray
    fixed: np.ndarray
    cuts: dict[int, list[int]]
    parts: np.ndarray
    owner: np.ndarray
    part_areas: np.ndarray
    id_numbers: np.ndarray


def _block_geometry(geoms: np.ndarray, boxes: Pairs, plans_ready: Future, settings: DifferanseSettings) -> _Block:
    """Repair a block of zones, subtract the plans (``plans_ready`` gives them repaired) and split.

    ``boxes`` are the block's zone–plan box pairs, zones numbered within the block.
    """
    zone_geoms, fixed = repair_many(geoms)
    diffs, cuts = subtract(zone_geoms, plans_ready.result()[0], boxes)
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
    return _Block(zone_areas, share_cut, fixed, cuts, parts, owner, part_areas, lot_id_numbers(parts))


# The zone flags for each combination of bits 1 (mulig_bolig), 2 (geometri_reparert), 4 (mangler_reguleringsplaner).
_FLAG_SETS = [[f for bit, f in ((1, "mulig_bolig"), (2, "geometri_reparert"), (4, "mangler_reguleringsplaner")) if k & bit] for k in range(8)]


def _block_rows(block: _Block, zones: _Zones, plan_refs: list[dict[str, Any]], kommunenummer: str,
                settings: DifferanseSettings, has_plan_source: bool) -> dict[str, list[Any]]:
    """The lot columns of one block, by name (pure Python; values per zone computed once)."""
    owners = block.owner.tolist()
    used = sorted(set(owners))
    zone_areas_m2 = [round(a, 1) for a in block.zone_areas.tolist()]
    shares = [round(a, 4) for a in block.share_cut.tolist()]
    zone_info = {z: {"key": zones.keys[z], "arealformal": zones.formals[z], "navn": codes.arealformal_name(zones.formals[z], zones.regimes[z]),
                     "arealbruksstatus": zones.statuses[z], "planid": zones.planids[z], "omradenavn": zones.names[z],
                     "area_m2": zone_areas_m2[z]} for z in used}
    flag_bits = (zones.mulig * 1 + (block.fixed | zones.repaired) * 2 + (not has_plan_source) * 4).tolist()
    cut_refs = {z: [plan_refs[j] for j in block.cuts.get(z, ())] for z in used}

    def per_zone(values: list[Any]) -> list[Any]:
        return [values[z] for z in owners]

    keys = per_zone(zones.keys)
    return {
        "lot_id": lot_ids(kommunenummer, keys, block.id_numbers), "kommunenummer": [kommunenummer] * len(owners),
        "zone_key": keys, "arealformal": per_zone(zones.formals), "arealbruksstatus": per_zone(zones.statuses),
        "regime": per_zone(zones.regimes), "area_m2": [round(a, 1) for a in block.part_areas.tolist()],
        "flags": [list(_FLAG_SETS[flag_bits[z]]) for z in owners],
        "explanation": [{"zone": zone_info[z], "cut_by": cut_refs[z], "share_cut": shares[z], "mode": settings.mode, "in_progress": []}
                        for z in owners],
    }


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
