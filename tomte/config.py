"""Explicit, frozen configuration.

``Settings.from_env()`` is built once (by the CLI or the app) and passed down; nothing in
the library reads the environment on its own, so two Streamlit sessions never share
mutable settings.

Environment variables
---------------------
TOMTE_DB            SpatiaLite file (default ``data/tomte.sqlite``)
TOMTE_SOURCES       the source registry (default ``data/sources.toml``, shipped with tomte)
TOMTE_CACHE_DIR     HTTP cache directory (default ``data/cache``)
TOMTE_CACHE_HOURS   max age of cached HTTP responses in hours (default 24)
TOMTE_HTTP_TIMEOUT  seconds before a request is abandoned (default 30)
TOMTE_HTTP_RETRIES  retries on connection errors, 429 and 5xx (default 4)
TOMTE_RATE_PER_HOST requests per second per host (default 4)
TOMTE_HTTP_DEADLINE overall seconds for one response, body included (default 300)
TOMTE_HTTP_MAX_MB   largest response body after decompression, in MB (default 512)
TOMTE_MAX_PAGES     most pages fetched from one source (default 5000)
TOMTE_OWNER_RETENTION_DAYS  owners older than this are removed by ``purge-owners`` (default: keep until purged)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tomte import codes
from tomte.scoring import ScoringSettings

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"


@dataclass(frozen=True)
class HttpSettings:
    """How tomte talks to services.

    Attributes are documented in the module docstring's environment table.
    ``max_retry_after`` caps a server's ``Retry-After`` so a sync cannot hang for hours.
    ``deadline``, ``max_mb`` and ``max_pages`` bound what one slow, huge or endlessly paging
    server can cost (see :mod:`tomte.sources._http` and :mod:`tomte.sources.paging`).
    """

    timeout: float = 30.0
    deadline: float = 300.0
    max_mb: float = 512.0
    max_pages: int = 5000
    retries: int = 4
    backoff: float = 1.0
    max_retry_after: float = 120.0
    rate_per_host: float = 4.0
    cache_dir: Path = DATA_DIR / "cache"
    cache_hours: float = 24.0
    user_agent: str = "tomte/0.1 (tomteanalyse for sosial boligbygging; python-requests)"


@dataclass(frozen=True)
class DifferanseSettings:
    """The differanse rules (issue 4). Every set and number can be changed by the analyst.

    Attributes
    ----------
    housing_sure, housing_possible
        KpArealformålOmråde codes counted as housing; *possible* ones get the flag ``mulig_bolig``.
    housing_sure_1985, housing_possible_1985
        The same for PBL-1985 ``KpArealbrukOmråde.arealbruk``.
    include_spredt
        Also count 5210 (spredt boligbebyggelse) as housing.
    include_fortetting
        Also count ``arealbruksstatus`` 1 (nåværende): infill.
    statuses
        ``arealbruksstatus`` values that are candidates (default 2 framtidig and 3 videreutvikling).
    approved_planstatus
        ``planstatus`` values of reguleringsplaner that are subtracted.
    in_progress_planstatus
        ``planstatus`` values that flag a lot with ``plan_under_arbeid``.
    subtracting_levels
        ``vertikalnivå`` values that subtract; a plan with no level given subtracts too.
    min_area_m2
        Parts smaller than this are dropped.
    mode
        ``"difference"`` (cut plans out) or ``"whole_zone"`` (keep a zone whole when less than
        ``whole_zone_max_covered`` of it is covered by approved plans).
    """

    housing_sure: frozenset[str] = codes.HOUSING_SURE_2008
    housing_possible: frozenset[str] = codes.HOUSING_POSSIBLE_2008
    housing_sure_1985: frozenset[str] = codes.HOUSING_SURE_1985
    housing_possible_1985: frozenset[str] = codes.HOUSING_POSSIBLE_1985
    include_spredt: bool = False
    include_fortetting: bool = False
    statuses: frozenset[str] = codes.STATUS_DEFAULT
    approved_planstatus: frozenset[str] = codes.APPROVED_PLANSTATUS
    in_progress_planstatus: frozenset[str] = codes.IN_PROGRESS_PLANSTATUS
    subtracting_levels: frozenset[str] = codes.SUBTRACTING_VERTIKALNIVA
    min_area_m2: float = 2000.0
    mode: str = "difference"
    whole_zone_max_covered: float = 0.9

    @classmethod
    def from_options(cls, base: DifferanseSettings | None = None, **options: object) -> DifferanseSettings:
        """A copy of ``base`` with the given options; sets may be given as comma-separated text.

        Unknown option names and empty code sets raise ``InvalidData`` (used by the CLI and the app).
        """
        from tomte.errors import InvalidData

        base = base or cls()
        changes: dict[str, object] = {}
        for name, value in options.items():
            if value is None:
                continue
            if name not in cls.__dataclass_fields__:
                raise InvalidData(f"Ukjent innstilling {name}.")
            current = getattr(base, name)
            if isinstance(current, frozenset):
                items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
                codes_ = frozenset(c for c in (codes.code(v) for v in items) if c)
                if not codes_ and name not in {"housing_possible", "housing_possible_1985", "in_progress_planstatus"}:
                    raise InvalidData(f"Innstillingen {name} kan ikke være tom.")
                changes[name] = codes_
            elif name == "mode" and value not in {"difference", "whole_zone"}:
                raise InvalidData("Modus må være «difference» eller «whole_zone».")
            else:
                changes[name] = value
        return replace(base, **changes)  # type: ignore[arg-type]

    def candidate_statuses(self) -> frozenset[str]:
        """Arealbruksstatus values that make a zone a candidate."""
        return self.statuses | ({"1"} if self.include_fortetting else frozenset())

    def sure_codes(self) -> frozenset[str]:
        """Sure housing codes (2008), with 5210 when the analyst opted in."""
        return self.housing_sure | (codes.SPREDT_BOLIG if self.include_spredt else frozenset())


def _number(env: os._Environ[str] | dict[str, str], name: str, default: float) -> float:
    """A non-negative number from the environment; a bad value is one sentence, not a traceback."""
    from tomte.errors import InvalidData

    text = env.get(name)
    if text is None or text == "":
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise InvalidData(f"Miljøvariabelen {name} må være et tall ≥ 0, ikke «{text}».")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the library needs, passed explicitly."""

    db_path: Path = DATA_DIR / "tomte.sqlite"
    sources_file: Path = DATA_DIR / "sources.toml"
    http: HttpSettings = field(default_factory=HttpSettings)
    differanse: DifferanseSettings = field(default_factory=DifferanseSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    user: str = "analytiker"
    owner_retention_days: int | None = None

    @classmethod
    def from_env(cls, db_path: str | os.PathLike[str] | None = None) -> Settings:
        """Build settings from environment variables (see module docstring)."""
        env = os.environ
        http = HttpSettings(
            timeout=_number(env, "TOMTE_HTTP_TIMEOUT", 30),
            retries=int(_number(env, "TOMTE_HTTP_RETRIES", 4)),
            rate_per_host=_number(env, "TOMTE_RATE_PER_HOST", 4),
            deadline=_number(env, "TOMTE_HTTP_DEADLINE", 300),
            max_mb=_number(env, "TOMTE_HTTP_MAX_MB", 512),
            max_pages=int(_number(env, "TOMTE_MAX_PAGES", 5000)),
            cache_dir=Path(env.get("TOMTE_CACHE_DIR", DATA_DIR / "cache")),
            cache_hours=_number(env, "TOMTE_CACHE_HOURS", 24),
        )
        path = Path(db_path or env.get("TOMTE_DB") or DATA_DIR / "tomte.sqlite")
        retention = env.get("TOMTE_OWNER_RETENTION_DAYS") and str(int(_number(env, "TOMTE_OWNER_RETENTION_DAYS", 0)))
        return cls(db_path=path, http=http, user=env.get("TOMTE_USER", env.get("USER", "analytiker")),
                   sources_file=Path(env.get("TOMTE_SOURCES") or DATA_DIR / "sources.toml"),
                   owner_retention_days=int(retention) if retention else None)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]
