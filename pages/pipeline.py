"""Pipeline: lots by CRM status, the outreach actions due, and owner letters for a selection."""

from datetime import date

import pandas as pd
import streamlit as st

from tomte import crm, letters, owners
from ui import queries
from ui.auth import require_login
from ui.state import page, run, stop_without_lots

s, k = page("Pipeline")
stop_without_lots(s, k)
lots = queries.pipeline_board(s, k.kommunenummer)
if lots.empty:
    st.info("Ingen tomter ennå.")
    st.stop()
columns = st.columns(len(crm.STATUSES))
for col, status in zip(columns, crm.STATUSES, strict=True):
    group = lots[lots["status"] == status]
    col.markdown(f"**{status}** ({len(group)})")
    for row in group.head(8).itertuples():
        col.page_link("pages/kart.py", label=f"{row.tier or '–'} · {row.lot_id[-6:]} · {row.daa} daa",
                      query_params={"kommune": k.kommunenummer, "lot": row.lot_id})

st.subheader("Oppfølging som forfaller i dag")
who = require_login()
due = pd.DataFrame(owners.due(s, date.today().isoformat()))
if due.empty:
    st.caption("Ingenting forfaller i dag.")
else:
    st.dataframe(due[["due", "lot_id", "action", "name"]].rename(columns={"due": "Frist", "lot_id": "Tomt", "action": "Handling", "name": "Eier"}),
                 hide_index=True, width="stretch")
    done = st.selectbox("Marker som utført", due["id"], format_func=lambda i: f"{due.set_index('id').loc[i, 'action']} – {due.set_index('id').loc[i, 'name']}")
    if st.button("Utført") and run(lambda: owners.mark_done(s, int(done), who), "Lagring"):
        st.rerun()

st.subheader("Grunneierbrev")
chosen = st.multiselect("Tomter", list(lots["lot_id"]), default=list(lots[lots["status"].isin(["Vurderes", "Kontaktet"])]["lot_id"])[:5])
if chosen and st.button("Lag brev (PDF)"):
    made = run(lambda: letters.letters_pdf(s, chosen), "Brevene")
    if made:
        pdf, counts = made
        st.download_button("Last ned brevene", pdf, file_name=f"grunneierbrev_{k.kommunenummer}.pdf", mime="application/pdf")
        planned = owners.start_outreach_for_lots(s, chosen)
        st.caption(f"{counts['letters']} brev; {counts['reserved_skipped']} reserverte eiere fikk ikke brev; "
                   f"{counts['owners_missing']} teiger mangler eier. Oppfølging planlagt for {planned} eiere "
                   "(dag 0 brev, dag 3 e-post, dag 14 telefon, dag 30 brev 2).")
