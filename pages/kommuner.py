"""Kommuner: pick a kommune, see its sources and freshness, import files, run the analysis."""

import streamlit as st

from tomte import pipeline, political
from tomte.sources import registry
from ui import nav, queries
from ui.state import (
    analysis_settings,
    differanse_form,
    kommune_picker,
    run,
    run_with_upload,
    run_with_uploads,
    settings,
    store,
    synthetic_notice,
)

st.set_page_config(page_title="Kommuner – tomte", layout="wide")
st.title("Kommuner")
nav.sidebar()
s = store()
k = kommune_picker()
if k is None:
    st.stop()
st.set_page_config(page_title=f"Kommuner · {k.navn} – tomte")
st.header(f"{k.navn} ({k.kommunenummer})")
synthetic_notice(k.kommunenummer)
info = queries.state(s, k.kommunenummer)
if info:
    c = st.columns(4)
    c[0].metric("Kommuneplansoner", queries.tall(info["kp_count"]))
    c[1].metric("Reguleringsplanområder", queries.tall(info["rp_count"]))
    c[2].metric("Nyeste plandata", queries.dato(info.get("newest_data_date")) or "ukjent")
    c[3].metric("Alder (dager)", info["age_days"] if info.get("age_days") is not None else "–")
    st.caption(f"Kommuneplan fra: {info.get('kp_source') or '–'} · Reguleringsplaner fra: {info.get('rp_source') or '–'}")
else:
    st.info("Ingen plandata for denne kommunen ennå.")
for unit in pipeline.stale_units(s, k.kommunenummer):  # a failed unit keeps its previous data (issue 12)
    st.warning(pipeline.describe_stale(unit))

growth = political.population_growth(s, k.kommunenummer)
if growth:
    st.caption(f"Befolkningsvekst {growth[1]}–{growth[2]}: {growth[0]:.1f} % (SSB 06913)".replace(".", ","))

with st.expander("Politisk vilje"):
    will = political.get_will(s, k.kommunenummer)
    with st.form("politisk"):
        score = st.slider("Politisk vilje (0 = imot, 1 = ivrig)", 0.0, 1.0, will[0] if will else 0.5, 0.05)
        note = st.text_input("Begrunnelse", value=will[1] if will else "")
        if st.form_submit_button("Lagre") and run(lambda: political.set_will(s, k.kommunenummer, score, note), "Lagring"):
            st.success("Lagret; kjør analysen på nytt for nye poeng.")
    up_will = st.file_uploader("Importer tabell (CSV: kommunenummer, score, note)", type=["csv"], key="will_csv")
    if up_will is not None and st.button("Importer politisk vilje"):
        n = run_with_upload(up_will, lambda path: political.import_csv(s, path), "Importen")
        if n:
            st.success(f"{n} kommuner oppdatert.")

st.subheader("Kilder")
src = queries.sources_table(s, settings().sources_file, k.kommunenummer)
if src.empty:
    st.caption("Ingen kilder satt opp.")
else:
    st.dataframe(src, hide_index=True, width="stretch")

differanse_form()
force = st.checkbox("Bekreft utskifting selv om den nye kopien har under halvparten så mange objekter som den lagrede",
                    key="force_replace", help="Uten dette avvises en henting eller import som krymper plandataene kraftig.")
col1, col2 = st.columns(2)
with col1:
    if st.button("Hent fra tjenestene og analyser", disabled=src.empty):
        with st.status("Henter og analyserer …", expanded=True) as status:
            fetched = run(lambda: pipeline.fetch_kommune(s, settings(), k.kommunenummer, progress=st.write, force=force), "Henting")
            if fetched:
                st.write(fetched.summary())
                for unit, exc in fetched.failed.items():
                    st.error(f"{pipeline.unit_label(unit)}: {exc} Tidligere data er beholdt.")
                result = run(lambda: pipeline.analyse(s, analysis_settings(), k.kommunenummer, st.write), "Analysen")
                if result:
                    st.write(result.summary())
                    status.update(label="Ferdig" if fetched.ok else "Ferdig, men noen kilder feilet", state="complete" if fetched.ok else "error")
            else:
                status.update(label="Henting mislyktes – tidligere data er beholdt", state="error")
with col2:
    if st.button("Analyser lagrede data på nytt", disabled=not info):
        result = run(lambda: pipeline.analyse(s, analysis_settings(), k.kommunenummer), "Analysen")
        if result:
            st.success(result.summary())

with st.expander("Legg til en kilde"):
    with st.form("ny_kilde"):
        role = st.selectbox("Rolle", registry.ROLES)
        kind = st.selectbox("Type", ["wfs", "ogcapi", "file"])
        url = st.text_input("Adresse (URL)")
        name = st.text_input("Typenavn (WFS) eller samling (OGC API)")
        layer = st.text_input("Lag (for constraint/infrastruktur, f.eks. flomsone, veg, holdeplass, sentrum)")
        upload = st.file_uploader("…eller last opp en fil", key="source_file")
        if st.form_submit_button("Lagre kilden"):
            entry = {"kommune": k.kommunenummer, "role": role, "kind": "file" if upload is not None else kind}
            if upload is not None:
                entry["path"] = str(registry.save_upload(settings().db_path.parent, k.kommunenummer, upload.name, upload.getvalue()))
            else:
                entry["url"] = url
                entry["typename" if kind == "wfs" else "collection"] = name or None
            if layer:
                entry["layer"] = layer
            if run(lambda: registry.add_source(s, registry.parse_source({k2: v for k2, v in entry.items() if v}, "appen")), "Lagring"):
                st.success("Kilden er lagret; den brukes ved neste henting.")
                st.rerun()

st.subheader("Importer plandata fra filer")
st.caption("SOSI-tekst (.sos, SOSI 4.0–4.5), SOSI-GML 3.2, GeoJSON eller GeoPackage (formatet gjenkjennes på innholdet).")
kp_file = st.file_uploader("Kommuneplanens arealformål (KpArealformålOmråde)", key="kp_upload")
rp_file = st.file_uploader("Reguleringsplanområder (RpOmråde)", key="rp_upload")
crs = st.text_input("Koordinatsystem for filer uten (valgfritt, f.eks. EPSG:25832)", value="")
if st.button("Importer", disabled=not (kp_file or rp_file)):
    result = run_with_uploads({"kp": kp_file, "rp": rp_file}, lambda paths: pipeline.import_plans(
        s, k.kommunenummer, paths.get("kp"), paths.get("rp"), crs or None, st.write, force=force), "Importen")
    if result:
        st.success(result.summary())

runs = queries.fetch_runs(s, k.kommunenummer)
if not runs.empty:
    st.subheader("Siste hentinger")
    st.dataframe(runs, hide_index=True, width="stretch")
