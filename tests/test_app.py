"""The Streamlit app: each page renders on the demo data; pages hold no business logic."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py"))
NATIONAL_PAGES = {"oversikt.py", "endringer.py"}  # all kommuner at once: no kommune picker
FORBIDDEN = {"requests", "shapely", "sqlite3", "pysqlite3", "zeep", "owslib", "lxml", "pyogrio", "sqlite_utils"}


def open_page(page: str, **params: str) -> AppTest:
    """The page as a user gets it: through app.py's navigation, with query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update(params)
    at.run()
    at.switch_page(f"pages/{page}")
    at.query_params.update(params)
    return at.run()


def open_without_login(page: str, db: Path, monkeypatch, kommune: str) -> AppTest:
    """The page on ``db`` with no login configured; it must not raise."""
    monkeypatch.setenv("TOMTE_DB", str(db))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page(page, kommune=kommune)
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_page_renders_without_exception(page: str, demo_copy: Path, monkeypatch) -> None:
    at = open_without_login(page, demo_copy, monkeypatch, "3207")
    # Streamlit's English defaults ("Choose options") never show: every multiselect has a Norwegian placeholder.
    assert all(m.placeholder for m in at.multiselect), [m.label for m in at.multiselect if not m.placeholder]
    assert at.title, "every page has a title"
    if page not in ("oversikt.py", "endringer.py", "eiere.py"):
        assert any("SYNTETISKE" in w.value for w in at.warning), "synthetic data is labelled"


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_a_link_to_a_kommune_without_data_opens_that_kommune(page: str, demo_copy: Path, monkeypatch) -> None:
    """Issue 15: ``?kommune=3203`` (Asker, never analysed) opened Nordre Follo, and Kart crashed on it."""
    at = open_without_login(page, demo_copy, monkeypatch, "3203")
    if page not in NATIONAL_PAGES and page != "eiere.py":  # Eiere shows nothing before login (tested below)
        picker = next(s for s in at.sidebar.selectbox if s.label == "Kommune")
        assert picker.value == "Asker (3203)"
        assert at.query_params["kommune"] in ("3203", ["3203"])
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.title])
    for internal in (r"Traceback", r"KeyError", r"\bNone\b", r"\bnan\b", r"DeltaGenerator"):
        assert not re.search(internal, shown), (internal, shown[:500])


def test_a_link_to_no_kommune_says_so(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("kart.py", kommune="9999")
    assert not at.exception
    assert any("«9999» finnes ikke" in e.value for e in at.error)
    assert not at.metric  # and nothing of another kommune is shown
    at = open_page("kart.py", kommune="0213")  # Ski's former number opens Nordre Follo
    assert next(s for s in at.sidebar.selectbox if s.label == "Kommune").value == "Nordre Follo (3207)"


def test_owner_pages_refuse_owner_data_before_login(demo_copy: Path, monkeypatch) -> None:
    from tomte import owners
    from tomte.store import open_store

    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lot_parcels LIMIT 1")
    p = s.rows("SELECT p.kommunenummer, p.gnr, p.bnr FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lot_id = ? LIMIT 1", (lot,))[0]
    owners.add_owner(s, owners.Owner(p["kommunenummer"], p["gnr"], p["bnr"], 0, 0, "Hemmelig Eiersen"))
    knr = s.scalar("SELECT kommunenummer FROM lots WHERE lot_id = ?", (lot,))
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page("eiere.py", kommune=knr, lot=lot)
    assert any("ikke satt opp" in e.value for e in at.error)
    assert "Hemmelig Eiersen" not in str([d.value for d in at.dataframe])
    monkeypatch.setenv("TOMTE_APP_PASSWORD", "riktig")
    at = open_page("eiere.py", kommune=knr, lot=lot)
    assert not at.dataframe and at.text_input  # a login form, no tables
    at.text_input[1].input("feil")
    at.button[0].click().run()
    assert any("Feil bruker" in e.value for e in at.error) and not at.dataframe
    at.text_input[1].input("riktig")
    at.button[0].click().run()
    assert not at.exception
    assert "Hemmelig Eiersen" in at.dataframe[0].value.to_string()


def test_overview_shows_counts(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("oversikt.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Kommuner i registeret"] == "357"
    assert int(metrics["Aktive tomter"].replace("\u00a0", "")) > 100
    assert int(metrics["Kvalifiserte tomter (> 60)"].replace("\u00a0", "")) > 0
    # One number format, the Norwegian one, and dates as dates (issue 15)
    assert re.fullmatch(r"\d{1,3}(\u00a0\d{3})*", metrics["Estimerte boliger"]), metrics["Estimerte boliger"]
    per_kommune = at.dataframe[-1].value
    assert all(re.fullmatch(r"\d\d\.\d\d\.\d{4}", v) for v in per_kommune["Oppdatert"]), per_kommune["Oppdatert"].tolist()
    assert all(re.fullmatch(r"\d{1,3}(\u00a0\d{3})*(,\d)?", v) for v in per_kommune["Daa"])
    assert any("m² tomt per bolig" in c.value for c in at.caption)
    assert at.dataframe[-1].value.shape[0] == 3


def test_router_lists_pages(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception


def test_tomter_page_changes_status(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("tomter.py", kommune="3207")
    status_box = next(s for s in at.selectbox if s.label == "Status")
    status_box.set_value("Vurderes")
    at.text_area[0].input("Befaring neste uke")
    next(b for b in at.button if b.label == "Lagre").click().run()
    assert not at.exception
    from tomte.store import open_store

    assert open_store(demo_copy).scalar("SELECT COUNT(*) FROM crm_events WHERE note = 'Befaring neste uke'") == 1


def test_three_lots_in_a_row_each_note_lands_on_the_lot_shown(demo_copy: Path, monkeypatch) -> None:
    """Issue 15: the Tomter picker snapped back on every second choice and a note went to the wrong lot."""
    from tomte.store import open_store

    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("tomter.py", kommune="3207")
    ids = next(s for s in at.selectbox if s.label == "Velg tomt").options
    for n, target in enumerate([ids[3], ids[1], ids[2]]):
        next(s for s in at.selectbox if s.label == "Velg tomt").set_value(target)
        at.run()
        assert next(s for s in at.selectbox if s.label == "Velg tomt").value == target
        at.text_area[0].input(f"Notat {n}")
        next(b for b in at.button if b.label == "Lagre").click().run()
        assert not at.exception
        assert next(s for s in at.selectbox if s.label == "Velg tomt").value == target, "the choice holds after saving"
        assert at.query_params["lot"] in (target, [target])
    store = open_store(demo_copy)
    landed = {r["note"]: r["lot_id"] for r in store.rows("SELECT note, lot_id FROM crm_events WHERE note LIKE 'Notat %'")}
    assert landed == {"Notat 0": ids[3], "Notat 1": ids[1], "Notat 2": ids[2]}


@pytest.mark.parametrize("path", [*PAGES, ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_hold_no_business_logic(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & FORBIDDEN


@pytest.mark.parametrize("path", [*PAGES, ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py"))], ids=lambda p: p.name)
def test_no_bare_expression_is_written_to_a_page(path: Path) -> None:
    """Streamlit's magic writes a bare expression's value to the page (issue 15: Streamlit's own documentation on
    Kommuner). Magic is off in .streamlit/config.toml; this keeps the code from relying on that: only calls and
    docstrings may stand alone."""
    tree = ast.parse(path.read_text())
    bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Expr)
            and not isinstance(node.value, ast.Call | ast.Await)
            and not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))]
    assert not bare, f"bare expressions on lines {bare}"
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert "magicEnabled = false" in config and 'toolbarMode = "viewer"' in config


def test_library_never_imports_streamlit() -> None:
    code = "import sys, tomte, tomte.cli, tomte.pipeline, tomte.export, tomte.demo; print('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_differanse_rules_are_settings_in_the_app(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("kommuner.py", kommune="3207")
    from tomte.store import open_store

    before = open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    next(c for c in at.checkbox if c.label.startswith("Fortetting")).check()
    at.run()
    next(b for b in at.button if b.label == "Analyser lagrede data på nytt").click().run()
    assert not at.exception
    after = open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    assert after > before  # infill adds the nåværende housing zones


def test_add_a_source_in_the_app(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("kommuner.py", kommune="3212")
    next(t for t in at.text_input if t.label == "Adresse (URL)").input("https://kart.nesodden.kommune.no/wfs")
    next(t for t in at.text_input if t.label.startswith("Typenavn")).input("app:KpArealformalOmrade")
    next(b for b in at.button if b.label == "Lagre kilden").click().run()
    assert not at.exception
    from tomte.store import open_store

    rows = open_store(demo_copy).rows("SELECT kommunenummer, role, kind, url, typename FROM sources")
    assert rows == [{"kommunenummer": "3212", "role": "kommuneplan", "kind": "wfs", "url": "https://kart.nesodden.kommune.no/wfs",
                     "typename": "app:KpArealformalOmrade"}]


def test_shortlist_filters_carry_into_the_export(demo_copy: Path, monkeypatch) -> None:
    """Issue 15: Tomter as a filterable shortlist in words; Eksport exports just that shortlist."""
    from tomte.store import open_store

    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    n_a = open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1 AND tier = 'A'")
    at = open_page("tomter.py", kommune="3207", klasse="A")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns[:5]) == ["Klasse", "Poeng", "Daa", "Boliger", "Adresse"]
    assert table["Boliger"].notna().all() and (table["Boliger"] > 0).all()
    assert len(table) == n_a and set(table["Klasse"]) == {"A"}
    assert not table["Flagg"].str.contains("_").any() and not table["Formål"].str.fullmatch(r"\d+").any()
    next(m for m in at.multiselect if m.label == "Klasse").set_value(["A", "B"]).run()
    assert at.query_params["klasse"] in ("A,B", ["A,B"])
    at = open_page("eksport.py", kommune="3207", klasse="A")
    assert not at.exception
    assert next(m for m in at.multiselect if m.label == "Klasse").value == ["A"]
    labels = [b.label for b in at.get("download_button")]
    assert any(label.startswith("Last ned CSV for Excel") and f"({n_a} tomter)" in label for label in labels), labels


def test_endringer_is_a_page_with_names_and_links(demo_copy: Path, monkeypatch) -> None:
    """Issue 15: Endringer showed raw Markdown with kommune numbers only and ids that were not links."""
    from tomte.store import open_store

    s = open_store(demo_copy)
    lot = s.scalar("SELECT lot_id FROM lots WHERE kommunenummer = '3207' AND active = 1 LIMIT 1")
    report = (f"# Endringer siden sist – synk 1\n\n## Viktigst først\n- Nordre Follo (3207): ny A-tomt {lot}\n\n"
              f"## Nordre Follo (3207)\n- Ny tomt {lot} (klasse A)\n- Ny plan under arbeid 2026100 (Forslag *X* [y]) berører {lot}\n")
    s.execute("INSERT INTO sync_runs (started_at, finished_at, ok, report) VALUES ('2026-12-03T02:00:05', '2026-12-03T02:06:00', 1, ?)",
              (report,))
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = open_page("endringer.py")
    assert not at.exception
    assert at.expander[0].label.startswith("Synk") and "03.12.2026 kl. 02:00" in at.expander[0].label
    md = " ".join(m.value for m in at.markdown)
    assert "#### Viktigst først" in md and "#### Nordre Follo \\(3207\\)" in md and "# Endringer" not in md
    assert f"[{lot}](/kart?kommune=3207&lot={lot})" in md
    assert "Forslag \\*X\\* \\[y\\]" in md  # data shown literally, not as Markdown


def test_pipeline_board_shows_every_lot_per_status(demo_copy: Path, monkeypatch) -> None:
    """Issue 15: the board showed 8 of 170 lots in truncated cards."""
    from tomte import crm
    from tomte.store import open_store

    s = open_store(demo_copy)
    ids = [r["lot_id"] for r in s.rows("SELECT lot_id FROM lots WHERE kommunenummer = '3207' AND active = 1 ORDER BY lot_id")]
    for lot in ids[:3]:
        crm.set_status(s, lot, "I dialog", None, "test")
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page("pipeline.py", kommune="3207")
    assert not at.exception
    labels = [t.label for t in at.tabs]
    assert labels[0] == f"Ny ({len(ids) - 3})" and "I dialog (3)" in labels
    tables = {len(d.value) for d in at.dataframe}
    assert len(ids) - 3 in tables and 3 in tables  # every lot, not the first eight


def test_lot_panel_lists_its_plans_with_register_links(demo_copy: Path) -> None:
    """Issue 15: plan ids link to the plan register (the source's link, else arealplaner.no's plan page)."""
    import json

    from tomte.store import open_store
    from ui import queries

    s = open_store(demo_copy)
    lot, exp = next((r["lot_id"], json.loads(r["explanation"])) for r in s.rows(
        "SELECT lot_id, explanation FROM lots WHERE kommunenummer = '3207' AND active = 1") if json.loads(r["explanation"]).get("cut_by"))
    first, *rest = [p["planid"] for p in exp["cut_by"]]
    s.execute("UPDATE rp_areas SET link = 'https://planinnsyn.example/plan/' || planid WHERE kommunenummer = '3207' AND planid = ?", (first,))
    table = queries.lot_plans(s, lot)
    row = table[table["Plan"] == first].iloc[0]
    assert row["Les planen"] == f"https://planinnsyn.example/plan/{first}" and row["Kilde"] == "planregisteret"
    assert row["Forhold"] == "trukket fra sonen" and row["Status"]
    for other in rest:
        guess = table[table["Plan"] == other].iloc[0]
        assert guess["Les planen"] == ("https://www.arealplaner.no/nordrefollo3207/gi?funksjon=VisPlan&kommunenummer=3207"
                                       f"&planidentifikasjon={other}") and "antatt" in guess["Kilde"]


def test_map_layers_in_words_and_a_kommune_without_lots(demo_copy: Path) -> None:
    """Issue 15: Kart crashed with KeyError 'tier' on a kommune without lots; layers showed raw codes."""
    from tomte import mapdata
    from tomte.store import open_store

    s = open_store(demo_copy)
    assert mapdata.lots_geojson(s, "3203", ["A", "B"]) == {"type": "FeatureCollection", "features": []}
    assert mapdata.lots_geojson(s, "3203") == {"type": "FeatureCollection", "features": []}
    some = mapdata.lots_geojson(s, "3207", ["A"])
    assert some["features"] and {f["properties"]["tier"] for f in some["features"]} == {"A"}
    zones = mapdata.layer_geojson(s, "3207", "zones")["features"]
    assert zones and all(re.fullmatch(r"\d{3,4} \D.+", f["properties"]["navn"]) for f in zones)
    assert {f["properties"]["status"] for f in zones} <= {"Nåværende", "Framtidig", "Videreutvikling av nåværende"}
    boundary = mapdata.boundary_geojson(s, "3207")["features"]
    assert len(boundary) == 1 and boundary[0]["properties"]["navn"] == "Nordre Follo"


def test_dossier_from_the_lot_panel(demo_copy: Path, monkeypatch) -> None:
    """Issue 18: a button on the lot's panel makes the site dossier."""
    from tomte.store import open_store

    lot = open_store(demo_copy).scalar("SELECT lot_id FROM lots WHERE kommunenummer = '3207' AND active = 1 ORDER BY score DESC LIMIT 1")
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page("kart.py", kommune="3207", lot=lot)
    next(b for b in at.button if b.label == "Lag dossier (PDF)").click().run()
    assert not at.exception and not at.error
    assert any(b.label.startswith("Last ned dossieret (1 tomt)") for b in at.get("download_button"))


def test_moving_lots_on_the_board_is_all_or_nothing(demo_copy: Path) -> None:
    """The pipeline board moves a selection in one transaction: an archived lot among them moves none."""
    import pytest

    from tomte import crm
    from tomte.errors import InvalidData
    from tomte.store import open_store

    s = open_store(demo_copy)
    live = [r["lot_id"] for r in s.rows("SELECT lot_id FROM lots WHERE kommunenummer = '3207' AND active = 1 LIMIT 2")]
    s.execute("UPDATE lots SET active = 0, archived_reason = 'test' WHERE lot_id = ?", (live[1],))
    with pytest.raises(InvalidData):
        crm.move_lots(s, live, "Vurderes", "test")
    assert s.scalar("SELECT status FROM lots WHERE lot_id = ?", (live[0],)) == "Ny"
    s.execute("UPDATE lots SET active = 1 WHERE lot_id = ?", (live[1],))
    assert crm.move_lots(s, live, "Vurderes", "test") == 2
    assert {s.scalar("SELECT status FROM lots WHERE lot_id = ?", (lot,)) for lot in live} == {"Vurderes"}
