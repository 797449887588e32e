"""Kart: lots coloured by tier over Kartverket's map; click a lot to see why, and act on it."""

import streamlit as st
from streamlit_folium import st_folium

from tomte import mapdata
from tomte.export import TIER_CHOICES
from ui import cached, queries
from ui.kart import BACKGROUNDS, LAYER_NAMES, bounds_of, build_map, selection_layer
from ui.state import crm_form, dossier_button, page, safe_md, settings, stop_without_lots

s, k = page("Kart")
stop_without_lots(s, k)
db = str(settings().db_path)
version = cached.data_version(k.kommunenummer)

with st.expander("Klasser, kartlag og bakgrunn"):  # folded, so the map and the lot's panel start high on the page
    c1, c2 = st.columns([2, 1])
    tiers = c1.multiselect("Vis klasser", list(TIER_CHOICES), list(TIER_CHOICES), key="kart_tiers",
                               placeholder="Velg klasser")
    background = c2.selectbox("Bakgrunnskart", list(BACKGROUNDS), key="kart_bg")
    toggles = st.columns(5)
    shown = {name: toggles[i].toggle(label, key=f"kart_{name}") for i, (name, label) in enumerate(
        [(name, LAYER_NAMES[name]) for name in ("zones", "approved", "in_progress", "parcels", "constraints")])}

lots = cached.lots_geojson(db, k.kommunenummer, tuple(tiers), version)
selected = st.query_params.get("lot")
bbox = mapdata.lot_bbox(s, selected, margin=500) if selected else None
layers = {name: cached.layer_geojson(db, k.kommunenummer, name, None, version)
          for name, on in shown.items() if on and name != "parcels"}
parcels = cached.layer_geojson(db, k.kommunenummer, "parcels", bbox, version) if shown["parcels"] and bbox is not None else None
dots = bool(lots["features"]) and lots["features"][0]["geometry"]["type"] == "Point"
near = cached.lots_near(db, k.kommunenummer, tuple(tiers), bbox, version) if dots and bbox else None
# The view is chosen once per kommune: around the lot a link opened, else the whole kommune. Clicks
# then select lots without moving the map (issue 15: every click re-zoomed).
anchor_key = f"kart_anchor_{k.kommunenummer}"
if anchor_key not in st.session_state or (selected and selected != st.session_state.get("kart_clicked")):
    st.session_state[anchor_key] = selected  # a link (or the first visit) chose the lot, not a click in the map
anchor = st.session_state[anchor_key]
anchor_box = mapdata.lot_bbox(s, anchor, margin=500) if anchor else None
anchor_near = cached.lots_near(db, k.kommunenummer, tuple(tiers), anchor_box, version) if dots and anchor_box else None
view = (bounds_of(anchor_near or lots, anchor) if anchor else None) or bounds_of(lots)
boundary = cached.boundary_geojson(db, k.kommunenummer)
folium_map = build_map(lots, layers, background, view, boundary)
map_col, panel = st.columns([3, 2], gap="medium")  # the lot's panel beside the map, as in a site tool
with map_col:
    st.caption(f"{len(lots['features'])} tomter i kartet" + (" (vist som punkter; klikk for å se tomtene rundt)" if dots else ""))
    state = st_folium(folium_map, height=560, use_container_width=True, returned_objects=["last_active_drawing"],
                      key=f"map_{k.kommunenummer}",
                      feature_group_to_add=selection_layer(lots, selected, near, parcels) if selected else None)

clicked = (state or {}).get("last_active_drawing") or {}
clicked_id = (clicked.get("properties") or {}).get("lot_id")
if clicked_id and clicked_id != selected:
    st.query_params["lot"] = st.session_state["kart_clicked"] = clicked_id
    st.rerun()

with panel:
    if not selected:
        st.info("Klikk en tomt i kartet for å se klasse, poeng, hvorfor, teiger og status her.")
        st.stop()
    row = queries.lots(s, k.kommunenummer, selected)
    if row.empty:
        st.info("Den valgte tomten finnes ikke lenger i denne kommunen.")
        st.stop()
    lot = row.iloc[0]
    st.subheader(f"Tomt {selected}")
    m1, m2, m3 = st.columns(3)
    m1.metric("Klasse", lot["tier"] or "–")
    m2.metric("Poeng", "–" if lot["score"] is None or lot["score"] != lot["score"] else f"{lot['score']:.0f}")
    m3.metric("Areal", f"{queries.tall(lot['area_m2'] / 1000, 1)} daa")
    st.caption(f"CRM-status: **{lot['status']}**")
    homes = queries.dwellings(s, selected)
    if lot.get("adresse") or homes is not None:
        st.caption(" · ".join(x for x in (f"Nærmeste adresse: {lot['adresse']}" if lot.get("adresse") else "",
                                          f"Anslått {homes} boliger" if homes is not None else "") if x))
    st.markdown(f"**Hvorfor denne tomten?** {safe_md(lot['explanation'])}")
    st.dataframe(queries.score_breakdown(s, selected), hide_index=True, width="stretch")
    plan_table = queries.lot_plans(s, selected)
    if not plan_table.empty:
        st.caption("Reguleringsplaner her (lenke til planregisteret der kilden oppgir det; ellers arealplaner.no)")
        st.dataframe(plan_table, hide_index=True, width="stretch",
                     column_config={"Les planen": st.column_config.LinkColumn("Les planen", display_text="åpne")})
    parcels = queries.lot_parcels(s, selected)
    if not parcels.empty:
        st.caption(f"{len(parcels)} teiger berører tomten")
        st.dataframe(parcels, hide_index=True, width="stretch", height=min(35 * (len(parcels) + 1) + 3, 250))
    crm_form(s, selected, lot["status"], "kart_crm")
    dossier_button(s, [selected], "kart_dossier", "Tomtedossier (PDF) for møter og kolleger")
