"""The SpatiaLite store: migrations, geometry layers GDAL can read, WAL, append-only log."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pyogrio
import pytest
import shapely

from tomte import store as store_mod
from tomte.errors import StoreError
from tomte.store import ALL_GEOMETRY_TABLES, GEOMETRY_TABLES, open_store


def test_migrations_are_versioned_and_safe_to_run_twice(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    first = open_store(path)
    assert first.schema_version() == len(store_mod.MIGRATIONS)
    first.close()
    second = open_store(path)
    assert second.schema_version() == len(store_mod.MIGRATIONS)
    assert second.scalar("SELECT COUNT(*) FROM schema_migrations") == len(store_mod.MIGRATIONS)


def test_every_geometry_layer_opens_in_gdal_with_epsg_25833(store, tmp_path: Path) -> None:
    with store.transaction():
        store.insert_features("lots", [{"lot_id": "x", "kommunenummer": "3207"}], [shapely.box(0, 0, 100, 100)])
    # A separate process, as QGIS would be.
    code = (
        "import pyogrio, sys; p = sys.argv[1]\n"
        "for name, gtype in pyogrio.list_layers(p):\n"
        "    print(name, gtype, pyogrio.read_info(p, layer=name)['crs'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, check=True).stdout
    layers = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    for table in GEOMETRY_TABLES:
        assert layers[table] == ["MultiPolygon", "EPSG:25833"], (table, layers.get(table))
    assert layers["layers"][1] == "EPSG:25833"  # any geometry type: roads, stops, zones
    frame = pyogrio.read_dataframe(store.path, layer="lots")
    assert frame.geometry.iloc[0].area == pytest.approx(10_000)


def test_spatial_index_exists_for_each_geometry_column(store) -> None:
    for table in ALL_GEOMETRY_TABLES:
        assert store.scalar("SELECT spatial_index_enabled FROM geometry_columns WHERE f_table_name = ?", (table,)) == 1


def test_wal_and_busy_timeout_let_two_writers_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    open_store(path).close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        s = open_store(path)
        try:
            for i in range(40):
                with s.transaction() as conn:
                    conn.execute("INSERT INTO weight_profiles VALUES (?, '{}', NULL)", (f"p{n}-{i}",))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = open_store(path)
    assert s.scalar("PRAGMA journal_mode") == "wal"
    assert s.scalar("SELECT COUNT(*) FROM weight_profiles") == 80


def test_crm_log_refuses_update_and_delete(store) -> None:
    store.execute("INSERT INTO crm_events (lot_id, at, kind, note) VALUES ('a', 'now', 'notat', 'hei')")
    with pytest.raises(Exception, match="append-only"):
        store.execute("UPDATE crm_events SET note = 'endret'")
    with pytest.raises(Exception, match="append-only"):
        store.execute("DELETE FROM crm_events")


def test_missing_spatialite_is_one_sentence_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_mod, "find_spatialite", lambda: None)
    with pytest.raises(StoreError) as err:
        open_store(tmp_path / "n.sqlite")
    assert "apt-get install libsqlite3-mod-spatialite" in str(err.value)


def test_transaction_rolls_back_on_error(store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO weight_profiles VALUES ('a', '{}', NULL)")
        raise RuntimeError("boom")
    assert store.scalar("SELECT COUNT(*) FROM weight_profiles") == 0
