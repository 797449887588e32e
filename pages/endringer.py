"""Endringer siden sist: the reports of the latest sync runs."""

import streamlit as st

from ui import nav, queries
from ui.state import store

st.title("Endringer siden sist")
nav.sidebar()
s = store()
runs = queries.sync_runs(s)
if not runs:
    st.info("Ingen synkroniseringer er kjørt ennå (`python -m tomte sync`).")
for r in runs:
    with st.expander(f"Synk {r['id']} – {r['started_at']} – {'ok' if r['ok'] else 'med feil'}", expanded=r is runs[0]):
        st.text(r["report"] or "(ingen rapport)")
