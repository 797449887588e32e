"""Scoring: seven factors, each a pure function of the lots' features, and a weighted score.

Each factor returns ``(values, reasons)``: a float Series in 0..1 (NaN = unknown) and a
Norwegian reason per lot, indexed like the input (momepy's style). :func:`factor_table` runs
all seven once; :func:`score` turns a factor table and weights into 0-100 scores, tiers and
each factor's points. Re-scoring is pure numpy, so the weight sliders can re-rank 10,000 lots
in well under 50 ms (measured in ``make bench``).

Unknown data (a factor whose inputs are missing) is shown as "ukjent" and its weight is shared
among the known factors of that lot (the score is the weighted mean over known factors). A lot
is never pushed up or down by data nobody has; the explanation says which factors were unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tomte import codes

FACTORS = ["capacity", "size", "centrality", "conflict_free", "infrastructure", "political", "owners"]
FACTOR_NAMES = {"capacity": "Kapasitet", "size": "Størrelse", "centrality": "Sentralitet", "conflict_free": "Konfliktfrihet",
                "infrastructure": "Infrastruktur", "political": "Politisk vilje", "owners": "Eierstruktur"}
PRESETS: dict[str, dict[str, float]] = {
    "Masterdokument": {"capacity": 25, "size": 15, "centrality": 20, "conflict_free": 20, "infrastructure": 10, "political": 10, "owners": 0},
    "Implementeringsplan": {"size": 15, "capacity": 20, "centrality": 15, "infrastructure": 10, "conflict_free": 20, "political": 10, "owners": 10},
}
AREA_PER_DWELLING_PRESETS = {"Masterdokument": 80.0, "Implementeringsplan": 400.0}
TIERS = [(80.0, "A"), (60.0, "B"), (40.0, "C"), (-np.inf, "D")]


@dataclass(frozen=True)
class ScoringSettings:
    """Numbers the factors use (all can be changed by the analyst).

    Attributes
    ----------
    weights
        Factor weights (any positive scale; normalised over the known factors).
    m2_per_dwelling
        Site area per dwelling when the plan gives no utnytting (80 master document, 400 implementation plan).
    bra_per_dwelling, floors
        To turn an ``utnyttingstall`` into dwellings: m² BRA per dwelling, and floors assumed for BYA types.
    curve
        ``"log"`` (default): capacity, size and centrality on logarithmic curves between a floor and a
        ceiling, so they discriminate across the realistic range of Norwegian housing sites (5–1,000
        dwellings, 2–300 daa, 200 m–10 km from a centre) and saturate only at the top: every doubling
        counts the same, 20 → 40 dwellings as much as 400 → 800. ``"linear"``: a straight line from 0 to the
        ceiling, as the master document writes it (preset «Masterdokument, som skrevet»: 10 dwellings and
        5 daa give full points, so on real sites nearly every lot is full and the factor stops ranking).
    dwellings_min, dwellings_full, daa_min, daa_full
        Floor and ceiling of the capacity and size curves (no points at the floor, full points at the ceiling).
    centre_full_m, centre_zero_m
        Distance to the nearest centre with full and with no centrality score.
    road_zero_m, stop_zero_m
        Distance to road / public transport stop at which the infrastructure sub-score reaches 0.
    min_parcel_overlap_m2
        Parcels overlapping a lot less than this do not count as owners of it.
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(PRESETS["Masterdokument"]))
    m2_per_dwelling: float = 80.0
    bra_per_dwelling: float = 80.0
    floors: float = 3.0
    curve: str = "log"
    dwellings_min: float = 5.0
    dwellings_full: float = 1000.0
    daa_min: float = 2.0
    daa_full: float = 300.0
    centre_full_m: float = 200.0
    centre_zero_m: float = 10_000.0
    road_zero_m: float = 1000.0
    stop_zero_m: float = 1500.0
    min_parcel_overlap_m2: float = 50.0


# The curves of the scoring factors (issue 16): the default ranks, the literal one reproduces the master document.
CURVE_PRESETS: dict[str, dict[str, object]] = {
    "Standard (logaritmisk)": {},
    "Masterdokument, som skrevet": {"curve": "linear", "dwellings_min": 0.0, "dwellings_full": 10.0, "daa_min": 0.0,
                                    "daa_full": 5.0, "centre_full_m": 500.0, "centre_zero_m": 5000.0},
}


def with_curves(settings: ScoringSettings, preset: str) -> ScoringSettings:
    """The settings with a named curve preset (:data:`CURVE_PRESETS`)."""
    from dataclasses import replace

    if preset not in CURVE_PRESETS:
        from tomte.errors import InvalidData

        raise InvalidData(f"Ukjent kurvesett «{preset}»; velg {' eller '.join(CURVE_PRESETS)}.")
    defaults = ScoringSettings()
    base = {name: getattr(defaults, name) for name in CURVE_PRESETS["Masterdokument, som skrevet"]}
    return replace(settings, **{**base, **CURVE_PRESETS[preset]})  # type: ignore[arg-type]


def rising(x: pd.Series, low: float, high: float, curve: str) -> pd.Series:
    """0 at ``low``, 1 at ``high`` and above: on a log scale (``curve="log"``) or a straight line."""
    x = x.astype(float)
    if curve == "log":
        return (np.log(x.clip(lower=low) / low) / np.log(high / low)).clip(0, 1).where(x.notna())
    return ((x - low) / (high - low)).clip(0, 1)


def _km(m: float) -> str:
    return f"{m / 1000:.1f} km".replace(".", ",") if m >= 1000 else f"{m:.0f} m"


def _col(features: pd.DataFrame, name: str) -> pd.Series:
    return features[name] if name in features else pd.Series(np.nan, index=features.index, dtype=float)


def dwellings(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Estimated dwellings and how they were estimated.

    With the plan's ``utnyttingstall``: %-BRA/%-TU types (3, 14, 18) give BRA = area × tall/100;
    %-BYA types (12, 16) give BYA = area × tall/100, times ``floors``; BRA/T-BRA (13, 17) are m² BRA;
    BYA (15) is m² BYA times ``floors``. Dwellings = BRA / ``bra_per_dwelling``. Types 10 and 11
    forbid building. Otherwise dwellings = area / ``m2_per_dwelling``.
    """
    area = features["area_m2"].astype(float)
    kind = codes.code_series(_col(features, "utnyttingstype").astype(object)).reindex(features.index)
    tall = pd.to_numeric(_col(features, "utnyttingstall"), errors="coerce")
    bra = pd.Series(np.nan, index=features.index)
    bra[kind.isin(["3", "14", "18"])] = area * tall / 100
    bra[kind.isin(["12", "16"])] = area * tall / 100 * s.floors
    bra[kind.isin(["13", "17"])] = tall
    bra[kind.isin(["15"])] = tall * s.floors
    out = (area / s.m2_per_dwelling).where(bra.isna(), bra / s.bra_per_dwelling)
    forbids = kind.isin(list(codes.UTNYTTING_FORBIDS))
    out[forbids] = 0.0
    how = pd.Series(f"{s.m2_per_dwelling:.0f} m² tomt per bolig", index=features.index)
    how[bra.notna()] = "planens utnyttingsgrad"
    how[forbids] = "planen forbyr bebyggelse (utnyttingstype " + kind[forbids].astype(str) + ")"
    return out.round(0), how


def capacity(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Estimated dwellings between ``dwellings_min`` and ``dwellings_full`` (see ``curve``)."""
    n, how = dwellings(features, s)
    value = rising(n, s.dwellings_min if s.curve == "log" else 0.0, s.dwellings_full, s.curve)
    return value.rename("capacity"), ("ca. " + n.astype(int).astype(str) + " boliger (" + how + ")").rename("capacity")


def size(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Site area in dekar between ``daa_min`` and ``daa_full`` (see ``curve``)."""
    daa = features["area_m2"].astype(float) / 1000
    reason = daa.map(lambda d: f"{d:.1f} daa".replace(".", ","))
    return rising(daa, s.daa_min if s.curve == "log" else 0.0, s.daa_full, s.curve).rename("size"), reason.rename("size")


def centrality(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Distance to the nearest centre (tettsted/sentrum layer)."""
    d = _col(features, "dist_centre_m").astype(float)
    if s.curve == "log":  # closeness falls by the same step for every doubling of the distance
        value = 1 - rising(d, s.centre_full_m, s.centre_zero_m, "log")
    else:
        value = ((s.centre_zero_m - d) / (s.centre_zero_m - s.centre_full_m)).clip(0, 1)
    name = _col(features, "centre_name").astype(object)
    reason = pd.Series([f"{_km(x)} til sentrum" + (f" ({n})" if isinstance(n, str) and n else "") if x == x else "ukjent (ingen senterlag)"
                        for x, n in zip(d, name, strict=True)], index=features.index)
    return value.rename("centrality"), reason.rename("centrality")


def conflict_free(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Share of the lot free of constraints (hensynssoner and constraint layers)."""
    free = _col(features, "free_share").astype(float)
    names = _col(features, "constraints").astype(object)
    reasons = []
    for f, n in zip(free, names, strict=True):
        if f != f:
            reasons.append("ukjent (ingen restriksjonsdata)")
        elif f >= 0.9999:
            reasons.append("ingen kjente restriksjoner")
        else:
            reasons.append(f"{round(f * 100)} % fri for restriksjoner ({n})")
    return free.clip(0, 1).rename("conflict_free"), pd.Series(reasons, index=features.index, name="conflict_free")


def infrastructure(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Mean of road and public-transport closeness (whichever are known)."""
    road = _col(features, "dist_road_m").astype(float)
    stop = _col(features, "dist_stop_m").astype(float)
    parts = pd.concat([(1 - road / s.road_zero_m).clip(0, 1), (1 - stop / s.stop_zero_m).clip(0, 1)], axis=1)
    value = parts.mean(axis=1, skipna=True)
    reasons = []
    for r, t in zip(road, stop, strict=True):
        bits = ([f"{_km(r)} til veg"] if r == r else []) + ([f"{_km(t)} til holdeplass"] if t == t else [])
        reasons.append(", ".join(bits) if bits else "ukjent (ingen veg- eller holdeplasslag)")
    return value.rename("infrastructure"), pd.Series(reasons, index=features.index, name="infrastructure")


def political(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """The kommune's political will score (0-1) from the analysts' table."""
    value = _col(features, "political").astype(float)
    note = _col(features, "political_note").astype(object)
    reason = pd.Series([(f"kommunens score {v:.1f}".replace(".", ",") + (f": {n}" if isinstance(n, str) and n else "")) if v == v
                        else "ukjent (ikke vurdert for kommunen)" for v, n in zip(value, note, strict=True)], index=features.index)
    return value.clip(0, 1).rename("political"), reason.rename("political")


def owners(features: pd.DataFrame, s: ScoringSettings) -> tuple[pd.Series, pd.Series]:
    """Fewer owners is easier: 1 → 1.0, 2 → 0.8, 3-5 → 0.6, 6-10 → 0.4, more → 0.2."""
    n = _col(features, "n_owners").astype(float)
    basis = _col(features, "owners_basis").astype(object)
    value = pd.Series(np.select([n <= 1, n <= 2, n <= 5, n <= 10], [1.0, 0.8, 0.6, 0.4], 0.2), index=features.index).where(n.notna())
    reason = pd.Series([f"{int(k)} {b or 'eiere'}" if k == k else "ukjent (ingen teiger koblet)" for k, b in zip(n, basis, strict=True)],
                       index=features.index)
    return value.rename("owners"), reason.rename("owners")


FUNCTIONS = {"capacity": capacity, "size": size, "centrality": centrality, "conflict_free": conflict_free,
             "infrastructure": infrastructure, "political": political, "owners": owners}


@dataclass
class FactorTable:
    """Factor values (n × 7, NaN = unknown) and reasons for a set of lots."""

    index: pd.Index
    values: np.ndarray
    reasons: np.ndarray


def factor_table(features: pd.DataFrame, settings: ScoringSettings) -> FactorTable:
    """Run all seven factors once."""
    values, reasons = [], []
    for name in FACTORS:
        v, r = FUNCTIONS[name](features, settings)
        values.append(v.to_numpy(float))
        reasons.append(r.to_numpy(object))
    return FactorTable(features.index, np.column_stack(values) if values else np.empty((0, 7)), np.column_stack(reasons))


def weight_vector(weights: dict[str, float]) -> np.ndarray:
    """Weights in FACTORS order (missing = 0); negative weights are refused."""
    w = np.array([float(weights.get(f, 0.0)) for f in FACTORS])
    if (w < 0).any():
        from tomte.errors import InvalidData

        raise InvalidData("Vekter kan ikke være negative.")
    return w


def score(table: FactorTable, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores 0-100, tiers, points per factor) for the weights; NaN score when nothing is known."""
    w = weight_vector(weights)
    known = ~np.isnan(table.values)
    wk = known * w
    denom = wk.sum(axis=1)
    safe = np.where(denom > 0, denom, 1.0)
    points = np.nan_to_num(table.values) * wk / safe[:, None] * 100.0
    total = np.where(denom > 0, points.sum(axis=1), np.nan)
    tiers = np.select([total >= t for t, _ in TIERS[:-1]], [name for _, name in TIERS[:-1]], "D").astype(object)
    tiers[np.isnan(total)] = None
    return total, tiers, points


def tier_of(value: float | None) -> str | None:
    """Tier letter of one score."""
    if value is None or value != value:
        return None
    return next(name for limit, name in TIERS if value >= limit)
