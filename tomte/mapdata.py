"""GeoJSON for the map: lots coloured by tier and the context layers, simplified for display.

Geometry is simplified (default 2 m, topology-preserving) and coordinates are rounded to ~1 cm
in EPSG:4326, so a kommune with 5,000 lots stays a few megabytes and draws fast in a browser.
"""

from __future__ import annotations

import html
import json
from typing import Any

import geopandas as gpd
import shapely

from tomte.store import Store

LARGE = 1500  # features; above this (a kommune-wide view, ~20-40 m per pixel) display geometry is simplified to 15 m
TIER_COLOURS = {"A": "#1a9641", "B": "#a6d96a", "C": "#fdae61", "D": "#d7191c", None: "#7f7f7f"}
LAYER_STYLES = {
    "zones": {"color": "#6a3d9a", "weight": 1, "fillOpacity": 0.08, "dashArray": "4"},
    "approved": {"color": "#1f78b4", "weight": 1, "fillOpacity": 0.15},
    "in_progress": {"color": "#ff7f00", "weight": 2, "fillOpacity": 0.1, "dashArray": "6"},
    "parcels": {"color": "#333333", "weight": 1, "fillOpacity": 0.0},
    "constraints": {"color": "#e31a1c", "weight": 1, "fillOpacity": 0.2},
}


def _geojson(frame: gpd.GeoDataFrame, simplify_m: float) -> dict[str, Any]:
    if frame.empty:
        return {"type": "FeatureCollection", "features": []}
    out = frame.copy()
    for col in out.columns:
        if col != "geometry" and out[col].dtype == object:  # tooltips are HTML: data text is escaped
            out[col] = out[col].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    if len(out) > LARGE:  # a kommune-wide overview: coarser shapes keep the browser fast
        simplify_m = max(simplify_m, 15.0)
    if not (out.geom_type == "Point").all():
        out["geometry"] = out.geometry.simplify(simplify_m, preserve_topology=True)
    out = out.to_crs(4326)
    # ~0.1 m for shapes, ~1 m for the dots of a kommune-wide view: plenty for display, fewer bytes to send.
    precision = 1e-5 if (out.geom_type == "Point").all() else 1e-6
    out["geometry"] = shapely.set_precision(out.geometry.to_numpy(), precision, mode="pointwise")
    return json.loads(out.to_json(drop_id=True, to_wgs84=False))


def lots_geojson(store: Store, kommunenummer: str, tiers: list[str] | None = None, simplify_m: float = 2.0,
                 bbox: tuple[float, float, float, float] | None = None, points_above: int = LARGE) -> dict[str, Any]:
    """Active lots with id, tier, score, status and area; only the given tiers when set.

    Above ``points_above`` lots (a large kommune seen whole) each lot is a point at its
    representative point, which draws fast; ``bbox`` limits the lots to an area (polygons around
    the selected lot).
    """
    sql = ("SELECT lot_id, tier, CAST(ROUND(score) AS INTEGER) AS score, status, ROUND(area_m2 / 1000.0, 1) AS daa, "
           "AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1")
    params: list[object] = [kommunenummer]
    if bbox is not None:
        sql += " AND MbrIntersects(geom, BuildMbr(?, ?, ?, ?, 25833))"
        params += list(bbox)
    frame = store.read_frame(sql, params)
    if tiers is not None:
        # A boolean mask, never a mapped object Series: on a kommune without lots that is an empty
        # list of labels and selected no columns at all (issue 15: KeyError 'tier' on Kart).
        frame = frame[frame["tier"].fillna("–").isin(set(tiers)).to_numpy(bool)]
    if frame.empty:
        return {"type": "FeatureCollection", "features": []}
    # No colour per lot: the browser colours by tier (TIER_COLOURS in ui/kart.py), 0.5 MB less for 20,000 lots.
    if len(frame) > points_above:
        frame["geometry"] = frame.geometry.representative_point()
    return _geojson(frame, simplify_m)


def boundary_geojson(store: Store, kommunenummer: str) -> dict[str, Any]:
    """The kommune's boundary for the map (simplified to 20 m; empty when the kommune has none stored)."""
    frame = store.read_frame("SELECT navn, AsBinary(geom) AS geom FROM kommuner WHERE kommunenummer = ?", (kommunenummer,))
    return _geojson(frame, 20.0)


def layer_geojson(store: Store, kommunenummer: str, layer: str, bbox: tuple[float, float, float, float] | None = None,
                  simplify_m: float = 2.0) -> dict[str, Any]:
    """A context layer for the map: zones (housing zones), approved / in_progress plans, parcels, constraints."""
    where = "kommunenummer = ?"
    params: list[object] = [kommunenummer]
    if bbox is not None:
        where += " AND MbrIntersects(geom, BuildMbr(?, ?, ?, ?, 25833))"
        params += list(bbox)
    queries = {
        "zones": f"SELECT arealformal AS navn, arealbruksstatus AS status, AsBinary(geom) AS geom FROM kp_zones WHERE {where} "
                 "AND arealformal IN ('1110', '1130', '1001', '1800', '5210', '110', '120')",
        "approved": f"SELECT planid AS navn, plannavn AS status, AsBinary(geom) AS geom FROM rp_areas WHERE {where} "
                    "AND planstatus IN ('3', '6', '7', '8') AND COALESCE(vertikalniva, '2') = '2'",
        "in_progress": f"SELECT planid AS navn, plannavn AS status, AsBinary(geom) AS geom FROM rp_areas WHERE {where} AND planstatus IN ('1', '2')",
        "parcels": f"SELECT matrikkelnummer AS navn, '' AS status, AsBinary(geom) AS geom FROM parcels WHERE {where}",
        "constraints": f"SELECT layer AS navn, name AS status, AsBinary(geom) AS geom FROM layers WHERE {where} AND role IN ('constraint', 'hensyn')",
    }
    if layer not in queries:
        raise ValueError(layer)
    frame = store.read_frame(queries[layer], params)
    if layer == "zones" and len(frame):  # the analyst reads the purpose and status, not their codes (issue 15)
        from tomte import codes

        frame["navn"] = [f"{c} {codes.arealformal_name(c)}" for c in frame["navn"]]
        frame["status"] = [codes.AREALBRUKSSTATUS.get(str(c), "") for c in frame["status"]]
    return _geojson(frame, simplify_m)


def lot_bbox(store: Store, lot_id: str, margin: float = 200.0) -> tuple[float, float, float, float] | None:
    """Bounding box (EPSG:25833) around a lot."""
    row = store.rows("SELECT MbrMinX(geom) a, MbrMinY(geom) b, MbrMaxX(geom) c, MbrMaxY(geom) d FROM lots WHERE lot_id = ?", (lot_id,))
    if not row or row[0]["a"] is None:
        return None
    r = row[0]
    return (r["a"] - margin, r["b"] - margin, r["c"] + margin, r["d"] + margin)
