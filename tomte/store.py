"""The SpatiaLite store: schema, versioned migrations, geometry reads and writes.

One file holds everything. Geometry columns are real SpatiaLite ``MULTIPOLYGON`` columns in
EPSG:25833 with R*Tree spatial indexes, registered in ``geometry_columns`` so GDAL/pyogrio and
QGIS list each layer with its CRS. The connection uses WAL and a busy timeout so two browser
tabs writing at once wait for each other instead of failing with "database is locked".

Python's own ``sqlite3`` often cannot load extensions (pyenv builds); sqlite-utils picks up
``pysqlite3`` (from ``pysqlite3-binary``) automatically, and we load ``mod_spatialite`` into it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio  # noqa: F401  GDAL must be loaded before mod_spatialite, or GDAL segfaults later
import shapely
import sqlite_utils
from shapely.geometry.base import BaseGeometry
from sqlite_utils.utils import find_spatialite

from tomte.errors import StoreError

SRID = 25833
FIX_SPATIALITE = "sudo apt-get install libsqlite3-mod-spatialite"

GEOMETRY_TABLES = ("kommuner", "kp_zones", "rp_areas", "lots", "parcels", "constraint_areas")
ALL_GEOMETRY_TABLES = (*GEOMETRY_TABLES, "layers")


def now() -> str:
    """Current UTC time as an ISO 8601 string (second precision)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- migrations -----------------------------------------------------------------------------
# Each migration is (version, sql statements, geometry columns to add). Applied once, in order,
# each in its own transaction; the version is recorded in ``schema_migrations``.

_M1_SQL = """
CREATE TABLE kommuner (
    kommunenummer TEXT PRIMARY KEY, navn TEXT NOT NULL, fylkesnummer TEXT);
CREATE TABLE kommune_alias (
    alias TEXT PRIMARY KEY, kommunenummer TEXT NOT NULL, note TEXT);
CREATE TABLE sources (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, role TEXT NOT NULL, kind TEXT NOT NULL,
    url TEXT, path TEXT, typename TEXT, collection TEXT, options TEXT DEFAULT '{}',
    added_at TEXT, UNIQUE (kommunenummer, role, kind, url, path, typename, collection));
CREATE TABLE fetch_runs (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    ok INTEGER, message TEXT, counts TEXT DEFAULT '{}');
CREATE TABLE plan_data_state (
    kommunenummer TEXT PRIMARY KEY, kp_source TEXT, rp_source TEXT, kp_count INTEGER,
    rp_count INTEGER, updated_at TEXT, newest_data_date TEXT, synthetic INTEGER DEFAULT 0);
CREATE TABLE kp_zones (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, zone_key TEXT NOT NULL,
    feature_type TEXT, regime TEXT, arealformal TEXT, arealbruksstatus TEXT, planid TEXT,
    plannavn TEXT, omradenavn TEXT, beskrivelse TEXT, utnyttingstype TEXT, utnyttingstall REAL,
    oppdateringsdato TEXT, repaired INTEGER DEFAULT 0, source TEXT, synthetic INTEGER DEFAULT 0);
CREATE INDEX kp_zones_kommune ON kp_zones (kommunenummer);
CREATE TABLE rp_areas (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, area_key TEXT NOT NULL, planid TEXT,
    plannavn TEXT, planstatus TEXT, plantype TEXT, vertikalniva TEXT, ikrafttredelsesdato TEXT,
    oppdateringsdato TEXT, repaired INTEGER DEFAULT 0, source TEXT, synthetic INTEGER DEFAULT 0);
CREATE INDEX rp_areas_kommune ON rp_areas (kommunenummer);
CREATE TABLE lots (
    lot_id TEXT PRIMARY KEY, kommunenummer TEXT NOT NULL, zone_key TEXT, arealformal TEXT,
    arealbruksstatus TEXT, regime TEXT, area_m2 REAL, flags TEXT DEFAULT '',
    explanation TEXT DEFAULT '{}', score REAL, tier TEXT, score_detail TEXT DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'Ny', active INTEGER NOT NULL DEFAULT 1, archived_at TEXT,
    archived_reason TEXT, created_at TEXT, updated_at TEXT, synthetic INTEGER DEFAULT 0);
CREATE INDEX lots_kommune ON lots (kommunenummer, active);
CREATE TABLE lot_lineage (
    old_lot_id TEXT NOT NULL, new_lot_id TEXT NOT NULL, moved_at TEXT, overlap_share REAL,
    PRIMARY KEY (old_lot_id, new_lot_id));
CREATE TABLE parcels (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, matrikkelnummer TEXT NOT NULL,
    gnr INTEGER, bnr INTEGER, fnr INTEGER DEFAULT 0, snr INTEGER DEFAULT 0, areal_m2 REAL,
    teig_id TEXT, source TEXT, synthetic INTEGER DEFAULT 0);
CREATE INDEX parcels_kommune ON parcels (kommunenummer, gnr, bnr);
CREATE TABLE lot_parcels (
    lot_id TEXT NOT NULL, parcel_id INTEGER NOT NULL, overlap_m2 REAL, share REAL,
    PRIMARY KEY (lot_id, parcel_id));
CREATE TABLE owners (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, gnr INTEGER, bnr INTEGER,
    fnr INTEGER DEFAULT 0, snr INTEGER DEFAULT 0, name TEXT NOT NULL, kind TEXT,
    address TEXT, share TEXT, source TEXT, reserved INTEGER DEFAULT 0, created_at TEXT);
CREATE TABLE owner_lookups (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, lot_id TEXT, basis TEXT NOT NULL,
    parcels INTEGER, outcome TEXT);
CREATE TABLE crm_events (
    id INTEGER PRIMARY KEY, lot_id TEXT NOT NULL, at TEXT NOT NULL, who TEXT, kind TEXT NOT NULL,
    old_status TEXT, new_status TEXT, note TEXT);
CREATE INDEX crm_events_lot ON crm_events (lot_id);
CREATE TRIGGER crm_events_no_update BEFORE UPDATE ON crm_events
    BEGIN SELECT RAISE(ABORT, 'crm_events is append-only'); END;
CREATE TRIGGER crm_events_no_delete BEFORE DELETE ON crm_events
    BEGIN SELECT RAISE(ABORT, 'crm_events is append-only'); END;
CREATE TABLE weight_profiles (name TEXT PRIMARY KEY, weights TEXT NOT NULL, saved_at TEXT);
CREATE TABLE political_will (kommunenummer TEXT PRIMARY KEY, score REAL, note TEXT);
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY, started_at TEXT, finished_at TEXT, kommuner TEXT, ok INTEGER,
    report TEXT);
CREATE TABLE constraint_areas (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, layer TEXT NOT NULL, name TEXT,
    source TEXT);
"""

_M2_SQL = """
CREATE TABLE layers (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, role TEXT NOT NULL, layer TEXT NOT NULL,
    name TEXT, code TEXT, value REAL, source TEXT, synthetic INTEGER DEFAULT 0);
CREATE INDEX layers_kommune ON layers (kommunenummer, role, layer);
CREATE TABLE lot_addresses (
    lot_id TEXT PRIMARY KEY, adressetekst TEXT, postnummer TEXT, poststed TEXT, distance_m REAL,
    fetched_at TEXT, synthetic INTEGER DEFAULT 0);
CREATE TABLE ssb_values (
    table_id TEXT NOT NULL, region TEXT NOT NULL, contents TEXT NOT NULL, period TEXT NOT NULL,
    value REAL, status TEXT, fetched_at TEXT, synthetic INTEGER DEFAULT 0,
    PRIMARY KEY (table_id, region, contents, period));
CREATE TABLE lot_features (
    lot_id TEXT PRIMARY KEY, features TEXT NOT NULL DEFAULT '{}', computed_at TEXT);
CREATE TABLE layer_state (
    kommunenummer TEXT NOT NULL, role TEXT NOT NULL, layer TEXT NOT NULL, features INTEGER, source TEXT,
    updated_at TEXT, PRIMARY KEY (kommunenummer, role, layer));
"""

_M3_SQL = """
CREATE TABLE outreach (
    id INTEGER PRIMARY KEY, lot_id TEXT NOT NULL, owner_id INTEGER NOT NULL, step INTEGER NOT NULL,
    action TEXT NOT NULL, due TEXT NOT NULL, done_at TEXT);
CREATE INDEX outreach_due ON outreach (done_at, due);
"""

_M4_SQL = """
CREATE TABLE sync_items (
    run_id INTEGER NOT NULL, kommunenummer TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    message TEXT, changes TEXT DEFAULT '{}', PRIMARY KEY (run_id, kommunenummer));
"""

# Indexes on every join key of the hot paths (issue 14): without ``kp_zones_key``, scoring scanned
# every zone, geometry blob included, once per lot.
_M5_SQL = """
CREATE INDEX IF NOT EXISTS kp_zones_key ON kp_zones (kommunenummer, zone_key);
CREATE INDEX IF NOT EXISTS lot_lineage_new ON lot_lineage (new_lot_id);
CREATE INDEX IF NOT EXISTS lot_parcels_parcel ON lot_parcels (parcel_id);
CREATE INDEX IF NOT EXISTS owners_parcel ON owners (kommunenummer, gnr, bnr, fnr, snr);
CREATE INDEX IF NOT EXISTS outreach_owner ON outreach (owner_id);
CREATE INDEX IF NOT EXISTS outreach_lot ON outreach (lot_id);
CREATE INDEX IF NOT EXISTS rp_areas_status ON rp_areas (kommunenummer, planstatus);
"""

# Nothing lost, nothing wrong in silence (issues 12 and 13):
# * source_state: per kommune and fetch unit, the last attempt and the last success, so a failed
#   unit keeps its data and is shown as stale with its age;
# * data_versions: every replacement of a kommune's plan data (who, what, counts), so an archived
#   lot says which change archived it;
# * changes: the durable change log written in the same transaction as the analysis; sync reports
#   and notifications are built from it, so a crashed sync loses nothing;
# * notifications: an outbox, so a message is sent once even when the sender dies.
_M6_SQL = """
CREATE TABLE source_state (
    kommunenummer TEXT NOT NULL, unit TEXT NOT NULL, ok INTEGER NOT NULL, message TEXT, tried_at TEXT,
    ok_at TEXT, PRIMARY KEY (kommunenummer, unit));
CREATE TABLE data_versions (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, at TEXT NOT NULL, layers TEXT NOT NULL,
    source TEXT, counts TEXT DEFAULT '{}');
CREATE INDEX data_versions_kommune ON data_versions (kommunenummer, id);
ALTER TABLE lots ADD COLUMN archived_version INTEGER;
CREATE TABLE changes (
    id INTEGER PRIMARY KEY, kommunenummer TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    lot_id TEXT, detail TEXT DEFAULT '{}');
CREATE INDEX changes_kommune ON changes (kommunenummer, id);
ALTER TABLE sync_runs ADD COLUMN changes_from INTEGER;
ALTER TABLE sync_runs ADD COLUMN changes_to INTEGER;
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY, run_id INTEGER, created_at TEXT NOT NULL, items TEXT NOT NULL, sent_at TEXT,
    channels TEXT);
"""

# 7: the plan register link of a reguleringsplan (NAP's ``link``, e.g. arealplaner.no), for the map panel (issue 15).
_M7_SQL = """
ALTER TABLE rp_areas ADD COLUMN link TEXT;
"""

Migration = tuple[int, str, Sequence[tuple[str, str]]]
MIGRATIONS: list[Migration] = [
    (1, _M1_SQL, [(t, "MULTIPOLYGON") for t in GEOMETRY_TABLES]),
    (2, _M2_SQL, [("layers", "GEOMETRY")]),
    (3, _M3_SQL, []),
    (4, _M4_SQL, []),
    (5, _M5_SQL, []),
    (6, _M6_SQL, []),
    (7, _M7_SQL, []),
]


def _load_spatialite(conn: Any) -> None:
    path = find_spatialite()
    if path is None:
        raise StoreError(f"SpatiaLite er ikke installert; kjør `{FIX_SPATIALITE}`.")
    try:
        conn.enable_load_extension(True)
        conn.load_extension(path)
    except AttributeError as exc:
        raise StoreError(
            "Denne Pythonen kan ikke laste SQLite-utvidelser; kjør `.venv/bin/pip install pysqlite3-binary`.",
            detail=str(exc),
        ) from exc
    except Exception as exc:  # sqlite's OperationalError, from whichever sqlite module
        raise StoreError(f"SpatiaLite kunne ikke lastes; kjør `{FIX_SPATIALITE}`.", detail=str(exc)) from exc


class Store:
    """A SpatiaLite database with tomte's schema.

    Use :func:`open_store`. ``store.db`` is the :class:`sqlite_utils.Database`; ``store.conn``
    its DB-API connection. Writes that must be atomic go through :meth:`transaction`.
    """

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.conn = db.conn
        self.path = path
        self._lock = threading.RLock()

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Run a block atomically: everything or nothing is written.

        Transactions nest by joining: an inner block is part of the outer transaction, and an
        exception in it rolls back the whole (``analyse`` writes lots, history moves, features
        and scores as one, issue 13). **Decision:** not savepoints. Inside a savepoint, SQLite
        keeps a statement journal that every row of a trigger-carrying insert (every geometry
        table) truncates from its start, so writing n lots cost O(n²): 4 of 13 s of ``analyse``
        on 10,000 zones, found with py-spy (issue 14).
        """
        with self._lock:
            if self.conn.in_transaction:
                yield self.conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Execute one statement (autocommit)."""
        return self.conn.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """First column of the first row, or None."""
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # -- geometry --------------------------------------------------------------------------
    def insert_features(
        self, table: str, records: Sequence[dict[str, Any]], geoms: Sequence[BaseGeometry | None]
    ) -> None:
        """Insert rows with a geometry each (EPSG:25833); call inside :meth:`transaction`.

        Polygon tables get MultiPolygons; ``layers`` takes any geometry type as it is.
        """
        if not records:
            return
        cols = list(records[0])
        placeholders = ", ".join("?" for _ in cols)
        cast = "GeomFromWKB(?, {srid})" if table == "layers" else "CastToMultiPolygon(GeomFromWKB(?, {srid}))"
        sql = f"INSERT INTO {table} ({', '.join(cols)}, geom) VALUES ({placeholders}, {cast.format(srid=SRID)})"
        wkbs = shapely.to_wkb(list(geoms) if table == "layers" else as_multipolygons(geoms))
        self.conn.executemany(
            sql, ([*(rec.get(c) for c in cols), wkb] for rec, wkb in zip(records, wkbs, strict=True))
        )

    def read_frame(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> gpd.GeoDataFrame:
        """Run a query that selects ``AsBinary(geom) AS geom`` and return a GeoDataFrame."""
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        frame = pd.DataFrame.from_records(cur.fetchall(), columns=names)
        geoms = shapely.from_wkb(frame.pop("geom").to_numpy()) if len(frame) else []
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)

    # -- key/value state -------------------------------------------------------------------
    def schema_version(self) -> int:
        """Highest applied migration."""
        return int(self.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0)

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables, for the overview."""
        tables = ["kommuner", "kp_zones", "rp_areas", "parcels", "owners", "crm_events", "sync_runs"]
        out = {t: int(self.scalar(f"SELECT COUNT(*) FROM {t}")) for t in tables}
        out["lots"] = int(self.scalar("SELECT COUNT(*) FROM lots WHERE active = 1"))
        out["lots_archived"] = int(self.scalar("SELECT COUNT(*) FROM lots WHERE active = 0"))
        return out


def crash_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when ``TOMTE_CRASH_AT`` names this point (fault-injection tests)."""
    if os.environ.get("TOMTE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def as_multipolygons(geoms: Iterable[BaseGeometry | None]) -> Any:
    """Polygonal geometries as MultiPolygons (non-polygonal parts dropped)."""
    out = []
    for geom in geoms:
        if geom is None or geom.is_empty:
            out.append(shapely.MultiPolygon())
        elif geom.geom_type == "MultiPolygon":
            out.append(geom)
        elif geom.geom_type == "Polygon":
            out.append(shapely.MultiPolygon([geom]))
        else:
            parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
            polys = [p for g in parts for p in shapely.get_parts(g)]
            out.append(shapely.MultiPolygon(polys))
    return out


def _migrate(store: Store) -> None:
    conn = store.conn
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spatial_ref_sys'").fetchone():
        with store.transaction():
            conn.execute("SELECT InitSpatialMetadata(0, 'NONE')")
            for srid in (SRID, 4326, 4258, 25832, 25835):
                conn.execute("SELECT InsertEpsgSrid(?)", (srid,))
    applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    for version, sql, geometry_columns in MIGRATIONS:
        if version in applied:
            continue
        with store.transaction():
            for statement in _split_sql(sql):
                conn.execute(statement)
            for table, geom_type in geometry_columns:
                ok = conn.execute(
                    "SELECT AddGeometryColumn(?, 'geom', ?, ?, 'XY')", (table, SRID, geom_type)
                ).fetchone()[0]
                if not ok:
                    raise StoreError(f"Kunne ikke lage geometrikolonnen {table}.geom.")
                conn.execute("SELECT CreateSpatialIndex(?, 'geom')", (table,))
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, now()))


def _split_sql(sql: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    statements, buf = [], []
    for line in sql.strip().splitlines():
        buf.append(line)
        text = "\n".join(buf).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.upper().endswith("END;")):
            statements.append(text)
            buf = []
    return statements


def open_store(path: str | Path | None, create: bool = True, busy_timeout_s: float = 30.0) -> Store:
    """Open (and migrate) the store at ``path``; ``None`` opens an in-memory store.

    ``busy_timeout_s`` is how long a write waits for another writer (the app, a sync worker)
    before it fails with "database is locked".

    Raises
    ------
    StoreError
        SpatiaLite is missing, the file is not a database, or ``create`` is false and the
        file does not exist.
    """
    file = Path(path) if path is not None else None
    if file is not None and not create and not file.exists():
        raise StoreError(f"Databasen {file} finnes ikke; lag demo-databasen med `make demo` eller `python -m tomte --db {file} demo`.")
    try:
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite_utils.Database(file)
        else:
            db = sqlite_utils.Database(memory=True)
        # Autocommit mode: we manage transactions explicitly with BEGIN IMMEDIATE.
        db.conn.isolation_level = None
        db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if file is not None:
            db.conn.execute("PRAGMA journal_mode = WAL")
        db.conn.execute("PRAGMA foreign_keys = ON")
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"Kunne ikke åpne databasen {file}: {exc}.", detail=repr(exc)) from exc
    _load_spatialite(db.conn)
    store = Store(db, file)
    try:
        _migrate(store)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"Databasen {file} kunne ikke oppgraderes: {exc}.", detail=repr(exc)) from exc
    return store


def dumps(value: Any) -> str:
    """JSON for storage (UTF-8, compact)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def loads(text: str | None, default: Any = None) -> Any:
    """Inverse of :func:`dumps`, tolerating NULL."""
    if not text:
        return default
    return json.loads(text)
