"""Fetching from services: real MapServer WFS, a faulty server, OGC API paging, the registry, the cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import box

from tests.servers import fake_server, hanging, mapserv_available, mapserver_wfs, sequence, truncated
from tomte import crm, kommuner, pipeline
from tomte.config import HttpSettings, Settings
from tomte.errors import BadResponse, InvalidData, SourceUnavailable
from tomte.sources import registry
from tomte.sources._http import Http

X0, Y0 = 266_000, 6_628_000  # inside Nordre Follo (3207): the fetch checks the place
CAPS = """<?xml version="1.0"?><wfs:WFS_Capabilities xmlns:wfs="http://www.opengis.net/wfs/2.0" version="2.0.0">
<wfs:FeatureTypeList><wfs:FeatureType><wfs:Name>app:KpArealformalOmrade</wfs:Name>
<wfs:DefaultCRS>urn:ogc:def:crs:EPSG::25833</wfs:DefaultCRS></wfs:FeatureType></wfs:FeatureTypeList></wfs:WFS_Capabilities>"""
EXCEPTION = b"""<?xml version="1.0"?><ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0">
<ows:Exception exceptionCode="NoApplicableCode"><ows:ExceptionText>Database unavailable</ows:ExceptionText></ows:Exception></ows:ExceptionReport>"""


def page(n: int, offset: int = 0) -> bytes:
    members = "".join(
        f'<wfs:member><app:KpArealformalOmrade gml:id="z{i}"><app:område><gml:Polygon srsName="urn:ogc:def:crs:EPSG::25833">'
        f"<gml:exterior><gml:LinearRing><gml:posList>{X0 + i * 300} {Y0} {X0 + i * 300 + 250} {Y0} {X0 + i * 300 + 250} {Y0 + 250} "
        f"{X0 + i * 300} {Y0} </gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></app:område>"
        "<app:arealformål>1110</app:arealformål><app:arealbruksstatus>2</app:arealbruksstatus></app:KpArealformalOmrade></wfs:member>"
        for i in range(offset, offset + n))
    return (f'<?xml version="1.0" encoding="UTF-8"?><wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
            f'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="http://example.invalid/app" numberMatched="unknown" '
            f'numberReturned="0">{members}</wfs:FeatureCollection>').encode()


class Sleeps(list):
    """A fake sleep that records how long tomte asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def world(store, tmp_path: Path):
    """Store with kommuner and previous plan data for 3207, plus a lot with analyst data."""
    kommuner.load_kommuner(store)
    kp_file = tmp_path / "old_kp.geojson"
    gpd.GeoDataFrame({"arealformål": ["1110"], "arealbruksstatus": ["2"]}, geometry=[box(X0, Y0, X0 + 500, Y0 + 500)], crs=25833).to_file(kp_file)
    pipeline.import_plans(store, "3207", kp_file, None)
    settings = Settings.from_env(store.path).with_(sources_file=tmp_path / "none.toml",
                                                    http=HttpSettings(cache_dir=tmp_path / "cache", retries=2, backoff=0.01, timeout=1.0, rate_per_host=1000))
    pipeline.analyse(store, settings, "3207")
    lot = store.scalar("SELECT lot_id FROM lots")
    crm.set_status(store, lot, "Vurderes", "Se på adkomst", "test")
    return store, settings, tmp_path


def snapshot(store) -> tuple:
    return (store.rows("SELECT zone_key, hex(AsBinary(geom)) g FROM kp_zones ORDER BY id"),
            store.rows("SELECT lot_id, status, active FROM lots ORDER BY lot_id"),
            store.rows("SELECT lot_id, kind, note FROM crm_events ORDER BY id"))


def sources_toml(path: Path, url: str, typename: str = "app:KpArealformalOmrade", page_size: int = 5, **extra: str) -> Path:
    extra_lines = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    path.write_text(f'[[source]]\nkommune = "3207"\nrole = "kommuneplan"\nkind = "wfs"\nurl = "{url}"\n'
                    f'typename = "{typename}"\npage_size = {page_size}\n{extra_lines}')
    return path


def wfs_routes(getfeature) -> dict:
    def route(h, q):
        if q.get("REQUEST", [""])[0] == "GetCapabilities":
            return 200, {"Content-Type": "text/xml"}, CAPS.encode()
        return getfeature(h, q)
    return {"/wfs": route}


@pytest.mark.skipif(not mapserv_available(), reason="mapserver-bin is not installed (make test installs it)")
def test_real_mapserver_wfs_fetched_completely_through_paging(world) -> None:
    store, settings, tmp = world
    data = tmp / "kp.geojson"
    rows = [{"zone_id": i, "arealformal": "1110" if i % 2 == 0 else "5100", "arealbruksstatus": "2"} for i in range(23)]
    gpd.GeoDataFrame(rows, geometry=[box(X0 + i * 300, Y0, X0 + i * 300 + 250, Y0 + 250) for i in range(23)], crs=25833).to_file(data)
    with mapserver_wfs(data, "KpArealformalOmrade", (X0 - 1000, Y0 - 1000, X0 + 8000, Y0 + 1000), tmp) as (url, server):
        src = sources_toml(tmp / "s.toml", url, "KpArealformalOmrade", page_size=5)
        progress: list[str] = []
        result = pipeline.fetch_kommune(store, settings, "3207", src, progress=progress.append)
        assert result.counts["kp"] == 23
        assert server.hits["/wfs"] == 1 + 1 + 5  # capabilities, RESULTTYPE=hits, pages of 5, 5, 5, 5, 3
        assert sum("side" in p for p in progress) == 5
        zones = store.rows("SELECT zone_key, arealformal FROM kp_zones WHERE kommunenummer = '3207'")
        assert len({z["zone_key"] for z in zones}) == 23
        assert sorted({z["arealformal"] for z in zones}) == ["1110", "5100"]
        # Within the cache's max age a second fetch makes no request; --refresh asks again.
        again = pipeline.fetch_kommune(store, settings, "3207", src)
        assert again.requests == 0 and server.hits["/wfs"] == 7
        pipeline.fetch_kommune(store, settings, "3207", src, refresh=True)
        assert server.hits["/wfs"] == 14


def test_503_twice_then_ok_is_retried(world) -> None:
    store, settings, tmp = world
    sleeps = Sleeps()
    ok = (200, {"Content-Type": "text/xml"}, page(3))
    with fake_server(wfs_routes(sequence((503, {}, b"busy"), (503, {}, b"busy"), ok))) as (url, _):
        http = Http(settings.http, sleep=sleeps)
        result = pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url + "/wfs"), http=http)
    assert result.counts["kp"] == 3
    assert sleeps[:2] == [0.01, 0.02]  # exponential back-off


def test_429_honours_retry_after(world) -> None:
    store, settings, tmp = world
    sleeps = Sleeps()
    with fake_server(wfs_routes(sequence((429, {"Retry-After": "7"}, b""), (200, {}, page(2))))) as (url, _):
        pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url + "/wfs"), http=Http(settings.http, sleep=sleeps))
    assert 7.0 in sleeps


@pytest.mark.parametrize(("route", "error", "words"), [
    (sequence((200, {"Content-Type": "text/xml"}, EXCEPTION)), BadResponse, "NoApplicableCode"),
    (truncated(page(4)), SourceUnavailable, "avbrutt"),
    (sequence((200, {}, page(4)[:-60])), BadResponse, "avkuttet"),
    (hanging(3.0), SourceUnavailable, "tidsavbrudd"),
    (sequence((200, {}, page(0))), BadResponse, "ingen objekter"),
    (sequence((500, {}, b"oops")), SourceUnavailable, "svarer ikke"),
    (sequence((404, {}, b"not here")), BadResponse, "HTTP 404"),
])
def test_failures_leave_the_store_unchanged(world, route, error, words: str) -> None:
    store, settings, tmp = world
    settings = settings.with_(http=replace(settings.http, timeout=0.5, retries=1))
    before = snapshot(store)
    with fake_server(wfs_routes(route)) as (url, _):
        result = pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url + "/wfs"), http=Http(settings.http, sleep=Sleeps()))
    err = result.failed["plandata"]
    assert isinstance(err, error) and not result.ok
    assert words in str(err)
    assert "3207" in str(err)  # names the kommune/source
    assert snapshot(store) == before
    assert store.rows("SELECT ok FROM fetch_runs ORDER BY id DESC LIMIT 1") == [{"ok": 0}]


def test_one_failing_source_keeps_the_other_from_being_stored(world) -> None:
    store, settings, tmp = world
    before = snapshot(store)
    good = tmp / "rp.geojson"
    gpd.GeoDataFrame({"objekttypenavn": ["RpOmråde"], "planstatus": ["3"]}, geometry=[box(X0, Y0, X0 + 100, Y0 + 100)], crs=25833).to_file(good)
    with fake_server(wfs_routes(sequence((200, {}, EXCEPTION)))) as (url, _):
        src = sources_toml(tmp / "s.toml", url + "/wfs")
        src.write_text(src.read_text() + f'\n[[source]]\nkommune = "3207"\nrole = "reguleringsplan"\nkind = "file"\npath = "{good}"\n')
        result = pipeline.fetch_kommune(store, settings, "3207", src, http=Http(settings.http, sleep=Sleeps()))
    assert isinstance(result.failed["plandata"], BadResponse)  # kommuneplan and reguleringsplan are one unit
    assert snapshot(store) == before
    assert store.scalar("SELECT COUNT(*) FROM rp_areas") == 0


def test_capabilities_without_the_type_is_a_clear_error(world) -> None:
    store, settings, tmp = world
    with fake_server(wfs_routes(sequence((200, {}, page(1))))) as (url, _):
        result = pipeline.fetch_kommune(store, settings, "3207", sources_toml(tmp / "s.toml", url + "/wfs", "app:Feil"), http=Http(settings.http))
    assert isinstance(result.failed["plandata"], BadResponse) and "objekttypen app:Feil" in str(result.failed["plandata"])


def test_ogc_api_pages_by_next_links_with_api_key(world, monkeypatch) -> None:
    store, settings, tmp = world
    seen_keys = []

    def items(h, q):
        seen_keys.append(h.headers.get("X-API-Key"))
        start = int(q.get("offset", ["0"])[0])
        feats = [{"type": "Feature", "properties": {"arealformål": "1130", "arealbruksstatus": "2", "identifikasjon.lokalId": f"z{i}"},
                  "geometry": shapely.geometry.mapping(box(X0 + i * 300, Y0, X0 + i * 300 + 250, Y0 + 250))} for i in range(start, min(start + 4, 10))]
        doc = {"type": "FeatureCollection", "features": feats, "links": []}
        if start + 4 < 10:
            doc["links"].append({"rel": "next", "href": f"{base}/collections/kparealformalomrade/items?offset={start + 4}&crs=x"})
        return 200, {"Content-Type": "application/geo+json", "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/25833>"}, json.dumps(doc).encode()

    with fake_server({"/collections/kparealformalomrade/items": items}) as (base, server):
        toml = tmp / "o.toml"
        toml.write_text(f'[[source]]\nkommune = "3207"\nrole = "kommuneplan"\nkind = "ogcapi"\nurl = "{base}"\n'
                        'collection = "kparealformalomrade"\napi_key_env = "TEST_NAP_KEY"\npage_size = 4\n')
        missing_key = pipeline.fetch_kommune(store, settings, "3207", toml).failed["plandata"]
        assert isinstance(missing_key, InvalidData) and "TEST_NAP_KEY" in str(missing_key)
        monkeypatch.setenv("TEST_NAP_KEY", "hemmelig")
        result = pipeline.fetch_kommune(store, settings, "3207", toml)
    assert result.counts["kp"] == 10 and server.hits["/collections/kparealformalomrade/items"] == 3
    assert seen_keys == ["hemmelig"] * 3


def test_registry_precedence_and_validation(store, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.toml"
    shipped.write_text('[[source]]\nkommune = "3207"\nrole = "teig"\nkind = "wfs"\nurl = "https://a"\ntypename = "app:Teig"\n'
                       '[[source]]\nkommune = "3207"\nrole = "kommuneplan"\nkind = "wfs"\nurl = "https://a"\ntypename = "x"\n')
    extra = tmp_path / "extra.toml"
    extra.write_text('[[source]]\nkommune = "3207"\nrole = "kommuneplan"\nkind = "file"\npath = "kp.gml"\n')
    merged = registry.merged(shipped, store, extra)
    assert [(s.role, s.kind) for s in merged] == [("teig", "wfs"), ("kommuneplan", "file")]
    assert merged[1].path == str(tmp_path / "kp.gml")
    registry.add_source(store, registry.parse_source({"kommune": "3207", "role": "teig", "kind": "wfs", "url": "https://b", "typename": "app:Teig"}, "app"))
    assert [s.url for s in registry.merged(shipped, store) if s.role == "teig"] == ["https://b"]
    for bad, words in [({"kommune": 3207, "role": "x", "kind": "ftp", "url": "u"}, "kind"),
                       ({"kommune": "Oslo", "role": "x", "kind": "wfs"}, "kommunenummer"),
                       ({"kommune": "3207", "role": "x", "kind": "wfs", "url": "u"}, "typename"),
                       ({"kommune": "3207", "role": "x", "kind": "wfs", "url": "u", "typename": "t", "colour": 1}, "ukjente")]:
        with pytest.raises(InvalidData, match=words):
            registry.parse_source(bad, "test")


def test_shipped_sources_file_is_valid() -> None:
    from tomte.config import DATA_DIR

    sources = registry.load_file(DATA_DIR / "sources.toml")
    assert {s.kommune for s in sources} >= {"3207", "3218", "3212"}


def test_rate_limit_spaces_requests_per_host(tmp_path: Path) -> None:
    sleeps = Sleeps()
    with fake_server({"/x": sequence((200, {}, b"ok"))}) as (url, _):
        http = Http(HttpSettings(cache_dir=tmp_path / "c", rate_per_host=2.0), sleep=sleeps)
        for i in range(3):
            http.get(f"{url}/x?i={i}", "test")
    # Slots are reserved 0.5 s apart; the fake sleep does not pass time, so waits add up.
    assert len(sleeps) == 2 and 0.4 < sleeps[0] <= 0.5 and 0.9 < sleeps[1] <= 1.0


def test_discovery_proposes_plan_types_of_wfs_services_found(store, tmp_path: Path, capsys) -> None:
    kommuner.load_kommuner(store)
    caps = CAPS.replace("app:KpArealformalOmrade", "app:KpArealformalOmrade</wfs:Name></wfs:FeatureType>"
                        "<wfs:FeatureType><wfs:Name>app:RpOmrade</wfs:Name></wfs:FeatureType><wfs:FeatureType><wfs:Name>app:Veg")

    def search(h, q):
        assert q["text"] == ["Nordre Follo plan"] and q["facets[0]value"] == ["service"]
        doc = {"NumFound": 2, "Results": [
            {"Uuid": "1", "Title": "Nordre Follo kommune plandata WFS", "Organization": "Nordre Follo kommune", "Type": "service",
             "DistributionProtocol": "OGC:WFS", "DistributionUrl": f"{base}/wfs?service=WFS&request=GetCapabilities"},
            {"Uuid": "2", "Title": "Bergen plan", "Organization": "Bergen kommune", "DistributionProtocol": "OGC:WFS", "DistributionUrl": f"{base}/other"}]}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    with fake_server({"/api/search": search, "/wfs": sequence((200, {}, caps.encode()))}) as (base, server):
        from tomte.cli import main

        code = main(["--db", str(store.path), "discover", "--kommune", "3207", "--kartkatalog", f"{base}/api/search"])
    out = capsys.readouterr().out
    assert code == 0 and server.hits["/other"] == 0
    assert 'typename = "app:KpArealformalOmrade"' in out and 'role = "kommuneplan"' in out
    assert 'typename = "app:RpOmrade"' in out and 'role = "reguleringsplan"' in out and "Veg" not in out
    entries = registry.load_file(_write(tmp_path / "proposed.toml", out))
    assert {s.role for s in entries} == {"kommuneplan", "reguleringsplan"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
