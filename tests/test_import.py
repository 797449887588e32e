"""Plan data in: real files, every geometry encoding, CRS style, attribute spelling and date form."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon, box

from tests.conftest import TEST_DATA, shared
from tomte import kommuner, pipeline
from tomte.errors import BadResponse, InvalidData
from tomte.geom import parse_srs
from tomte.sources.gml import parse_gml
from tomte.sources.normalize import parse_date, to_plan_frames
from tomte.sources.planfile import read_plan_file
from tomte.sources.teig import parcels_from_features

REAL = TEST_DATA / "real"
GML_HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n<gml:FeatureCollection xmlns:gml="http://www.opengis.net/gml/3.2" '
            'xmlns:app="http://skjema.geonorge.no/SOSI/produktspesifikasjon/Reguleringsplanforslag/5.0" '
            'xmlns:xlink="http://www.w3.org/1999/xlink">\n')


def gml(*members: str) -> bytes:
    body = "".join(f"<gml:featureMember>{m}</gml:featureMember>\n" for m in members)
    return (GML_HEAD + body + "</gml:FeatureCollection>").encode()


def kp_feature(geometry: str, formal: str = "1110", status: str = "2", fid: str = "k1") -> str:
    return (f'<app:KpArealformålOmråde gml:id="{fid}"><app:område>{geometry}</app:område>'
            f"<app:arealformål>{formal}</app:arealformål><app:arealbruksstatus>{status}</app:arealbruksstatus>"
            "</app:KpArealformålOmråde>")


def poslist(coords, srs: str = "urn:ogc:def:crs:EPSG::25833") -> str:
    text = " ".join(f"{x} {y}" for x, y in coords)
    return f'<gml:Polygon srsName="{srs}"><gml:exterior><gml:LinearRing><gml:posList>{text}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>'


# --- real files -------------------------------------------------------------------------------

def test_real_teig_wfs_response_gives_three_parcels() -> None:
    features = parse_gml((REAL / "matrikkel-teig-bergen-4601-167.xml").read_bytes())
    parcels = parcels_from_features(features)
    assert list(parcels["matrikkelnummer"]) == ["167/714", "167/717", "167/718"]
    assert list(parcels["areal_m2"]) == [809.3, 165.6, 226.3]
    assert list(parcels["kommunenummer"]) == ["4601"] * 3
    assert {f.epsg for f in features} == {25833}
    assert parcels.crs.to_epsg() == 25833
    # Computed area in UTM 33 near Bergen is ~0.6 % larger than the stored ellipsoidal area (domain.md §3).
    for geom, stored in zip(parcels.geometry, parcels["areal_m2"], strict=True):
        assert geom.area == pytest.approx(stored, rel=0.01)


def test_recorded_exception_documents_raise() -> None:
    with pytest.raises(BadResponse, match="InvalidParameterValue"):
        parse_gml((REAL / "matrikkel-typename-error.xml").read_bytes())
    with pytest.raises(BadResponse, match="LayerNotDefined"):
        parse_gml(shared("nap-wms-gfi/nap-gfi-layer-not-defined.xml").read_bytes())


def test_nap_vn2_plan_keeps_its_four_holes() -> None:
    _, rp, _ = to_plan_frames(read_plan_file(shared("nap-wms-gfi/nap-gfi-vn2-bergen-167-714.json")), "reguleringsplan")
    row = rp.iloc[0]
    assert (row.planid, row.planstatus, row.plantype, row.vertikalniva, row.ikrafttredelsesdato) == ("5380000", "3", "30", "2", "1983-10-10")
    assert row.geometry.geom_type == "Polygon" and len(row.geometry.interiors) == 4
    assert row.geometry.bounds[0] < 0  # negative eastings (western Norway) are valid


def test_nap_vn1_tunnel_plan_and_other_types_ignored() -> None:
    kp, rp, counts = to_plan_frames(read_plan_file(shared("nap-wms-gfi/nap-gfi-vn1-bergen-167-714.json")), "reguleringsplan")
    assert len(rp) == 1 and rp.iloc[0].vertikalniva == "1" and rp.iloc[0].planid == "65800000"
    assert counts["ignored"] == 4 and kp.empty


def test_nap_empty_collection_parses_to_nothing() -> None:
    assert read_plan_file(shared("nap-wms-gfi/nap-gfi-empty-wrong-crs.json")) == []


def test_kristiansand_plan_is_epsg_25832() -> None:
    path = shared("reguleringsplan/dibk_plankart_4204_1536_stemtjonn_skytebane_EPSG25832.geojson")
    features = read_plan_file(path)
    assert {f.epsg for f in features} == {25832}
    _, rp, counts = to_plan_frames(features, "reguleringsplan")
    assert len(rp) == 1 and counts["ignored"] == 98
    original = gpd.read_file(path).set_crs(25832, allow_override=True)
    rp_area = original[original.geometry.area == original.geometry.area.max()].geometry.iloc[0].area
    assert rp.geometry.iloc[0].area == pytest.approx(rp_area, rel=0.01)
    c = rp.geometry.iloc[0].centroid  # Kristiansand (8° E) lies ~7° west of UTM 33's central meridian
    assert 50_000 < c.x < 120_000 and 6_440_000 < c.y < 6_500_000


def test_plan50_arealplan_link_is_resolved() -> None:
    _, rp, _ = to_plan_frames(read_plan_file(REAL / "arkitektum_rulevalidator_gml.xlink.1-2D-pass.gml"), "reguleringsplan")
    row = rp.iloc[0]
    assert (row.planid, row.plannavn, row.planstatus, row.vertikalniva) == ("09062018-2", "Områderegulering HIS", "2", "2")


def test_plan50_curves_with_arcs_parse_valid() -> None:
    for name in ("xlink.1-2D-pass", "avgr.1-pass", "bue.1-fail", "epsg.1-pass-1"):
        features = parse_gml((REAL / f"arkitektum_rulevalidator_gml.{name}.gml").read_bytes())
        polys = [f.geometry for f in features if f.geometry is not None and f.geometry.geom_type.endswith("Polygon")]
        assert polys and all(g.is_valid and g.area > 0 for g in polys), name
        lines = [f.geometry for f in features if f.feature_type == "RpFormålGrense" and f.geometry is not None]
        assert all(g.geom_type.endswith("LineString") for g in lines), name


def test_surface_polygon_patch_real_ssb_grid() -> None:
    features = parse_gml((REAL / "BefolkningOslo1km2019.gml").read_bytes())
    cells = [f for f in features if f.feature_type == "BefolkningPåRuter1km"]
    assert len(cells) == 258
    assert all(f.geometry.area == pytest.approx(1_000_000, rel=1e-6) for f in cells)
    assert "popTot" in cells[0].attrs


# --- geometry encodings ------------------------------------------------------------------------

def test_arcs_are_densified_within_0_05_percent() -> None:
    r, cx, cy = 100.0, 500_000.0, 6_600_000.0
    circle = (f'<gml:Polygon srsName="EPSG:25833"><gml:exterior><gml:Ring><gml:curveMember><gml:Curve><gml:segments>'
              f'<gml:Arc><gml:posList>{cx + r} {cy} {cx} {cy + r} {cx - r} {cy}</gml:posList></gml:Arc>'
              f'<gml:Arc><gml:posList>{cx - r} {cy} {cx} {cy - r} {cx + r} {cy}</gml:posList></gml:Arc>'
              "</gml:segments></gml:Curve></gml:curveMember></gml:Ring></gml:exterior></gml:Polygon>")
    half = (f'<gml:Polygon srsName="EPSG:25833"><gml:exterior><gml:Ring><gml:curveMember><gml:Curve><gml:segments>'
            f'<gml:LineStringSegment><gml:posList>{cx - r} {cy} {cx + r} {cy}</gml:posList></gml:LineStringSegment>'
            f'<gml:ArcString><gml:posList>{cx + r} {cy} {cx + r * math.cos(math.pi / 4)} {cy + r * math.sin(math.pi / 4)} '
            f'{cx} {cy + r} {cx - r * math.cos(math.pi / 4)} {cy + r * math.sin(math.pi / 4)} {cx - r} {cy}</gml:posList></gml:ArcString>'
            "</gml:segments></gml:Curve></gml:curveMember></gml:Ring></gml:exterior></gml:Polygon>")
    full, semi = (parse_gml(gml(kp_feature(g)))[0].geometry for g in (circle, half))
    assert full.area == pytest.approx(math.pi * r * r, rel=5e-4)
    assert semi.area == pytest.approx(math.pi * r * r / 2, rel=5e-4)
    assert full.is_valid and semi.is_valid


def test_multisurface_with_holes_and_xlinked_geometry() -> None:
    outer = [(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)]
    hole = [(10, 10), (10, 20), (20, 20), (20, 10), (10, 10)]
    ms = ('<gml:MultiSurface srsName="http://www.opengis.net/def/crs/EPSG/0/25833"><gml:surfaceMember>'
          '<gml:Polygon gml:id="shared-poly"><gml:exterior><gml:LinearRing><gml:posList>'
          + " ".join(f"{x} {y}" for x, y in outer) + '</gml:posList></gml:LinearRing></gml:exterior>'
          '<gml:interior><gml:LinearRing><gml:posList>' + " ".join(f"{x} {y}" for x, y in hole)
          + "</gml:posList></gml:LinearRing></gml:interior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>")
    linked = '<app:KpArealformålOmråde gml:id="k2"><app:område xlink:href="#shared-poly"/><app:arealformål>1130</app:arealformål><app:arealbruksstatus>2</app:arealbruksstatus></app:KpArealformålOmråde>'
    kp, _, _ = to_plan_frames(parse_gml(gml(kp_feature(ms), linked)), "kommuneplan")
    assert list(kp.geometry.area) == [9_900, 9_900]
    assert list(kp["arealformal"]) == ["1110", "1130"]


@pytest.mark.parametrize("srs", ["urn:ogc:def:crs:EPSG::4326", "http://www.opengis.net/def/crs/EPSG/0/4258"])
def test_lat_lon_axis_order(srs: str) -> None:
    lat_lon = [(59.70, 10.80), (59.70, 10.82), (59.71, 10.82), (59.71, 10.80), (59.70, 10.80)]
    legacy = [(lon, lat) for lat, lon in lat_lon]
    a = parse_gml(gml(kp_feature(poslist(lat_lon, srs))))[0].geometry
    b = parse_gml(gml(kp_feature(poslist(legacy, "EPSG:4326"))))[0].geometry
    assert a.equals_exact(b, 1e-6)
    assert 250_000 < a.centroid.x < 280_000 and 6_620_000 < a.centroid.y < 6_640_000  # Ski area in UTM 33


def test_srs_name_styles() -> None:
    assert parse_srs("urn:ogc:def:crs:EPSG::25833") == (25833, False)
    assert parse_srs("http://www.opengis.net/def/crs/EPSG/0/25832") == (25832, False)
    assert parse_srs("EPSG:25832") == (25832, False)
    assert parse_srs("urn:ogc:def:crs:EPSG::4258") == (4258, True)
    assert parse_srs("EPSG:4326") == (4326, False)
    with pytest.raises(InvalidData):
        parse_srs("lokalt system")


def test_utm32_gml_is_transformed_and_negative_eastings_survive() -> None:
    square = [(100_000, 6_600_000), (100_100, 6_600_000), (100_100, 6_600_100), (100_000, 6_600_100), (100_000, 6_600_000)]
    g32 = parse_gml(gml(kp_feature(poslist(square, "EPSG:25832"))))[0].geometry
    assert g32.area == pytest.approx(10_000, rel=0.01) and g32.bounds[0] < 0
    west = [(-31_900, 6_735_200), (-31_800, 6_735_200), (-31_800, 6_735_300), (-31_900, 6_735_300), (-31_900, 6_735_200)]
    g33 = parse_gml(gml(kp_feature(poslist(west))))[0].geometry
    assert g33.bounds[0] == -31_900


def test_truncated_xml_is_a_bad_response() -> None:
    with pytest.raises(BadResponse, match="avkuttet"):
        parse_gml(gml(kp_feature(poslist([(0, 0), (1, 0), (1, 1), (0, 0)])))[:-40])


# --- attributes, dates, repair --------------------------------------------------------------------

@pytest.mark.parametrize(("props", "formal", "status"), [
    ({"arealformål": "1110", "arealbruksstatus": "2"}, "1110", "2"),
    ({"arealformal": 1110, "arealbruksstatus": 2}, "1110", "2"),
    ({"KPAREALFORMAL": 1130, "AREALST": 3, "PLANID": 2019004}, "1130", "3"),
])
def test_attribute_spellings_in_geojson(tmp_path: Path, props: dict, formal: str, status: str) -> None:
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25833"}},
           "features": [{"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(box(0, 0, 100, 100))}]}
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(doc))
    kp, _, _ = to_plan_frames(read_plan_file(path), "kommuneplan")
    assert (kp.iloc[0].arealformal, kp.iloc[0].arealbruksstatus) == (formal, status)


def test_nested_planidentifikasjon_and_plan_attribute_spellings() -> None:
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:25833"}}, "features": [
        {"type": "Feature", "properties": {"objekttypenavn": "RpOmråde", "PLANSTAT": 3, "PLANTYPE": 35, "VERTNIV": 2,
                                           "arealplanId": {"planidentifikasjon": "2019004"}, "IKRAFT": 1560902400000},
         "geometry": shapely.geometry.mapping(box(0, 0, 10, 10))}]}
    _, rp, _ = to_plan_frames(read_plan_file_from(doc), "reguleringsplan")
    row = rp.iloc[0]
    assert (row.planid, row.planstatus, row.plantype, row.vertikalniva, row.ikrafttredelsesdato) == ("2019004", "3", "35", "2", "2019-06-19")


def read_plan_file_from(doc: dict):
    from tomte.sources.planfile import parse_geojson

    return parse_geojson(json.dumps(doc).encode())


@pytest.mark.parametrize(("value", "expected"), [("2023-05-31Z", "2023-05-31"), ("2021-03-09T11:22:38.9095372+01:00", "2021-03-09"),
                                                 (1560902400000, "2019-06-19"), ("1560902400000", "2019-06-19"), ("20190619", "2019-06-19"),
                                                 (None, None), ("", None)])
def test_date_forms(value, expected) -> None:
    assert parse_date(value) == expected


def test_plain_geojson_is_wgs84_and_metres_without_crs_is_refused(tmp_path: Path) -> None:
    lonlat = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"arealformål": "1110", "arealbruksstatus": "2"},
              "geometry": shapely.geometry.mapping(box(10.80, 59.70, 10.82, 59.71))}]}
    kp, _, _ = to_plan_frames(read_plan_file_from(lonlat), "kommuneplan")
    assert 250_000 < kp.geometry.iloc[0].centroid.x < 280_000
    metres = {**lonlat, "features": [{**lonlat["features"][0], "geometry": shapely.geometry.mapping(box(260000, 6620000, 260100, 6620100))}]}
    with pytest.raises(InvalidData, match="oppgi koordinatsystemet"):
        read_plan_file_from(metres)


def test_format_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    geojson_named_gml = tmp_path / "plan.gml"
    geojson_named_gml.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    assert read_plan_file(geojson_named_gml) == []
    gml_named_json = tmp_path / "plan.json"
    gml_named_json.write_bytes(gml(kp_feature(poslist([(0, 0), (100, 0), (100, 100), (0, 0)]))))
    assert len(read_plan_file(gml_named_json)) == 1
    sos_named_txt = tmp_path / "plan.txt"
    sos_named_txt.write_text("! eksport fra kommunen\n.HODE\n..TEGNSETT UTF-8\n..TRANSPAR\n...KOORDSYS 23\n...ORIGO-NØ 0 0\n"
                             "...ENHET 1\n.KURVE 1:\n..NØ\n0 0\n0 100\n100 100\n0 0\n.FLATE 2:\n..OBJTYPE KpArealformålOmråde\n"
                             "..REF :1\n..NØ\n20 20\n.SLUTT\n")
    assert [f.feature_type for f in read_plan_file(sos_named_txt) if f.geometry.area] == ["KpArealformålOmråde"]


def test_geopackage_with_arcgis_style_fields_in_utm32(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"KPAREALFORMAL": [1110, 5100], "AREALST": [2, 1], "PLANID": ["2019004", "2019004"]},
                             geometry=[box(500_000, 6_600_000, 500_100, 6_600_100), box(500_100, 6_600_000, 500_200, 6_600_100)], crs=25832)
    path = tmp_path / "kp.data"  # no telling extension
    pyogrio.write_dataframe(frame, path, layer="KpArealformalOmrade", driver="GPKG")
    kp, _, _ = to_plan_frames(read_plan_file(path), "kommuneplan")
    assert list(kp["arealformal"]) == ["1110", "5100"] and list(kp["arealbruksstatus"]) == ["2", "1"]
    assert kp.crs.to_epsg() == 25833 and kp.geometry.iloc[0].area == pytest.approx(10_000, rel=0.01)


def test_invalid_geometry_is_repaired_without_losing_area_and_recorded() -> None:
    bowtie = [(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)]
    kp, _, counts = to_plan_frames(parse_gml(gml(kp_feature(poslist(bowtie)))), "kommuneplan")
    assert counts["repaired"] == 1 and kp.iloc[0].repaired == 1
    assert kp.geometry.iloc[0].area == pytest.approx(20_000)
    assert Polygon(bowtie).area == 0  # what a naive reading would have kept


# --- import-plans end to end -----------------------------------------------------------------------

def test_import_plans_then_analyse(store, tmp_path: Path) -> None:
    kommuner.load_kommuner(store)
    x, y = 268_000, 6_628_000  # in Nordre Follo
    kp_path, rp_path = tmp_path / "kp.gml", tmp_path / "rp.geojson"
    kp_path.write_bytes(gml(kp_feature(poslist([(x, y), (x + 200, y), (x + 200, y + 100), (x, y + 100), (x, y)]), fid="a"),
                            kp_feature(poslist([(x, y + 200), (x + 100, y + 200), (x + 100, y + 300), (x, y + 300), (x, y + 200)]), "5100", "1", "b")))
    rp_path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:25833"}}, "features": [
        {"type": "Feature", "properties": {"objekttypenavn": "RpOmråde", "planstatus": "3", "vertikalnivå": "2",
                                           "arealplanId.planidentifikasjon": "2021005"},
         "geometry": shapely.geometry.mapping(box(x + 90, y - 10, x + 110, y + 110))}]}))
    result = pipeline.import_plans(store, "3020", kp_path, rp_path)
    assert result.kommunenummer == "3207" and result.counts == {"kp": 2, "rp": 1}
    from tomte.config import Settings

    analysed = pipeline.analyse(store, Settings.from_env(store.path), "3207")
    assert analysed.lots == 2


def test_failed_import_leaves_previous_data(store, tmp_path: Path) -> None:
    kommuner.load_kommuner(store)
    good = tmp_path / "kp.gml"
    x, y = 268_000, 6_628_000  # in Nordre Follo
    good.write_bytes(gml(kp_feature(poslist([(x, y), (x + 100, y), (x + 100, y + 100), (x, y)]))))
    pipeline.import_plans(store, "3207", good, None)
    bad = tmp_path / "bad.gml"
    bad.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(BadResponse):
        pipeline.import_plans(store, "3207", bad, None)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InvalidData, match="fant ingen"):
        pipeline.import_plans(store, "3207", empty, None)
    assert store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = '3207'") == 1


def test_nap_epsg3857_response_and_leaked_java_array_value() -> None:
    features = read_plan_file(shared("nap-wms-gfi/nap-gfi-utnyttingstall-array-leak.json"))
    assert [f.epsg for f in features] == [3857]
    x, y = features[0].geometry.centroid.coords[0]
    assert -40_000 < x < -25_000 and 6_730_000 < y < 6_740_000  # Bergen in UTM 33
    from tomte.sources.normalize import Attrs, _number

    assert _number(Attrs(features[0].attrs).get("utnyttingstall")) is None  # "[Ljava.lang.Double;@…" is not a number


def test_bergen_arcgis_export_attributes() -> None:
    doc = json.loads(shared("kommuneplan/bergen_kpa2018_KpOmrade_attributes_excerpt.json").read_text())
    from tomte.sources.normalize import Attrs

    attrs = Attrs(doc["features"][0]["properties"])
    assert (attrs.get("planid"), attrs.get("planstatus"), attrs.get("plantype"), attrs.get("kommunenummer")) == ("65270000", 3, 20, 4601)
    assert parse_date(attrs.get("ikrafttredelsesdato")) == "2019-06-19"


def test_nap_plan_register_link_is_kept_and_only_as_a_web_address(tmp_path: Path) -> None:
    """Issue 15: plan ids link to the plan register; NAP's ``link`` attribute points into it."""
    _, rp, _ = to_plan_frames(read_plan_file(shared("nap-wms-gfi/nap-gfi-vn2-bergen-167-714.json")), "reguleringsplan")
    assert len(rp) and rp["link"].str.startswith("https://www.arealplaner.no/bergen4601/gi?funksjon=VisPlan").all()
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"objekttypenavn": "RpOmråde", "planidentifikasjon": "1", "planstatus": "3", "link": "javascript:alert(1)"},
         "geometry": {"type": "Polygon", "coordinates": [[[10.8, 59.7], [10.81, 59.7], [10.81, 59.71], [10.8, 59.7]]]}}]}
    path = tmp_path / "rp.geojson"
    path.write_text(json.dumps(doc))
    _, rp, _ = to_plan_frames(read_plan_file(path), "reguleringsplan")
    assert rp["link"].isna().all()  # not a web address: no link
