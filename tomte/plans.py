"""Plan data as tomte keeps it, and the atomic replacement of a kommune's plan data.

Parsers (``tomte.sources``) turn files and service responses into two GeoDataFrames in
EPSG:25833 with the columns below; :func:`replace_plan_data` swaps them into the store in one
transaction, so a failed fetch or import never leaves a kommune half-updated.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd

from tomte import codes
from tomte.store import SRID, Store, dumps, loads, now

KP_COLUMNS = [
    "zone_key", "feature_type", "regime", "arealformal", "arealbruksstatus", "planid", "plannavn",
    "omradenavn", "beskrivelse", "utnyttingstype", "utnyttingstall", "oppdateringsdato", "repaired",
]
RP_COLUMNS = [
    "area_key", "planid", "plannavn", "planstatus", "plantype", "vertikalniva",
    "ikrafttredelsesdato", "oppdateringsdato", "repaired", "link",
]


def register_link(kommunenummer: str, kommune_navn: str | None, planid: str | None, link: str | None = None) -> tuple[str, str] | None:
    """Where to read a plan: (label, URL). The source's own ``link`` (NAP's points into the kommune's
    plan register) when there is one; otherwise arealplaner.no's plan page, with the address built
    the way NAP's links for Bergen are (``/bergen4601/gi?funksjon=VisPlan&kommunenummer=…&planidentifikasjon=…``,
    seen in ``shared/data/real/nap-wms-gfi``). That pattern is verified for one kommune only, and
    some kommuner use other registers, so such a link is labelled as a guess."""
    if link:
        return "planregisteret", link
    if not planid:
        return None
    slug = re.sub(r"[^a-z]", "", (kommune_navn or "").lower().replace("æ", "ae").replace("ø", "o").replace("å", "a"))
    return ("arealplaner.no (antatt adresse)",
            f"https://www.arealplaner.no/{slug}{kommunenummer}/gi?funksjon=VisPlan&kommunenummer={kommunenummer}&planidentifikasjon={planid}")


def lot_plans(store: Store, lot_id: str) -> list[dict[str, Any]]:
    """The reguleringsplaner behind a lot — those subtracted from its zone and those in progress over it — with
    status in words, year, and where the plan can be read (:func:`register_link`)."""
    row = store.rows("SELECT l.kommunenummer, l.explanation, k.navn FROM lots l LEFT JOIN kommuner k USING (kommunenummer) "
                     "WHERE l.lot_id = ?", (lot_id,))
    if not row:
        return []
    knr, exp, navn = row[0]["kommunenummer"], loads(row[0]["explanation"], {}), row[0]["navn"]
    refs = [(p, "trukket fra sonen") for p in exp.get("cut_by", [])] + [(p, "under arbeid over tomten") for p in exp.get("in_progress", [])]
    ids = sorted({str(p.get("planid")) for p, _ in refs if p.get("planid")})
    links = {r["planid"]: r["link"] for r in store.rows(
        f"SELECT planid, MAX(link) AS link FROM rp_areas WHERE kommunenummer = ? AND planid IN ({','.join('?' * len(ids))}) GROUP BY planid",
        (knr, *ids))} if ids else {}
    out, seen = [], set()
    for plan, role in refs:
        planid = str(plan.get("planid") or "")
        if (planid, role) in seen:
            continue
        seen.add((planid, role))
        where = register_link(knr, navn, planid or None, links.get(planid))
        out.append({"Plan": planid or "uten id", "Navn": plan.get("plannavn") or "",
                    "Status": codes.PLANSTATUS.get(str(plan.get("planstatus")), "ukjent"),
                    "Vedtatt": str(plan.get("ikrafttredelsesdato") or "")[:4], "Forhold": role,
                    "Les planen": where[1] if where else None, "Kilde": where[0] if where else ""})
    return out


def empty_frame(columns: list[str]) -> gpd.GeoDataFrame:
    """An empty plan frame with the given columns in EPSG:25833."""
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns}, geometry=gpd.GeoSeries([], crs=SRID))


def _records(frame: gpd.GeoDataFrame, columns: list[str], kommunenummer: str, source: str, synthetic: bool) -> list[dict]:
    out = []
    for row in frame.reindex(columns=columns).itertuples(index=False):  # a reader without a column (link) gives None
        rec = {c: (None if pd.isna(v) else v) for c, v in zip(columns, row, strict=True)}
        rec["repaired"] = int(bool(rec.get("repaired")))
        rec.update(kommunenummer=kommunenummer, source=source, synthetic=int(synthetic))
        out.append(rec)
    return out


def newest_date(*frames: gpd.GeoDataFrame | None) -> str | None:
    """The newest ``oppdateringsdato``/``ikrafttredelsesdato`` among the frames (ISO date)."""
    dates: list[str] = []
    for frame in frames:
        if frame is None or frame.empty:
            continue
        for col in ("oppdateringsdato", "ikrafttredelsesdato"):
            if col in frame:
                dates.extend(str(v)[:10] for v in frame[col].dropna())
    return max(dates) if dates else None


def replace_plan_data(
    store: Store,
    kommunenummer: str,
    kp: gpd.GeoDataFrame | None,
    rp: gpd.GeoDataFrame | None,
    kp_source: str | None = None,
    rp_source: str | None = None,
    synthetic: bool = False,
    parcels: gpd.GeoDataFrame | None = None,
    parcel_source: str | None = None,
    layers: dict[tuple[str, str], gpd.GeoDataFrame] | None = None,
    layer_sources: dict[tuple[str, str], str] | None = None,
    ssb_rows: list[tuple] | None = None,
    addresses: list[tuple] | None = None,
) -> dict[str, int]:
    """Replace the kommune's kommuneplan zones, reguleringsplan areas and parcels atomically.

    ``None`` leaves that layer as it is. Returns counts of what was written.
    """
    counts: dict[str, int] = {}
    with store.transaction() as conn:
        state = store.rows("SELECT * FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
        prev = state[0] if state else {}
        in_progress_before = _in_progress(store, kommunenummer) if rp is not None else set()
        if kp is not None:
            conn.execute("DELETE FROM kp_zones WHERE kommunenummer = ?", (kommunenummer,))
            store.insert_features("kp_zones", _records(kp, KP_COLUMNS, kommunenummer, kp_source or "", synthetic), list(kp.geometry))
            counts["kp"] = len(kp)
        if rp is not None:
            conn.execute("DELETE FROM rp_areas WHERE kommunenummer = ?", (kommunenummer,))
            store.insert_features("rp_areas", _records(rp, RP_COLUMNS, kommunenummer, rp_source or "", synthetic), list(rp.geometry))
            counts["rp"] = len(rp)
        if parcels is not None:
            conn.execute("DELETE FROM parcels WHERE kommunenummer = ?", (kommunenummer,))
            cols = ["matrikkelnummer", "gnr", "bnr", "fnr", "snr", "areal_m2", "teig_id"]
            recs = [{**{c: r.get(c) for c in cols}, "kommunenummer": kommunenummer, "source": parcel_source or "",
                     "synthetic": int(synthetic)} for r in parcels.to_dict("records")]
            store.insert_features("parcels", recs, list(parcels.geometry))
            counts["parcels"] = len(parcels)
        for (role, layer), frame in (layers or {}).items():
            replace_layer(store, kommunenummer, role, layer, frame, (layer_sources or {}).get((role, layer), ""), synthetic)
            counts[f"{role}:{layer}"] = len(frame)
        if ssb_rows:
            conn.executemany("INSERT OR REPLACE INTO ssb_values VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ssb_rows)
            counts["ssb"] = len(ssb_rows)
        if addresses:
            conn.executemany("INSERT OR REPLACE INTO lot_addresses VALUES (?, ?, ?, ?, ?, ?, 0)", addresses)
            counts["adresser"] = len(addresses)
        replaced = [name for name, frame in (("kommuneplan", kp), ("reguleringsplan", rp)) if frame is not None]
        if replaced:
            source = "; ".join(x for x in (kp_source if kp is not None else None, rp_source if rp is not None else None) if x)
            conn.execute("INSERT INTO data_versions (kommunenummer, at, layers, source, counts) VALUES (?, ?, ?, ?, ?)",
                         (kommunenummer, now(), ",".join(replaced), source, dumps(counts)))
        if rp is not None and prev.get("rp_count"):  # the first copy is the baseline, not news
            _log_new_plans_in_progress(store, kommunenummer, in_progress_before)
        kp_count = store.scalar("SELECT COUNT(*) FROM kp_zones WHERE kommunenummer = ?", (kommunenummer,))
        rp_count = store.scalar("SELECT COUNT(*) FROM rp_areas WHERE kommunenummer = ?", (kommunenummer,))
        newest = newest_date(kp, rp) or prev.get("newest_data_date")
        conn.execute(
            "INSERT OR REPLACE INTO plan_data_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kommunenummer,
                kp_source if kp is not None else prev.get("kp_source"),
                rp_source if rp is not None else prev.get("rp_source"),
                kp_count, rp_count, now(), newest, int(synthetic),
            ),
        )
    return counts


def _in_progress(store: Store, kommunenummer: str) -> set[str]:
    marks = ",".join(f"'{c}'" for c in sorted(codes.IN_PROGRESS_PLANSTATUS))
    return {r[0] for r in store.conn.execute(
        f"SELECT area_key FROM rp_areas WHERE kommunenummer = ? AND planstatus IN ({marks})", (kommunenummer,))}


def _log_new_plans_in_progress(store: Store, kommunenummer: str, before: set[str]) -> None:
    """A change row per plan in progress that the new copy has and the previous one had not."""
    new = _in_progress(store, kommunenummer) - before
    if not new:
        return
    rows = store.rows("SELECT area_key, planid, plannavn, planstatus FROM rp_areas WHERE kommunenummer = ? AND area_key IN ("
                      + ",".join("?" for _ in new) + ")", (kommunenummer, *sorted(new)))
    stamp = now()
    store.conn.executemany("INSERT INTO changes (kommunenummer, at, kind, lot_id, detail) VALUES (?, ?, 'ny_plan_under_arbeid', NULL, ?)",
                           [(kommunenummer, stamp, dumps(r)) for r in rows])


def latest_version(store: Store, kommunenummer: str) -> dict | None:
    """The newest data version of a kommune's plan data (what was replaced, when, from where)."""
    rows = store.rows("SELECT * FROM data_versions WHERE kommunenummer = ? ORDER BY id DESC LIMIT 1", (kommunenummer,))
    return rows[0] if rows else None


LAYER_COLUMNS = ["name", "code", "value"]


def replace_layer(store: Store, kommunenummer: str, role: str, layer: str, frame: gpd.GeoDataFrame, source: str,
                  synthetic: bool = False) -> None:
    """Replace one context layer (constraints, infrastructure, grunnkretser); call inside a transaction."""
    store.conn.execute("DELETE FROM layers WHERE kommunenummer = ? AND role = ? AND layer = ?", (kommunenummer, role, layer))
    recs = [{"kommunenummer": kommunenummer, "role": role, "layer": layer, "name": r.get("name"), "code": r.get("code"),
             "value": r.get("value"), "source": source, "synthetic": int(synthetic)}
            for r in frame.reindex(columns=LAYER_COLUMNS).astype(object).where(frame.reindex(columns=LAYER_COLUMNS).notna(), None).to_dict("records")]
    store.insert_features("layers", recs, list(frame.geometry))
    store.conn.execute("INSERT OR REPLACE INTO layer_state VALUES (?, ?, ?, ?, ?, ?)",
                       (kommunenummer, role, layer, len(frame), source, now()))


def read_zones(store: Store, kommunenummer: str) -> gpd.GeoDataFrame:
    """Stored kommuneplan zones of a kommune."""
    return store.read_frame(
        "SELECT id, " + ", ".join(KP_COLUMNS) + ", AsBinary(geom) AS geom FROM kp_zones WHERE kommunenummer = ? ORDER BY id",
        (kommunenummer,),
    )


def read_plans(store: Store, kommunenummer: str) -> gpd.GeoDataFrame:
    """Stored reguleringsplan areas of a kommune."""
    return store.read_frame(
        "SELECT id, " + ", ".join(RP_COLUMNS) + ", AsBinary(geom) AS geom FROM rp_areas WHERE kommunenummer = ? ORDER BY id",
        (kommunenummer,),
    )


def data_age_days(newest: str | None, today: date | None = None) -> int | None:
    """Days since the newest plan data date, or None when unknown."""
    if not newest:
        return None
    try:
        return ((today or date.today()) - date.fromisoformat(newest[:10])).days
    except ValueError:
        return None
