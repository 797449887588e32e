"""Eksport: CSV for Excel, GeoPackage and GeoJSON for QGIS."""

import tempfile
from pathlib import Path

import streamlit as st

from tomte import airtable
from tomte.errors import TomteError
from tomte.export import export_lots
from ui.auth import require_login
from ui.state import page, run, secrets_env, stop_without_lots

MIME = {"csv": "text/csv", "gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json"}

s, k = page("Eksport")
stop_without_lots(s, k)
with_owners = st.checkbox("Ta med eiernavn (personopplysninger – krever innlogging)")
if with_owners:
    require_login()
st.caption("Eiernavn tas bare med når du krysser av for det.")
for fmt, label in (("csv", "CSV (Excel)"), ("gpkg", "GeoPackage (QGIS, EPSG:25833)"), ("geojson", "GeoJSON (EPSG:4326)")):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"tomte_{k.kommunenummer}.{fmt}"
        if run(lambda out=out, fmt=fmt: export_lots(s, k.kommunenummer, fmt, out, with_owners), "Eksporten") is not None:
            st.download_button(f"Last ned {label}", out.read_bytes(), file_name=out.name, mime=MIME[fmt], key=f"dl_{fmt}")

st.subheader("Airtable")
try:
    config = airtable.AirtableConfig.from_env(secrets_env())
except TomteError as exc:
    st.info(str(exc))
else:
    st.caption(f"Base {config.base}, tabell «{config.table}»: tomtene oppdateres på lot_id (ingen duplikater).")
    if st.button("Synkroniser til Airtable"):
        bar = st.progress(0.0, "Sender …")
        result = run(lambda: airtable.sync(s, k.kommunenummer, config, with_owners,
                                           progress=lambda done, total: bar.progress(done / max(total, 1), f"{done}/{total} tomter")), "Airtable-synken")
        if result:
            st.success(f"{result['records']} tomter: {result['created']} nye, {result['updated']} oppdatert.")
