"""The folium map: Leaflet served by the app itself (static/leaflet), Kartverket background."""

from __future__ import annotations

import functools
import json
from typing import Any

import branca.element
import folium
import jinja2
from branca.element import MacroElement
from folium.utilities import JsCode
from jinja2 import Template

from tomte.mapdata import LAYER_STYLES, TIER_COLOURS

LEAFLET_JS = "/app/static/leaflet/leaflet.js"
LEAFLET_CSS = "/app/static/leaflet/leaflet.css"
BACKGROUNDS = {
    "Kartverket topografisk": ("https://cache.kartverket.no/v1/wmts/1.0.0/topo/default/webmercator/{z}/{y}/{x}.png", "© Kartverket"),
    "Kartverket gråtone": ("https://cache.kartverket.no/v1/wmts/1.0.0/topograatone/default/webmercator/{z}/{y}/{x}.png", "© Kartverket"),
    "OpenStreetMap": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap-bidragsytere"),
    "Ingen bakgrunn": (None, ""),
}
CANVAS_FROM = 1500  # features; above this the canvas renderer draws much faster than SVG


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    return jinja2.Template(source)


# branca compiles the Jinja template of every script and stylesheet element anew each time a map is
# built and rendered (28 compilations, 0.5 of the 0.9 s streamlit-folium took per run for a 20,000-lot
# map, issue 14). A compiled template never changes, so the same source is compiled once per process.
branca.element.Template = _compiled  # type: ignore[assignment,misc]
LAYER_NAMES = {"zones": "Boligsoner i kommuneplanen", "approved": "Vedtatte reguleringsplaner", "in_progress": "Planer under arbeid",
               "parcels": "Teiger ved valgt tomt", "constraints": "Restriksjoner og hensyn", "tomter": "Tomter",
               "tomter nær valgt": "Tomter rundt valgt tomt", "grense": "Kommunegrense"}
TIER_LABELS = {"A": "A (80–100)", "B": "B (60–79)", "C": "C (40–59)", "D": "D (under 40)", None: "uten poeng"}


class _MetricScaleAndLegend(MacroElement):
    """A metric-only scale bar (folium's shows feet and miles too) and the tier legend, inside the map."""

    _template = Template("""{% macro script(this, kwargs) %}
        L.control.scale({metric: true, imperial: false}).addTo({{ this._parent.get_name() }});
        const legend_{{ this.get_name() }} = L.control({position: "bottomright"});
        legend_{{ this.get_name() }}.onAdd = function () {
            const div = L.DomUtil.create("div", "tomte-legend");
            div.style.cssText = "background:rgba(255,255,255,.9);padding:6px 8px;border-radius:4px;font:12px sans-serif;line-height:18px";
            div.innerHTML = {{ this.html | tojson }};
            return div;
        };
        legend_{{ this.get_name() }}.addTo({{ this._parent.get_name() }});
    {% endmacro %}""")

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        super().__init__()
        self._name = "MetricScaleAndLegend"
        self.html = "<b>Klasse</b><br>" + "<br>".join(
            f'<span style="display:inline-block;width:11px;height:11px;background:{colour};margin-right:5px;border:1px solid #555"></span>{label}'
            for colour, label in entries)


def _local_only(root: folium.Map) -> None:
    """Point every JS/CSS dependency at the app's own Leaflet; drop CDN-only extras (jQuery, Bootstrap)."""
    stack: list[Any] = [root]
    while stack:
        element = stack.pop()
        if hasattr(element, "default_js"):
            element.default_js = [("leaflet", LEAFLET_JS)] if element is root else []
        if hasattr(element, "default_css"):
            element.default_css = [("leaflet_css", LEAFLET_CSS)] if element is root else []
        stack.extend(getattr(element, "_children", {}).values())


def build_map(lots: dict[str, Any], layers: dict[str, dict[str, Any]], background: str, bounds: list[list[float]] | None,
              boundary: dict[str, Any] | None = None) -> folium.Map:
    """The base map: the lots coloured by tier (dots for a large kommune), the chosen context layers, the
    kommune boundary, legend and scale.

    Nothing here depends on the selected lot: streamlit-folium redraws the map only when its
    JavaScript changes, so a click that selects a lot no longer rebuilds the map and re-zooms it
    (issue 15); the selection is drawn by :func:`selection_layer` into the map as it stands.
    """
    n = len(lots["features"]) + sum(len(v["features"]) for v in layers.values())
    m = folium.Map(location=[59.7, 10.8], zoom_start=11, tiles=None, prefer_canvas=n >= CANVAS_FROM, control_scale=False)
    url, attribution = BACKGROUNDS.get(background, BACKGROUNDS["Kartverket topografisk"])
    if url:
        folium.TileLayer(url, attr=attribution, name=background, max_zoom=19).add_to(m)
    if boundary and boundary["features"]:
        folium.GeoJson(boundary, name=LAYER_NAMES["grense"], interactive=False,
                       style_function=lambda _f: {"color": "#222222", "weight": 2, "fill": False, "dashArray": "8 4"}).add_to(m)
    for name, data in layers.items():
        style = LAYER_STYLES[name]
        folium.GeoJson(data, name=LAYER_NAMES.get(name, name), style_function=lambda _f, s=style: s,
                       tooltip=folium.GeoJsonTooltip(["navn", "status"], labels=False) if data["features"] else None).add_to(m)
    _lots_layer(lots, LAYER_NAMES["tomter"]).add_to(m)
    m.add_child(_MetricScaleAndLegend([(TIER_COLOURS[t], TIER_LABELS[t]) for t in ("A", "B", "C", "D", None)]))
    if layers:
        folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    _local_only(m)
    return m


def _lots_layer(data: dict[str, Any], name: str, selected: str | None = None) -> folium.GeoJson:
    dots = bool(data["features"]) and data["features"][0]["geometry"]["type"] == "Point"
    return folium.GeoJson(
        data, name=name,
        marker=folium.CircleMarker(radius=4, fill=True, weight=1) if dots else None,
        on_each_feature=_tier_style(selected, dots),
        tooltip=folium.GeoJsonTooltip(["lot_id", "tier", "score", "daa", "status"],
                                      aliases=["Tomt", "Klasse", "Poeng", "Daa", "Status"]) if data["features"] else None,
    )


def selection_layer(lots: dict[str, Any], selected: str | None, near: dict[str, Any] | None,
                    parcels: dict[str, Any] | None) -> folium.FeatureGroup:
    """What belongs to the selected lot, added to the drawn map without redrawing it: the lots around it as
    polygons (when the kommune is drawn as dots), its outline in black, and its parcels when asked for."""
    group = folium.FeatureGroup(name="Valgt tomt")
    if near and near["features"]:
        _lots_layer(near, LAYER_NAMES["tomter nær valgt"], selected).add_to(group)
    if parcels and parcels["features"]:
        folium.GeoJson(parcels, name=LAYER_NAMES["parcels"], style_function=lambda _f: LAYER_STYLES["parcels"], interactive=False).add_to(group)
    chosen = [f for f in (near or lots)["features"] if f["properties"].get("lot_id") == selected and f["geometry"]["type"] != "Point"]
    if chosen:
        folium.GeoJson({"type": "FeatureCollection", "features": chosen}, name="Valgt tomt", interactive=False,
                       style_function=lambda _f: {"color": "#000000", "weight": 4, "fill": False}).add_to(group)
    _local_only(group)
    return group


def _tier_style(selected: str | None, dots: bool) -> JsCode:
    """Each lot styled in the browser from its tier as it is added.

    A Python ``style_function`` makes folium group the lots by style into a JavaScript
    ``switch`` with one ``case`` per lot id, which the browser then runs for every lot: with
    20,000 lots that alone took 1.5 of the 2.7 s the map needed to draw (issue 14).
    """
    colours = json.dumps({(k or ""): v for k, v in TIER_COLOURS.items()})
    return JsCode(f"""function(feature, layer) {{
        const colours = {colours}, c = colours[feature.properties.tier || ""] || colours[""];
        const sel = feature.properties.lot_id === {json.dumps(selected)};
        layer.setStyle({{color: sel ? "#000000" : c, fillColor: c, weight: sel ? 4 : 2, fillOpacity: {0.9 if dots else 0.45}}});
    }}""")


def bounds_of(geojson: dict[str, Any], lot_id: str | None = None) -> list[list[float]] | None:
    """[[south, west], [north, east]] of a FeatureCollection (or of one lot in it, with some margin)."""
    if lot_id:
        one = [f for f in geojson["features"] if f["properties"].get("lot_id") == lot_id]
        box = bounds_of({"features": one}) if one else None
        if box:
            pad = max(box[1][0] - box[0][0], box[1][1] - box[0][1], 0.002)
            return [[box[0][0] - pad, box[0][1] - pad], [box[1][0] + pad, box[1][1] + pad]]
    xs, ys = [], []

    def walk(coords: Any) -> None:
        if isinstance(coords[0], int | float):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for c in coords:
                walk(c)
    for f in geojson["features"]:
        walk(f["geometry"]["coordinates"])
    return [[min(ys), min(xs)], [max(ys), max(xs)]] if xs else None
