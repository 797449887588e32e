"""Cached read wrappers for the pages (``st.cache_data`` lives only in ui/)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from tomte import mapdata
from ui.state import store


@st.cache_data(show_spinner=False, max_entries=32)
def lots_geojson(db: str, kommunenummer: str, tiers: tuple[str, ...], version: str) -> dict[str, Any]:
    """Lots for the map (``version`` changes when the lots change)."""
    return mapdata.lots_geojson(store(), kommunenummer, list(tiers))


@st.cache_data(show_spinner=False, max_entries=32)
def lots_near(db: str, kommunenummer: str, tiers: tuple[str, ...], bbox: tuple[float, float, float, float], version: str) -> dict[str, Any]:
    """Lot polygons around the selected lot (when the kommune is drawn as dots)."""
    return mapdata.lots_geojson(store(), kommunenummer, list(tiers), bbox=bbox, points_above=10**9)


@st.cache_data(show_spinner=False, max_entries=64)
def layer_geojson(db: str, kommunenummer: str, layer: str, bbox: tuple[float, float, float, float] | None, version: str) -> dict[str, Any]:
    """A context layer for the map."""
    return mapdata.layer_geojson(store(), kommunenummer, layer, bbox)


@st.cache_data(show_spinner=False, max_entries=32)
def boundary_geojson(db: str, kommunenummer: str) -> dict[str, Any]:
    """The kommune's boundary for the map."""
    return mapdata.boundary_geojson(store(), kommunenummer)


def data_version(kommunenummer: str) -> str:
    """Changes whenever the kommune's lots or plan data change (cache key)."""
    s = store()
    row = s.rows("SELECT MAX(updated_at) u, COUNT(*) n, SUM(score) sc, GROUP_CONCAT(DISTINCT status) st FROM lots WHERE kommunenummer = ?",
                 (kommunenummer,))[0]
    plans = s.scalar("SELECT updated_at FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
    return f"{row['u']}|{row['n']}|{row['sc']}|{row['st']}|{plans}"


@st.cache_data(show_spinner=False, max_entries=16)
def factor_table(db: str, kommunenummer: str, m2_per_dwelling: float, version: str,  # noqa: ANN201
                 curves: str = "Standard (logaritmisk)"):
    """Factor values and reasons of the kommune's lots (computed once; weights re-rank in numpy)."""
    from dataclasses import replace

    from tomte.enrich import stored_features
    from tomte.scoring import ScoringSettings, with_curves
    from tomte.scoring import factor_table as compute

    features = stored_features(store(), kommunenummer)
    scoring = with_curves(replace(ScoringSettings(), m2_per_dwelling=m2_per_dwelling), curves)
    return compute(features, scoring) if not features.empty else None
