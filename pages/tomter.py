"""Tomter: the lots of a kommune with their explanation; change status or add a note."""

import streamlit as st

from tomte import crm
from ui import nav, queries
from ui.state import kommune_picker, run, safe_md, settings, store, synthetic_notice

st.title("Tomter")
nav.sidebar()
s = store()
k = kommune_picker()
if k is None:
    st.stop()
synthetic_notice(k.kommunenummer)
lots = queries.lots(s, k.kommunenummer)
if lots.empty:
    st.info("Ingen tomter. Importer eller hent plandata og kjør analysen under «Kommuner».")
    st.stop()
st.caption(f"{len(lots)} tomter, {lots['area_m2'].sum() / 1000:,.0f} daa".replace(",", " "))
shown = lots[["lot_id", "arealformal", "arealbruksstatus", "area_m2", "status", "flags", "latest_note"]]
st.dataframe(queries.labelled(shown), hide_index=True, width="stretch")

ids = list(lots["lot_id"])
wanted = st.query_params.get("lot")
lot_id = st.selectbox("Velg tomt", ids, index=ids.index(wanted) if wanted in ids else 0)
st.query_params["lot"] = lot_id
row = lots[lots["lot_id"] == lot_id].iloc[0]
st.markdown(f"**Hvorfor denne tomten?** {safe_md(row['explanation'])}")
with st.form("crm"):
    status = st.selectbox("Status", crm.STATUSES, index=crm.STATUSES.index(row["status"]))
    note = st.text_area("Notat")
    if st.form_submit_button("Lagre"):
        if run(lambda: crm.set_status(s, lot_id, status, note, settings().user), "Lagring"):
            st.success("Lagret.")
            st.rerun()
events = queries.lot_events(s, lot_id)
if not events.empty:
    st.subheader("Aktivitetslogg")
    st.dataframe(events[["at", "who", "kind", "old_status", "new_status", "note"]], hide_index=True, width="stretch")
