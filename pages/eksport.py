"""Eksport: CSV for Excel, GeoPackage and GeoJSON for QGIS."""

import tempfile
from pathlib import Path

import streamlit as st

from tomte import airtable
from tomte.errors import TomteError
from tomte.export import export_lots
from ui.auth import require_login
from ui.state import page, run, secrets_env, shortlist_filter, stop_without_lots

MIME = {"csv": "text/csv", "csv-rfc4180": "text/csv", "gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json"}

s, k = page("Eksport")
stop_without_lots(s, k)
selection = shortlist_filter(keep_in_url=False)  # the shortlist filtered on Tomter arrives in the URL
with_owners = st.checkbox("Ta med eiernavn (personopplysninger – krever innlogging)")
if with_owners:
    require_login()
st.caption("Eiernavn tas bare med når du krysser av for det. «CSV for Excel» åpnes rett i norsk Excel (semikolon og "
           "desimalkomma); «CSV for skript» er RFC 4180 med komma og desimalpunktum.")
for fmt, label in (("csv", "CSV for Excel"), ("gpkg", "GeoPackage (QGIS, EPSG:25833)"), ("geojson", "GeoJSON (EPSG:4326)"),
                   ("csv-rfc4180", "CSV for skript (RFC 4180)")):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"tomte_{k.kommunenummer}{'_skript' if fmt == 'csv-rfc4180' else ''}.{fmt.split('-')[0]}"
        n = run(lambda out=out, fmt=fmt: export_lots(s, k.kommunenummer, fmt, out, with_owners, selection=selection), "Eksporten")
        if n is not None:
            st.download_button(f"Last ned {label} ({n} tomter)", out.read_bytes(), file_name=out.name, mime=MIME[fmt], key=f"dl_{fmt}")

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
