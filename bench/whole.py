"""Whole-process benchmark (issue 14): the commands a user runs, each timed as its own process.

A generated kommune of N kommuneplan zones gets, in proportion, 1.27 N reguleringsplan areas
(the ratio of the test kommuner in issue 14), parcels over the housing zones, constraint and
infrastructure layers and grunnkretser. tomte stores no buildings, so none are generated. The
zones lie inside a real kommune's boundary on a grid scaled to fit, so every place check of
``import-plans`` runs as it does on real data.

Timed, each as ``python -m tomte …`` in a fresh process (seconds and peak RSS from ``wait4``):
``import-plans`` (both files), ``analyse`` (first run), ``analyse`` again (the nightly case:
same data, every lot kept), ``export --format gpkg`` and ``export --format csv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from bench.data import blob

HOUSING = [("1110", 0.45), ("1130", 0.15), ("2010", 0.1), ("5100", 0.15), ("1001", 0.05), ("3040", 0.1)]
KP_STATUS = [("2", 0.6), ("3", 0.25), ("1", 0.15)]
PLANSTATUS = [("3", 0.85), ("2", 0.06), ("1", 0.04), ("6", 0.03), ("8", 0.02)]
LEVEL = [("2", 0.95), ("1", 0.03), ("3", 0.02)]
ROOT = Path(__file__).resolve().parent.parent


def _pick(rng: np.random.Generator, table: list[tuple[str, float]], n: int) -> np.ndarray:
    values, weights = zip(*table, strict=True)
    return rng.choice(np.array(values, dtype=object), size=n, p=np.array(weights) / sum(weights))


def _grid(boundary, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """n grid points inside the boundary, the most compact set around its middle; the grid step."""
    step = float(min(200.0, np.sqrt(boundary.area * 0.45 / n)))
    minx, miny, maxx, maxy = boundary.bounds
    xs, ys = np.meshgrid(np.arange(minx + step / 2, maxx, step), np.arange(miny + step / 2, maxy, step))
    xs, ys = xs.ravel(), ys.ravel()
    shapely.prepare(boundary)
    inside = shapely.contains_xy(boundary, xs, ys)
    xs, ys = xs[inside], ys[inside]
    if len(xs) < n:
        raise ValueError(f"only {len(xs)} grid points inside the boundary, {n} wanted")
    centre = boundary.representative_point()
    order = np.argsort(np.hypot(xs - centre.x, ys - centre.y), kind="stable")[:n]
    pts = np.column_stack([xs[order], ys[order]]) + rng.normal(0, step * 0.07, (n, 2))
    return pts, step


def _layer(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, columns=["name", "code", "value"], geometry=gpd.GeoSeries(geoms, crs=25833), crs=25833)


@dataclass
class Generated:
    """One generated kommune: plan frames (as a kommune's files have them) and what fetches bring."""

    kp: gpd.GeoDataFrame
    rp: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame | None
    layers: dict[tuple[str, str], gpd.GeoDataFrame]


def generate(boundary, n_zones: int, seed: int, context: bool = True) -> Generated:
    """Zones, plans and (with ``context``) parcels and layers for one kommune, deterministic per seed."""
    rng = np.random.default_rng(seed)
    pts, step = _grid(boundary, n_zones, rng)
    scale = step / 200.0
    zones = [blob(rng, x, y, rng.uniform(85, 115) * scale, hole=rng.random() < 0.1) for x, y in pts]
    formal, status = _pick(rng, HOUSING, n_zones), _pick(rng, KP_STATUS, n_zones)
    kp = gpd.GeoDataFrame({"lokalId": [f"kp{i}" for i in range(n_zones)], "objekttypenavn": "KpArealformålOmråde",
                           "arealformål": formal, "arealbruksstatus": status}, geometry=zones, crs=25833)
    n_plans = int(round(n_zones * 1.27))
    at = pts[rng.integers(0, n_zones, n_plans)] + rng.normal(0, 120 * scale, (n_plans, 2))
    plans = [blob(rng, x, y, rng.uniform(40, 160) * scale) for x, y in at]
    pstatus = _pick(rng, PLANSTATUS, n_plans)
    rp = gpd.GeoDataFrame({"lokalId": [f"rp{j}" for j in range(n_plans)], "objekttypenavn": "RpOmråde",
                           "planidentifikasjon": [f"{2000 + j % 25}{j:05d}" for j in range(n_plans)], "planstatus": pstatus,
                           "plantype": "35", "vertikalnivå": _pick(rng, LEVEL, n_plans),
                           "ikrafttredelsesdato": [None if s in ("1", "2") else f"{2000 + j % 25}-03-01" for j, s in enumerate(pstatus)]},
                          geometry=plans, crs=25833)
    if not context:
        return Generated(kp, rp, None, {})
    housing = np.isin(formal, ["1110", "1130", "1001"])
    parcels = _parcels(np.array(zones, dtype=object)[housing], 80.0 * scale)
    extent = shapely.MultiPoint(pts).envelope.buffer(500 * scale)
    centres = pts[rng.integers(0, n_zones, max(2, n_zones // 2500))]
    roads = []
    for _ in range(max(4, n_zones // 25)):
        start, angle = pts[rng.integers(0, n_zones)], rng.uniform(0, 2 * np.pi)
        d = np.linspace(0, rng.uniform(1000, 3000) * scale, 8)
        roads.append(shapely.LineString(start + np.column_stack([np.cos(angle) * d, np.sin(angle) * d]) + rng.normal(0, 40 * scale, (8, 2))))
    stops = [p for road in roads[: max(2, n_zones // 50)] for p in shapely.line_interpolate_point(road, np.arange(0, road.length, 600 * scale))]
    flood = [blob(rng, *pts[rng.integers(0, n_zones)], rng.uniform(150, 400) * scale) for _ in range(max(2, n_zones // 40))]
    heritage = [shapely.Point(pts[rng.integers(0, n_zones)]).buffer(rng.uniform(40, 120) * scale, 16) for _ in range(max(2, n_zones // 20))]
    minx, miny, maxx, maxy = extent.bounds
    side = 2000 * scale
    kretser = [box(x, y, x + side, y + side) for x in np.arange(minx, maxx, side) for y in np.arange(miny, maxy, side)]
    layers = {
        ("infrastruktur", "sentrum"): _layer([{"name": f"Sentrum {i}"} for i in range(len(centres))], [shapely.Point(c) for c in centres]),
        ("infrastruktur", "veg"): _layer([{"name": f"Fv{i}"} for i in range(len(roads))], roads),
        ("infrastruktur", "holdeplass"): _layer([{"name": f"Holdeplass {i}"} for i in range(len(stops))], stops),
        ("constraint", "flomsone"): _layer([{"name": f"Flomsone {i}"} for i in range(len(flood))], flood),
        ("constraint", "kulturminne"): _layer([{"name": f"Kulturminne {i}"} for i in range(len(heritage))], heritage),
        ("grunnkrets", "grunnkrets"): _layer([{"name": f"Krets {i}", "code": f"9999{i:04d}", "value": float(rng.integers(50, 2000))}
                                              for i in range(len(kretser))], kretser),
    }
    return Generated(kp, rp, parcels, layers)


def _parcels(zones: np.ndarray, side: float) -> gpd.GeoDataFrame:
    """Parcels: each housing zone cut by a square grid (gnr per zone, bnr per square)."""
    cells, owner = [], []
    for i, zone in enumerate(zones):
        minx, miny, maxx, maxy = zone.bounds
        for x in np.arange(minx, maxx, side):
            for y in np.arange(miny, maxy, side):
                cells.append(box(x, y, x + side, y + side))
                owner.append(i)
    owner_a = np.array(owner)
    parts = shapely.intersection(np.array(cells, dtype=object), zones[owner_a])
    keep = shapely.area(parts) > 20
    parts, owner_a = parts[keep], owner_a[keep]
    bnr = pd.Series(owner_a).groupby(owner_a).cumcount().to_numpy() + 1
    return gpd.GeoDataFrame({"matrikkelnummer": [f"{g + 1}/{b}" for g, b in zip(owner_a, bnr, strict=True)], "gnr": owner_a + 1, "bnr": bnr,
                             "fnr": 0, "snr": 0, "areal_m2": shapely.area(parts).round(1),
                             "teig_id": [f"bench-{g}-{b}" for g, b in zip(owner_a, bnr, strict=True)]},
                            geometry=shapely.make_valid(parts), crs=25833)


def write_files(gen: Generated, folder: Path) -> tuple[Path, Path]:
    """The plan frames as GeoPackage files, the way a kommune sends them."""
    folder.mkdir(parents=True, exist_ok=True)
    kp_path, rp_path = folder / "kp.gpkg", folder / "rp.gpkg"
    gen.kp.to_file(kp_path, layer="KpArealformålOmråde", driver="GPKG")
    gen.rp.to_file(rp_path, layer="RpOmråde", driver="GPKG")
    return kp_path, rp_path


def timed(args: list[str], env: dict[str, str] | None = None, check: bool = True, log: Path | None = None) -> tuple[float, float, str]:
    """Run ``python -m tomte ARGS`` in a fresh process: (wall seconds, peak RSS in MB, last line of output).

    ``log`` keeps the whole output (the sync log) for a look afterwards.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tomte", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log is not None:
        log.write_text(out)
    if check and proc.returncode != 0:
        raise RuntimeError(f"tomte {' '.join(args)} failed ({proc.returncode}): {out[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, (out.strip().splitlines() or [""])[-1]


def prepare(out: Path, kommune: str, n_zones: int, seed: int = 14) -> tuple[Path, Path, Path, Generated]:
    """A fresh store with the kommune's parcels and layers (as a fetch leaves them) and the plan files."""
    from tomte import kommuner
    from tomte.plans import replace_plan_data
    from tomte.store import open_store

    db = out / f"whole_{n_zones}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    store = open_store(db)
    kommuner.load_kommuner(store)
    gen = generate(kommuner.boundary(store, kommune).union_all(), n_zones, seed)
    replace_plan_data(store, kommune, None, None, synthetic=True, parcels=gen.parcels, parcel_source="bench (syntetisk)",
                      layers=gen.layers, layer_sources={key: "bench (syntetisk)" for key in gen.layers})
    store.close()
    kp_path, rp_path = write_files(gen, out / f"whole_{n_zones}")
    return db, kp_path, rp_path, gen


STEPS = ("import-plans", "analyse", "analyse igjen", "export gpkg", "export csv")


def run_commands(db: Path, kommune: str, kp_path: Path, rp_path: Path, out: Path) -> dict[str, tuple[float, float, str]]:
    """Every step of the whole process, as the user runs it."""
    base = ["--db", str(db)]
    export = out / f"{db.stem}_export"
    return {
        "import-plans": timed([*base, "import-plans", "--kommune", kommune, "--kp", str(kp_path), "--rp", str(rp_path)]),
        "analyse": timed([*base, "analyse", "--kommune", kommune]),
        "analyse igjen": timed([*base, "analyse", "--kommune", kommune]),
        "export gpkg": timed([*base, "export", "--kommune", kommune, "--format", "gpkg", "--out", f"{export}.gpkg", "--overwrite"]),
        "export csv": timed([*base, "export", "--kommune", kommune, "--format", "csv", "--out", f"{export}.csv", "--overwrite"]),
    }


def housing_and_approved(gen: Generated) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The zones and plans the differanse works on by default (housing codes, status 2/3; approved plans on the ground)."""
    from tomte.codes import APPROVED_PLANSTATUS

    kp = gen.kp[gen.kp["arealformål"].isin(["1110", "1130", "1001", "1800"]) & gen.kp["arealbruksstatus"].isin(["2", "3"])]
    rp = gen.rp[gen.rp["planstatus"].isin(list(APPROVED_PLANSTATUS)) & gen.rp["vertikalnivå"].isin(["2"])]
    return kp, rp


def seed_compute(path: str) -> tuple[float, float]:
    """The seed algorithm's compute alone (one union of the approved plans, a difference per zone): (seconds, area)."""
    zones, plans = gpd.read_parquet(path + ".zones.parquet"), gpd.read_parquet(path + ".plans.parquet")
    t0 = time.perf_counter()
    union = shapely.union_all(plans.geometry.to_numpy())
    parts = [shapely.difference(z, union) for z in zones.geometry]
    seconds = time.perf_counter() - t0
    return seconds, float(sum(p.area for p in parts))


POSTGIS_SQL = """
\\timing on
CREATE TABLE lots AS
SELECT z.id, d.geom FROM zones z
CROSS JOIN LATERAL (SELECT (ST_Dump(COALESCE(ST_Difference(z.geom,
    (SELECT ST_Union(p.geom) FROM plans p WHERE ST_Intersects(p.geom, z.geom))), z.geom))).geom AS geom) d
WHERE ST_Area(d.geom) >= 2000;
\\timing off
SELECT 'lots', count(*), sum(ST_Area(geom)) FROM lots;
"""


def postgis_difference(zones: gpd.GeoDataFrame, plans: gpd.GeoDataFrame) -> tuple[float, int, float] | None:
    """What the seeds recommend for production: per zone, ``ST_Difference`` against the ``ST_Union`` of the
    GiST-indexed plans that intersect it, ``ST_Dump``, the 2,000 m² filter. (SQL seconds, lots, area);
    None when no PostGIS is installed.
    """
    sys.path.insert(0, str(ROOT))
    from tests.servers import postgis_available, postgis_server

    if not postgis_available():
        return None

    def copy(table: str, frame: gpd.GeoDataFrame) -> str:
        hexes = shapely.to_wkb(shapely.set_srid(frame.geometry.to_numpy(), 25833), hex=True, include_srid=True)
        return f"COPY {table} (id, geom) FROM STDIN;\n" + "".join(f"{i}\t{h}\n" for i, h in enumerate(hexes)) + "\\.\n"

    with postgis_server() as psql:
        psql("CREATE TABLE zones (id int PRIMARY KEY, geom geometry(Polygon, 25833));\n"
             "CREATE TABLE plans (id int PRIMARY KEY, geom geometry(Polygon, 25833));\n"
             + copy("zones", zones) + copy("plans", plans) + "CREATE INDEX ON plans USING gist (geom); ANALYZE zones; ANALYZE plans;\n")
        out = psql(POSTGIS_SQL)
    ms = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:"))
    _, count, area = next(line for line in out.splitlines() if line.startswith("lots|")).split("|")
    return ms / 1000, int(count), float(area)


def bench_whole(out: Path, sizes: tuple[int, ...] = (2500, 10_000, 40_000), kommune: str = "5612") -> bool:
    """Print the whole-process table, the ratios between sizes and against the baselines; True when every target is met."""
    import multiprocessing as mp

    from tomte.store import open_store

    print(f"\nHele prosessen (issue 14): genererte kommuner i {kommune}, planområder 1,27 × soner, teiger over boligsonene, "
          "hensyn, infrastruktur og grunnkretser; hver kommando i en egen prosess")
    print(f"{'soner':>7}{'planer':>8}{'teiger':>9}{'tomter':>8} | " + "".join(f"{s:>15}" for s in STEPS) + " | topp-RSS MB")
    results: dict[int, dict[str, tuple[float, float, str]]] = {}
    gens: dict[int, Generated] = {}
    for n in sizes:
        db, kp_path, rp_path, gen = prepare(out, kommune, n)
        results[n] = run_commands(db, kommune, kp_path, rp_path, out)
        store = open_store(db)
        lots = store.scalar("SELECT COUNT(*) FROM lots WHERE active = 1")
        store.close()
        gens[n] = gen
        assert gen.parcels is not None
        peak = max(r[1] for r in results[n].values())
        print(f"{n:>7,}{len(gen.rp):>8,}{len(gen.parcels):>9,}{lots:>8,} | " + "".join(f"{results[n][s][0]:>14.2f}s" for s in STEPS)
              + f" | {peak:>6.0f}")
    ok = True
    for small, big in zip(sizes, sizes[1:], strict=False):
        ratios = {s: results[big][s][0] / results[small][s][0] for s in STEPS}
        print(f"Forhold {big:,} / {small:,} soner (lineært = {big / small:.0f}×): " + ", ".join(f"{s} {r:.1f}×" for s, r in ratios.items()))
    if 10_000 in results and 40_000 in results:
        growth = results[40_000]["analyse"][0] / results[10_000]["analyse"][0]
        print(f"Mål: 40 000 soner koster høyst 5× 10 000 (analyse): {'ja' if growth <= 5 else 'NEI'} ({growth:.1f}×)")
        ok &= growth <= 5
    if 10_000 in gens:
        kp, rp = housing_and_approved(gens[10_000])
        base = str(out / "whole_10000_seed")
        kp[["geometry"]].to_parquet(base + ".zones.parquet")
        rp[["geometry"]].to_parquet(base + ".plans.parquet")
        with mp.get_context("spawn").Pool(1) as pool:
            seed_s, _ = pool.apply(seed_compute, (base,))
        analyse_s = results[10_000]["analyse"][0]
        print(f"Seed-algoritmen, bare beregningen, 10 000 soner ({len(kp):,} boligsoner, {len(rp):,} vedtatte planer): {seed_s:.1f} s; "
              f"tomte analyse, hele prosessen: {analyse_s:.2f} s")
        print(f"Mål: tomte analyse ≥ 10× seed: {'ja' if seed_s / analyse_s >= 10 else 'NEI'} ({seed_s / analyse_s:.1f}×)")
        ok &= seed_s / analyse_s >= 10
        pg = postgis_difference(kp, rp)
        if pg is None:
            print("PostGIS er ikke installert (postgresql-15-postgis-3); sammenligningen hoppes over.")
        else:
            pg_s, pg_lots, pg_area = pg
            print(f"PostGIS 3.3, bare differanse-SQL på samme data: {pg_s:.2f} s ({pg_lots:,} deler ≥ 2 000 m², {pg_area / 1e6:.3f} km²)")
            ratio = analyse_s / pg_s
            print(f"Mål: tomte analyse (hele prosessen) innen 2× PostGIS-SQL: {'ja' if ratio <= 2 else 'NEI'} ({ratio:.1f}× PostGIS-tiden)")
            ok &= ratio <= 2
    return ok
