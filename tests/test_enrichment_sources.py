"""Enrichment sources against recorded real responses and local servers: SSB, addresses, context layers, teig batches."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box

from tests.conftest import shared
from tests.servers import fake_server, sequence
from tests.test_fetch import X0, Y0, Sleeps, world  # noqa: F401  (fixture)
from tomte import pipeline
from tomte.enrich import _nearest, lot_features
from tomte.errors import BadResponse
from tomte.scoring import ScoringSettings
from tomte.sources import adresse
from tomte.sources._http import Http
from tomte.sources.ssb import MinuteLimiter, Selection, SsbClient, cells, data_request, parse_jsonstat2, split_selection

# --- SSB -------------------------------------------------------------------------------------------

def test_real_jsonstat2_with_nulls_and_status() -> None:
    meta, rows = parse_jsonstat2(shared("ssb-pxwebapi/ssb_pxwebapi_v2beta_13615_jsonstat2_with_nulls_status.json").read_bytes())
    assert len(rows) == 100
    nulls = [r for r in rows if r.value is None]
    assert len(nulls) == 30 and all(r.status == "." for r in nulls)
    assert rows[0].codes == {"Produkter": "01", "NACE": "01-03", "ContentsCode": "Petroleum", "Tid": "2020"}
    assert meta["role"]["time"] == ["Tid"]
    _, rows = parse_jsonstat2(shared("ssb-pxwebapi/ssb_pxwebapi_v2beta_09654_jsonstat2.json").read_bytes())
    assert len(rows) == 19 and all(r.value is not None for r in rows)


def test_request_builder_and_cell_splitting() -> None:
    url, payload = data_request("04317", [Selection("Grunnkretser", ("3207*",), "agg_GrkretsNy"), Selection("Tid", ("top(1)",))])
    assert url == "https://data.ssb.no/api/pxwebapi/v2/tables/04317/data?lang=no&outputFormat=json-stat2"
    assert payload == {"selection": [{"variableCode": "Grunnkretser", "valueCodes": ["3207*"], "codelist": "agg_GrkretsNy"},
                                     {"variableCode": "Tid", "valueCodes": ["top(1)"]}]}
    regions = tuple(f"{i:08d}" for i in range(34_097))  # every grunnkrets code, current and historical
    sels = [Selection("Grunnkretser", regions), Selection("ContentsCode", ("Personer",)), Selection("Tid", tuple(str(y) for y in range(1980, 2026)))]
    assert cells(sels) == 34_097 * 46 > 800_000
    parts = split_selection(sels, "Grunnkretser")
    assert len(parts) == 2 and all(cells(p) <= 800_000 for p in parts)
    assert sum(len(p[0].values) for p in parts) == 34_097


def test_limiter_allows_30_per_minute() -> None:
    now = [0.0]
    slept: list[float] = []
    limiter = MinuteLimiter(30, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    for _ in range(31):
        limiter.wait()
        now[0] += 0.1
    assert slept == [pytest.approx(57.0)]  # the 31st call waits until the first is a minute old


def jsonstat(codes: list[str], values: list[float | None], variable: str = "Grunnkretser") -> bytes:
    return json.dumps({
        "version": "2.0", "class": "dataset", "id": [variable, "ContentsCode", "Tid"], "size": [len(codes), 1, 1],
        "dimension": {variable: {"category": {"index": {c: i for i, c in enumerate(codes)}}},
                      "ContentsCode": {"category": {"index": {"Personer": 0}}}, "Tid": {"category": {"index": {"2025": 0}}}},
        "value": values, "status": {str(i): ".." for i, v in enumerate(values) if v is None}, "role": {"time": ["Tid"]}}).encode()


def test_ssb_client_posts_and_retries_429(tmp_path: Path) -> None:
    bodies = []

    def data(h, q):
        length = int(h.headers["Content-Length"])
        bodies.append(json.loads(h.rfile.read(length)))
        return 200, {"Content-Type": "application/json"}, jsonstat(["32070101", "32070102"], [512.0, None])

    replies = sequence((429, {"Retry-After": "2"}, b"Too many requests"), None)
    def route(h, q):
        return replies(h, q) or data(h, q)

    with fake_server({"/tables/04317/data": route}) as (base, _):
        from tomte.config import HttpSettings

        sleeps = Sleeps()
        http = Http(HttpSettings(cache_dir=tmp_path / "c", rate_per_host=1000), sleep=sleeps)
        http.session.cache.clear()
        client = SsbClient(http, base, MinuteLimiter(30, sleep=sleeps))
        # POST handler: re-route do_POST to the same route table.
        rows = list(client.data("04317", [Selection("Grunnkretser", ("3207*",), "agg_GrkretsNy")]))
    assert 2.0 in sleeps
    assert bodies[0]["selection"][0]["codelist"] == "agg_GrkretsNy"
    assert [(r.codes["Grunnkretser"], r.value, r.status) for r in rows] == [("32070101", 512.0, None), ("32070102", None, "..")]


def test_ssb_garbage_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        parse_jsonstat2(b'{"error": "Non-existent value"}')
    with pytest.raises(BadResponse):
        parse_jsonstat2(b"<html>")


# --- addresses ---------------------------------------------------------------------------------------

def test_real_address_answer_and_empty_letter() -> None:
    found = adresse.parse_punktsok(shared("adresse-api/adresser_v1_sok_postnummer0150_raw.json").read_bytes())
    assert found is not None and found.adressetekst == "Robert Levins gate 1" and found.postnummer == "0150"
    assert adresse.format_address({"adressenavn": "Storgata", "nummer": 3, "bokstav": ""}) == "Storgata 3"
    assert adresse.parse_punktsok({"metadata": {}, "adresser": []}) is None
    with pytest.raises(BadResponse):
        adresse.parse_punktsok({"feil": "x"})


def test_punktsok_request_is_lat_lon_in_4258() -> None:
    params = adresse.punktsok_params(262_000, 6_622_000, radius=500)
    assert params["koordsys"] == "4258" and params["radius"] == "500"
    assert 59.6 < float(params["lat"]) < 59.8 and 10.7 < float(params["lon"]) < 10.9


# --- fetch of context roles into the store -----------------------------------------------------------

def test_fetch_context_layers_ssb_and_addresses_then_features(world, tmp_path: Path) -> None:  # noqa: F811
    store, settings, tmp = world
    layers_dir = tmp / "layers"
    layers_dir.mkdir()
    gpd.GeoDataFrame({"navn": ["Flom 1"]}, geometry=[box(X0, Y0, X0 + 250, Y0 + 500)], crs=25833).to_file(layers_dir / "flom.geojson")
    gpd.GeoDataFrame({"navn": ["Fv1"]}, geometry=[LineString([(X0 - 300, Y0), (X0 - 300, Y0 + 500)])], crs=25833).to_file(layers_dir / "veg.geojson")
    gpd.GeoDataFrame({"navn": ["Ski"]}, geometry=[Point(X0 + 250, Y0 + 1500)], crs=25833).to_file(layers_dir / "sentrum.geojson")
    gpd.GeoDataFrame({"grunnkretsnummer": ["32070101"]}, geometry=[box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000)], crs=25833).to_file(layers_dir / "gk.geojson")
    requests_seen = []

    def punktsok(h, q):
        requests_seen.append(q)
        doc = {"metadata": {"totaltAntallTreff": 1}, "adresser": [{"adressetekst": "Kjeppestadveien 1", "bokstav": "", "postnummer": "1400",
                                                                   "poststed": "SKI", "kommunenummer": "3207", "meterDistanseTilPunkt": 42.5}]}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    def ssb_route(h, q):
        payload = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        variable = payload["selection"][0]["variableCode"]
        if variable == "Grunnkretser":
            return 200, {}, jsonstat(["32070101"], [850.0])
        return 200, {}, jsonstat(["3207"], [61000.0], "Region")

    with fake_server({"/adresser/v1/punktsok": punktsok, "/ssb/tables/04317/data": ssb_route, "/ssb/tables/06913/data": ssb_route}) as (base, _):
        toml = tmp / "ctx.toml"
        toml.write_text("".join(
            f'[[source]]\nkommune = "3207"\nrole = "{role}"\nkind = "file"\npath = "{layers_dir / f}"\nlayer = "{layer}"\n'
            for role, layer, f in [("constraint", "flomsone", "flom.geojson"), ("infrastruktur", "veg", "veg.geojson"),
                                   ("infrastruktur", "sentrum", "sentrum.geojson"), ("grunnkrets", "grunnkrets", "gk.geojson")])
            + f'[[source]]\nkommune = "3207"\nrole = "ssb"\nkind = "pxwebapi"\nurl = "{base}/ssb"\n'
            + f'[[source]]\nkommune = "3207"\nrole = "adresse"\nkind = "rest"\nurl = "{base}/adresser/v1"\n')
        result = pipeline.fetch_kommune(store, settings, "3207", toml)
    assert result.counts["constraint:flomsone"] == 1 and result.counts["ssb"] == 2 and result.counts["adresser"] == 1
    assert requests_seen[0]["koordsys"] == ["4258"]
    feats = lot_features(store, "3207", ScoringSettings())
    row = feats.iloc[0]
    assert row["free_share"] == pytest.approx(0.5)          # flood zone covers half of the 500×500 lot
    assert row["dist_road_m"] == pytest.approx(300)
    assert row["dist_centre_m"] == pytest.approx(1000) and row["centre_name"] == "Ski"
    assert row["population_nearby"] == 850
    assert "flomsone Flom 1" in row["constraints"]
    assert store.scalar("SELECT adressetekst FROM lot_addresses") == "Kjeppestadveien 1"


def test_teig_is_fetched_by_lot_batches(world) -> None:  # noqa: F811
    store, settings, tmp = world
    from tests.test_fetch import CAPS

    boxes = []
    teig = (Path(__file__).parent / "data" / "real" / "matrikkel-teig-bergen-4601-167.xml").read_bytes()

    def route(h, q):
        if q.get("REQUEST", [""])[0] == "GetCapabilities":
            return 200, {}, CAPS.replace("app:KpArealformalOmrade", "app:Teig").encode()
        boxes.append(q["BBOX"][0])
        return 200, {}, teig

    with fake_server({"/wfs": route}) as (url, _):
        toml = tmp / "teig.toml"
        toml.write_text(f'[[source]]\nkommune = "3207"\nrole = "teig"\nkind = "wfs"\nurl = "{url}/wfs"\ntypename = "app:Teig"\n')
        result = pipeline.fetch_kommune(store, settings, "3207", toml)
    assert result.counts["parcels"] == 3  # three unique teiger, however many batches returned them
    minx, miny, maxx, maxy = (float(v) for v in boxes[0].split(",")[:4])
    assert maxx - minx < 1000 and maxy - miny < 1000  # the lot's box (500 m + margin), not the kommune's


def test_unknown_constraint_data_is_not_scored_as_free(world) -> None:  # noqa: F811
    store, _, _ = world
    feats = lot_features(store, "3207", ScoringSettings())
    assert feats["free_share"].isna().all()
    assert shapely is not None


def test_nearest_by_segments_gives_the_distances_and_names_of_whole_features() -> None:
    """Roads are searched by their segments (issue 14); distances and names must equal a plain search."""
    rng = np.random.default_rng(7)
    lots = np.array([box(x, y, x + 60, y + 40) for x, y in rng.uniform(0, 5000, (300, 2))], dtype=object)
    roads = [LineString(rng.uniform(0, 5000, (6, 2))) for _ in range(25)]
    roads.append(MultiLineString([[(0, 0), (100, 4000)], [(4000, 100), (4900, 4900)]]))
    roads.append(Point(2500, 2500))
    roads.append(Polygon([(1000, 1000), (3000, 1000), (3000, 3000), (1000, 3000)]))  # lots inside are at 0, not at its rim
    layer = gpd.GeoDataFrame({"name": [f"veg {i}" for i in range(len(roads))]}, geometry=roads, crs=25833)
    dist, names = _nearest(lots, layer)
    (li, fi), plain = shapely.STRtree(np.array(roads, dtype=object)).query_nearest(lots, return_distance=True, all_matches=False)
    assert np.allclose(dist[li], plain)
    assert (dist == 0).sum() > 10  # some lots lie in the polygon
    # The name is that of a feature at the nearest distance (ties may name another, equally near one).
    named = layer.set_index("name").geometry
    assert all(abs(shapely.distance(lots[i], named[names[i]]) - dist[i]) < 1e-6 for i in range(len(lots)))
