"""Tomter: the lots of a kommune with their explanation; change status or add a note."""

import streamlit as st

from ui import queries
from ui.state import crm_form, held_choice, page, safe_md, stop_without_lots

s, k = page("Tomter")
stop_without_lots(s, k)
lots = queries.lots(s, k.kommunenummer)
if lots.empty:
    st.info("Ingen tomter. Importer eller hent plandata og kjør analysen under «Kommuner».")
    st.stop()
st.caption(f"{len(lots)} tomter, {lots['area_m2'].sum() / 1000:,.0f} daa".replace(",", " "))
shown = lots[["lot_id", "arealformal", "arealbruksstatus", "area_m2", "status", "flags", "latest_note"]]
st.dataframe(queries.labelled(shown), hide_index=True, width="stretch")

ids = list(lots["lot_id"])
lot_id = held_choice("Velg tomt", ids, "tomter_lot", param="lot")
row = lots[lots["lot_id"] == lot_id].iloc[0]
st.markdown(f"**Hvorfor denne tomten?** {safe_md(row['explanation'])}")
crm_form(s, lot_id, row["status"], "crm")
events = queries.lot_events(s, lot_id)
if not events.empty:
    st.subheader("Aktivitetslogg")
    st.dataframe(events[["at", "who", "kind", "old_status", "new_status", "note"]], hide_index=True, width="stretch")
