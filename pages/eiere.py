"""Eiere: parcels and owners of a lot; Matrikkel look-up or manual entry; the look-up log. Login first."""


import pandas as pd
import streamlit as st

from tomte import owners, pipeline
from ui import nav, queries
from ui.auth import require_login
from ui.state import held_choice, kommune_picker, run, run_with_upload, secrets_env, settings, stop_without_lots, store, synthetic_notice

st.set_page_config(page_title="Eiere – tomte", layout="wide")
st.title("Eiere")
nav.sidebar()
who = require_login()
s = store()
k = kommune_picker()
if k is None:
    st.stop()
synthetic_notice(k.kommunenummer)
stop_without_lots(s, k)
lots = queries.lot_ids(s, k.kommunenummer)
if not lots:
    st.info("Ingen tomter i kommunen ennå.")
    st.stop()
lot_id = held_choice("Tomt", lots, "eiere_lot", param="lot")

rows = owners.lot_parcels_and_owners(s, lot_id)
table = pd.DataFrame(rows)
if table.empty:
    st.info("Ingen teiger er koblet til tomten (hent teiger under «Kommuner»).")
else:
    st.dataframe(table[["matrikkelnummer", "overlap_m2", "name", "kind", "share", "address", "source", "reserved"]].rename(columns={
        "matrikkelnummer": "Teig", "overlap_m2": "Overlapp m²", "name": "Eier", "kind": "Type", "share": "Andel", "address": "Adresse",
        "source": "Kilde", "reserved": "Reservert"}), hide_index=True, width="stretch")

st.subheader("Slå opp i Matrikkelen")
basis = st.text_input("Rettslig grunnlag (logges)", value="berettiget interesse, utleveringsforskriften § 4")
c1, c2 = st.columns(2)
if c1.button("Slå opp eiere for denne tomten"):
    result = run(lambda: pipeline.lookup_owners(s, settings(), lot_id, basis, who, env=secrets_env()), "Oppslaget")
    if result:
        st.success(f"{result['owners']} eiere for {result['parcels']} teiger ({result['missing']} ukjente i Matrikkelen).")
        st.rerun()
shortlist = queries.lot_ids(s, k.kommunenummer, tier="A")
if c2.button(f"Slå opp for kortlisten ({len(shortlist)} A-tomter)", disabled=not shortlist):
    with st.status("Slår opp i Matrikkelen …") as box:
        result = run(lambda: pipeline.lookup_owners_many(s, settings(), shortlist, basis, who, env=secrets_env(), progress=st.write), "Oppslaget")
        if result:
            box.update(label=f"{result['owners']} eiere for {result['parcels']} teiger på {result['lots']} tomter", state="complete")

st.subheader("Legg inn eier manuelt")
parcels = sorted({(r["kommunenummer"], r["gnr"], r["bnr"], r["fnr"], r["snr"]) for r in rows})
with st.form("manual_owner"):
    parcel = held_choice("Teig", parcels, f"eiere_teig_{lot_id}",
                         format_func=lambda p: f"{p[0]}-{p[1]}/{p[2]}" + (f"/{p[3]}/{p[4]}" if p[3] or p[4] else ""))
    name = st.text_input("Navn")
    kind = st.radio("Type", owners.KINDS, horizontal=True)
    address = st.text_input("Postadresse")
    share = st.text_input("Andel (brøk eller prosent, f.eks. 1/2 eller 50 %)")
    if st.form_submit_button("Lagre eier") and parcel:
        if run(lambda: owners.add_owner(s, owners.Owner(*parcel, name, kind, address, share, "manuell")), "Lagring"):
            st.session_state["eiere_saved"] = f"Lagret eieren på teig {parcel[1]}/{parcel[2]}."
            st.rerun()
if saved := st.session_state.pop("eiere_saved", None):
    st.success(saved)
up = st.file_uploader("Importer eiere fra CSV (kommunenummer, gnr, bnr, navn, …)", type=["csv"])
if up is not None and st.button("Importer CSV"):
    n = run_with_upload(up, lambda path: owners.import_csv(s, path), "Importen")
    if n:
        st.success(f"Importerte {n} eiere.")

with st.expander("Reservasjonsregisteret"):
    owner_ids = [(r["owner_id"], r["name"]) for r in rows if r["owner_id"]]
    if owner_ids:
        chosen = st.selectbox("Eier", owner_ids, format_func=lambda o: o[1])
        reserved = st.checkbox("Reservert mot adressert reklame (ingen brev)")
        if st.button("Lagre reservasjon") and run(lambda: owners.set_reserved(s, chosen[0], reserved), "Lagring"):
            st.rerun()
    wash = st.file_uploader("Importer vasket liste (CSV med navn[, adresse])", type=["csv"], key="wash")
    if wash is not None and st.button("Merk reserverte"):
        n = run_with_upload(wash, lambda path: owners.import_reservations(s, path), "Importen")
        if n is not None:
            st.success(f"{0 if n is True else n} eiere merket som reservert.")

st.subheader("Oppslagslogg")
st.dataframe(pd.DataFrame(owners.lookup_log(s)), hide_index=True, width="stretch")
