"""Tomter: the shortlist. Filter by tier and CRM status, click a row to open the lot, export the selection."""

import streamlit as st

from ui import queries
from ui.state import crm_form, dossier_button, held_choice, page, safe_md, shortlist_filter, stop_without_lots

s, k = page("Tomter")
stop_without_lots(s, k)
lots = queries.lots(s, k.kommunenummer)
# The filters live in the URL (?klasse=A,B&status=Ny), so Eksport and a shared link get the same shortlist.
selection = shortlist_filter(keep_in_url=True)
chosen = queries.selected(lots, selection)
st.caption(f"{len(chosen)} av {len(lots)} tomter, {queries.tall(chosen['area_m2'].sum() / 1000)} daa — klikk en rad for å åpne tomten; sorter ved å klikke på en kolonne.")
if chosen.empty:
    st.info("Ingen tomter med dette utvalget.")
    st.stop()
table = queries.shortlist(chosen, queries.dwellings_by_lot(s, k.kommunenummer))
event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="tomter_table",
                     column_config={"Poeng": st.column_config.NumberColumn(format="%d"), "Boliger": st.column_config.NumberColumn(format="%d"),
                                    "Daa": st.column_config.NumberColumn(format="%.1f")})
rows = event.selection.rows if event is not None else []
if rows:
    clicked = table.iloc[rows[0]]["Tomt"]
    if clicked != st.session_state.get("tomter_clicked"):
        st.session_state["tomter_clicked"] = clicked
        st.query_params["lot"] = clicked  # held_choice follows a changed link
st.page_link("pages/eksport.py", label=f"Eksporter dette utvalget ({len(chosen)} tomter)", icon="⬇️",
             query_params={"kommune": k.kommunenummer, **({"klasse": ",".join(selection.tiers)} if selection.tiers else {}),
                           **({"status": ",".join(selection.statuses)} if selection.statuses else {})})

ids = list(chosen["lot_id"])
lot_id = held_choice("Velg tomt", ids, "tomter_lot", param="lot")
row = chosen[chosen["lot_id"] == lot_id].iloc[0]
st.markdown(f"**Hvorfor denne tomten?** {safe_md(row['explanation'])}")
crm_form(s, lot_id, row["status"], "crm")
events = queries.lot_events(s, lot_id)
if not events.empty:
    st.subheader("Aktivitetslogg")
    st.dataframe(events[["at", "who", "kind", "old_status", "new_status", "note"]], hide_index=True, width="stretch")

# Last on the page: ticking «eiernavn» asks for a login, which stops the page below it.
dossier_button(s, list(chosen["lot_id"])[:50], "tomter_dossier",
               f"Tomtedossier (PDF) for utvalget ({min(len(chosen), 50)} tomter" + (", de 50 beste" if len(chosen) > 50 else "") + ")")
