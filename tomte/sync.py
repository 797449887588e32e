"""``sync``: fetch → differanse for each kommune with sources, one failure not stopping the rest.

This is the sequential first version (issue 2/3 scope); change detection, parallel kommuner and
notifications are issue 8's and not built yet. Each run is stored in ``sync_runs``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tomte import pipeline
from tomte.config import Settings
from tomte.errors import TomteError
from tomte.sources.registry import merged
from tomte.store import Store, dumps, now


@dataclass
class SyncReport:
    """Per-kommune outcome of a sync."""

    lines: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no kommune failed."""
        return not self.failures

    def summary(self) -> str:
        """One line."""
        return f"Synk: {len(self.lines)} kommuner ok, {len(self.failures)} feilet"

    def render(self, html_output: bool = False) -> str:
        """Markdown (or HTML) report."""
        md = ["# tomte synk", ""]
        md += [f"- **{k}**: {v}" for k, v in self.lines.items()]
        md += [f"- **{k}**: FEILET: {v}" for k, v in self.failures.items()]
        if not html_output:
            return "\n".join(md) + "\n"
        items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in md[2:])
        return f"<!doctype html><meta charset=utf-8><title>tomte synk</title><h1>tomte synk</h1><ul>{items}</ul>"


def run_sync(store: Store, settings: Settings, kommuner: list[str] | None, sources_file: str | None,
             refresh: bool, progress: Callable[[str], None]) -> SyncReport:
    """Run fetch → analyse for the kommuner; failures are collected, not raised."""
    if not kommuner:
        kommuner = sorted({s.kommune for s in merged(settings.sources_file, store, Path(sources_file) if sources_file else None)})
    report = SyncReport()
    run_id = store.execute("INSERT INTO sync_runs (started_at, kommuner) VALUES (?, ?)", (now(), dumps(kommuner))).lastrowid
    for knr in kommuner:
        try:
            fetched = pipeline.fetch_kommune(store, settings, knr, sources_file, refresh, progress)
            analysed = pipeline.analyse(store, settings, knr, progress)
            report.lines[knr] = f"{fetched.summary()}; {analysed.summary()}"
        except TomteError as exc:
            report.failures[knr] = str(exc)
            progress(f"{knr}: {exc}")
    store.execute("UPDATE sync_runs SET finished_at = ?, ok = ?, report = ? WHERE id = ?",
                  (now(), int(report.ok), report.render(), run_id))
    return report
