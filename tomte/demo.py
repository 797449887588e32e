"""Deterministic SYNTHETIC demo data for the three pilot kommuner.

Nordre Follo (3207), Ås (3218) and Nesodden (3212), inside their real 2024 boundaries.
Everything else is invented: kommuneplan zones (Voronoi cells, denser around two or three
centres) with real SOSI ``arealformål``/``arealbruksstatus`` codes in realistic proportions,
reguleringsplaner with a realistic ``planstatus``/``plantype``/``vertikalnivå`` mix (mostly
approved, some proposals, some repealed, a few tunnels and bridges) and teig parcels with
gnr/bnr in the future housing zones. Rows are marked ``synthetic = 1`` and the app says so.
The same seed gives byte-identical plan data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon

from tomte import kommuner
from tomte.plans import KP_COLUMNS, RP_COLUMNS, replace_plan_data
from tomte.store import SRID, Store, now

PILOTS = {"3207": 3, "3218": 2, "3212": 2}  # kommune → number of centres
POLITICAL = {"3207": 0.8, "3218": 0.5, "3212": 0.65}  # synthetic political will
SEED = 20241

# (arealformål, weight) by distance band from the nearest centre.
_FORMAL_NEAR = [("1130", 18), ("1110", 46), ("1001", 6), ("1800", 6), ("1160", 9), ("3001", 8), ("2010", 4), ("1300", 3)]
_FORMAL_MID = [("1110", 40), ("1001", 4), ("1800", 3), ("1300", 11), ("1160", 5), ("3001", 10), ("5100", 25), ("1400", 2)]
_FORMAL_FAR = [("5100", 78), ("5210", 5), ("1120", 3), ("1110", 2), ("3001", 6), ("1300", 4), ("1200", 2)]
_STATUS_BUILT = [("1", 66), ("2", 28), ("3", 6)]
_PLANSTATUS = [("3", 72), ("2", 7), ("1", 4), ("4", 5), ("5", 5), ("7", 3), ("6", 2), ("8", 2)]
_PLANTYPE = [("35", 45), ("30", 25), ("34", 12), ("31", 10), ("32", 8)]
_LEVEL = [("2", 90), (None, 5), ("1", 3), ("3", 2)]
_PLACE = ["Bekkestua", "Solbakken", "Haugen", "Furulund", "Myrvoll", "Skogli", "Nordby", "Tangen",
          "Bråten", "Løkka", "Eikeli", "Vestli", "Sandvika", "Kjøya", "Holmen", "Berger", "Rud", "Dal"]


def _choice(rng: np.random.Generator, table: Sequence[tuple[str | None, int]]) -> str | None:
    values, weights = zip(*table, strict=True)
    p = np.asarray(weights, dtype=float) / sum(weights)
    return values[int(rng.choice(len(values), p=p))]


def _points_in(rng: np.random.Generator, area, n: int, centres=None, sigma: float = 0.0) -> np.ndarray:
    minx, miny, maxx, maxy = area.bounds
    out: list[tuple[float, float]] = []
    shapely.prepare(area)
    while len(out) < n:
        if centres is not None:
            c = centres[rng.integers(len(centres))]
            cand = rng.normal(c, sigma, size=(n, 2))
        else:
            cand = np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])
        inside = shapely.contains_xy(area, cand[:, 0], cand[:, 1])
        out.extend(map(tuple, cand[inside]))
    return np.asarray(out[:n])


def _voronoi(points: np.ndarray, clip) -> list:
    cells = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=clip.envelope)
    parts = shapely.intersection(np.asarray(shapely.get_parts(cells)), clip)
    return [g for g in parts if not g.is_empty and g.area > 1.0]


def _blob(rng: np.random.Generator, x: float, y: float, radius: float, n: int = 40) -> Polygon:
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * (1 + 0.25 * rng.standard_normal(n)).clip(0.5, 1.6)
    stretch = rng.uniform(0.6, 1.4)
    return Polygon(np.column_stack([x + r * np.cos(angles) * stretch, y + r * np.sin(angles) / stretch]))


def generate_kommune(kommunenummer: str, boundary, n_centres: int, seed: int, n_zones: int = 1100, n_plans: int = 420):
    """Synthetic (kp, rp, parcels) GeoDataFrames for one kommune."""
    rng = np.random.default_rng([seed, int(kommunenummer)])
    area = boundary.buffer(0) if not boundary.is_valid else boundary
    centres = _points_in(rng, area.buffer(-1500) if area.buffer(-1500).area > 0 else area, n_centres)
    seeds = np.vstack([_points_in(rng, area, int(n_zones * 0.6), centres, 1400.0), _points_in(rng, area, int(n_zones * 0.4))])
    cells = _voronoi(seeds, area)
    dist = lambda g: float(np.min(np.hypot(*(np.asarray(g.centroid.coords[0]) - centres).T)))  # noqa: E731
    kp_rows = []
    for i, cell in enumerate(cells):
        d = dist(cell)
        table = _FORMAL_NEAR if d < 1500 else _FORMAL_MID if d < 4000 else _FORMAL_FAR
        formal = str(_choice(rng, table))
        status = "1" if formal in {"5100", "2010", "1200"} else _choice(rng, _STATUS_BUILT)
        kp_rows.append({
            "zone_key": f"KP{kommunenummer}-{i:04d}", "feature_type": "KpArealformålOmråde", "regime": "2008",
            "arealformal": formal, "arealbruksstatus": status, "planid": f"{kommunenummer}KPA2023",
            "plannavn": "Kommuneplanens arealdel 2023-2035 (syntetisk)", "omradenavn": f"{_PLACE[i % len(_PLACE)]} {i}",
            "beskrivelse": None, "utnyttingstype": None, "utnyttingstall": None,
            "oppdateringsdato": "2023-06-15", "repaired": 0, "geometry": cell,
        })
    kp = gpd.GeoDataFrame(kp_rows, columns=[*KP_COLUMNS, "geometry"], crs=SRID)

    rp_rows = []
    plan_centres = _points_in(rng, area, n_plans, centres, 2600.0)
    for j, (x, y) in enumerate(plan_centres):
        year = int(rng.integers(1975, 2026))
        status = _choice(rng, _PLANSTATUS)
        if status in {"1", "2"}:
            year = int(rng.integers(2022, 2027))
        shape = _blob(rng, x, y, float(rng.uniform(70, 330))).intersection(area)
        if shape.is_empty:
            continue
        rp_rows.append({
            "area_key": f"RP{kommunenummer}-{j:04d}", "planid": f"{year}{j:03d}",
            "plannavn": f"Detaljregulering for {_PLACE[int(rng.integers(len(_PLACE)))]} {j} (syntetisk)",
            "planstatus": status, "plantype": _choice(rng, _PLANTYPE), "vertikalniva": _choice(rng, _LEVEL),
            "ikrafttredelsesdato": f"{year}-{int(rng.integers(1, 13)):02d}-15" if status not in {"1", "2"} else None,
            "oppdateringsdato": f"{min(year + 1, 2026)}-01-10", "repaired": 0, "geometry": shape,
        })
    rp = gpd.GeoDataFrame(rp_rows, columns=[*RP_COLUMNS, "geometry"], crs=SRID)

    parcel_rows = []
    future = kp[kp["arealformal"].isin(["1110", "1130", "1001", "1800"]) & kp["arealbruksstatus"].isin(["2", "3"])]
    gnr = 1
    for zone in future.geometry:
        n = int(np.clip(zone.area / 6000, 1, 80))
        cells = _voronoi(_points_in(rng, zone, max(n, 2)), zone) if n > 1 else [zone]
        for bnr, cell in enumerate(cells, start=1):
            parcel_rows.append({"matrikkelnummer": f"{gnr}/{bnr}", "gnr": gnr, "bnr": bnr, "fnr": 0, "snr": 0,
                                "areal_m2": round(cell.area, 1), "teig_id": f"demo-{kommunenummer}-{gnr}-{bnr}", "geometry": cell})
        gnr += 1
    parcels = gpd.GeoDataFrame(parcel_rows, columns=["matrikkelnummer", "gnr", "bnr", "fnr", "snr", "areal_m2", "teig_id", "geometry"], crs=SRID)
    return kp, rp, parcels, _context(rng, kommunenummer, area, centres)


def _frame(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, columns=["name", "code", "value"], geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)


def _context(rng: np.random.Generator, kommunenummer: str, area, centres: np.ndarray) -> dict[tuple[str, str], gpd.GeoDataFrame]:
    """Synthetic context layers: centres, roads, stops, constraints, hensynssoner, grunnkretser."""
    layers: dict[tuple[str, str], gpd.GeoDataFrame] = {}
    names = [f"{_PLACE[(int(kommunenummer) + i) % len(_PLACE)]} sentrum" for i in range(len(centres))]
    layers[("infrastruktur", "sentrum")] = _frame([{"name": n} for n in names], [shapely.Point(c) for c in centres])
    roads = []
    for c in centres:
        for angle in rng.uniform(0, 2 * np.pi, 6):
            length = rng.uniform(3000, 9000)
            pts = [c + np.array([np.cos(angle), np.sin(angle)]) * d + rng.normal(0, 150, 2) for d in np.linspace(0, length, 12)]
            line = shapely.LineString(pts).intersection(area)
            if not line.is_empty:
                roads.append(line)
    roads.append(shapely.LineString(centres).intersection(area) if len(centres) > 1 else shapely.LineString([centres[0], centres[0] + 10]))
    layers[("infrastruktur", "veg")] = _frame([{"name": f"Fv{100 + i}"} for i in range(len(roads))], roads)
    stops = [p for road in roads for p in shapely.line_interpolate_point(road, np.arange(0, road.length, 700.0))]
    layers[("infrastruktur", "holdeplass")] = _frame([{"name": f"Holdeplass {i}"} for i in range(len(stops))], stops)
    rivers = []
    for _ in range(3):
        start = _points_in(rng, area, 1)[0]
        angle = rng.uniform(0, 2 * np.pi)
        pts = [start + np.array([np.cos(angle), np.sin(angle)]) * d + rng.normal(0, 200, 2) for d in np.linspace(0, 8000, 15)]
        rivers.append(shapely.LineString(pts).buffer(120).intersection(area))
    layers[("constraint", "flomsone")] = _frame([{"name": f"Flomsone {i + 1}"} for i in range(len(rivers))], rivers)
    sites = [shapely.Point(p).buffer(rng.uniform(40, 120), 16) for p in _points_in(rng, area, 25, centres, 3000.0)]
    layers[("constraint", "kulturminne")] = _frame([{"name": f"Kulturminne {i + 1}"} for i in range(len(sites))], sites)
    noise = [road.buffer(60) for road in roads[:4]]
    layers[("hensyn", "KpStøySone")] = _frame([{"name": f"H220_{i + 1}", "code": "220"} for i in range(len(noise))], noise)
    seeds = np.vstack([_points_in(rng, area, 30, centres, 1800.0), _points_in(rng, area, 20)])
    cells = _voronoi(seeds, area)
    codes_ = [f"{kommunenummer}{i // 10 + 1:02d}{i % 10 + 1:02d}" for i in range(len(cells))]
    pops = []
    for cell in cells:
        d = float(np.min(np.hypot(*(np.asarray(cell.centroid.coords[0]) - centres).T)))
        pops.append(float(int(rng.uniform(200, 1800) * np.exp(-d / 4000))))
    layers[("grunnkrets", "grunnkrets")] = _frame([{"name": f"Grunnkrets {c}", "code": c, "value": p} for c, p in zip(codes_, pops, strict=True)], cells)
    return layers


def add_demo_addresses(store: Store, kommunenummer: str) -> int:
    """Synthetic nearest addresses for the kommune's lots (the real ones come from the address API)."""
    lots = store.rows("SELECT lot_id FROM lots WHERE kommunenummer = ? AND active = 1 AND synthetic = 1", (kommunenummer,))
    rows = []
    for lot in lots:
        h = int(lot["lot_id"].split("-")[1][:6], 16)
        street = f"{_PLACE[h % len(_PLACE)]}veien"
        rows.append((lot["lot_id"], f"{street} {h % 90 + 1} (syntetisk)", f"14{h % 90 + 10:02d}", _PLACE[(h // 7) % len(_PLACE)].upper(),
                     float(h % 200), now(), 1))
    with store.transaction() as conn:
        conn.executemany("INSERT OR REPLACE INTO lot_addresses VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def build_demo(store: Store, progress: Callable[[str], None] | None = None, seed: int = SEED) -> dict[str, dict[str, int]]:
    """Load kommuner and write synthetic plan data and parcels for the pilot kommuner."""
    say = progress or (lambda _msg: None)
    say("Laster 357 kommuner med grenser …")
    kommuner.load_kommuner(store)
    result = {}
    for knr, n_centres in PILOTS.items():
        k = kommuner.resolve(store, knr)
        say(f"Lager syntetiske plandata for {k.navn} ({knr}) …")
        boundary = kommuner.boundary(store, knr).union_all()
        kp, rp, parcels, layers = generate_kommune(knr, boundary, n_centres, seed)
        result[knr] = replace_plan_data(store, knr, kp, rp, "demo (syntetisk)", "demo (syntetisk)", synthetic=True,
                                        parcels=parcels, parcel_source="demo (syntetisk)", layers=layers,
                                        layer_sources={key: "demo (syntetisk)" for key in layers})
        kretser = layers[("grunnkrets", "grunnkrets")]
        with store.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO ssb_values VALUES ('04317', ?, 'Personer', '2025', ?, NULL, ?, 1)",
                             [(c, v, now()) for c, v in zip(kretser["code"], kretser["value"], strict=True)])
            conn.execute("INSERT OR REPLACE INTO political_will VALUES (?, ?, ?)", (knr, POLITICAL[knr], "syntetisk demoverdi"))
    return result
