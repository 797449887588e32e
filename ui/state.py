"""Shared app state: the store (one per database path), settings and the chosen kommune."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from tomte import kommuner
from tomte.config import Settings
from tomte.errors import TomteError
from tomte.store import Store, open_store


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return open_store(path)


def settings() -> Settings:
    """Settings from the environment (``TOMTE_DB`` chooses the database)."""
    return Settings.from_env()


def store() -> Store:
    """The store for ``TOMTE_DB``; a clear message and a stop when it cannot be opened."""
    try:
        return _store(str(settings().db_path))
    except TomteError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable; keeps type checkers content


def run(action: Callable[[], Any], what: str) -> Any:
    """Run a library call; show a TomteError as one sentence instead of a traceback."""
    try:
        return action()
    except TomteError as exc:
        st.error(f"{what} mislyktes: {exc}")
        return None


def kommune_picker(key: str = "kommune") -> kommuner.Kommune | None:
    """Sidebar search-and-pick of a kommune (name, number or former number); synced with ``?kommune=``."""
    s = store()
    wanted = st.query_params.get("kommune")
    query = st.sidebar.text_input("Søk kommune (navn eller nummer)", value="", key=f"{key}_q")
    with_data = [r["kommunenummer"] for r in s.rows("SELECT kommunenummer FROM plan_data_state ORDER BY kommunenummer")]
    options = kommuner.search(s, query, limit=400) if query else [kommuner.resolve(s, k) for k in with_data]
    if not options:
        st.sidebar.info("Ingen treff.")
        return None
    labels = [f"{k.navn} ({k.kommunenummer})" for k in options]
    index = next((i for i, k in enumerate(options) if k.kommunenummer == wanted), 0)
    choice = st.sidebar.selectbox("Kommune", labels, index=index, key=f"{key}_sel")
    picked = options[labels.index(choice)]
    st.query_params["kommune"] = picked.kommunenummer
    return picked


def synthetic_notice(kommunenummer: str | None = None) -> None:
    """Say plainly when the data shown is synthetic demo data."""
    s = store()
    sql = "SELECT COUNT(*) FROM plan_data_state WHERE synthetic = 1"
    params: tuple = ()
    if kommunenummer:
        sql += " AND kommunenummer = ?"
        params = (kommunenummer,)
    if s.scalar(sql, params):
        st.warning("Demodata: plandata, reguleringsplaner og teiger her er SYNTETISKE (oppdiktet), kun kommunegrensene er ekte.")
