"""One pipeline for the CLI and the app: import/fetch → differanse (→ scoring, later).

Every function takes the store and :class:`~tomte.config.Settings` explicitly and reports
progress through an optional callback (the CLI prints it; the app shows it in ``st.status``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tomte import kommuner
from tomte.analysis import AnalysisResult, analyse_kommune
from tomte.config import Settings
from tomte.errors import BadResponse, InvalidData, TomteError
from tomte.plans import replace_plan_data
from tomte.sources import ogcapi, wfs
from tomte.sources._http import Http
from tomte.sources.gml import RawFeature
from tomte.sources.normalize import Attrs, to_plan_frames
from tomte.sources.planfile import read_plan_file
from tomte.sources.registry import Source, for_kommune, merged
from tomte.sources.teig import parcels_from_features
from tomte.store import Store, dumps, now

Progress = Callable[[str], None]
PLAN_ROLES = ("kommuneplan", "reguleringsplan")


def _quiet(_msg: str) -> None:
    pass


@dataclass
class FetchResult:
    """What a fetch or import stored."""

    kommunenummer: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    requests: int = 0

    def summary(self) -> str:
        """One line for the CLI and the app."""
        parts = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        return f"{self.kommunenummer}: lagret {parts}" + (f" (hoppet over: {', '.join(self.skipped)})" if self.skipped else "")


def import_plans(store: Store, kommune: str, kp_file: str | Path | None, rp_file: str | Path | None,
                 crs: str | None = None, progress: Progress | None = None) -> FetchResult:
    """Import plan files a kommune sent; replaces that kommune's data for the given layers."""
    say = progress or _quiet
    k = kommuners_resolve(store, kommune)
    if kp_file is None and rp_file is None:
        raise InvalidData("Oppgi minst én fil: --kp (kommuneplan) og/eller --rp (reguleringsplaner).")
    frames = {}
    for role, path in (("kommuneplan", kp_file), ("reguleringsplan", rp_file)):
        if path is None:
            continue
        say(f"Leser {path} …")
        kp, rp, counts = to_plan_frames(read_plan_file(path, crs), role_hint=role)
        frame = kp if role == "kommuneplan" else rp
        wanted = "KpArealformålOmråde/KpArealbrukOmråde" if role == "kommuneplan" else "RpOmråde"
        if frame.empty:
            raise InvalidData(f"Fant ingen {wanted} med flategeometri i {path} ({counts['ignored']} andre objekter).")
        say(f"{path}: {len(frame)} {wanted}, {counts['ignored']} andre objekter ignorert, {counts['repaired']} geometrier reparert")
        frames[role] = frame
    counts = replace_plan_data(store, k.kommunenummer, frames.get("kommuneplan"), frames.get("reguleringsplan"),
                               kp_source=f"fil: {Path(kp_file).name}" if kp_file else None,
                               rp_source=f"fil: {Path(rp_file).name}" if rp_file else None)
    return FetchResult(k.kommunenummer, counts)


def kommuners_resolve(store: Store, kommune: str) -> kommuner.Kommune:
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


def fetch_kommune(store: Store, settings: Settings, kommune: str, sources_file: str | Path | None = None,
                  refresh: bool = False, progress: Progress | None = None, http: Http | None = None) -> FetchResult:
    """Download every configured source of a kommune; store only if all of them succeed."""
    say = progress or _quiet
    k = kommuners_resolve(store, kommune)
    sources = for_kommune(merged(settings.sources_file, store, Path(sources_file) if sources_file else None), k.kommunenummer)
    if not sources:
        raise InvalidData(f"Ingen kilder er satt opp for {k.navn} ({k.kommunenummer}); legg dem til i sources.toml eller i appen.")
    minx, miny, maxx, maxy = kommuner.boundary(store, k.kommunenummer).total_bounds
    bbox = (minx - 100, miny - 100, maxx + 100, maxy + 100)
    run_id = store.execute("INSERT INTO fetch_runs (kommunenummer, started_at) VALUES (?, ?)", (k.kommunenummer, now())).lastrowid
    own_http = http is None
    client = http or Http(settings.http, refresh=refresh)
    result = FetchResult(k.kommunenummer)
    try:
        by_role: dict[str, list[RawFeature]] = {}
        labels: dict[str, str] = {}
        for source in sources:
            if source.role not in (*PLAN_ROLES, "teig"):
                result.skipped.append(source.role)
                say(f"{source.label}: rollen «{source.role}» hentes ikke i denne versjonen")
                continue
            feats = _fetch_source(client, source, bbox, say)
            if source.role in PLAN_ROLES:
                feats = _own_features(store, feats, k.kommunenummer)
            if not feats:
                raise BadResponse(f"{source.label}: tjenesten ga ingen objekter for {k.navn}; sjekk filter og typenavn, eller om tjenesten er nede.")
            by_role.setdefault(source.role, []).extend(feats)
            labels[source.role] = f"{source.kind}: {source.url or source.path}"
        kp = rp = parcels = None
        if "kommuneplan" in by_role:
            kp, _, c = to_plan_frames(by_role["kommuneplan"], "kommuneplan")
            if kp.empty:
                raise BadResponse(f"{k.kommunenummer} kommuneplan: ingen KpArealformålOmråde blant {c['ignored']} objekter; sjekk typenavnet.")
        if "reguleringsplan" in by_role:
            _, rp, c = to_plan_frames(by_role["reguleringsplan"], "reguleringsplan")
            if rp.empty:
                raise BadResponse(f"{k.kommunenummer} reguleringsplan: ingen RpOmråde blant {c['ignored']} objekter; sjekk typenavnet.")
        if "teig" in by_role:
            parcels = parcels_from_features(by_role["teig"])
        result.counts = replace_plan_data(store, k.kommunenummer, kp, rp, labels.get("kommuneplan"), labels.get("reguleringsplan"),
                                          parcels=parcels, parcel_source=labels.get("teig"))
        result.requests = client.requests_made
        store.execute("UPDATE fetch_runs SET finished_at = ?, ok = 1, message = ?, counts = ? WHERE id = ?",
                      (now(), result.summary(), dumps(result.counts), run_id))
        return result
    except TomteError as exc:
        store.execute("UPDATE fetch_runs SET finished_at = ?, ok = 0, message = ? WHERE id = ?", (now(), str(exc), run_id))
        raise
    finally:
        if own_http:
            client.close()


def analyse(store: Store, settings: Settings, kommune: str, progress: Progress | None = None) -> AnalysisResult:
    """Differanse for one kommune from stored data (never touches the network)."""
    k = kommuners_resolve(store, kommune)
    (progress or _quiet)(f"Beregner differanse for {k.navn} ({k.kommunenummer}) …")
    return analyse_kommune(store, k.kommunenummer, settings.differanse)
