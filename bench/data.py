"""Synthetic large kommuner for benchmarks: realistic shapes (30-200 vertices, holes, overlaps)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import Polygon

from tomte.plans import KP_COLUMNS, RP_COLUMNS


def blob(rng: np.random.Generator, x: float, y: float, radius: float, hole: bool = False) -> Polygon:
    """A star-shaped polygon with 30-200 vertices, sometimes with a hole."""
    n = int(rng.integers(30, 201))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * (1 + 0.12 * np.sin(angles * rng.integers(2, 6)) + 0.05 * rng.standard_normal(n)).clip(0.6, 1.4)
    shell = np.column_stack([x + r * np.cos(angles), y + r * np.sin(angles)])
    holes = []
    if hole:
        k = 24
        a = np.linspace(0, 2 * np.pi, k, endpoint=False)[::-1]
        holes.append(np.column_stack([x + 0.25 * radius * np.cos(a), y + 0.25 * radius * np.sin(a)]))
    poly = Polygon(shell, holes)
    return poly if poly.is_valid else Polygon(shell)


def large_kommune(n_zones: int = 20_000, n_plans: int = 5_000, seed: int = 7) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Zones on a jittered grid (neighbours touch or overlap a little) and plans scattered over them."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_zones)))
    step = 200.0
    zones, zone_rows = [], []
    for i in range(n_zones):
        gx, gy = i % side, i // side
        x, y = 200_000 + gx * step + rng.normal(0, 15), 6_600_000 + gy * step + rng.normal(0, 15)
        zones.append(blob(rng, x, y, rng.uniform(85, 115), hole=rng.random() < 0.1))
        zone_rows.append({"zone_key": f"z{i}", "feature_type": "KpArealformålOmråde", "regime": "2008", "arealformal": "1110",
                          "arealbruksstatus": "2", "planid": None, "plannavn": None, "omradenavn": None, "beskrivelse": None,
                          "utnyttingstype": None, "utnyttingstall": None, "oppdateringsdato": None, "repaired": 0})
    extent = side * step
    plans, plan_rows = [], []
    for j in range(n_plans):
        x, y = 200_000 + rng.uniform(0, extent), 6_600_000 + rng.uniform(0, extent)
        plans.append(blob(rng, x, y, rng.uniform(60, 260)))
        plan_rows.append({"area_key": f"p{j}", "planid": f"{2000 + j % 25}{j:04d}", "plannavn": None, "planstatus": "3", "plantype": "35",
                          "vertikalniva": "2", "ikrafttredelsesdato": "2015-01-01", "oppdateringsdato": None, "repaired": 0})
    zf = gpd.GeoDataFrame(zone_rows, columns=KP_COLUMNS, geometry=zones, crs=25833)
    pf = gpd.GeoDataFrame(plan_rows, columns=RP_COLUMNS, geometry=plans, crs=25833)
    return zf, pf
