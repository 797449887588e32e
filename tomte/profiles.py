"""Weight profiles: the two presets from the documents and the analysts' own, stored by name."""

from __future__ import annotations

from tomte.errors import InvalidData, NotFound
from tomte.scoring import FACTORS, PRESETS, weight_vector
from tomte.store import Store, dumps, loads, now


def names(store: Store) -> list[str]:
    """Presets first, then saved profiles."""
    saved = [r["name"] for r in store.rows("SELECT name FROM weight_profiles ORDER BY name") if r["name"] not in PRESETS]
    return [*PRESETS, *saved]


def load(store: Store, name: str) -> dict[str, float]:
    """Weights of a preset or a saved profile."""
    if name in PRESETS:
        return dict(PRESETS[name])
    row = store.rows("SELECT weights FROM weight_profiles WHERE name = ?", (name,))
    if not row:
        raise NotFound(f"Fant ingen vektprofil «{name}»; velg en av: {', '.join(names(store))}.")
    return {f: float(v) for f, v in loads(row[0]["weights"], {}).items()}


def save(store: Store, name: str, weights: dict[str, float]) -> None:
    """Save (or replace) a named profile; the presets cannot be overwritten."""
    name = name.strip()
    if not name:
        raise InvalidData("Gi profilen et navn.")
    if name in PRESETS:
        raise InvalidData(f"«{name}» er en forhåndsinnstilling og kan ikke overskrives; velg et annet navn.")
    weight_vector(weights)
    if not any(weights.get(f, 0) > 0 for f in FACTORS):
        raise InvalidData("Minst én vekt må være større enn null.")
    with store.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO weight_profiles VALUES (?, ?, ?)", (name, dumps({f: float(weights.get(f, 0)) for f in FACTORS}), now()))
