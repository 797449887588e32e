"""Shared fixtures: fresh SpatiaLite stores, the shared real data, a demo database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tomte.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED_REAL = ROOT.parent / "shared" / "data" / "real"


def shared(relative: str) -> Path:
    """A file from ../shared/data/real, or skip the test when ../shared is absent."""
    path = SHARED_REAL / relative
    if not path.exists():
        pytest.skip(f"../shared/data/real/{relative} is not available")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, migrated SpatiaLite file."""
    s = open_store(tmp_path / "t.sqlite")
    yield s
    s.close()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database built once per test session (copy it before writing)."""
    from tomte import pipeline
    from tomte.config import Settings

    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    s = open_store(path)
    pipeline.build_demo_database(s, Settings.from_env(path))
    s.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    return path


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database."""
    dest = tmp_path / "demo.sqlite"
    shutil.copy(demo_db, dest)
    return dest
