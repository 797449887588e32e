"""Kart: lots coloured by tier over Kartverket's map; click a lot to see why, and act on it."""

import streamlit as st
from streamlit_folium import st_folium

from tomte import mapdata
from ui import cached, queries
from ui.kart import BACKGROUNDS, bounds_of, build_map
from ui.state import crm_form, page, safe_md, settings, stop_without_lots

s, k = page("Kart")
stop_without_lots(s, k)
db = str(settings().db_path)
version = cached.data_version(k.kommunenummer)

c1, c2 = st.columns([2, 1])
tiers = c1.multiselect("Vis klasser", ["A", "B", "C", "D", "–"], ["A", "B", "C", "D", "–"], key="kart_tiers")
background = c2.selectbox("Bakgrunnskart", list(BACKGROUNDS), key="kart_bg")
toggles = st.columns(5)
shown = {name: toggles[i].toggle(label, key=f"kart_{name}") for i, (name, label) in enumerate(
    [("zones", "Boligsoner (KP)"), ("approved", "Vedtatte planer"), ("in_progress", "Planer under arbeid"),
     ("parcels", "Teiger ved valgt tomt"), ("constraints", "Restriksjoner")])}

lots = cached.lots_geojson(db, k.kommunenummer, tuple(tiers), version)
selected = st.query_params.get("lot")
bbox = mapdata.lot_bbox(s, selected, margin=500) if selected else None
layers = {}
for name, on in shown.items():
    if on and (name != "parcels" or bbox is not None):
        layers[name] = cached.layer_geojson(db, k.kommunenummer, name, bbox if name == "parcels" else None, version)
dots = bool(lots["features"]) and lots["features"][0]["geometry"]["type"] == "Point"
near = cached.lots_near(db, k.kommunenummer, tuple(tiers), bbox, version) if dots and bbox else None
st.caption(f"{len(lots['features'])} tomter i kartet" + (" (vist som punkter; klikk for å se tomtene rundt)" if dots else ""))
view = bounds_of(near or lots, selected) or bounds_of(lots)
folium_map = build_map(lots, layers, background, view, near, selected)
state = st_folium(folium_map, height=560, use_container_width=True, returned_objects=["last_active_drawing"], key=f"map_{k.kommunenummer}")

clicked = (state or {}).get("last_active_drawing") or {}
clicked_id = (clicked.get("properties") or {}).get("lot_id")
if clicked_id and clicked_id != selected:
    st.query_params["lot"] = clicked_id
    st.rerun()

if selected:
    row = queries.lots(s, k.kommunenummer, selected)
    if row.empty:
        st.info("Den valgte tomten finnes ikke lenger i denne kommunen.")
        st.stop()
    lot = row.iloc[0]
    st.subheader(f"Tomt {selected}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Klasse", lot["tier"] or "–")
    m2.metric("Poeng", "–" if lot["score"] is None else f"{lot['score']:.0f}")
    m3.metric("Areal", f"{lot['area_m2'] / 1000:.1f} daa")
    m4.metric("Status", lot["status"])
    if lot.get("adresse"):
        st.caption(f"Nærmeste adresse: {lot['adresse']}")
    st.markdown(f"**Hvorfor denne tomten?** {safe_md(lot['explanation'])}")
    st.dataframe(queries.score_breakdown(s, selected), hide_index=True, width="stretch")
    parcels = queries.lot_parcels(s, selected)
    if not parcels.empty:
        st.caption(f"{len(parcels)} teiger berører tomten")
        st.dataframe(parcels, hide_index=True, width="stretch")
    crm_form(s, selected, lot["status"], "kart_crm")
