"""One pipeline for the CLI and the app: import/fetch → differanse (→ scoring, later).

Every function takes the store and :class:`~tomte.config.Settings` explicitly and reports
progress through an optional callback (the CLI prints it; the app shows it in ``st.status``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd

from tomte import kommuner
from tomte.analysis import AnalysisResult, compute_kommune, store_kommune
from tomte.config import Settings
from tomte.enrich import lot_features, save_features
from tomte.errors import BadResponse, InvalidData, TomteError
from tomte.plans import replace_plan_data
from tomte.scoring import FACTORS, ScoringSettings, dwellings, factor_table, score
from tomte.sources import adresse, ogcapi, wfs
from tomte.sources import ssb as ssb_mod
from tomte.sources._http import Http
from tomte.sources.checks import check_coordinates, check_in_kommune, check_not_shrunk
from tomte.sources.gml import RawFeature
from tomte.sources.normalize import Attrs, hensyn_frames, layer_frame, to_plan_frames
from tomte.sources.planfile import read_plan_file
from tomte.sources.registry import LAYER_ROLES, Source, for_kommune, merged
from tomte.sources.ssb import SsbClient
from tomte.sources.teig import parcels_from_features
from tomte.store import Store, dumps, now

Progress = Callable[[str], None]
PLAN_ROLES = ("kommuneplan", "reguleringsplan")


def _quiet(_msg: str) -> None:
    pass


@dataclass
class FetchResult:
    """What a fetch or import stored, what it noticed, and which units failed (their data kept)."""

    kommunenummer: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    requests: int = 0
    notes: list[str] = field(default_factory=list)
    failed: dict[str, TomteError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every unit was stored."""
        return not self.failed

    def summary(self) -> str:
        """One line for the CLI and the app."""
        parts = ", ".join(f"{k}: {v}" for k, v in self.counts.items()) or "ingenting"
        text = f"{self.kommunenummer}: lagret {parts}"
        if self.skipped:
            text += f" (hoppet over: {', '.join(self.skipped)})"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        if self.failed:
            text += f"; feilet (tidligere data beholdt): {', '.join(self.failed)}"
        return text


def _place_checks(store: Store, k: kommuner.Kommune, features: list[RawFeature], what: str) -> None:
    """Coordinates finite, in Norway and mostly in the kommune, before anything is replaced."""
    check_coordinates(features, what)

    def others() -> list[tuple[str, Any]]:
        frame = store.read_frame("SELECT kommunenummer, navn, AsBinary(geom) AS geom FROM kommuner")
        return [(f"{n} ({knr})", g) for knr, n, g in zip(frame["kommunenummer"], frame["navn"], frame.geometry, strict=True)]

    check_in_kommune(features, kommuner.boundary(store, k.kommunenummer).union_all(), f"{k.navn} ({k.kommunenummer})", what, others)


def _plan_frames(store: Store, k: kommuner.Kommune, by_role: dict[str, list[RawFeature]], force: bool,
                 what: dict[str, str]) -> tuple[dict[str, gpd.GeoDataFrame], dict[tuple[str, str], gpd.GeoDataFrame], list[str]]:
    """Checked plan frames per role, their hensynssoner and notes for the summary; raises before any write."""
    state = store.rows("SELECT kp_count, rp_count FROM plan_data_state WHERE kommunenummer = ?", (k.kommunenummer,))
    stored = state[0] if state else {}
    frames: dict[str, gpd.GeoDataFrame] = {}
    hensyn: dict[tuple[str, str], gpd.GeoDataFrame] = {}
    notes: list[str] = []
    for role, features in by_role.items():
        _place_checks(store, k, features, what[role])
        kp, rp, counts = to_plan_frames(features, role_hint=role)
        frame = kp if role == "kommuneplan" else rp
        wanted = "KpArealformålOmråde/KpArealbrukOmråde" if role == "kommuneplan" else "RpOmråde"
        if frame.empty:
            raise InvalidData(f"{what[role]}: fant ingen {wanted} med flategeometri ({counts['ignored']} andre objekter); "
                              "ingenting er lagret.")
        check_not_shrunk(len(frame), int(stored.get("kp_count" if role == "kommuneplan" else "rp_count") or 0), what[role], force)
        if role == "kommuneplan" and counts["kp_no_code"]:
            notes.append(f"{counts['kp_no_code']} av {len(frame)} soner mangler arealformål (teller ikke som bolig)")
        if role == "reguleringsplan" and counts["rp_no_status"]:
            notes.append(f"{counts['rp_no_status']} av {len(frame)} planområder mangler planstatus (trekkes ikke fra)")
        if counts["repaired"]:
            notes.append(f"{counts['repaired']} {role}sgeometrier reparert")
        frames[role] = frame
        hensyn.update({("hensyn", ftype): f for ftype, f in hensyn_frames(features).items()})
    return frames, hensyn, notes


def import_plans(store: Store, kommune: str, kp_file: str | Path | None, rp_file: str | Path | None,
                 crs: str | None = None, progress: Progress | None = None, force: bool = False) -> FetchResult:
    """Import plan files a kommune sent; replaces that kommune's data for the given layers.

    Nothing is replaced unless every given file passes the checks (:mod:`tomte.sources.checks`);
    ``force`` accepts a copy with far fewer features than the stored one.
    """
    say = progress or _quiet
    k = resolve_kommune(store, kommune)
    if kp_file is None and rp_file is None:
        raise InvalidData("Oppgi minst én fil: --kp (kommuneplan) og/eller --rp (reguleringsplaner).")
    by_role: dict[str, list[RawFeature]] = {}
    what: dict[str, str] = {}
    for role, path in (("kommuneplan", kp_file), ("reguleringsplan", rp_file)):
        if path is None:
            continue
        say(f"Leser {path} …")
        by_role[role] = read_plan_file(path, crs)
        what[role] = f"Filen {Path(path).name}"
    frames, hensyn, notes = _plan_frames(store, k, by_role, force, what)
    for role, frame in frames.items():
        say(f"{what[role]}: {len(frame)} {'soner' if role == 'kommuneplan' else 'planområder'}")
    counts = replace_plan_data(store, k.kommunenummer, frames.get("kommuneplan"), frames.get("reguleringsplan"),
                               kp_source=f"fil: {Path(kp_file).name}" if kp_file else None,
                               rp_source=f"fil: {Path(rp_file).name}" if rp_file else None,
                               layers=hensyn, layer_sources={key: "fil" for key in hensyn})
    return FetchResult(k.kommunenummer, counts, notes=notes)


def resolve_kommune(store: Store, kommune: str) -> kommuner.Kommune:
    """Resolve a kommune number (current or former), loading the kommune list on first use."""
    if not store.scalar("SELECT COUNT(*) FROM kommuner"):
        kommuner.load_kommuner(store)
    return kommuner.resolve(store, kommune)


def _own_features(store: Store, feats: list[RawFeature], kommunenummer: str) -> list[RawFeature]:
    """Drop features that say they belong to another kommune (a bbox query reaches over the border).

    Former numbers of the kommune count as its own (NAP keeps pre-2024 numbers on old plans).
    """
    own = {kommunenummer} | {r["alias"] for r in store.rows("SELECT alias FROM kommune_alias WHERE kommunenummer = ?", (kommunenummer,))}
    out = []
    for f in feats:
        knr = Attrs(f.attrs).get("kommunenummer")
        if knr is None or str(knr).zfill(4) in own:
            out.append(f)
    return out


def _fetch_source(http: Http, source: Source, bbox: tuple[float, float, float, float], say: Progress) -> list[RawFeature]:
    if source.kind == "wfs":
        feats = wfs.fetch(http, source, bbox, say)
    elif source.kind == "ogcapi":
        feats = ogcapi.fetch(http, source, bbox, say)
    else:
        feats = read_plan_file(source.path or "", source.crs)
        say(f"{source.label}: {len(feats)} objekter fra {source.path}")
    if source.renames:
        for f in feats:
            f.attrs = {source.renames.get(k, k): v for k, v in f.attrs.items()}
    return feats


def _lot_batches(store: Store, kommunenummer: str, max_side: float = 3000.0) -> list[tuple[float, float, float, float]]:
    """Bounding boxes covering the kommune's active lots in batches (for teig by lot batch)."""
    lots = store.read_frame("SELECT AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1 AND zone_key IS NOT NULL",
                            (kommunenummer,))
    boxes: list[list[float]] = []
    for minx, miny, maxx, maxy in sorted(lots.geometry.bounds.itertuples(index=False), key=lambda b: (b[0], b[1])):
        for box_ in boxes:
            merged = [min(box_[0], minx), min(box_[1], miny), max(box_[2], maxx), max(box_[3], maxy)]
            if merged[2] - merged[0] <= max_side and merged[3] - merged[1] <= max_side:
                box_[:] = merged
                break
        else:
            boxes.append([minx, miny, maxx, maxy])
    return [(b[0] - 50, b[1] - 50, b[2] + 50, b[3] + 50) for b in boxes]


def _fetch_teig(client: Http, store: Store, source: Source, kommunenummer: str,
                kommune_bbox: tuple[float, float, float, float], say: Progress) -> list[RawFeature]:
    """Teig by bounding boxes of lot batches when lots exist (else the kommune's box), deduplicated."""
    batches = _lot_batches(store, kommunenummer) if source.kind != "file" else []
    if not batches:
        return _fetch_source(client, replace(source, bbox=True), kommune_bbox, say)
    seen: dict[str, RawFeature] = {}
    for i, bbox in enumerate(batches, start=1):
        say(f"{source.label}: tomtegruppe {i}/{len(batches)}")
        for f in _fetch_source(client, replace(source, bbox=True), bbox, say):
            seen.setdefault(str(f.gml_id or f.attrs.get("matrikkelnummerTekst") or id(f)), f)
    return list(seen.values())


def _fetch_ssb(client: Http, store: Store, source: Source, kommunenummer: str, say: Progress) -> list[tuple]:
    ssb = SsbClient(client, source.url or ssb_mod.BASE)
    stamp = now()
    cells = ssb_mod.grunnkrets_population(ssb, kommunenummer) + ssb_mod.kommune_population(ssb, kommunenummer)
    say(f"{source.label}: {len(cells)} verdier fra SSB")
    rows = []
    for c in cells:
        table = "04317" if "Grunnkretser" in c.codes else "06913"
        region = c.codes.get("Grunnkretser") or c.codes.get("Region") or kommunenummer
        rows.append((table, region, c.codes.get("ContentsCode", ""), c.codes.get("Tid", ""), c.value, c.status, stamp))
    return rows


def _fetch_addresses(client: Http, store: Store, source: Source, kommunenummer: str, say: Progress) -> list[tuple]:
    lots = store.read_frame(
        "SELECT lot_id, AsBinary(geom) AS geom FROM lots WHERE kommunenummer = ? AND active = 1 AND zone_key IS NOT NULL "
        "AND lot_id NOT IN (SELECT lot_id FROM lot_addresses)", (kommunenummer,))
    stamp, rows = now(), []
    for i, (lot_id, point) in enumerate(zip(lots["lot_id"], lots.geometry.representative_point(), strict=True), start=1):
        found = adresse.nearest(client, point.x, point.y, source.url or adresse.BASE)
        if found is not None:
            rows.append((lot_id, found.adressetekst, found.postnummer, found.poststed, found.distance_m, stamp))
        if i % 50 == 0:
            say(f"{source.label}: {i}/{len(lots)} tomter")
    return rows


UNIT_LABELS = {"plandata": "Plandata (kommuneplan og reguleringsplaner)", "teig": "Eiendomsgrenser (teig)",
               "ssb": "SSB-statistikk", "adresse": "Adresser", "constraint": "Hensyn", "infrastruktur": "Infrastruktur",
               "grunnkrets": "Grunnkretser"}


def unit_label(unit: str) -> str:
    """A fetch unit in Norwegian: ``constraint:flomsone`` is «Hensyn (flomsone)»."""
    role, _, layer = unit.partition(":")
    label = UNIT_LABELS.get(role, role)
    return f"{label} ({layer})" if layer and layer != role else label


def _unit(source: Source) -> str:
    """The fetch unit of a source: kommuneplan and reguleringsplan are one, every other role its own."""
    if source.role in PLAN_ROLES:
        return "plandata"
    if source.role in LAYER_ROLES:
        return f"{source.role}:{source.layer or source.role}"
    return source.role


def _fetch_unit(store: Store, client: Http, k: kommuner.Kommune, sources: list[Source], bbox: tuple[float, float, float, float],
                force: bool, say: Progress) -> dict[str, Any]:
    """Fetch and check one unit; returns keyword arguments for :func:`replace_plan_data`. Writes nothing."""
    out: dict[str, Any] = {"layers": {}, "layer_sources": {}}
    by_role: dict[str, list[RawFeature]] = {}
    what: dict[str, str] = {}
    for source in sources:
        where = f"{source.kind}: {source.url or source.path}"
        if source.role == "ssb":
            out["ssb_rows"] = _fetch_ssb(client, store, source, k.kommunenummer, say)
            continue
        if source.role == "adresse":
            out["addresses"] = _fetch_addresses(client, store, source, k.kommunenummer, say)
            continue
        feats = (_fetch_teig(client, store, source, k.kommunenummer, bbox, say) if source.role == "teig"
                 else _fetch_source(client, source, bbox, say))
        if source.role in PLAN_ROLES:
            feats = _own_features(store, feats, k.kommunenummer)
            if not feats:
                raise BadResponse(f"{source.label}: tjenesten ga ingen objekter for {k.navn}; sjekk filter og typenavn, eller om tjenesten er nede.")
            by_role.setdefault(source.role, []).extend(feats)
            what[source.role] = source.label
            out["kp_source" if source.role == "kommuneplan" else "rp_source"] = where
        elif source.role == "teig":
            check_coordinates(feats, source.label)
            out["parcels"], out["parcel_source"] = parcels_from_features(feats), where
        else:
            check_coordinates(feats, source.label)
            key = (source.role, source.layer or source.role)
            out["layers"][key], out["layer_sources"][key] = layer_frame(feats, source.name_field, source.code_field), where
    if by_role:
        frames, hensyn, notes = _plan_frames(store, k, by_role, force, what)
        out["kp"], out["rp"] = frames.get("kommuneplan"), frames.get("reguleringsplan")
        out["layers"].update(hensyn)
        out["layer_sources"].update({key: out.get("kp_source") or out.get("rp_source") for key in hensyn})
        out["notes"] = notes
    return out


def fetch_kommune(store: Store, settings: Settings, kommune: str, sources_file: str | Path | None = None,
                  refresh: bool = False, progress: Progress | None = None, http: Http | None = None,
                  force: bool = False) -> FetchResult:
    """Download every configured source of a kommune, unit by unit (issue 12).

    Kommuneplan and reguleringsplan are one unit (the differanse needs both from the same
    moment); every other role is its own. A unit is stored only when all its sources succeeded
    and passed the checks; a failed unit keeps its previous data, is recorded in ``source_state``
    (shown as stale with its age) and named in ``FetchResult.failed``. The units that succeeded
    are stored together in one transaction.
    """
    say = progress or _quiet
    k = resolve_kommune(store, kommune)
    sources = for_kommune(merged(settings.sources_file, store, Path(sources_file) if sources_file else None), k.kommunenummer)
    if not sources:
        raise InvalidData(f"Ingen kilder er satt opp for {k.navn} ({k.kommunenummer}); legg dem til i sources.toml eller i appen.")
    minx, miny, maxx, maxy = kommuner.boundary(store, k.kommunenummer).total_bounds
    bbox = (minx - 100, miny - 100, maxx + 100, maxy + 100)
    run_id = store.execute("INSERT INTO fetch_runs (kommunenummer, started_at) VALUES (?, ?)", (k.kommunenummer, now())).lastrowid
    own_http = http is None
    client = http or Http(settings.http, refresh=refresh)
    result = FetchResult(k.kommunenummer)
    units: dict[str, list[Source]] = {}
    for source in sources:
        if source.role not in (*PLAN_ROLES, "teig", "ssb", "adresse", *LAYER_ROLES):
            result.skipped.append(source.role)
            say(f"{source.label}: rollen «{source.role}» er ukjent og hoppes over")
            continue
        units.setdefault(_unit(source), []).append(source)
    payload: dict[str, Any] = {"layers": {}, "layer_sources": {}}
    try:
        for unit, unit_sources in units.items():
            try:
                got = _fetch_unit(store, client, k, unit_sources, bbox, force, say)
            except TomteError as exc:
                result.failed[unit] = exc
                say(f"Feilet: {exc}")
                continue
            result.notes += got.pop("notes", [])
            payload["layers"].update(got.pop("layers"))
            payload["layer_sources"].update(got.pop("layer_sources"))
            payload.update(got)
        stamp = now()
        with store.transaction() as conn:
            result.counts = replace_plan_data(store, k.kommunenummer, payload.pop("kp", None), payload.pop("rp", None), **payload)
            conn.executemany(
                "INSERT INTO source_state VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kommunenummer, unit) DO UPDATE SET "
                "ok = excluded.ok, message = excluded.message, tried_at = excluded.tried_at, "
                "ok_at = COALESCE(excluded.ok_at, source_state.ok_at)",
                [(k.kommunenummer, unit, int(unit not in result.failed), str(result.failed.get(unit) or "") or None, stamp,
                  None if unit in result.failed else stamp) for unit in units])
            conn.execute("UPDATE fetch_runs SET finished_at = ?, ok = ?, message = ?, counts = ? WHERE id = ?",
                         (stamp, int(result.ok), result.summary(), dumps(result.counts), run_id))
        result.requests = client.requests_made
        return result
    except TomteError as exc:
        store.execute("UPDATE fetch_runs SET finished_at = ?, ok = 0, message = ? WHERE id = ?", (now(), str(exc), run_id))
        raise
    finally:
        if own_http:
            client.close()


def stale_units(store: Store, kommunenummer: str) -> list[dict[str, Any]]:
    """Units whose last fetch failed: their data are the previous ones.

    ``ok_at`` is the last successful fetch (None: never) and ``age_days`` its age in days.
    """
    from tomte.plans import data_age_days

    rows = store.rows("SELECT unit, message, tried_at, ok_at FROM source_state WHERE kommunenummer = ? AND ok = 0 ORDER BY unit",
                      (kommunenummer,))
    for row in rows:
        row["age_days"] = data_age_days(row["ok_at"])
    return rows


def describe_stale(unit: dict[str, Any]) -> str:
    """One sentence for a stale unit, the same in the app and the sync report."""
    kept = (f"data fra {unit['ok_at'][:10]} ({unit['age_days']} dager gamle) er beholdt" if unit["ok_at"]
            else "ingen data er hentet ennå")
    return f"{unit_label(unit['unit'])} feilet sist {str(unit['tried_at'])[:16].replace('T', ' ')} ({unit['message']}); {kept}"


def analyse(store: Store, settings: Settings, kommune: str, progress: Progress | None = None) -> AnalysisResult:
    """Differanse and scoring for one kommune from stored data (never touches the network)."""
    say = progress or _quiet
    k = resolve_kommune(store, kommune)
    say(f"Beregner differanse for {k.navn} ({k.kommunenummer}) …")
    computed = compute_kommune(store, k.kommunenummer, settings.differanse)  # reads only: no write lock yet
    with store.transaction():  # lots, history moves, features and scores: all or nothing (issue 13)
        result = store_kommune(store, computed, settings.differanse)
        say(f"Beregner poeng for {result.lots} tomter …")
        score_kommune(store, k.kommunenummer, settings.scoring)
    return result


def score_kommune(store: Store, kommunenummer: str, settings: ScoringSettings) -> int:
    """Compute features and scores for the kommune's active lots; returns how many were scored."""
    features = lot_features(store, kommunenummer, settings)
    if features.empty:
        return 0
    save_features(store, features)
    table = factor_table(features, settings)
    totals, tiers, points = score(table, settings.weights)
    homes = dwellings(features, settings)[0]
    before = {r["lot_id"]: r["tier"] for r in store.rows(
        "SELECT l.lot_id, COALESCE(l.tier, (SELECT o.tier FROM lot_lineage g JOIN lots o ON o.lot_id = g.old_lot_id "
        "WHERE g.new_lot_id = l.lot_id ORDER BY g.overlap_share DESC LIMIT 1)) AS tier "
        "FROM lots l WHERE l.kommunenummer = ? AND l.active = 1", (kommunenummer,))}
    rows = []
    for i, lot_id in enumerate(features.index):
        detail = {f: {"value": None if table.values[i, k] != table.values[i, k] else round(float(table.values[i, k]), 3),
                      "points": round(float(points[i, k]), 1), "reason": str(table.reasons[i, k])}
                  for k, f in enumerate(FACTORS)}
        total = None if totals[i] != totals[i] else round(float(totals[i]), 1)
        rows.append((total, tiers[i], dumps({"weights": settings.weights, "factors": detail, "dwellings": int(homes.iloc[i]),
                                           "m2_per_dwelling": settings.m2_per_dwelling}), lot_id))
    stamp = now()
    tier_changes = [(kommunenummer, stamp, "klasse", lot_id, dumps({"from": before.get(lot_id), "to": tier}))
                    for (_total, tier, _detail, lot_id) in rows if before.get(lot_id) is not None and before.get(lot_id) != tier]
    with store.transaction() as conn:
        conn.executemany("UPDATE lots SET score = ?, tier = ?, score_detail = ? WHERE lot_id = ?", rows)
        conn.executemany("INSERT INTO changes (kommunenummer, at, kind, lot_id, detail) VALUES (?, ?, ?, ?, ?)", tier_changes)
    return len(rows)


def build_demo_database(store: Store, settings: Settings, progress: Progress | None = None) -> dict[str, AnalysisResult]:
    """The SYNTHETIC demo: kommuner, plan data, context layers, then analysis and scores."""
    from tomte.demo import add_demo_addresses, build_demo

    say = progress or _quiet
    results = {}
    for knr in build_demo(store, say):
        results[knr] = analyse(store, settings, knr, say)
        add_demo_addresses(store, knr)
        say(results[knr].summary())
    return results


def lookup_owners(store: Store, settings: Settings, lot_id: str, basis: str, who: str,
                  client: Any | None = None, progress: Progress | None = None, env: dict[str, str] | None = None) -> dict[str, int]:
    """Ask the Matrikkel API for the owners of every parcel under a lot; log who asked and why.

    The log line is written whatever the outcome (no owner data in it); found owners replace the
    parcel's previous owners (reservation flags are kept by name).
    """
    from tomte import owners as owners_mod
    from tomte.sources.matrikkel import MatrikkelClient, MatrikkelConfig

    say = progress or _quiet
    parcels = {(r["kommunenummer"], r["gnr"], r["bnr"], r["fnr"], r["snr"]) for r in owners_mod.lot_parcels_and_owners(store, lot_id)}
    if not basis.strip():
        raise InvalidData("Oppgi rettslig grunnlag for oppslaget med --basis (f.eks. «berettiget interesse, utleveringsforskriften § 4»).")
    if not parcels:
        owners_mod.log_lookup(store, who, lot_id, basis, 0, "ingen teiger koblet")
        return {"parcels": 0, "owners": 0, "missing": 0}
    try:
        matrikkel = client or MatrikkelClient(MatrikkelConfig.from_env(env))
        say(f"Slår opp eiere for {len(parcels)} teiger i Matrikkelen …")
        results = matrikkel.owners_many(sorted(parcels))
    except TomteError as exc:
        owners_mod.log_lookup(store, who, lot_id, basis, len(parcels), f"feilet: {type(exc).__name__}")
        raise
    found = missing = 0
    for parcel, result in results.items():
        if isinstance(result, Exception):
            missing += 1
            continue
        knr, gnr, bnr, fnr, snr = parcel
        owners_mod.replace_parcel_owners(store, knr, gnr, bnr, fnr, snr,
                                         [owners_mod.Owner(knr, gnr, bnr, fnr, snr, r.name, r.kind, r.address, r.share, "matrikkel")
                                          for r in result])
        found += len(result)
    owners_mod.log_lookup(store, who, lot_id, basis, len(parcels), f"{found} eiere, {missing} teiger ukjent i Matrikkelen")
    return {"parcels": len(parcels), "owners": found, "missing": missing}


def lookup_owners_many(store: Store, settings: Settings, lot_ids: list[str], basis: str, who: str,
                       env: dict[str, str] | None = None, progress: Progress | None = None) -> dict[str, int]:
    """Owner look-up for a shortlist: one Matrikkel client (cache, concurrency limit) and one log line per lot."""
    from tomte.sources.matrikkel import MatrikkelClient, MatrikkelConfig

    client = MatrikkelClient(MatrikkelConfig.from_env(env))
    total = {"lots": 0, "parcels": 0, "owners": 0, "missing": 0}
    for lot_id in lot_ids:
        result = lookup_owners(store, settings, lot_id, basis, who, client=client, progress=progress)
        total["lots"] += 1
        for key in ("parcels", "owners", "missing"):
            total[key] += result[key]
    return total
