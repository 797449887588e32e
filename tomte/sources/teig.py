"""Teig (parcel polygons) from Kartverket's WFS ``wfs.matrikkelen-eiendomskart-teig`` (``app:Teig``).

Pure parser over :func:`tomte.sources.gml.parse_gml`: matrikkelnummer from
``matrikkelnummerTekst``, gnr/bnr/fnr/snr from the nested ``Matrikkelenhet`` (missing
festenummer/seksjonsnummer mean 0), the official area ``teigareal/Areal/lagretBeregnetAreal``.
"""

from __future__ import annotations

import geopandas as gpd

from tomte.sources.gml import RawFeature
from tomte.sources.normalize import Attrs, fold
from tomte.store import SRID

PARCEL_COLUMNS = ["matrikkelnummer", "kommunenummer", "gnr", "bnr", "fnr", "snr", "areal_m2", "teig_id"]


def _int(value: object, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def parcels_from_features(features: list[RawFeature]) -> gpd.GeoDataFrame:
    """Parcels from raw teig features (EPSG:25833)."""
    rows, geoms = [], []
    for f in features:
        if fold(f.feature_type) != "teig" or f.geometry is None:
            continue
        a = Attrs(f.attrs)
        flat = {fold(k): v for k, v in f.attrs.items()}

        def get(*keys: str, flat: dict = flat) -> object:
            return next((flat[k] for k in keys if flat.get(k) not in (None, "")), None)

        gnr = _int(get("matrikkelenhet.gardsnummer", "gardsnummer"))
        bnr = _int(get("matrikkelenhet.bruksnummer", "bruksnummer"))
        fnr = _int(get("matrikkelenhet.festenummer", "festenummer"))
        snr = _int(get("matrikkelenhet.seksjonsnummer", "seksjonsnummer"))
        text = get("matrikkelnummertekst") or f"{gnr}/{bnr}" + (f"/{fnr}" if fnr or snr else "") + (f"/{snr}" if snr else "")
        area = get("teigareal.lagretberegnetareal", "lagretberegnetareal")
        rows.append({
            "matrikkelnummer": str(text), "kommunenummer": str(get("matrikkelenhet.kommunenummer", "kommunenummer") or "").zfill(4),
            "gnr": gnr, "bnr": bnr, "fnr": fnr, "snr": snr,
            "areal_m2": float(str(area)) if area is not None else round(f.geometry.area, 1),
            "teig_id": str(get("identteig.teigid", "teigid") or f.gml_id or a.get("lokalid") or ""),
        })
        geoms.append(f.geometry)
    return gpd.GeoDataFrame(rows, columns=PARCEL_COLUMNS, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
