"""Kommuner: pick a kommune, see its sources and freshness, import files, run the analysis."""

import tempfile
from pathlib import Path

import streamlit as st

from tomte import pipeline
from ui import nav, queries
from ui.state import analysis_settings, differanse_form, kommune_picker, run, settings, store, synthetic_notice

st.title("Kommuner")
nav.sidebar()
s = store()
k = kommune_picker()
if k is None:
    st.stop()
st.header(f"{k.navn} ({k.kommunenummer})")
synthetic_notice(k.kommunenummer)
info = queries.state(s, k.kommunenummer)
if info:
    c = st.columns(4)
    c[0].metric("Kommuneplansoner", info["kp_count"])
    c[1].metric("Reguleringsplanområder", info["rp_count"])
    c[2].metric("Nyeste plandata", info.get("newest_data_date") or "ukjent")
    c[3].metric("Alder (dager)", info["age_days"] if info.get("age_days") is not None else "–")
    st.caption(f"Kommuneplan fra: {info.get('kp_source') or '–'} · Reguleringsplaner fra: {info.get('rp_source') or '–'}")
else:
    st.info("Ingen plandata for denne kommunen ennå.")

st.subheader("Kilder")
src = queries.sources_table(s, settings().sources_file, k.kommunenummer)
st.dataframe(src, hide_index=True, width="stretch") if not src.empty else st.caption("Ingen kilder satt opp.")

differanse_form()
col1, col2 = st.columns(2)
with col1:
    if st.button("Hent fra tjenestene og analyser", disabled=src.empty):
        with st.status("Henter og analyserer …", expanded=True) as status:
            fetched = run(lambda: pipeline.fetch_kommune(s, settings(), k.kommunenummer, progress=st.write), "Henting")
            if fetched:
                st.write(fetched.summary())
                result = run(lambda: pipeline.analyse(s, analysis_settings(), k.kommunenummer, st.write), "Analysen")
                if result:
                    st.write(result.summary())
                    status.update(label="Ferdig", state="complete")
            else:
                status.update(label="Henting mislyktes – tidligere data er beholdt", state="error")
with col2:
    if st.button("Analyser lagrede data på nytt", disabled=not info):
        result = run(lambda: pipeline.analyse(s, analysis_settings(), k.kommunenummer), "Analysen")
        if result:
            st.success(result.summary())

st.subheader("Importer plandata fra filer")
st.caption("SOSI-GML 3.2, GeoJSON eller GeoPackage (formatet gjenkjennes på innholdet).")
kp_file = st.file_uploader("Kommuneplanens arealformål (KpArealformålOmråde)", key="kp_upload")
rp_file = st.file_uploader("Reguleringsplanområder (RpOmråde)", key="rp_upload")
crs = st.text_input("Koordinatsystem for filer uten (valgfritt, f.eks. EPSG:25832)", value="")
if st.button("Importer", disabled=not (kp_file or rp_file)):
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for role, up in (("kp", kp_file), ("rp", rp_file)):
            if up is not None:
                p = Path(tmp) / up.name
                p.write_bytes(up.getvalue())
                paths[role] = p
        result = run(lambda: pipeline.import_plans(s, k.kommunenummer, paths.get("kp"), paths.get("rp"), crs or None, st.write), "Importen")
        if result:
            st.success(result.summary())

runs = queries.fetch_runs(s, k.kommunenummer)
if not runs.empty:
    st.subheader("Siste hentinger")
    st.dataframe(runs, hide_index=True, width="stretch")
