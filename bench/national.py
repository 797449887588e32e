"""National run from cache (issue 14): ``tomte sync`` over all 357 kommuner with a realistic size spread.

Every kommune gets generated plan data inside its real boundary (:func:`bench.whole.generate`):
the four largest cities 20,000–40,000 kommuneplan zones, sixteen regional towns 4,000–10,000,
and the rest 500–3,000 (log-normal around 1,200), with 1.27 reguleringsplan areas per zone. The
files are kommuneplan and reguleringsplan GeoPackages given as file sources, standing in for
the HTTP cache (parcels, constraints and the rest are fetched per lot batch in production and
are left out here). They are generated once into ``bench/out/national/`` and reused.

Timed: ``python -m tomte sync --sources … --workers N`` as one process; reported are kommuner per
minute, the slowest kommune (from the sync's own per-kommune seconds) and the peak RSS of the
largest process (``wait4`` over the sync and its workers).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from bench.whole import generate, timed, write_files

BIG = {"0301": 40_000, "4601": 30_000, "5001": 25_000, "1103": 20_000}
TOWNS = ["3201", "1108", "4204", "3301", "3907", "3203", "5501", "3205", "3107", "3105", "1804", "3909", "1507", "3403",
         "3207", "3905"]
VERSION = "1"  # bump when the generator changes, so the cached files are made again


def sizes(numbers: list[str], seed: int = 357) -> dict[str, int]:
    """Zones per kommune: a few cities, some towns, most small."""
    rng = np.random.default_rng(seed)
    out = {}
    for knr in numbers:
        if knr in BIG:
            out[knr] = BIG[knr]
        elif knr in TOWNS:
            out[knr] = int(rng.integers(4_000, 10_001))
        else:
            out[knr] = int(np.clip(rng.lognormal(np.log(1200), 0.5), 500, 3000))
    return out


def prepare(out: Path) -> tuple[Path, dict[str, int]]:
    """The sources file over every kommune's generated files (made once, then reused)."""
    from tomte import kommuner
    from tomte.store import open_store

    folder = out / "national"
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(folder / "boundaries.sqlite")
    kommuner.load_kommuner(store)
    numbers = [r["kommunenummer"] for r in store.rows("SELECT kommunenummer FROM kommuner ORDER BY kommunenummer")]
    wanted = sizes(numbers)
    marker = folder / f"ready-{VERSION}.json"
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        t0 = time.perf_counter()
        for knr, n in wanted.items():
            gen = generate(kommuner.boundary(store, knr).union_all(), n, seed=int(knr), context=False)
            write_files(gen, folder / knr)
        marker.write_text(json.dumps(wanted))
        print(f"Genererte {sum(wanted.values()):,} soner i {len(wanted)} kommuner på {time.perf_counter() - t0:.0f} s (lagres for neste gang)")
    store.close()
    lines = []
    for knr in wanted:
        for role, name in (("kommuneplan", "kp"), ("reguleringsplan", "rp")):
            lines.append(f'[[source]]\nkommune = "{knr}"\nrole = "{role}"\nkind = "file"\npath = "{(folder / knr / f"{name}.gpkg").resolve()}"\n')
    sources = folder / "sources.toml"
    sources.write_text("".join(lines))
    return sources, wanted


def bench_national(out: Path, workers: int | None = None) -> bool:
    """Print the national run's figures; True when all 357 kommuner finished within 10 minutes and every process stayed under 2 GB."""
    from tomte.store import open_store

    sources, wanted = prepare(out)
    db = out / "national.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    empty = out / "empty.toml"
    empty.write_text("")
    n = workers or os.cpu_count() or 1
    seconds, rss, _ = timed(["--db", str(db), "sync", "--sources", str(sources), "--workers", str(n)],
                            env={"TOMTE_SOURCES": str(empty), "TOMTE_CACHE_DIR": str(out / "cache")}, check=False,
                            log=out / "national_sync.log")
    store = open_store(db)
    items = store.rows("SELECT kommunenummer, status, message, changes FROM sync_items WHERE run_id = (SELECT MAX(id) FROM sync_runs)")
    lots = int(store.scalar("SELECT COUNT(*) FROM lots WHERE active = 1") or 0)
    store.close()
    per = {r["kommunenummer"]: json.loads(r["changes"] or "{}").get("seconds", 0.0) for r in items}
    failed = [r for r in items if r["status"] != "ok"]
    slowest = max(per, key=lambda k: per[k])
    zones = sum(wanted.values())
    print(f"\nNasjonal kjøring fra hurtigbuffer (issue 14): `tomte sync` over {len(items)} kommuner, {zones:,} soner og "
          f"{int(zones * 1.27):,} planområder, {n} prosesser")
    print(f"{seconds / 60:.1f} min i alt: {len(items) / seconds * 60:.0f} kommuner/min, {zones / seconds:,.0f} soner/s, {lots:,} tomter; "
          f"tregeste kommune {slowest} ({wanted[slowest]:,} soner) {per[slowest]:.1f} s; topp-RSS største prosess {rss:.0f} MB")
    if failed:
        print(f"FEIL: {len(failed)} kommuner feilet, f.eks. {failed[0]['kommunenummer']}: {failed[0]['message']}")
    ok = not failed and len(items) == len(wanted) and seconds < 600 and rss < 2048
    print(f"Mål: alle {len(wanted)} kommuner under 10 min: {'ja' if seconds < 600 and not failed else 'NEI'} ({seconds / 60:.1f} min); "
          f"ingen prosess over 2 GB: {'ja' if rss < 2048 else 'NEI'} ({rss:.0f} MB)")
    return ok
