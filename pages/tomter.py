"""Tomter: the lots of a kommune with their explanation; change status or add a note."""

import streamlit as st

from ui import queries
from ui.state import crm_form, page, safe_md

s, k = page("Tomter")
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
crm_form(s, lot_id, row["status"], "crm")
events = queries.lot_events(s, lot_id)
if not events.empty:
    st.subheader("Aktivitetslogg")
    st.dataframe(events[["at", "who", "kind", "old_status", "new_status", "note"]], hide_index=True, width="stretch")
