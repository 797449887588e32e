"""Differanse rules on hand-built cases with known answers, plus real plan data."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import pytest
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon, box

from tomte.config import DifferanseSettings
from tomte.differanse import compute_lots, explain, repair
from tomte.plans import KP_COLUMNS, RP_COLUMNS

S = DifferanseSettings()


def zones(*items: tuple) -> gpd.GeoDataFrame:
    """(geometry, arealformål, arealbruksstatus[, regime]) tuples → zone frame."""
    rows = []
    for i, item in enumerate(items):
        geom, formal, status, *rest = item
        rows.append({"zone_key": f"z{i}", "feature_type": "KpArealformålOmråde", "regime": rest[0] if rest else "2008",
                     "arealformal": formal, "arealbruksstatus": status, "planid": "KPA", "plannavn": None, "omradenavn": None,
                     "beskrivelse": None, "utnyttingstype": None, "utnyttingstall": None, "oppdateringsdato": None,
                     "repaired": 0, "geometry": geom})
    return gpd.GeoDataFrame(rows, columns=[*KP_COLUMNS, "geometry"], crs=25833)


def plans(*items: tuple) -> gpd.GeoDataFrame:
    """(geometry, planstatus[, vertikalnivå]) tuples → plan frame."""
    rows = []
    for i, item in enumerate(items):
        geom, status, *rest = item
        rows.append({"area_key": f"p{i}", "planid": f"20{i:02d}00{i}", "plannavn": f"Plan {i}", "planstatus": status,
                     "plantype": "35", "vertikalniva": rest[0] if rest else "2", "ikrafttredelsesdato": "2021-03-01",
                     "oppdateringsdato": None, "repaired": 0, "geometry": geom})
    return gpd.GeoDataFrame(rows, columns=[*RP_COLUMNS, "geometry"], crs=25833)


def areas(result) -> list[float]:
    return sorted(round(a, 3) for a in result.lots["area_m2"])


def test_bowtie_zone_keeps_both_lobes() -> None:
    bowtie = Polygon([(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)])
    assert not bowtie.is_valid
    fixed, repaired = repair(bowtie)
    assert repaired and fixed.area == pytest.approx(20_000)
    result = compute_lots(zones((bowtie, "1110", "2")), plans(), "0000", S)
    assert areas(result) == [10_000, 10_000]
    assert all("geometri_reparert" in f for f in result.lots["flags"])


def test_strip_plan_splits_a_zone_into_two_lots() -> None:
    result = compute_lots(zones((box(0, 0, 200, 100), "1110", "2")), plans((box(90, -10, 110, 110), "3")), "0000", S)
    assert areas(result) == [9_000, 9_000]
    assert result.lots["explanation"].iloc[0]["share_cut"] == pytest.approx(0.1)
    assert result.lots["explanation"].iloc[0]["cut_by"][0]["planid"] == "2000000"


def test_sliver_under_2000_m2_is_dropped_and_2000_is_kept() -> None:
    zone = zones((box(0, 0, 100, 100), "1110", "2"))
    assert areas(compute_lots(zone, plans((box(-10, -10, 80.01, 110), "3")), "0000", S)) == []
    assert areas(compute_lots(zone, plans((box(-10, -10, 80, 110), "3")), "0000", S)) == [2_000]


@pytest.mark.parametrize(("level", "subtracts"), [("1", False), ("2", True), ("3", False), ("4", False), ("5", False), (None, True)])
def test_only_ground_level_or_no_level_subtracts(level: str | None, subtracts: bool) -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans((box(0, 0, 50, 100), "3", level)), "0000", S)
    assert areas(result) == ([5_000] if subtracts else [10_000])


def test_overlapping_plans_subtract_once() -> None:
    p = plans((box(0, 0, 60, 100), "3"), (box(40, 0, 70, 100), "3"))
    assert areas(compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), p, "0000", S)) == [3_000]


def test_multi_part_zone_gives_a_lot_per_part() -> None:
    zone = MultiPolygon([box(0, 0, 100, 100), box(200, 0, 300, 100)])
    result = compute_lots(zones((zone, "1130", "2")), plans((box(200, 0, 250, 100), "3")), "0000", S)
    assert areas(result) == [5_000, 10_000]


def test_zone_with_hole_keeps_the_hole_out() -> None:
    holed = Polygon(box(0, 0, 100, 100).exterior.coords, [box(40, 40, 60, 60).exterior.coords[::-1]])
    result = compute_lots(zones((holed, "1110", "2")), plans((box(45, 45, 55, 55), "3")), "0000", S)
    assert areas(result) == [9_600]
    assert len(result.lots.geometry.iloc[0].interiors) == 1


@pytest.mark.parametrize(("status", "area", "flag"), [
    ("1", 10_000, True), ("2", 10_000, True), ("3", 5_000, False), ("4", 10_000, False),
    ("5", 10_000, False), ("6", 5_000, False), ("7", 5_000, False), ("8", 5_000, False), (3, 5_000, False), ("3.0", 5_000, False),
])
def test_each_planstatus(status, area: float, flag: bool) -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans((box(0, 0, 50, 100), status)), "0000", S)
    assert areas(result) == [area]
    assert ("plan_under_arbeid" in result.lots["flags"].iloc[0]) is flag


@pytest.mark.parametrize(("status", "default", "fortetting"), [("1", False, True), ("2", True, True), ("3", True, True), (None, False, False)])
def test_each_arealbruksstatus(status, default: bool, fortetting: bool) -> None:
    z = zones((box(0, 0, 100, 100), "1110", status))
    assert len(compute_lots(z, plans(), "0000", S).lots) == int(default)
    assert len(compute_lots(z, plans(), "0000", replace(S, include_fortetting=True)).lots) == int(fortetting)


@pytest.mark.parametrize(("formal", "regime", "kept", "mulig"), [
    ("1110", "2008", True, False), ("1130", "2008", True, False), ("1001", "2008", True, True), ("1800", "2008", True, True),
    ("5210", "2008", False, False), ("1300", "2008", False, False), ("5100", "2008", False, False), (1110, "2008", True, False),
    ("110", "1985", True, False), ("120", "1985", True, False), ("100", "1985", True, True), ("190", "1985", True, True),
    ("130", "1985", False, False),
])
def test_housing_codes(formal, regime: str, kept: bool, mulig: bool) -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), formal, "2", regime)), plans(), "0000", S)
    assert len(result.lots) == int(kept)
    if kept:
        assert ("mulig_bolig" in result.lots["flags"].iloc[0]) is mulig


def test_spredt_boligbebyggelse_only_when_opted_in() -> None:
    z = zones((box(0, 0, 100, 100), "5210", "2"))
    assert len(compute_lots(z, plans(), "0000", replace(S, include_spredt=True)).lots) == 1


def test_pbl1985_zone_without_status_counts() -> None:
    assert len(compute_lots(zones((box(0, 0, 100, 100), "110", None, "1985")), plans(), "0000", S).lots) == 1


@pytest.mark.parametrize(("covered_to", "kept"), [(89, True), (91, False)])
def test_whole_zone_mode(covered_to: float, kept: bool) -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans((box(0, 0, covered_to, 100), "3")), "0000",
                          replace(S, mode="whole_zone"))
    assert areas(result) == ([10_000] if kept else [])


def test_plan_touching_only_the_boundary_neither_cuts_nor_is_listed() -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans((box(100, 0, 200, 100), "3"), (box(100, 0, 150, 50), "1")), "0000", S)
    assert areas(result) == [10_000]
    assert result.lots["explanation"].iloc[0]["cut_by"] == []
    assert result.lots["flags"].iloc[0] == []


def test_missing_plan_source_is_flagged() -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans(), "0000", S, has_plan_source=False)
    assert result.lots["flags"].iloc[0] == ["mangler_reguleringsplaner"]


def test_lot_ids_are_stable_and_distinct() -> None:
    z = zones((box(0, 0, 200, 100), "1110", "2"))
    p = plans((box(90, -10, 110, 110), "3"))
    first = list(compute_lots(z, p, "3207", S).lots["lot_id"])
    again = list(compute_lots(z.iloc[::-1], p, "3207", S).lots["lot_id"])
    assert sorted(first) == sorted(again) and len(set(first)) == 2
    assert all(i.startswith("3207-") for i in first)


def test_explanation_in_words() -> None:
    result = compute_lots(zones((box(0, 0, 100, 100), "1110", "2")), plans((box(0, 0, 38, 100), "3")), "0000", S)
    lot = result.lots.iloc[0]
    text = explain(lot["explanation"], lot["flags"], lot["area_m2"])
    assert text.startswith("Framtidig boligbebyggelse i kommuneplanen")
    assert "38 % av sonen er regulert av plan 2000000 (vedtatt 2021)" in text
    assert "gjenstår 6,2 daa" in text


def test_engine_matches_reference_algorithms_on_random_data() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    zs = [(shapely.Point(x, y).buffer(r, 8), "1110", "2") for x, y, r in rng.uniform([0, 0, 40], [2000, 2000, 150], (150, 3))]
    ps = [(shapely.Point(x, y).buffer(r, 8), "3") for x, y, r in rng.uniform([0, 0, 30], [2000, 2000, 200], (120, 3))]
    ours = compute_lots(zones(*zs), plans(*ps), "0000", replace(S, min_area_m2=0)).lots.area.sum()
    union = shapely.union_all([p[0] for p in ps])
    seed = sum(shapely.difference(z[0], union).area for z in zs)
    assert ours == pytest.approx(seed, rel=1e-6)


def test_blocks_on_several_threads_give_the_single_thread_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big enough for the threaded path (blocks per CPU), with a bowtie and plans in progress:
    same lots, ids, cut lists and flags as on one thread, and the same area as geopandas.overlay."""
    from bench.data import large_kommune

    kp, rp = large_kommune(2400, 600, seed=11)
    kp.loc[5, "geometry"] = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])  # bowtie: two lobes of 2,500 m²
    rp.loc[rp.index[::7], "planstatus"] = "2"
    settings = replace(S, min_area_m2=0)
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("TOMTE_THREADS", threads)
        results[threads] = compute_lots(kp, rp, "0000", settings).lots.set_index("lot_id")
    one = results["1"]
    assert len(one) > 2400 and one["flags"].map(lambda f: "plan_under_arbeid" in f).any()
    assert one.loc[one["zone_key"] == "z5", "area_m2"].tolist() == [2500.0, 2500.0]
    for frame in (results["2"], results["3"]):
        assert frame.index.tolist() == one.index.tolist()
        assert frame["area_m2"].tolist() == one["area_m2"].tolist() and frame["flags"].tolist() == one["flags"].tolist()
        assert [e["cut_by"] for e in frame["explanation"]] == [e["cut_by"] for e in one["explanation"]]
    approved = rp[rp["planstatus"] == "3"]
    overlay = gpd.overlay(kp[["zone_key", "geometry"]].assign(geometry=kp.geometry.make_valid()), approved[["area_key", "geometry"]], how="difference")
    assert one.area.sum() == pytest.approx(overlay.area.sum(), rel=1e-9)


def test_real_nap_plans_subtract_by_level() -> None:
    from tests.conftest import shared
    from tomte.sources.normalize import to_plan_frames
    from tomte.sources.planfile import read_plan_file

    rp = []
    for name in ("vn1", "vn2"):
        _, frame, _ = to_plan_frames(read_plan_file(shared(f"nap-wms-gfi/nap-gfi-{name}-bergen-167-714.json")), "reguleringsplan")
        rp.append(frame)
    plans_frame = gpd.GeoDataFrame(pd_concat(rp), crs=25833)
    vn2 = rp[1].geometry.iloc[0]
    zone_geom = box(*vn2.buffer(50).bounds)
    result = compute_lots(zones((zone_geom, "1110", "2")), plans_frame, "4601", S)
    # The tunnel plan (vn1, Bybanen) subtracts nothing; the vn2 plan subtracts its area but not its 4 holes.
    expected = [p.area for p in shapely.get_parts(zone_geom.difference(vn2)) if p.area >= 2000]
    assert sorted(result.lots.area) == pytest.approx(sorted(expected), rel=1e-9)
    assert len(expected) >= 2  # the ring around the plan and at least one of its holes
    cut = {p["planid"] for exp in result.lots["explanation"] for p in exp["cut_by"]}
    assert cut == {"5380000"}


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_plans_far_from_every_zone_are_not_validated() -> None:
    from tomte.differanse import repair_near

    bowtie = [(0, 0), (100, 100), (100, 0), (0, 100)]
    near, far = Polygon(bowtie), shapely.affinity.translate(Polygon(bowtie), 10_000)
    out, invalid = repair_near(shapely.from_wkt([near.wkt, far.wkt]), shapely.from_wkt([box(50, 50, 300, 300).wkt]))
    assert invalid.tolist() == [True, False]
    assert out[0].is_valid and out[0].area == 5000 and out[1] is not None and not out[1].is_valid
