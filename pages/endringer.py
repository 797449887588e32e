"""Endringer siden sist: the reports of the latest sync runs, as pages with links to the lots."""

import streamlit as st

from ui import nav, queries
from ui.state import store

st.set_page_config(page_title="Endringer siden sist – tomte", layout="wide")
st.title("Endringer siden sist")
nav.sidebar()
s = store()
runs = queries.sync_runs(s)
if not runs:
    st.info("Ingen synkroniseringer er kjørt ennå (`python -m tomte sync`).")
for r in runs:
    when = queries.dato(r["started_at"]) + (f" kl. {str(r['started_at'])[11:16]}" if r["started_at"] else "")
    with st.expander(f"Synk {r['id']} – {when} – {'ok' if r['ok'] else 'med feil'}", expanded=r is runs[0]):
        if r["report"]:
            st.markdown(queries.report_page(r["report"]))
        else:
            st.caption("Synken ble ikke fullført; den fortsetter der den stoppet ved neste `sync`.")
