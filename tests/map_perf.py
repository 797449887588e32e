"""Build a store with N lots for one kommune (for the map performance check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from tomte import kommuner
from tomte.store import now, open_store


def store_with_lots(path: Path, n: int = 5000, kommunenummer: str = "3218") -> None:
    s = open_store(path)
    kommuner.load_kommuner(s)
    area = kommuner.boundary(s, kommunenummer).union_all()
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = area.bounds
    geoms, recs = [], []
    while len(geoms) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if not area.contains(shapely.Point(x, y)):
            continue
        angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
        r = rng.uniform(30, 80) * (1 + 0.2 * rng.standard_normal(40)).clip(0.6, 1.4)
        geoms.append(shapely.Polygon(np.column_stack([x + r * np.cos(angles), y + r * np.sin(angles)])))
        i = len(geoms)
        score = float(rng.uniform(0, 100))
        recs.append({"lot_id": f"{kommunenummer}-p{i:05d}", "kommunenummer": kommunenummer, "zone_key": f"z{i}", "area_m2": geoms[-1].area,
                     "score": score, "tier": "A" if score >= 80 else "B" if score >= 60 else "C" if score >= 40 else "D",
                     "status": "Ny", "active": 1, "created_at": now(), "updated_at": now(), "synthetic": 1})
    with s.transaction() as conn:
        s.insert_features("lots", recs, geoms)
        conn.execute("INSERT INTO plan_data_state (kommunenummer, kp_count, rp_count, synthetic) VALUES (?, 0, 0, 1)", (kommunenummer,))
    s.close()
