"""Oversikt: kommuner with data and the counts the team steers by."""

import streamlit as st

from ui import queries
from ui.state import store, synthetic_notice

st.title("tomte – oversikt")
st.caption("Byggbar tomtegrunn for sosial boligbygging: boligsoner i kommuneplanen minus vedtatte reguleringsplaner.")
s = store()
synthetic_notice()
counts = s.counts()
cols = st.columns(5)
cols[0].metric("Kommuner i registeret", counts["kommuner"])
cols[1].metric("Kommuneplansoner", counts["kp_zones"])
cols[2].metric("Reguleringsplanområder", counts["rp_areas"])
cols[3].metric("Aktive tomter", counts["lots"])
cols[4].metric("Teiger", counts["parcels"])
frame = queries.overview(s)
if frame.empty:
    st.info("Ingen kommuner har plandata ennå. Gå til «Kommuner» for å importere eller hente data.")
else:
    st.subheader("Per kommune")
    st.dataframe(queries.labelled(frame), hide_index=True, use_container_width=True)
