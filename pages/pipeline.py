"""Pipeline: lots by CRM status, the outreach actions due, and owner letters for a selection."""

from datetime import date

import pandas as pd
import streamlit as st

from tomte import crm, letters, owners
from ui import queries
from ui.auth import require_login
from ui.state import page, run, settings, stop_without_lots

s, k = page("Pipeline")
stop_without_lots(s, k)
lots = queries.pipeline_board(s, k.kommunenummer)
if lots.empty:
    st.info("Ingen tomter ennå.")
    st.stop()
if moved_note := st.session_state.pop("board_moved", None):
    st.success(moved_note)
# One tab per status with its count and a table of all its lots (a board of cards showed 8 of 170);
# tick lots and move them to another status from here.
tabs = st.tabs([f"{status} ({int((lots['status'] == status).sum())})" for status in crm.STATUSES])
for tab, status in zip(tabs, crm.STATUSES, strict=True):
    with tab:
        group = lots[lots["status"] == status]
        if group.empty:
            st.caption(f"Ingen tomter har status «{status}».")
            continue
        table = pd.DataFrame({"Klasse": group["tier"].fillna("–"), "Poeng": group["score"].round(0), "Daa": group["daa"],
                              "Adresse": group["adresse"].fillna(""), "Tomt": group["lot_id"],
                              "Kart": [f"/kart?kommune={k.kommunenummer}&lot={lot}" for lot in group["lot_id"]]})
        picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
                              key=f"board_{status}", height=min(38 * (len(table) + 1), 420),
                              column_config={"Kart": st.column_config.LinkColumn("Kart", display_text="åpne"),
                                             "Poeng": st.column_config.NumberColumn(format="%d")})
        rows = picked.selection.rows if picked is not None else []
        if rows:
            targets = [x for x in crm.STATUSES if x != status]
            c1, c2 = st.columns([2, 1])
            target = c1.selectbox(f"Flytt {len(rows)} valgte tomter til", targets, key=f"move_to_{status}")
            if c2.button("Flytt", key=f"move_{status}"):
                ids = table.iloc[rows]["Tomt"].tolist()
                moved = run(lambda ids=ids, target=target: crm.move_lots(s, ids, target, settings().user), "Flyttingen")
                if moved is not None:
                    st.session_state["board_moved"] = f"{len(ids)} tomter flyttet fra «{status}» til «{target}»."
                    st.rerun()

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
chosen = st.multiselect("Tomter", list(lots["lot_id"]), default=list(lots[lots["status"].isin(["Vurderes", "Kontaktet"])]["lot_id"])[:5],
                        placeholder="Velg tomter")
if chosen and st.button("Lag brev (PDF)"):
    made = run(lambda: letters.letters_pdf(s, chosen), "Brevene")
    if made:
        pdf, counts = made
        st.download_button("Last ned brevene", pdf, file_name=f"grunneierbrev_{k.kommunenummer}.pdf", mime="application/pdf")
        planned = owners.start_outreach_for_lots(s, chosen)
        st.caption(f"{counts['letters']} brev; {counts['owners_missing']} teiger mangler eier. Oppfølging planlagt for {planned} "
                   "nye eiere (dag 0 brev, dag 3 e-post, dag 14 telefon, dag 30 brev 2); eiere som alt har en plan, beholder datoene.")
        if counts["skipped"]:
            st.warning(f"{len(counts['skipped'])} eiere fikk ikke brev:")
            st.dataframe(pd.DataFrame(counts["skipped"]).rename(columns={"name": "Eier", "lot_id": "Tomt", "reason": "Hvorfor"}),
                         hide_index=True, width="stretch")
