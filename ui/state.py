"""Shared app state: the store (one per database path), settings and the chosen kommune."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from tomte import kommuner
from tomte.config import Settings
from tomte.errors import TomteError
from tomte.store import Store, open_store

_local = threading.local()


def _store(path: str) -> Store:
    """One connection per script thread and database (SQLite connections belong to their thread)."""
    stores: dict[str, Store] = getattr(_local, "stores", {})
    if path not in stores:
        stores[path] = open_store(path)
        _local.stores = stores
    return stores[path]


def settings() -> Settings:
    """Settings from the environment (``TOMTE_DB`` chooses the database)."""
    return Settings.from_env()


def store() -> Store:
    """The store for ``TOMTE_DB``; a clear message and a stop when it cannot be opened."""
    try:
        return _store(str(settings().db_path))
    except TomteError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable; keeps type checkers content


def run(action: Callable[[], Any], what: str) -> Any:
    """Run a library call; show a TomteError as one sentence instead of a traceback.

    Returns the call's result (``True`` when it returned nothing), or ``None`` when it failed.
    """
    try:
        result = action()
    except TomteError as exc:
        st.error(f"{what} mislyktes: {exc}")
        return None
    return True if result is None else result


def kommune_picker(key: str = "kommune") -> kommuner.Kommune | None:
    """Sidebar search-and-pick of a kommune (name, number or former number); synced with ``?kommune=``."""
    s = store()
    wanted = st.query_params.get("kommune")
    query = st.sidebar.text_input("Søk kommune (navn eller nummer)", value="", key=f"{key}_q")
    with_data = [r["kommunenummer"] for r in s.rows("SELECT kommunenummer FROM plan_data_state ORDER BY kommunenummer")]
    options = kommuner.search(s, query, limit=400) if query else [kommuner.resolve(s, k) for k in with_data]
    # A link names the kommune it opens (issue 15): any of the 357, with data or not, or a
    # former number; a number that is no kommune is said, not swapped for another one.
    linked = None
    if wanted and not query:
        try:
            linked = kommuner.resolve(s, wanted)
        except TomteError:
            st.error(f"Kommunenummer «{wanted}» finnes ikke (2024-inndelingen); velg en kommune i sidefeltet.")
            st.stop()
        if linked.kommunenummer not in {k.kommunenummer for k in options}:
            options = [linked, *options]
    if not options:
        st.sidebar.info("Ingen treff." if query else "Ingen kommuner har data ennå; søk etter en kommune for å komme i gang.")
        return None
    labels = [f"{k.navn} ({k.kommunenummer})" for k in options]
    target = linked.kommunenummer if linked else wanted
    index = next((i for i, k in enumerate(options) if k.kommunenummer == target), 0)
    choice = st.sidebar.selectbox("Kommune", labels, index=index, key=f"{key}_sel")
    picked = options[labels.index(choice)]
    st.query_params["kommune"] = picked.kommunenummer
    return picked


def synthetic_notice(kommunenummer: str | None = None) -> None:
    """Say plainly when the data shown is synthetic demo data."""
    s = store()
    sql = "SELECT COUNT(*) FROM plan_data_state WHERE synthetic = 1"
    params: tuple = ()
    if kommunenummer:
        sql += " AND kommunenummer = ?"
        params = (kommunenummer,)
    if s.scalar(sql, params):
        st.warning("Demodata: plandata, reguleringsplaner og teiger her er SYNTETISKE (oppdiktet), kun kommunegrensene er ekte.")


def differanse_form() -> None:
    """Widgets for every differanse rule; the choice is kept for this browser session."""
    from tomte import codes
    from tomte.config import DifferanseSettings

    current: DifferanseSettings = st.session_state.get("differanse", DifferanseSettings())
    with st.expander("Regler for differansen"):
        formal = sorted(codes.KP_AREALFORMAL)
        def named(c: str) -> str:
            return f"{c} {codes.arealformal_name(c)}"

        sure = st.multiselect("Sikre boligformål (arealformål)", formal, sorted(current.housing_sure), format_func=named,
                              placeholder="Velg formål")
        possible = st.multiselect("Mulige boligformål (flagges mulig_bolig)", formal, sorted(current.housing_possible),
                                  format_func=named, placeholder="Velg formål")
        c1, c2 = st.columns(2)
        spredt = c1.checkbox("Ta med spredt boligbebyggelse (5210)", current.include_spredt)
        fortetting = c2.checkbox("Fortetting: ta med nåværende (status 1)", current.include_fortetting)
        statuses = st.multiselect("Arealbruksstatus som er kandidater", ["1", "2", "3"], sorted(current.statuses),
                                  format_func=lambda c: f"{c} {codes.AREALBRUKSSTATUS[c]}", placeholder="Velg status")
        approved = st.multiselect("Planstatus som trekkes fra", sorted(codes.PLANSTATUS), sorted(current.approved_planstatus),
                                  format_func=lambda c: f"{c} {codes.PLANSTATUS[c]}", placeholder="Velg planstatus")
        in_progress = st.multiselect("Planstatus som gir «plan under arbeid»", sorted(codes.PLANSTATUS),
                                     sorted(current.in_progress_planstatus), format_func=lambda c: f"{c} {codes.PLANSTATUS[c]}",
                                     placeholder="Velg planstatus")
        levels = st.multiselect("Vertikalnivå som trekkes fra (uten nivå trekkes alltid fra)", sorted(codes.VERTIKALNIVA),
                                sorted(current.subtracting_levels), format_func=lambda c: f"{c} {codes.VERTIKALNIVA[c]}",
                                placeholder="Velg nivå")
        min_area = st.number_input("Minste tomteareal (m²)", 0.0, 1e7, float(current.min_area_m2), step=500.0)
        mode = st.radio("Modus", ["difference", "whole_zone"], index=["difference", "whole_zone"].index(current.mode), horizontal=True,
                        format_func=lambda m: "Trekk fra planene" if m == "difference" else "Hel sone når lite er regulert")
        cover = st.slider("Hel sone: største regulerte andel", 0.0, 1.0, float(current.whole_zone_max_covered), 0.05)
        try:
            st.session_state["differanse"] = DifferanseSettings.from_options(
                current, housing_sure=sure, housing_possible=possible, include_spredt=spredt, include_fortetting=fortetting,
                statuses=statuses, approved_planstatus=approved, in_progress_planstatus=in_progress,
                subtracting_levels=levels, min_area_m2=min_area, mode=mode, whole_zone_max_covered=cover)
        except TomteError as exc:
            st.error(str(exc))


def analysis_settings() -> Settings:
    """Settings with this session's differanse rules."""
    from dataclasses import replace

    base = settings()
    chosen = st.session_state.get("differanse")
    return replace(base, differanse=chosen) if chosen is not None else base


def safe_md(text: str) -> str:
    """Text from data (plan names, notes) escaped for st.markdown, so it is shown, not interpreted."""
    out = str(text)
    for ch in "\\`*_{}[]()#+-.!<>|~":
        out = out.replace(ch, "\\" + ch)
    return out


def secrets_env() -> dict[str, str]:
    """The environment plus ``[tomte]`` values from Streamlit secrets (e.g. TOMTE_AIRTABLE_TOKEN)."""
    import os

    env = dict(os.environ)
    try:
        env.update({str(k): str(v) for k, v in dict(st.secrets.get("tomte", {})).items()})
    except Exception:  # noqa: BLE001 - no or malformed secrets file: the environment alone
        pass
    return env


def page(title: str) -> tuple[Store, kommuner.Kommune]:
    """The common start of a kommune page: title, navigation, store, kommune picker, synthetic notice."""
    from ui import nav

    st.set_page_config(page_title=f"{title} – tomte", layout="wide")
    st.title(title)
    nav.sidebar()
    s = store()
    k = kommune_picker()
    if k is None:
        st.stop()
        raise SystemExit  # unreachable
    st.set_page_config(page_title=f"{title} · {k.navn} – tomte")  # the browser tab names page and kommune (issue 15)
    # On a phone the sidebar is folded away: say which kommune this is and where to change it.
    st.caption(f"Kommune: **{k.navn} ({k.kommunenummer})** — bytt i sidemenyen (» øverst til venstre på smal skjerm).")
    synthetic_notice(k.kommunenummer)
    return s, k


def held_choice(label: str, options: list[Any], key: str, param: str | None = None, where: Any = None,
                format_func: Callable[[Any], str] = str) -> Any:
    """A selectbox that keeps what the analyst chose across reruns, its value and ``?param=`` agreeing.

    The choice lives in ``st.session_state[key]`` and the widget gets no ``index``: an index
    computed from the query parameter on every run gave the widget a new identity each time
    the choice changed, and every second choice snapped back (issue 15). A link that changes
    ``?param=`` (from the map, or typed) still wins: it is compared with the value last written.
    """
    where = where or st
    if not options:
        return None
    synced = f"{key}__synced"
    wanted = st.query_params.get(param) if param else None
    current = st.session_state.get(key)
    if param and wanted is not None and wanted != st.session_state.get(synced) and wanted in options:
        current = wanted  # the link changed since this page last wrote it
    if current not in options:
        current = wanted if wanted in options else options[0]
    st.session_state[key] = current
    choice = where.selectbox(label, options, key=key, format_func=format_func)
    if param:
        st.query_params[param] = str(choice)
        st.session_state[synced] = str(choice)
    return choice


def shortlist_filter(keep_in_url: bool) -> Any:
    """Tier and CRM-status pickers that start from ``?klasse=A,B&status=Ny`` (what Tomter filtered);
    ``keep_in_url`` writes the choice back, so a shared link and the link to Eksport carry it.
    Returns the :class:`tomte.export.Selection`."""
    from tomte.crm import STATUSES
    from tomte.export import TIER_CHOICES, Selection

    c1, c2 = st.columns(2)
    tiers = c1.multiselect("Klasse", list(TIER_CHOICES), [t for t in (st.query_params.get("klasse") or "").split(",") if t in TIER_CHOICES],
                           placeholder="Alle klasser")
    statuses = c2.multiselect("CRM-status", STATUSES, [x for x in (st.query_params.get("status") or "").split(",") if x in STATUSES],
                              placeholder="Alle statuser")
    if keep_in_url:
        for name, values in (("klasse", tiers), ("status", statuses)):
            if values:
                st.query_params[name] = ",".join(values)
            elif name in st.query_params:
                del st.query_params[name]
    return Selection(tuple(tiers), tuple(statuses))


def dossier_button(s: Store, lot_ids: list[str], key: str, label: str) -> None:
    """Make a site dossier (PDF) of the lots and offer it for download; owner names only after login, when ticked,
    with a purpose that is logged (issue 18)."""
    from tomte.dossier import dossier_pdf
    from ui.auth import require_login

    with st.expander(label):
        named = st.checkbox("Ta med eiernavn (personopplysninger; krever innlogging og logges)", key=f"{key}_owners")
        who, basis = settings().user, ""
        if named:
            who = require_login()
            basis = st.text_input("Formål / rettslig grunnlag (logges)", key=f"{key}_basis")
        if st.button("Lag dossier (PDF)", key=f"{key}_make", disabled=named and not basis.strip()):
            pdf = run(lambda: dossier_pdf(s, lot_ids, with_owners=named, who=who, basis=basis), "Dossieret")
            if pdf:
                st.download_button(f"Last ned dossieret ({len(lot_ids)} tomt{'er' if len(lot_ids) != 1 else ''})", pdf,
                                   file_name=f"tomtedossier_{lot_ids[0] if len(lot_ids) == 1 else 'utvalg'}.pdf",
                                   mime="application/pdf", key=f"{key}_download")


def stop_without_lots(s: Store, k: kommuner.Kommune) -> None:
    """End the page with what to do next when the kommune has no active lots yet (issue 15)."""
    if s.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = ? AND active = 1", (k.kommunenummer,)):
        return
    has_data = s.scalar("SELECT COUNT(*) FROM plan_data_state WHERE kommunenummer = ?", (k.kommunenummer,))
    st.info(f"Ingen tomter i {k.navn} ennå — kjør analysen under «Kommuner»." if has_data else
            f"Ingen plandata for {k.navn} ennå — hent eller importer plandata under «Kommuner», og kjør analysen der.")
    st.stop()


def crm_form(s: Store, lot_id: str, current: str, key: str) -> None:
    """Change a lot's status and/or add a note (logged in the CRM)."""
    from tomte import crm

    flash = st.session_state.pop(f"{key}_saved", None)
    if flash:
        st.success(flash)
    with st.form(f"{key}_{lot_id}", clear_on_submit=True):  # one form per lot: nothing typed for one lot is saved on another
        status = st.selectbox("Status", crm.STATUSES, index=crm.STATUSES.index(current))
        note = st.text_area("Notat")
        if not st.form_submit_button("Lagre"):
            return
    change = (lot_id, status, note.strip())
    if status == current and not change[2]:
        st.info("Ingenting å lagre: velg en ny status eller skriv et notat.")
    elif change == st.session_state.get(f"{key}_last"):
        st.info("Allerede lagret.")  # a double click logs once (issue 15)
    elif run(lambda: crm.set_status(s, lot_id, status, note, settings().user), "Lagring"):
        st.session_state[f"{key}_last"] = change
        st.session_state[f"{key}_saved"] = f"Lagret på tomt {lot_id}" + (f": status {status}" if status != current else "") + (
            " og notat." if change[2] and status != current else ": notat." if change[2] else ".")
        st.rerun()


def run_with_upload(upload: Any, action: Callable[[Path], Any], what: str) -> Any:
    """Run a library call on an uploaded file (kept on disk only for the call), like :func:`run`."""
    return run_with_uploads({"fil": upload}, lambda paths: action(paths["fil"]), what)


def run_with_uploads(uploads: dict[str, Any], action: Callable[[dict[str, Path]], Any], what: str) -> Any:
    """Run a library call on several uploaded files, like :func:`run`; ``None`` uploads are left out.

    Each file is written to its own folder for the call only, so two uploads with the same
    name never overwrite each other.
    """
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, Path] = {}
        for key, upload in uploads.items():
            if upload is None:
                continue
            folder = Path(tmp) / str(len(paths))
            folder.mkdir()
            paths[key] = folder / (Path(upload.name).name or "fil")
            paths[key].write_bytes(upload.getvalue())
        return run(lambda: action(paths), what)
