"""The Streamlit app: each page renders on the demo data; pages hold no business logic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py"))
FORBIDDEN = {"requests", "shapely", "sqlite3", "pysqlite3", "zeep", "owslib", "lxml", "pyogrio", "sqlite_utils"}


def open_page(page: str, **params: str) -> AppTest:
    """The page as a user gets it: through app.py's navigation, with query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update(params)
    at.run()
    at.switch_page(f"pages/{page}")
    at.query_params.update(params)
    return at.run()


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_page_renders_without_exception(page: str, demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    monkeypatch.delenv("TOMTE_APP_PASSWORD", raising=False)
    at = open_page(page, kommune="3207")
    assert not at.exception, at.exception
    assert at.title, "every page has a title"
    if page not in ("oversikt.py", "endringer.py", "eiere.py"):
        assert any("SYNTETISKE" in w.value for w in at.warning), "synthetic data is labelled"


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
    assert int(metrics["Aktive tomter"]) > 100
    assert int(metrics["Kvalifiserte tomter (> 60)"].replace(" ", "")) > 0
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


@pytest.mark.parametrize("path", [*PAGES, ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_hold_no_business_logic(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & FORBIDDEN


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
