"""Eksport: CSV for Excel, GeoPackage and GeoJSON for QGIS."""

import tempfile
from pathlib import Path

import streamlit as st

from tomte.export import export_lots
from ui import nav
from ui.state import kommune_picker, run, store, synthetic_notice

MIME = {"csv": "text/csv", "gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json"}

st.title("Eksport")
nav.sidebar()
s = store()
k = kommune_picker()
if k is None:
    st.stop()
synthetic_notice(k.kommunenummer)
st.caption("Eierdata tas aldri med i disse eksportene.")
for fmt, label in (("csv", "CSV (Excel)"), ("gpkg", "GeoPackage (QGIS, EPSG:25833)"), ("geojson", "GeoJSON (EPSG:4326)")):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"tomte_{k.kommunenummer}.{fmt}"
        if run(lambda out=out, fmt=fmt: export_lots(s, k.kommunenummer, fmt, out), "Eksporten") is not None:
            st.download_button(f"Last ned {label}", out.read_bytes(), file_name=out.name, mime=MIME[fmt], key=f"dl_{fmt}")
