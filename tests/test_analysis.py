"""Stored analysis: stable ids, analyst data moving with changed lots, archived lots with reasons."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box

from tests.test_differanse import plans, zones
from tomte import crm, kommuner
from tomte.analysis import analyse_kommune, lot_rows
from tomte.config import DifferanseSettings
from tomte.plans import replace_plan_data

S = DifferanseSettings()
K = "3207"
X0, Y0 = 260_000, 6_620_000


def b(x1: float, y1: float, x2: float, y2: float):
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def setup(store, zone_frame: gpd.GeoDataFrame, plan_frame: gpd.GeoDataFrame | None) -> None:
    if not store.scalar("SELECT COUNT(*) FROM kommuner"):
        kommuner.load_kommuner(store)
    replace_plan_data(store, K, zone_frame, plan_frame, "test", "test" if plan_frame is not None else None)


def test_rerun_on_same_data_keeps_ids(store) -> None:
    setup(store, zones((b(0, 0, 200, 100), "1110", "2")), plans((b(90, -10, 110, 110), "3")))
    first = analyse_kommune(store, K, S)
    second = analyse_kommune(store, K, S)
    assert len(first.new) == 2 and second.kept == 2 and not second.new and not second.archived


def test_analyst_data_moves_to_the_lot_that_covers_half_the_old_one(store) -> None:
    setup(store, zones((b(0, 0, 100, 100), "1110", "2")), plans((b(0, 0, 10, 100), "3")))
    analyse_kommune(store, K, S)
    old_id = lot_rows(store, K)[0]["lot_id"]
    crm.set_status(store, old_id, "Kontaktet", "Brev sendt", "test")
    # A new approved plan takes 30 % of the lot: the remaining 70 % is a new lot with the old data.
    setup(store, zones((b(0, 0, 100, 100), "1110", "2")), plans((b(0, 0, 10, 100), "3"), (b(70, 0, 100, 100), "3")))
    result = analyse_kommune(store, K, S)
    new = lot_rows(store, K)
    assert len(new) == 1 and new[0]["lot_id"] != old_id
    assert result.moved == {old_id: new[0]["lot_id"]}
    assert new[0]["status"] == "Kontaktet"
    assert new[0]["latest_note"] == "Brev sendt"
    notes = [e["note"] for e in crm.events(store, new[0]["lot_id"])]
    assert "Brev sendt" in notes
    archived = store.rows("SELECT active, archived_reason FROM lots WHERE lot_id = ?", (old_id,))[0]
    assert archived["active"] == 0 and new[0]["lot_id"] in archived["archived_reason"]


def test_lot_covered_by_new_plan_is_archived_with_the_reason(store) -> None:
    setup(store, zones((b(0, 0, 100, 100), "1110", "2")), plans((b(0, 0, 10, 100), "3")))
    analyse_kommune(store, K, S)
    old_id = lot_rows(store, K)[0]["lot_id"]
    crm.set_status(store, old_id, None, "Interessant", "test")
    p = plans((b(0, 0, 10, 100), "3"), (b(-5, -5, 105, 105), "3"))
    p.loc[1, "planid"] = "2021005"
    setup(store, zones((b(0, 0, 100, 100), "1110", "2")), p)
    result = analyse_kommune(store, K, S)
    assert result.archived[old_id] == "nå dekket av reguleringsplan 2021005, vedtatt"
    row = store.rows("SELECT active, archived_reason FROM lots WHERE lot_id = ?", (old_id,))[0]
    assert row == {"active": 0, "archived_reason": "nå dekket av reguleringsplan 2021005, vedtatt"}
    events = crm.events(store, old_id)
    assert [e["note"] for e in events if e["kind"] == "notat"] == ["Interessant"]  # history kept
    assert [e["kind"] for e in events if e["kind"] != "notat"] == ["arkivert"]  # and why it was archived, with the data version


def test_kommune_without_kommuneplan_is_listed_for_manual_review(store) -> None:
    kommuner.load_kommuner(store)
    result = analyse_kommune(store, "3218", S)
    rows = lot_rows(store, "3218")
    assert result.lots == 1 and rows[0]["flags"] == "mangler_kommuneplan"
    assert "manuell vurdering" in rows[0]["explanation"]


def test_missing_reguleringsplaner_flag_and_parcel_links(store) -> None:
    setup(store, zones((b(0, 0, 100, 100), "1110", "2")), None)
    parcels = gpd.GeoDataFrame({"matrikkelnummer": ["1/1", "1/2"], "gnr": [1, 1], "bnr": [1, 2], "fnr": [0, 0], "snr": [0, 0],
                                "areal_m2": [5000.0, 10000.0], "teig_id": ["a", "b"]},
                               geometry=[b(0, 0, 50, 100), b(50, 0, 150, 100)], crs=25833)
    replace_plan_data(store, K, None, None, parcels=parcels, parcel_source="test")
    analyse_kommune(store, K, S)
    row = lot_rows(store, K)[0]
    assert row["flags"] == "mangler_reguleringsplaner"
    links = store.rows("SELECT overlap_m2, share FROM lot_parcels ORDER BY share")
    assert links == [{"overlap_m2": 5000.0, "share": 0.5}, {"overlap_m2": 5000.0, "share": 1.0}]
