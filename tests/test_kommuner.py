"""Kommuner 2024 with boundaries and former numbers."""

from __future__ import annotations

import pytest

from tomte import kommuner
from tomte.errors import InvalidData, NotFound


@pytest.fixture
def loaded(store):
    kommuner.load_kommuner(store)
    return store


def test_357_kommuner_with_boundaries_in_25833(loaded) -> None:
    assert loaded.scalar("SELECT COUNT(*) FROM kommuner") == 357
    assert loaded.scalar("SELECT COUNT(*) FROM kommuner WHERE geom IS NULL OR ST_SRID(geom) != 25833") == 0
    # Nordre Follo is about 203 km²; the simplified boundary stays within a few per cent.
    area = loaded.scalar("SELECT ST_Area(geom) / 1e6 FROM kommuner WHERE kommunenummer = '3207'")
    assert 190 < area < 215


@pytest.mark.parametrize(("old", "new"), [("3020", "3207"), ("0213", "3207"), ("0217", "3207"), ("3021", "3218"),
                                          ("0214", "3218"), ("3023", "3212"), ("0216", "3212"), ("301", "0301")])
def test_former_numbers_resolve(loaded, old: str, new: str) -> None:
    assert kommuner.resolve(loaded, old).kommunenummer == new


def test_search_by_name_number_and_old_number(loaded) -> None:
    assert [k.kommunenummer for k in kommuner.search(loaded, "Nordre F")] == ["3207"]
    assert "3207" in [k.kommunenummer for k in kommuner.search(loaded, "nordre")]
    assert kommuner.search(loaded, "3020")[0].navn == "Nordre Follo"
    assert "3218" in [k.kommunenummer for k in kommuner.search(loaded, "Ås")]


def test_bad_and_unknown_numbers(loaded) -> None:
    with pytest.raises(InvalidData):
        kommuner.resolve(loaded, "Oslo")
    with pytest.raises(NotFound):
        kommuner.resolve(loaded, "9999")
