"""Run the differanse for a kommune and reconcile the result with the stored lots.

Identity and history (issues 4 and 13): a lot keeps its id while its zone and geometry are
unchanged. When data change, an old lot's analyst data (status; notes and CRM events through
``lot_lineage``; planned outreach) moves to the new lot that covers at least 50 % of the old lot;
a lot that disappears is archived (``active = 0``) with the reason and the data version that
archived it, never deleted. A history is never reset: a lot that comes back (the same id, or a
new lot covering at least 50 % of an archived lot with analyst data) gets its status, notes and
outreach back, with a log entry saying from where and why it had been archived.

The reconciliation runs inside one write transaction and reads the statuses there, so an
analyst's status change is either seen and moved, or lands after the move on a lot that is
then archived (and :func:`tomte.crm.set_status` refuses it, naming the successor). Every change
is also a row in ``changes``, written in the same transaction: the sync report is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from tomte import codes, plans
from tomte.config import DifferanseSettings
from tomte.crm import lineage_sql
from tomte.differanse import compute_lots, explain, meeting_pairs, parallel, repair_near, select_plans
from tomte.kommuner import boundary
from tomte.store import Store, crash_point, dumps, loads, now

MOVE_MIN_SHARE = 0.5


@dataclass
class AnalysisResult:
    """What an analysis run changed."""

    kommunenummer: str
    lots: int = 0
    new: list[str] = field(default_factory=list)
    kept: int = 0
    moved: dict[str, str] = field(default_factory=dict)
    restored: dict[str, str] = field(default_factory=dict)
    archived: dict[str, str] = field(default_factory=dict)
    zones_considered: int = 0
    approved_plans: int = 0

    def summary(self) -> str:
        """One line for the CLI and the app."""
        return (f"{self.kommunenummer}: {self.lots} tomter ({len(self.new)} nye, {self.kept} uendret, "
                f"{len(self.moved)} flyttet, {len(self.restored)} gjenopprettet, {len(self.archived)} arkivert) fra {self.zones_considered} boligsoner "
                f"og {self.approved_plans} vedtatte planområder")


def _stored_lots(store: Store, kommunenummer: str) -> gpd.GeoDataFrame:
    return store.read_frame(
        "SELECT lot_id, status, tier, flags, created_at, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1",
        (kommunenummer,),
    )


def _archived_with_history(store: Store, kommunenummer: str) -> gpd.GeoDataFrame:
    """Archived lots that carry analyst data (a status, a note, outreach): they may come back."""
    return store.read_frame(
        "SELECT l.lot_id, l.status, l.archived_at, l.archived_reason, l.created_at, AsBinary(l.geom) AS geom FROM lots l "
        "WHERE l.kommunenummer = ? AND l.active = 0 AND l.zone_key IS NOT NULL AND (l.status != 'Ny' "
        "OR EXISTS (SELECT 1 FROM crm_events e WHERE e.lot_id = l.lot_id AND e.who != 'tomte') "
        "OR EXISTS (SELECT 1 FROM outreach r WHERE r.lot_id = l.lot_id)) "
        "AND NOT EXISTS (SELECT 1 FROM lot_lineage g WHERE g.old_lot_id = l.lot_id)", (kommunenummer,))


CAUSES = {"kommuneplan": "kommuneplanen ble byttet ut", "reguleringsplan": "reguleringsplanene ble oppdatert",
          "kommuneplan,reguleringsplan": "kommuneplanen og reguleringsplanene ble byttet ut"}


def archive_cause(version: dict | None) -> str:
    """Why lots were archived, in words, from the data version that was analysed."""
    if version is None:
        return "innstillingene for differansen ble endret"
    return f"{CAUSES.get(version['layers'], 'plandataene ble endret')} ({version['source'] or 'ukjent kilde'}, {version['at'][:10]})"


def _best_overlap(a: np.ndarray, b: np.ndarray) -> dict[int, tuple[float, int]]:
    """For each geometry of ``a``, the geometry of ``b`` covering the largest share of it."""
    best: dict[int, tuple[float, int]] = {}
    if not len(a) or not len(b):
        return best
    ai, bi = meeting_pairs(a, b)
    if len(ai):
        shares = shapely.area(shapely.intersection(a[ai], b[bi])) / np.maximum(shapely.area(a[ai]), 1e-9)
        for i, j, share in zip(ai.tolist(), bi.tolist(), shares.tolist(), strict=True):
            if share > best.get(i, (0.0, -1))[0]:
                best[i] = (share, j)
    return best


def _archive_reasons(gone_geoms: np.ndarray, approved: gpd.GeoDataFrame) -> list[str]:
    """Why each lot disappeared: the approved plan now covering at least half of it, if any."""
    reasons = ["ikke lenger en kandidat (kommuneplanformål, status eller areal er endret)"] * len(gone_geoms)
    if not len(approved) or not len(gone_geoms):
        return reasons
    plan_geoms, _ = repair_near(approved.geometry.to_numpy(), gone_geoms)
    gi, pi = meeting_pairs(gone_geoms, plan_geoms)
    if not len(gi):
        return reasons
    shares = shapely.area(shapely.intersection(gone_geoms[gi], plan_geoms[pi])) / np.maximum(shapely.area(gone_geoms[gi]), 1e-9)
    best: dict[int, tuple[float, int]] = {}
    for g, p, share in zip(gi.tolist(), pi.tolist(), shares.tolist(), strict=True):
        if share > best.get(g, (0.0, -1))[0]:
            best[g] = (share, p)
    for g, (share, p) in best.items():
        if share >= 0.5:
            row = approved.iloc[p]
            status = codes.PLANSTATUS_SHORT.get(str(codes.code(row["planstatus"])), "vedtatt")
            reasons[g] = f"nå dekket av reguleringsplan {row['planid']}, {status}"
    return reasons


def analyse_kommune(store: Store, kommunenummer: str, settings: DifferanseSettings) -> AnalysisResult:
    """Compute and store the lots of one kommune from its stored plan data (no network)."""
    computed = compute_kommune(store, kommunenummer, settings)
    with store.transaction():
        return store_kommune(store, computed, settings)


@dataclass
class Computed:
    """The lots of a kommune computed from one version of its plan data, not yet stored."""

    kommunenummer: str
    lots: gpd.GeoDataFrame
    rp: gpd.GeoDataFrame
    synthetic: int
    version: int | None
    result: AnalysisResult


def compute_kommune(store: Store, kommunenummer: str, settings: DifferanseSettings) -> Computed:
    """The differanse from the stored plan data: reads only, so it holds no write lock (a sync's
    other workers keep writing meanwhile, issue 14)."""
    state_rows = store.rows("SELECT * FROM plan_data_state WHERE kommunenummer = ?", (kommunenummer,))
    state = state_rows[0] if state_rows else {}
    version = plans.latest_version(store, kommunenummer)
    zones = plans.read_zones(store, kommunenummer)
    rp = plans.read_plans(store, kommunenummer)
    has_rp = bool(state.get("rp_source")) or len(rp) > 0
    result = AnalysisResult(kommunenummer)
    age = plans.data_age_days(state.get("newest_data_date"))
    synthetic = int(state.get("synthetic") or 0)

    if zones.empty:
        lots = gpd.GeoDataFrame(
            [{"lot_id": f"{kommunenummer}-mangler-kp", "kommunenummer": kommunenummer, "zone_key": None,
              "arealformal": None, "arealbruksstatus": None, "regime": None, "flags": ["mangler_kommuneplan"],
              "explanation": {"data_age_days": age}}],
            geometry=list(boundary(store, kommunenummer)), crs=zones.crs,
        )
        lots["area_m2"] = lots.geometry.area.round(1)
    else:
        frame = compute_lots(zones, rp, kommunenummer, settings, has_plan_source=has_rp)
        lots = frame.lots
        result.zones_considered, result.approved_plans = frame.zones_considered, frame.approved_plans
        for exp in lots["explanation"]:
            exp["data_age_days"] = age
    return Computed(kommunenummer, lots, rp, synthetic, version["id"] if version else None, result)


def store_kommune(store: Store, computed: Computed, settings: DifferanseSettings) -> AnalysisResult:
    """Write computed lots with their history; call inside a transaction.

    When the plan data were replaced after :func:`compute_kommune` read them (an import in another
    tab), the lots are computed again here, inside the transaction, so they always match the data.
    """
    version = plans.latest_version(store, computed.kommunenummer)
    if (version["id"] if version else None) != computed.version:
        computed = compute_kommune(store, computed.kommunenummer, settings)
    _reconcile(store, computed.kommunenummer, computed.lots, computed.rp, settings, computed.synthetic, computed.result)
    return computed.result


def _reconcile(store: Store, kommunenummer: str, lots: gpd.GeoDataFrame, rp: gpd.GeoDataFrame,
               settings: DifferanseSettings, synthetic: int, result: AnalysisResult) -> None:
    """Match the computed lots with the stored ones and write them; call inside a transaction."""
    old = _stored_lots(store, kommunenummer)
    new_ids = set(lots["lot_id"])
    old_by_id = {r.lot_id: r for r in old.itertuples(index=False)}
    status_for: dict[str, str] = {}
    lineage: list[tuple[str, str, float]] = []
    archive: dict[str, str] = {}
    new_geoms = lots.geometry.to_numpy()
    gone = old[~old["lot_id"].isin(new_ids)] if len(old) else old
    if len(gone):
        best = _best_overlap(gone.geometry.to_numpy(), new_geoms)
        approved, _ = select_plans(rp, settings)
        unmatched: list[int] = []
        for g, row in enumerate(gone.itertuples(index=False)):
            share, n = best.get(g, (0.0, -1))
            if share >= MOVE_MIN_SHARE:
                new_id = lots.iloc[n]["lot_id"]
                lineage.append((row.lot_id, new_id, round(share, 4)))
                archive[row.lot_id] = f"erstattet av {new_id} etter endrede plandata ({round(share * 100)} % overlapp)"
                if row.status != "Ny" and status_for.get(new_id, "Ny") == "Ny":
                    status_for[new_id] = row.status
            else:
                unmatched.append(g)
        reasons = _archive_reasons(gone.geometry.to_numpy()[unmatched], approved)
        for g, reason in zip(unmatched, reasons, strict=True):
            archive[gone["lot_id"].iloc[g]] = reason

    # Lots that come back: the same id, or covering at least half of an archived lot with history.
    restored: dict[str, tuple[str, str]] = {}  # new lot → (archived lot, why it had been archived)
    archived = _archived_with_history(store, kommunenummer)
    if len(archived):
        fresh = ~lots["lot_id"].isin(set(old_by_id) | {n for _, n, _ in lineage})
        back = _best_overlap(archived.geometry.to_numpy(), new_geoms)
        for a, row in enumerate(archived.itertuples(index=False)):
            if row.lot_id in new_ids:
                n = int(np.flatnonzero(lots["lot_id"].to_numpy() == row.lot_id)[0])
            else:
                share, n = back.get(a, (0.0, -1))
                if share < MOVE_MIN_SHARE:
                    continue
            new_id = lots.iloc[n]["lot_id"]
            if not fresh.iloc[n] or new_id in restored:
                continue
            restored[new_id] = (row.lot_id, f"arkivert {str(row.archived_at)[:10]}: {row.archived_reason}")
            if row.status != "Ny":
                status_for[new_id] = row.status
            if row.lot_id != new_id:
                lineage.append((row.lot_id, new_id, 1.0))

    stamp = now()
    records, geoms = [], []
    for lot in lots.itertuples(index=False):
        prev = old_by_id.get(lot.lot_id)
        status = prev.status if prev is not None else status_for.get(lot.lot_id, "Ny")
        flags = ",".join(lot.flags)
        records.append({
            "lot_id": lot.lot_id, "kommunenummer": kommunenummer, "zone_key": lot.zone_key,
            "arealformal": lot.arealformal, "arealbruksstatus": lot.arealbruksstatus, "regime": lot.regime,
            "area_m2": lot.area_m2, "flags": flags, "explanation": dumps({**lot.explanation, "text": explain(lot.explanation, lot.flags, lot.area_m2)}),
            "status": status, "active": 1, "created_at": prev.created_at if prev is not None else stamp,
            "updated_at": stamp, "synthetic": synthetic,
        })
        geoms.append(lot.geometry)
        if prev is not None:
            result.kept += 1
        else:
            result.new.append(lot.lot_id)
    version = plans.latest_version(store, kommunenummer)
    cause = archive_cause(version)
    conn = store.conn
    # Archived lots whose id comes back are replaced by the fresh row (their status is carried above).
    conn.executemany("DELETE FROM lots WHERE lot_id = ?", [(r["lot_id"],) for r in records])
    store.insert_features("lots", records, geoms)
    conn.executemany(
        "UPDATE lots SET active = 0, archived_at = ?, archived_reason = ?, archived_version = ? WHERE lot_id = ?",
        [(stamp, reason, version["id"] if version else None, lot_id) for lot_id, reason in archive.items()],
    )
    conn.executemany("INSERT OR REPLACE INTO lot_lineage VALUES (?, ?, ?, ?)", [(o, n, stamp, s) for o, n, s in lineage])
    events = [(n, stamp, "flyttet", f"Analytikerdata flyttet fra {o} etter endrede plandata.") for o, n, _ in lineage if n not in restored]
    events += [(n, stamp, "gjenopprettet", f"Gjenopprettet: historikk, status og oppfølging hentet tilbake fra {a} ({why}).")
               for n, (a, why) in restored.items()]
    events += [(o, stamp, "arkivert", f"Arkivert: {reason}; {cause}.") for o, reason in archive.items()]
    conn.executemany("INSERT INTO crm_events (lot_id, at, who, kind, note) VALUES (?, ?, 'tomte', ?, ?)", events)
    conn.executemany("UPDATE outreach SET lot_id = ? WHERE lot_id = ?", [(n, o) for o, n, _ in lineage])
    moved = {o: n for o, n, _ in lineage if n not in restored}
    change_rows: list[tuple[str, str, dict]] = [("ny", n, {}) for n in result.new if n not in restored and n not in moved.values()]
    change_rows += [("flyttet", n, {"from": o}) for o, n in moved.items()]
    change_rows += [("gjenopprettet", n, {"from": a, "why": why}) for n, (a, why) in restored.items()]
    change_rows += [("forsvunnet", o, {"reason": r, "cause": cause, "tier": old_by_id[o].tier, "status": old_by_id[o].status})
                    for o, r in archive.items() if o not in moved]
    conn.executemany("INSERT INTO changes (kommunenummer, at, kind, lot_id, detail) VALUES (?, ?, ?, ?, ?)",
                     [(kommunenummer, stamp, kind, lot_id, dumps(detail)) for kind, lot_id, detail in change_rows])
    _link_parcels(store, kommunenummer, [r["lot_id"] for r in records], geoms)
    crash_point("after_lots")
    result.lots = len(records)
    result.moved = moved
    result.restored = {n: a for n, (a, _) in restored.items()}
    result.archived = {k: v for k, v in archive.items() if k not in moved}


def _link_parcels(store: Store, kommunenummer: str, lot_ids: list[str], lot_geoms: list) -> None:
    """Rebuild lot ↔ parcel links with overlap area and the share of the parcel inside the lot."""
    store.execute(
        "DELETE FROM lot_parcels WHERE lot_id IN (SELECT lot_id FROM lots WHERE kommunenummer = ?)", (kommunenummer,)
    )
    parcels = store.read_frame("SELECT id, AsBinary(geom) AS geom FROM parcels WHERE kommunenummer = ?", (kommunenummer,))
    if parcels.empty or not lot_ids:
        return
    lot_arr = np.array(lot_geoms, dtype=object)
    parcel_arr = parcels.geometry.to_numpy()
    parcel_ids = parcels["id"].to_numpy()
    li, pi = meeting_pairs(lot_arr, parcel_arr)
    if not len(li):
        return
    # Most parcels lie wholly inside their lot: a prepared containment test spares the overlay.
    shapely.prepare(lot_arr)
    inside = shapely.contains(lot_arr[li], parcel_arr[pi])
    parcel_area = shapely.area(parcel_arr[pi])
    overlap = parcel_area.copy()
    cut = ~inside
    overlap[cut] = shapely.area(parallel(shapely.intersection, lot_arr[li[cut]], parcel_arr[pi[cut]]))
    share = overlap / np.maximum(parcel_area, 1e-9)
    keep = overlap >= 1.0
    ids = np.asarray(lot_ids, dtype=object)
    store.conn.executemany(
        "INSERT INTO lot_parcels VALUES (?, ?, ?, ?)",
        zip(ids[li[keep]].tolist(), parcel_ids[pi[keep]].tolist(), overlap[keep].round(1).tolist(), share[keep].round(4).tolist(),
            strict=True),
    )


def lot_rows(store: Store, kommunenummer: str, include_archived: bool = False, lot_id: str | None = None) -> list[dict]:
    """Lots with the contract fields, the status and the latest note (no geometry); one lot when ``lot_id`` is given."""
    rows = store.rows(
        "SELECT l.lot_id, l.kommunenummer, l.arealformal, l.arealbruksstatus, l.area_m2, l.score, l.tier, "
        "l.status, l.flags, l.explanation, l.active, l.archived_reason, l.synthetic, "
        "(SELECT a.adressetekst || COALESCE(', ' || a.postnummer || ' ' || a.poststed, '') FROM lot_addresses a "
        " WHERE a.lot_id = l.lot_id) AS adresse, "
        "(SELECT e.note FROM crm_events e WHERE e.kind = 'notat' AND e.lot_id IN (" + lineage_sql("l.lot_id") + ") "
        "ORDER BY e.id DESC LIMIT 1) AS latest_note "
        "FROM lots l WHERE l.kommunenummer = ? " + ("" if include_archived else "AND l.active = 1 ") +
        ("AND l.lot_id = ? " if lot_id else "") + "ORDER BY l.score DESC NULLS LAST, l.area_m2 DESC",
        (kommunenummer, lot_id) if lot_id else (kommunenummer,),
    )
    for r in rows:
        exp = loads(r.pop("explanation"), {})
        r["explanation"] = exp.get("text", "")
    return rows
