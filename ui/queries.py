"""Read models for the pages (thin wrappers over tomte, so pages hold no SQL)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from tomte import crm, plans
from tomte.analysis import lot_rows
from tomte.sources.registry import for_kommune, merged
from tomte.store import Store


def overview(store: Store) -> pd.DataFrame:
    """Per kommune with data: zones, plans, lots, data freshness."""
    rows = store.rows(
        "SELECT s.kommunenummer, k.navn, s.kp_count AS soner, s.rp_count AS planomrader, "
        "(SELECT COUNT(*) FROM lots l WHERE l.kommunenummer = s.kommunenummer AND l.active = 1) AS tomter, "
        "(SELECT ROUND(SUM(area_m2) / 1000.0, 1) FROM lots l WHERE l.kommunenummer = s.kommunenummer AND l.active = 1) AS daa, "
        "(SELECT COUNT(*) FROM lots l WHERE l.kommunenummer = s.kommunenummer AND l.active = 1 AND l.status != 'Ny') AS i_pipeline, "
        "s.newest_data_date AS nyeste_data, s.updated_at AS oppdatert, s.synthetic AS syntetisk "
        "FROM plan_data_state s JOIN kommuner k USING (kommunenummer) ORDER BY s.kommunenummer"
    )
    return pd.DataFrame(rows)


def sources_table(store: Store, sources_file: Any, kommunenummer: str) -> pd.DataFrame:
    """The kommune's configured sources."""
    srcs = for_kommune(merged(sources_file, store), kommunenummer)
    return pd.DataFrame([{"rolle": s.role, "type": s.kind, "adresse": s.url or s.path, "lag": s.typename or s.collection,
                          "fra": s.origin} for s in srcs])


def fetch_runs(store: Store, kommunenummer: str) -> pd.DataFrame:
    """Latest fetch runs."""
    return pd.DataFrame(store.rows(
        "SELECT started_at AS startet, ok, message AS melding FROM fetch_runs WHERE kommunenummer = ? ORDER BY id DESC LIMIT 10",
        (kommunenummer,)))


def lots(store: Store, kommunenummer: str, lot_id: str | None = None) -> pd.DataFrame:
    """Active lots as a table (just one when ``lot_id`` is given)."""
    return pd.DataFrame(lot_rows(store, kommunenummer, lot_id=lot_id))


def shortlist(frame: pd.DataFrame, homes: dict[str, int] | None = None) -> pd.DataFrame:
    """The lots as the analyst reads them: tier, score, daa, dwellings, address, purpose and flags in words."""
    from tomte import codes

    return pd.DataFrame({
        "Klasse": frame["tier"].fillna("–"),
        "Poeng": frame["score"].round(0),
        "Daa": (frame["area_m2"] / 1000).round(1),
        "Boliger": [(homes or {}).get(lot) for lot in frame["lot_id"]],
        "Adresse": frame["adresse"].fillna(""),
        "Formål": [codes.arealformal_name(f) for f in frame["arealformal"]],
        "Status i KP": frame["arealbruksstatus"].map(lambda c: codes.AREALBRUKSSTATUS.get(str(c), "")),
        "CRM-status": frame["status"],
        "Flagg": frame["flags"].map(codes.flag_words),
        "Siste notat": frame["latest_note"].fillna(""),
        "Tomt": frame["lot_id"],
    })


def factor_spread(values: Any, names: list[str]) -> pd.DataFrame:
    """Per factor, how its values (0–1) spread over the kommune's lots: quartiles, the share at full and at no
    points, and whether it separates the lots at all (issue 16: a factor that is the same for every lot is flat)."""
    import numpy as np

    rows = []
    for i, name in enumerate(names):
        col = values[:, i]
        known = col[~np.isnan(col)]
        if not len(known):
            rows.append({"Faktor": name, "Kjent for": "0 %", "Nedre kvartil": "–", "Median": "–", "Øvre kvartil": "–",
                         "Full score": "–", "Ingen score": "–", "Skiller": "ukjent"})
            continue
        q1, med, q3 = np.quantile(known, [0.25, 0.5, 0.75])
        rows.append({"Faktor": name, "Kjent for": f"{len(known) / len(col):.0%}".replace("%", " %"),
                     "Nedre kvartil": tall(q1, 2), "Median": tall(med, 2), "Øvre kvartil": tall(q3, 2),
                     "Full score": f"{(known >= 0.999).mean():.0%}".replace("%", " %"),
                     "Ingen score": f"{(known <= 0.001).mean():.0%}".replace("%", " %"),
                     "Skiller": "ja" if known.std() >= 0.05 else "nei"})
    return pd.DataFrame(rows)


def dwellings_by_lot(store: Store, kommunenummer: str) -> dict[str, int]:
    """The dwellings the last scoring estimated per active lot."""
    return {r["lot_id"]: int(r["n"]) for r in store.rows(
        "SELECT lot_id, json_extract(score_detail, '$.dwellings') AS n FROM lots WHERE kommunenummer = ? AND active = 1 "
        "AND score_detail IS NOT NULL", (kommunenummer,)) if r["n"] is not None}


def selected(frame: pd.DataFrame, choice: Any) -> pd.DataFrame:
    """The rows of ``frame`` an export :class:`~tomte.export.Selection` keeps."""
    if frame.empty:
        return frame
    return frame[[choice.keeps(r) for r in frame[["lot_id", "tier", "status"]].to_dict("records")]]


def lot_events(store: Store, lot_id: str) -> pd.DataFrame:
    """A lot's activity log."""
    return pd.DataFrame(crm.events(store, lot_id))


def state(store: Store, kommunenummer: str) -> dict[str, Any]:
    """The kommune's plan data state (empty dict when none)."""
    rows = store.rows("SELECT * FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
    if not rows:
        return {}
    out = rows[0]
    out["age_days"] = plans.data_age_days(out.get("newest_data_date"))
    return out


def funnel(store: Store) -> pd.DataFrame:
    """The funnel per kommune."""
    from tomte.crm import funnel as compute

    return pd.DataFrame(compute(store))


LABELS = {
    "analysed": "Polygoner analysert", "qualified": "Kvalifiserte", "contacted": "Kontaktet", "dialogue": "I dialog",
    "loi": "LOI/opsjon", "dwellings": "Estimerte boliger",
    "kommunenummer": "Kommunenr.", "navn": "Kommune", "soner": "Kommuneplansoner", "planomrader": "Planområder",
    "tomter": "Tomter", "daa": "Daa", "i_pipeline": "I pipeline", "nyeste_data": "Nyeste plandata", "oppdatert": "Oppdatert",
    "syntetisk": "Syntetisk", "lot_id": "Tomt", "arealformal": "Arealformål", "arealbruksstatus": "Status i KP",
    "area_daa": "Daa", "status": "CRM-status", "flags": "Flagg", "latest_note": "Siste notat",
}


def tall(value: Any, decimals: int = 0) -> str:
    """A number the Norwegian way: «3 300», «11 934,9» (thin no-break space between thousands)."""
    if value is None or value != value:
        return "–"
    text = f"{float(value):,.{decimals}f}"
    return text.replace(",", "\u00a0").replace(".", ",")


def dato(value: Any) -> str:
    """An ISO date or timestamp as a Norwegian date («03.12.2026»); empty when unknown."""
    text = str(value or "")
    return f"{text[8:10]}.{text[5:7]}.{text[:4]}" if len(text) >= 10 and text[4] == "-" else text


DATE_COLUMNS = {"nyeste_data", "oppdatert", "at", "started_at"}


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A small table for reading: Norwegian column names, numbers as «3 300» / «11 934,9», dates as dates."""
    out = labelled(frame)  # same columns in the same places, renamed (area_m2 becomes daa)
    for source, column in zip(frame.columns, out.columns, strict=True):
        values = out[column]
        if source in DATE_COLUMNS:
            out[column] = values.map(dato)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            decimals = 1 if (values.dropna() % 1 != 0).any() else 0
            out[column] = values.map(lambda v, d=decimals: tall(v, d))
    return out


def m2_per_dwelling_in_use(store: Store) -> list[float]:
    """The m² of site per dwelling the stored dwelling estimates were computed with (one per scoring setting used)."""
    values = store.rows("SELECT DISTINCT json_extract(score_detail, '$.m2_per_dwelling') AS m2 FROM lots "
                        "WHERE active = 1 AND score_detail IS NOT NULL")
    return sorted(float(r["m2"]) for r in values if r["m2"] is not None)


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table with Norwegian column names for display."""
    out = frame.copy()
    if "area_m2" in out:
        out.insert(list(out.columns).index("area_m2"), "area_daa", (out.pop("area_m2") / 1000).round(1))
    if "syntetisk" in out:
        out["syntetisk"] = out["syntetisk"].map({1: "ja", 0: "nei"})
    return out.rename(columns=LABELS)


def score_breakdown(store: Store, lot_id: str) -> pd.DataFrame:
    """A lot's score, factor by factor: value, weight, points and the reason."""
    from tomte.scoring import FACTOR_NAMES
    from tomte.store import loads

    detail = loads(store.scalar("SELECT score_detail FROM lots WHERE lot_id = ?", (lot_id,)), {})
    weights = detail.get("weights", {})
    rows = [{"Faktor": FACTOR_NAMES.get(name, name), "Verdi": "ukjent" if f["value"] is None else f"{f['value']:.2f}",
             "Vekt": weights.get(name, 0), "Poeng": f["points"], "Begrunnelse": f["reason"]}
            for name, f in detail.get("factors", {}).items()]
    return pd.DataFrame(rows)


def weights_from_url(text: str | None, factors: list[str]) -> dict[str, int] | None:
    """``?vekter=25,15,20,20,10,10,0`` as weights per factor (0–100 each); None when absent or malformed."""
    parts = (text or "").split(",")
    if len(parts) != len(factors) or not all(p.strip().isdigit() and int(p) <= 100 for p in parts):
        return None
    return {f: int(p) for f, p in zip(factors, parts, strict=True)}


def stored_weights(store: Store, kommunenummer: str) -> dict[str, float]:
    """The weights the kommune's stored scores were computed with (from the last scoring)."""
    from tomte.store import loads

    detail = store.scalar("SELECT score_detail FROM lots WHERE kommunenummer = ? AND active = 1 AND score_detail IS NOT NULL LIMIT 1",
                          (kommunenummer,))
    return dict(loads(detail, {}).get("weights", {}))


def addresses(store: Store, kommunenummer: str) -> pd.DataFrame:
    """The nearest address of each active lot (column ``Adresse``, indexed by lot id); the same text as the lot list."""
    rows = store.rows(
        "SELECT a.lot_id, a.adressetekst || COALESCE(', ' || a.postnummer || ' ' || a.poststed, '') AS Adresse FROM lot_addresses a "
        "JOIN lots l ON l.lot_id = a.lot_id WHERE l.kommunenummer = ? AND l.active = 1", (kommunenummer,))
    return pd.DataFrame(rows, columns=["lot_id", "Adresse"]).set_index("lot_id")


def lot_plans(store: Store, lot_id: str) -> pd.DataFrame:
    """The reguleringsplaner behind a lot with links to the plan register (:func:`tomte.plans.lot_plans`)."""
    return pd.DataFrame(plans.lot_plans(store, lot_id))


def dwellings(store: Store, lot_id: str) -> int | None:
    """The dwellings the last scoring estimated for a lot (at the m² per dwelling then in use)."""
    from tomte.store import loads

    value = loads(store.scalar("SELECT score_detail FROM lots WHERE lot_id = ?", (lot_id,)), {}).get("dwellings")
    return None if value is None else int(value)


def lot_parcels(store: Store, lot_id: str) -> pd.DataFrame:
    """Parcels touching a lot, with overlap."""
    return pd.DataFrame(store.rows(
        'SELECT p.matrikkelnummer AS Matrikkelnummer, p.gnr AS Gnr, p.bnr AS Bnr, ROUND(lp.overlap_m2) AS "Overlapp m²", '
        'ROUND(lp.share * 100) AS "Andel av teigen %" FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id '
        "WHERE lp.lot_id = ? ORDER BY lp.overlap_m2 DESC", (lot_id,)))


def lot_ids(store: Store, kommunenummer: str, tier: str | None = None) -> list[str]:
    """Active lot ids of a kommune, best score first (only one tier when given)."""
    sql = "SELECT lot_id FROM lots WHERE kommunenummer = ? AND active = 1"
    params: list[object] = [kommunenummer]
    if tier:
        sql += " AND tier = ?"
        params.append(tier)
    return [r["lot_id"] for r in store.rows(sql + " ORDER BY score DESC", params)]


def pipeline_board(store: Store, kommunenummer: str) -> pd.DataFrame:
    """Active lots with status, tier, score and area, for the pipeline board."""
    rows = store.rows(
        "SELECT l.lot_id, l.status, l.tier, l.score, ROUND(l.area_m2 / 1000.0, 1) AS daa, a.adressetekst AS adresse FROM lots l "
        "LEFT JOIN lot_addresses a ON a.lot_id = l.lot_id WHERE l.kommunenummer = ? AND l.active = 1 ORDER BY l.score DESC", (kommunenummer,))
    return pd.DataFrame(rows, columns=["lot_id", "status", "tier", "score", "daa", "adresse"])


LOT_ID = re.compile(r"\b(\d{4})-[0-9a-f]{10}\b")


def report_page(report: str) -> str:
    """A stored sync report as page Markdown: without its title line, lot ids as links to the lot on
    the map, and the rest shown literally (plan names and reasons are data, not Markdown)."""
    from ui.state import safe_md

    out = []
    for line in (report or "").splitlines():
        if line.startswith("# "):
            continue
        prefix = next((p for p in ("## ", "- ") if line.startswith(p)), "")
        body, parts, at = line[len(prefix):], [], 0
        for m in LOT_ID.finditer(body):
            parts += [safe_md(body[at:m.start()]), f"[{m.group(0)}](/kart?kommune={m.group(1)}&lot={m.group(0)})"]
            at = m.end()
        parts.append(safe_md(body[at:]))
        out.append(("#### " if prefix == "## " else prefix) + "".join(parts))
    return "\n".join(out)


def sync_runs(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """The latest sync runs with their reports."""
    return store.rows("SELECT id, started_at, finished_at, ok, report FROM sync_runs ORDER BY id DESC LIMIT ?", (limit,))
