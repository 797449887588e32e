"""Oversikt: kommuner with data and the counts the team steers by."""

import streamlit as st

from ui import nav, queries
from ui.state import store, synthetic_notice

st.set_page_config(page_title="Oversikt – tomte", layout="wide")
st.title("tomte – oversikt")
nav.sidebar()
st.caption("Byggbar tomtegrunn for sosial boligbygging: boligsoner i kommuneplanen minus vedtatte reguleringsplaner.")
s = store()
synthetic_notice()
counts = s.counts()
cols = st.columns(5)
cols[0].metric("Kommuner i registeret", queries.tall(counts["kommuner"]))
cols[1].metric("Kommuneplansoner", queries.tall(counts["kp_zones"]))
cols[2].metric("Reguleringsplanområder", queries.tall(counts["rp_areas"]))
cols[3].metric("Aktive tomter", queries.tall(counts["lots"]))
cols[4].metric("Teiger", queries.tall(counts["parcels"]))
funnel = queries.funnel(s)
if not funnel.empty:
    st.subheader("Trakten")
    total = funnel.sum(numeric_only=True)
    f = st.columns(6)
    for col, (label, key) in zip(f, [("Polygoner analysert", "analysed"), ("Kvalifiserte tomter (> 60)", "qualified"),
                                     ("Eiere kontaktet", "contacted"), ("Aktive dialoger", "dialogue"),
                                     ("LOI/opsjon", "loi"), ("Estimerte boliger", "dwellings")], strict=True):
        col.metric(label, queries.tall(total[key]))
    m2 = queries.m2_per_dwelling_in_use(s)
    if m2:
        st.caption("Estimerte boliger er regnet med " + " og ".join(queries.tall(v) for v in m2) + " m² tomt per bolig der "
                   "planen ikke oppgir utnytting (innstillingen ved siste poengberegning; «Bruk» på Vekter endrer den, "
                   "og tallet endres med den).")
    st.dataframe(queries.for_display(funnel), hide_index=True, width="stretch")
frame = queries.overview(s)
if frame.empty:
    st.info("Ingen kommuner har plandata ennå. Gå til «Kommuner» for å importere eller hente data.")
else:
    st.subheader("Per kommune")
    st.dataframe(queries.for_display(frame), hide_index=True, width="stretch")
