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


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_page_renders_without_exception(page: str, demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    at.query_params["kommune"] = "3207"
    at.run()
    assert not at.exception, at.exception
    assert at.title, "every page has a title"
    if page != "oversikt.py":
        assert any("SYNTETISKE" in w.value for w in at.warning), "synthetic data is labelled"


def test_overview_shows_counts(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = AppTest.from_file(str(ROOT / "pages" / "oversikt.py"), default_timeout=60).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Kommuner i registeret"] == "357"
    assert int(metrics["Aktive tomter"]) > 100
    assert at.dataframe[0].value.shape[0] == 3


def test_router_lists_pages(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception


def test_tomter_page_changes_status(demo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOMTE_DB", str(demo_copy))
    at = AppTest.from_file(str(ROOT / "pages" / "tomter.py"), default_timeout=60)
    at.query_params["kommune"] = "3207"
    at.run()
    status_box = next(s for s in at.selectbox if s.label == "Status")
    status_box.set_value("Vurderes")
    at.text_area[0].input("Befaring neste uke")
    at.button[0].click().run()
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
    at = AppTest.from_file(str(ROOT / "pages" / "kommuner.py"), default_timeout=60)
    at.query_params["kommune"] = "3207"
    at.run()
    from tomte.store import open_store

    before = open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    next(c for c in at.checkbox if c.label.startswith("Fortetting")).check()
    at.run()
    next(b for b in at.button if b.label == "Analyser lagrede data på nytt").click().run()
    assert not at.exception
    after = open_store(demo_copy).scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    assert after > before  # infill adds the nåværende housing zones
