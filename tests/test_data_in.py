"""Plan data in with nothing silently lost or wrong (issue 12).

Real servers configured as real servers are (MapServer capping pages), local servers that lie,
loop, trickle or bomb, the real SOSI file in ../shared, synthetic SOSI files with answers known by
construction, GeoJSON as GeoPandas writes it, and data in the wrong place.
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from tests import test_fetch
from tests.conftest import shared
from tests.servers import fake_server, mapserv_available, mapserver_wfs
from tests.test_fetch import CAPS, X0, Y0, page, snapshot, sources_toml
from tomte import pipeline
from tomte.errors import InvalidData, SourceUnavailable
from tomte.sources._http import Http
from tomte.sources.normalize import to_plan_frames
from tomte.sources.planfile import read_plan_file

world = test_fetch.world  # the fixture: a store with analysed data for 3207 and a lot with a status


def zones(n: int, x0: float = X0, y0: float = Y0, per_row: int = 12) -> gpd.GeoDataFrame:
    rows = [{"zone_id": i, "arealformal": "1110", "arealbruksstatus": "2"} for i in range(n)]
    geoms = [box(x0 + (i % per_row) * 300, y0 + (i // per_row) * 300, x0 + (i % per_row) * 300 + 250, y0 + (i // per_row) * 300 + 250)
             for i in range(n)]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=25833)


# --- paging ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not mapserv_available(), reason="mapserver-bin is not installed (make test installs it)")
def test_mapserver_capping_pages_below_page_size_gives_every_feature(world) -> None:
    store, settings, tmp = world
    zones(72).to_file(tmp / "kp.geojson")
    with mapserver_wfs(tmp / "kp.geojson", "KpArealformalOmrade", (X0 - 1000, Y0 - 1000, X0 + 5000, Y0 + 3000), tmp, max_features=25) as (url, _):
        said: list[str] = []
        result = pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url, "KpArealformalOmrade", page_size=1000),
                                        progress=said.append)
    assert result.ok and result.counts["kp"] == 72  # not 25
    assert sum("side" in m for m in said) == 3  # CountDefault 25 → pages of 25, 25, 22
    assert store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = '3207'") == 72


def _getfeature(handler):
    def route(h, q):
        if q.get("REQUEST", [""])[0] == "GetCapabilities":
            return 200, {"Content-Type": "text/xml"}, CAPS.encode()
        if q.get("RESULTTYPE", [""])[0] == "hits":
            return 400, {}, b"no hits here"
        return handler(h, q)
    return route


def _fetch(store, settings, tmp, route, page_size=5, **http):
    settings = settings.with_(http=replace(settings.http, **http)) if http else settings
    with fake_server({"/wfs": route}) as (url, server):
        result = pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url + "/wfs", page_size=page_size),
                                        http=Http(settings.http, sleep=lambda _s: None))
    return result, server


def test_server_ignoring_startindex_is_an_error_not_duplicates(world) -> None:
    store, settings, tmp = world
    before = snapshot(store)
    result, server = _fetch(store, settings, tmp, _getfeature(lambda h, q: (200, {}, page(5))))
    assert "gjentar objekter" in str(result.failed["plandata"]) and server.hits["/wfs"] < 10
    assert snapshot(store) == before


def test_next_link_to_itself_is_an_error(world) -> None:
    store, settings, tmp = world

    def looping(h, q):
        body = page(2).replace(b'numberReturned="0"', f'next="http://{h.headers["Host"]}/wfs?x=1"'.encode())
        return 200, {}, body
    result, server = _fetch(store, settings, tmp, _getfeature(looping))
    assert "blar i ring" in str(result.failed["plandata"]) or "gjentar" in str(result.failed["plandata"])
    assert server.hits["/wfs"] <= 4


def test_stated_total_must_be_received(world) -> None:
    store, settings, tmp = world
    before = snapshot(store)
    liar = _getfeature(lambda h, q: (200, {}, page(3).replace(b'numberMatched="unknown"', b'numberMatched="72"')))
    result, _ = _fetch(store, settings, tmp, liar, page_size=1000)
    assert "fikk 3 av 72 objekter" in str(result.failed["plandata"])
    assert snapshot(store) == before


def test_short_page_with_next_link_is_followed(world) -> None:
    store, settings, tmp = world

    def capped(h, q):
        start = int(q.get("STARTINDEX", ["0"])[0])
        body = page(min(4, 10 - start), offset=start)
        if start + 4 < 10:
            nxt = f'next="http://{h.headers["Host"]}/wfs?SERVICE=WFS&amp;REQUEST=GetFeature&amp;TYPENAMES=app:K&amp;STARTINDEX={start + 4}"'
            body = body.replace(b'numberReturned="0"', nxt.encode())
        return 200, {}, body
    result, _ = _fetch(store, settings, tmp, _getfeature(capped), page_size=1000)
    assert result.ok and result.counts["kp"] == 10


def test_trickling_server_hits_the_overall_deadline(world) -> None:
    store, settings, tmp = world

    def trickle(h, q):
        if q.get("REQUEST", [""])[0] == "GetCapabilities":
            return 200, {"Content-Type": "text/xml"}, CAPS.encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        h.end_headers()
        for byte in page(3)[:40]:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.5)  # under the socket timeout every time
        return None
    t0 = time.monotonic()
    result, _ = _fetch(store, settings, tmp, trickle, timeout=3.0, deadline=2.0)
    assert isinstance(result.failed["plandata"], SourceUnavailable) and "fristen på 2 s" in str(result.failed["plandata"])
    assert time.monotonic() - t0 < 12


def test_gzip_bomb_is_capped_while_reading(world) -> None:
    store, settings, tmp = world
    bomb = gzip.compress(b"<" + b" " * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    result, _ = _fetch(store, settings, tmp, _getfeature(lambda h, q: (200, {"Content-Encoding": "gzip"}, bomb)), max_mb=8.0)
    assert "større enn grensen på 8 MB" in str(result.failed["plandata"])


def test_redirect_to_another_scheme_is_refused(world) -> None:
    store, settings, tmp = world
    result, _ = _fetch(store, settings, tmp, _getfeature(lambda h, q: (302, {"Location": "file:///etc/passwd"}, b"")))
    assert "ikke er http(s)" in str(result.failed["plandata"])


def test_page_cap_is_a_setting_with_a_message(world) -> None:
    store, settings, tmp = world

    def endless(h, q):
        start = int(q.get("STARTINDEX", ["0"])[0])
        return 200, {}, page(5, offset=start)
    result, _ = _fetch(store, settings, tmp, _getfeature(endless), max_pages=4)
    assert "mer enn 4 sider" in str(result.failed["plandata"]) and "TOMTE_MAX_PAGES" in str(result.failed["plandata"])


# --- per-unit fetches -----------------------------------------------------------------------------

def _plans_and_dead_teig(tmp: Path, url: str) -> Path:
    """Sources: a kommuneplan file of 30 zones, and teig from a WFS at ``url`` that is down."""
    zones(30).to_file(tmp / "kp.geojson")
    src = tmp / "s.toml"
    src.write_text(f'[[source]]\nkommune = "3207"\nrole = "kommuneplan"\nkind = "file"\npath = "{tmp / "kp.geojson"}"\n'
                   f'[[source]]\nkommune = "3207"\nrole = "teig"\nkind = "wfs"\nurl = "{url}/teig"\ntypename = "app:Teig"\n')
    return src


def test_dead_teig_service_leaves_fresh_plans_stored_and_exits_1(world) -> None:
    store, settings, tmp = world
    with fake_server({"/teig": lambda h, q: (503, {}, b"down")}) as (url, _):
        src = _plans_and_dead_teig(tmp, url)
        settings = settings.with_(http=replace(settings.http, retries=0))
        result = pipeline.fetch_kommune(store, settings, "3207", src)
        assert result.counts["kp"] == 30 and list(result.failed) == ["teig"]
        assert store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = '3207'") == 30
        stale = pipeline.stale_units(store, "3207")
        assert [s["unit"] for s in stale] == ["teig"] and "503" in stale[0]["message"]
        out = subprocess.run([sys.executable, "-m", "tomte", "--db", str(store.path), "fetch", "--kommune", "3207", "--sources", str(src)],
                             capture_output=True, text=True, env={"TOMTE_HTTP_RETRIES": "0", "TOMTE_CACHE_DIR": str(tmp / "c"), "PATH": "",
                                                                        "TOMTE_SOURCES": str(tmp / "none.toml")})
    assert out.returncode == 1 and out.stderr.count("Feil:") == 1 and "teig" in out.stderr and "Traceback" not in out.stderr


# --- SOSI -----------------------------------------------------------------------------------------

def test_real_sosi_45_file_reads_with_geometry_codes_and_crs() -> None:
    features = read_plan_file(shared("sosi/Kjetsaa_massetak.sos"))
    rp_omrade = [f for f in features if f.feature_type == "RpOmråde"]
    formal = [f for f in features if f.feature_type == "RpArealformålOmråde"]
    assert len(rp_omrade) == 1 and len(formal) == 62 and {f.epsg for f in features} == {25832}
    to_32 = Transformer.from_crs(25833, 25832, always_xy=True)
    area_32 = shapely.transform(rp_omrade[0].geometry, lambda xy: __import__("numpy").column_stack(to_32.transform(xy[:, 0], xy[:, 1]))).area
    assert area_32 == pytest.approx(158_275, rel=2e-3)  # PROVENANCE: 158,275 m² in EPSG:25832
    union = shapely.union_all([f.geometry for f in formal])
    assert union.symmetric_difference(rp_omrade[0].geometry).area < 1.0  # the formål areas tile the plan
    _, rp, counts = to_plan_frames(features, "reguleringsplan")
    row = rp.iloc[0]
    assert (row["planid"], row["planstatus"], row["plantype"], row["vertikalniva"]) == ("202103", "2", "35", "2")
    assert row["plannavn"] == "Kjetså massetak" and counts["rp_no_status"] == 0
    assert any(f.feature_type == "RpSikringSone" for f in features)


def _sosi(body: str, koordsys: int = 23, tegnsett: str = "UTF-8", origo: str = "6600000 250000", enhet: str = "0.01") -> str:
    return (f".HODE\n..TEGNSETT {tegnsett}\n..TRANSPAR\n...KOORDSYS {koordsys}\n...ORIGO-NØ {origo}\n...ENHET {enhet}\n"
            f"..SOSI-VERSJON 4.5\n{body}.SLUTT\n")


SQUARE_WITH_HOLE = """.KURVE 1:
..OBJTYPE KpArealformålGrense
..NØ
0 0 ...KP 1
0 10000
10000 10000
10000 0
0 0 ...KP 1
.KURVE 2:
..OBJTYPE KpArealformålGrense
..NØ
2000 2000
4000 2000
4000 4000
2000 4000
2000 2000
.FLATE 3:
..OBJTYPE KpArealformålOmråde
..KPAREALFORMÅL 1110
..AREALBRUKSSTATUS 2
..OMRÅDENAVN "Ærlig Øvre Åsen"
..NASJONALAREALPLANID
...KOMM 3207
...PLANID 2019004
..IKRAFT 20190619
..REF :1 (:-2)
..NØ
5000 5000
"""


@pytest.mark.parametrize("tegnsett,codec", [("UTF-8", "utf-8"), ("ISO8859-1", "latin-1"), ("ISO8859-10", "iso8859_10"),
                                            ("DOSN8", "cp865"), ("ANSI", "cp1252")])
def test_sosi_encodings_origo_enhet_and_holes(tmp_path: Path, tegnsett: str, codec: str) -> None:
    path = tmp_path / "kp.sos"
    path.write_bytes(_sosi(SQUARE_WITH_HOLE, tegnsett=tegnsett).encode(codec))
    kp, _, _ = to_plan_frames(read_plan_file(path), "kommuneplan")
    row = kp.iloc[0]
    assert row["omradenavn"] == "Ærlig Øvre Åsen" and row["arealformal"] == "1110" and row["arealbruksstatus"] == "2"
    assert row["planid"] == "2019004"
    geom = row.geometry
    assert geom.area == pytest.approx(100 * 100 - 20 * 20)  # ENHET 0.01: 10000 units = 100 m; the hole in parentheses
    assert geom.bounds == pytest.approx((250_000, 6_600_000, 250_100, 6_600_100))  # ORIGO-NØ: north first, then east


def test_sosi_koordsys_22_is_transformed_from_utm32(tmp_path: Path) -> None:
    path = tmp_path / "kp.sos"
    path.write_text(_sosi(SQUARE_WITH_HOLE, koordsys=22, origo="6620000 600000"))
    geom = read_plan_file(path)[-1].geometry
    x, y = Transformer.from_crs(25832, 25833, always_xy=True).transform(600_000, 6_620_000)
    assert geom.exterior.coords[0] == pytest.approx((x, y), abs=0.01)  # the ring starts at ORIGO-NØ in UTM 32
    with pytest.raises(InvalidData, match="KOORDSYS 99"):
        path.write_text(_sosi(SQUARE_WITH_HOLE, koordsys=99))
        read_plan_file(path)


def test_sosi_arcs_and_reversed_curves_have_the_area_known_by_construction(tmp_path: Path) -> None:
    body = """.KURVE 1:
..NØ
0 0
0 20000
.BUEP 2:
..NØ
0 20000
10000 10000
0 0
.FLATE 3:
..OBJTYPE KpArealformålOmråde
..KPAREALFORMÅL 1110
..AREALBRUKSSTATUS 2
..REF :1 :2
..NØ
100 100
.SIRKELP 4:
..NØ
30000 0
40000 10000
30000 20000
.FLATE 5:
..OBJTYPE KpArealformålOmråde
..KPAREALFORMÅL 1130
..AREALBRUKSSTATUS 2
..REF :-4
..NØ
30000 10000
"""
    path = tmp_path / "arcs.sos"
    path.write_text(_sosi(body, origo="6600000 250000"))
    kp, _, _ = to_plan_frames(read_plan_file(path), "kommuneplan")
    half, circle = kp.geometry.iloc[0], kp.geometry.iloc[1]
    assert half.area == pytest.approx(math.pi * 100**2 / 2, rel=5e-4)  # a half disc of radius 100 m
    assert circle.area == pytest.approx(math.pi * 100**2, rel=5e-4)  # a full circle through three points


# --- CRS names and GeoJSON as GIS tools write it --------------------------------------------------

@pytest.mark.parametrize("epsg", [4326, 25833, 25832])
def test_geojson_written_by_geopandas_imports_with_the_right_geometry(world, epsg: int) -> None:
    store, _, tmp = world
    frame = zones(6).rename(columns={"arealformal": "arealformål"})
    path = tmp / f"kp_{epsg}.geojson"
    frame.to_crs(epsg).to_file(path)
    if epsg == 4326:
        assert "urn:ogc:def:crs:OGC:1.3:CRS84" in path.read_text()  # what GDAL and QGIS write
    result = pipeline.import_plans(store, "3207", path, None, force=True)
    assert result.counts["kp"] == 6
    stored = store.read_frame("SELECT AsBinary(geom) AS geom FROM kp_zones WHERE kommunenummer = '3207' ORDER BY id")
    assert stored.geometry.iloc[0].symmetric_difference(frame.geometry.iloc[0]).area < 1.0


# --- wrong place, wrong CRS, far fewer features ---------------------------------------------------

def _lonlat(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(4326)


@pytest.mark.parametrize("case,words", [
    ("lonlat_as_25833", "lengde/bredde"),
    ("utm32_as_25833", "EPSG:25832"),
    ("swapped", "byttet om"),
    ("tromso", "Tromsø"),
    ("huge", "utenfor Norge"),
])
def test_data_in_the_wrong_place_is_refused_before_anything_is_replaced(world, case: str, words: str) -> None:
    store, _, tmp = world
    good = zones(40)
    pipeline.import_plans(store, "3207", _write(good, tmp / "good.geojson"), None, force=True)
    before = snapshot(store)
    if case == "lonlat_as_25833":
        bad = good.to_crs(4326).set_crs(25833, allow_override=True)
    elif case == "utm32_as_25833":
        bad = good.to_crs(25832).set_crs(25833, allow_override=True)
    elif case == "swapped":
        bad = good.to_crs(4326)
        bad = bad.set_geometry(bad.geometry.map(lambda g: shapely.ops.transform(lambda x, y: (y, x), g)))
    elif case == "tromso":
        bad = zones(40, x0=650_000, y0=7_730_000)
    else:
        bad = good.set_geometry(good.geometry.map(lambda g: shapely.affinity.scale(g, 1e290, 1e290, origin=(0, 0))))
    with pytest.raises(InvalidData, match=words) as err:
        pipeline.import_plans(store, "3207", _write(bad, tmp / "bad.geojson"), None)
    assert "ingenting er lagret" in str(err.value)
    assert snapshot(store) == before


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path)
    return path


def test_far_fewer_features_needs_force_and_missing_codes_are_counted(world) -> None:
    store, _, tmp = world
    pipeline.import_plans(store, "3207", _write(zones(40), tmp / "big.geojson"), None, force=True)
    small = zones(10)
    small.loc[0:2, "arealformal"] = None
    with pytest.raises(InvalidData, match="under halvparten.*--force"):
        pipeline.import_plans(store, "3207", _write(small, tmp / "small.geojson"), None)
    assert store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = '3207'") == 40
    result = pipeline.import_plans(store, "3207", tmp / "small.geojson", None, force=True)
    assert result.counts["kp"] == 10 and "3 av 10 soner mangler arealformål" in result.summary()


# --- hostile and broken input: one sentence, exit 1, never a traceback --------------------------

def _hostile_files(tmp: Path) -> dict[str, bytes]:
    ring = f"{X0} {Y0} {X0 + 100} {Y0} {X0 + 100} {Y0 + 100} {X0} {Y0}"

    def gml(poslist: str, srs: str = "urn:ogc:def:crs:EPSG::25833") -> bytes:
        return (f'<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" '
                f'xmlns:app="http://x"><wfs:member><app:KpArealformålOmråde gml:id="a"><app:område><gml:Polygon srsName="{srs}">'
                f'<gml:exterior><gml:LinearRing><gml:posList>{poslist}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>'
                '</app:område><app:arealformål>1110</app:arealformål></app:KpArealformålOmråde></wfs:member></wfs:FeatureCollection>').encode()

    feature = {"type": "Feature", "properties": {"arealformål": "1110"},
               "geometry": {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 100, Y0], [X0 + 100, Y0 + 100], [X0, Y0]]]}}
    crs = {"type": "name", "properties": {"name": "EPSG:25833"}}
    sqlite = tmp / "plain.sqlite"
    import sqlite3

    with sqlite3.connect(sqlite) as conn:
        conn.execute("CREATE TABLE t (a)")
    return {
        "deep.gml": b"<a>" * 1500 + b"</a>" * 1500,
        "deep.json": b"[" * 5000 + b"]" * 5000,
        "nan.gml": gml(ring.replace(str(X0 + 100), "NaN", 1)),
        "inf.json": json.dumps({"type": "FeatureCollection", "crs": crs, "features": [
            {**feature, "geometry": {"type": "Polygon", "coordinates": [[[X0, Y0], [1e309, Y0], [X0, Y0 + 100], [X0, Y0]]]}}]}).encode(),
        "epsg.gml": gml(ring, "urn:ogc:def:crs:EPSG::99999"),
        "letters.gml": gml("a b c d e f g h"),
        "features_number.json": json.dumps({"type": "FeatureCollection", "features": 7}).encode(),
        "properties_list.json": json.dumps({"type": "FeatureCollection", "crs": crs, "features": [{**feature, "properties": [1, 2]}]}).encode(),
        "two_point_ring.gml": gml(f"{X0} {Y0} {X0 + 100} {Y0} {X0} {Y0}"),
        "geomtype.json": json.dumps({"type": "FeatureCollection", "crs": crs, "features": [{**feature, "geometry": {"type": "Blob", "coordinates": []}}]}).encode(),
        "corrupt.gpkg": b"SQLite format 3\x00" + b"\x13" * 3000,
        "plain.gpkg": sqlite.read_bytes(),
        "sosi_bad.sos": _sosi(".KURVE 1:\n..NØ\n0 0\nx y\n").encode(),
        "sosi_ref.sos": _sosi(".FLATE 1:\n..OBJTYPE KpArealformålOmråde\n..REF :7\n").encode(),
        "binary.gml": b"\x00\x01\x02garbage",
    }


def test_hostile_files_give_one_sentence_and_exit_1(world) -> None:
    store, _, tmp = world
    files = _hostile_files(tmp)
    for name, data in files.items():
        path = tmp / name
        path.write_bytes(data)
        out = subprocess.run([sys.executable, "-m", "tomte", "--db", str(store.path), "import-plans", "--kommune", "3207", "--kp", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, (name, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith("Feil: ") and "Uventet" not in out.stderr and "Traceback" not in out.stderr, (name, out.stderr)


def test_bad_environment_values_are_one_sentence(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "tomte", "--db", str(tmp_path / "x.sqlite"), "lots", "--kommune", "3207"],
                         capture_output=True, text=True, env={"TOMTE_HTTP_TIMEOUT": "tre", "PATH": ""})
    assert out.returncode == 1 and "TOMTE_HTTP_TIMEOUT" in out.stderr and "Traceback" not in out.stderr



# --- the same in the app: stale units with their age, upload errors as sentences -----------------

class _Upload:
    """What st.file_uploader hands a page: a name and the bytes."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_app_shows_a_failed_unit_as_stale_with_its_age(world, monkeypatch) -> None:
    from tests.test_app import open_page

    store, settings, tmp = world
    with fake_server({"/teig": lambda h, q: (503, {}, b"down")}) as (url, _):
        src = _plans_and_dead_teig(tmp, url)
        pipeline.fetch_kommune(store, settings.with_(http=replace(settings.http, retries=0)), "3207", src)
    store.execute("UPDATE source_state SET ok_at = '2026-01-02T03:04:05+00:00' WHERE unit = 'teig'")  # an older success
    monkeypatch.setenv("TOMTE_DB", str(store.path))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page("kommuner.py", kommune="3207")
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning if "feilet sist" in w.value]
    assert len(warnings) == 1 and warnings[0].startswith("Eiendomsgrenser (teig) feilet sist") and "503" in warnings[0]
    from datetime import date

    assert f"data fra 2026-01-02 ({(date.today() - date(2026, 1, 2)).days} dager gamle) er beholdt" in warnings[0]
    assert any("Bekreft utskifting" in c.label for c in at.checkbox)


def test_app_uploads_never_overwrite_and_bad_files_are_one_sentence(world, monkeypatch) -> None:
    from tomte.sources import registry
    from ui import state

    store, _, tmp = world
    shown: list[str] = []
    monkeypatch.setattr(state.st, "error", lambda text, **_: shown.append(text))
    kp = zones(30)
    rp = gpd.GeoDataFrame({"planidentifikasjon": ["1", "2"], "planstatus": ["3", "3"], "plannavn": ["A", "B"]},
                          geometry=[box(X0, Y0, X0 + 300, Y0 + 300), box(X0 + 600, Y0, X0 + 900, Y0 + 300)], crs=25833)
    uploads = {"kp": _Upload("plan.geojson", _write(kp, tmp / "a.geojson").read_bytes()),
               "rp": _Upload("plan.geojson", _write(rp, tmp / "b.geojson").read_bytes())}
    result = state.run_with_uploads(uploads, lambda p: pipeline.import_plans(store, "3207", p["kp"], p["rp"], force=True), "Importen")
    assert result.counts == {"kp": 30, "rp": 2} and not shown
    for name, data in _hostile_files(tmp).items():
        shown.clear()
        got = state.run_with_uploads({"kp": _Upload(name, data), "rp": None},
                                     lambda p: pipeline.import_plans(store, "3207", p["kp"], None), "Importen")
        assert got is None and len(shown) == 1 and shown[0].startswith("Importen mislyktes: "), (name, shown)
    assert store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = '3207'") == 30
    first = registry.save_upload(tmp, "3207", "kilde.gml", b"one")
    again = registry.save_upload(tmp, "3207", "kilde.gml", b"one")
    other = registry.save_upload(tmp, "3207", "../kilde.gml", b"two")
    assert first == again != other and first.read_bytes() == b"one" and other.read_bytes() == b"two"
    assert other.parent == first.parent == (tmp / "uploads" / "3207").resolve()
