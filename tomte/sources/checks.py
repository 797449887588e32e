"""Sanity checks on incoming data, before anything stored is replaced (issue 12).

Wrong data must not replace right data without a question. Each check raises
:class:`~tomte.errors.InvalidData` with a sentence that says what is wrong and, where it can be
told, the likely cause:

* :func:`check_coordinates`: every coordinate finite and inside Norway's extent (EPSG:25833, with
  a margin); coordinates that would land in Norway when read another way are diagnosed
  ("ser ut som lengde/bredde (EPSG:4326), ikke EPSG:25833", "ser ut som EPSG:25832", "bredde og
  lengde er byttet om");
* :func:`check_in_kommune`: at least :data:`MIN_INSIDE_SHARE` of the features (by representative
  point) inside the kommune's boundary plus :data:`MARGIN_M`; otherwise the kommune the features
  are in is named ("ligger i Tromsø (5501), ikke i Nordre Follo");
* :func:`check_not_shrunk`: a new copy with fewer than :data:`MIN_KEPT_SHARE` of the stored
  features is refused unless the analyst confirms (``--force``, a checkbox in the app).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from tomte.errors import InvalidData
from tomte.geom import TARGET
from tomte.sources.gml import RawFeature

# Mainland Norway in EPSG:25833 with a margin of about 50 km (Utsira to Grense Jakobselv,
# Lindesnes to Knivskjellodden).
NORWAY = (-130_000.0, 6_390_000.0, 1_200_000.0, 7_990_000.0)
MARGIN_M = 2_000.0
MIN_INSIDE_SHARE = 0.5
MIN_KEPT_SHARE = 0.5
SAMPLE = 500
CANDIDATES = (25832, 25833, 25835, 4326, 4258)


def _in_box(xy: np.ndarray, box: tuple[float, float, float, float] = NORWAY) -> np.ndarray:
    return (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])


def _sample_points(features: Sequence[RawFeature]) -> tuple[np.ndarray, list[int]]:
    """Representative points (EPSG:25833) of up to :data:`SAMPLE` features, and their source EPSG."""
    with_geom = [f for f in features if f.geometry is not None and not f.geometry.is_empty]
    step = max(1, len(with_geom) // SAMPLE)
    picked = with_geom[::step]
    geoms = np.array([f.geometry for f in picked], dtype=object)
    points = shapely.get_coordinates(shapely.point_on_surface(shapely.make_valid(geoms))) if len(geoms) else np.empty((0, 2))
    return points, [f.epsg or TARGET for f in picked]


def _transform(xy: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or not len(xy):
        return xy
    tr = Transformer.from_crs(src, dst, always_xy=True)
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _name(epsg: int) -> str:
    return {4326: "lengde/bredde (EPSG:4326)", 4258: "lengde/bredde (EPSG:4258)"}.get(epsg, f"EPSG:{epsg}")


def _reinterpretations(points: np.ndarray, declared: int) -> list[tuple[str, np.ndarray]]:
    """The points read as if their raw numbers were in another CRS, or with the axes swapped."""
    raw = _transform(points, TARGET, declared)
    out = []
    for candidate in CANDIDATES:
        if candidate != declared:
            out.append((f"koordinatene ser ut som {_name(candidate)}, ikke {_name(declared)}", _transform(raw, candidate, TARGET)))
    swapped = raw[:, ::-1]
    out.append((f"nord- og østverdiene (bredde og lengde) ser ut til å være byttet om i {_name(declared)}",
                _transform(swapped, declared, TARGET)))
    return out


def _diagnose(points: np.ndarray, declared: int, fits: Callable[[np.ndarray], np.ndarray]) -> str | None:
    for cause, moved in _reinterpretations(points, declared):
        with np.errstate(invalid="ignore"):
            if len(moved) and np.isfinite(moved).all() and fits(moved).mean() >= 0.9:
                return cause
    return None


def check_coordinates(features: Sequence[RawFeature], what: str) -> None:
    """Every coordinate finite and inside Norway (EPSG:25833); raises with the likely cause."""
    geoms = [f.geometry for f in features if f.geometry is not None]
    if not geoms:
        return
    coords = shapely.get_coordinates(np.array(geoms, dtype=object))
    if not np.isfinite(coords).all():
        raise InvalidData(f"{what}: noen koordinater er ikke endelige tall (NaN, uendelig eller for store); ingenting er lagret.")
    inside = _in_box(coords)
    if inside.all():
        return
    points, epsgs = _sample_points(features)
    declared = max(set(epsgs), key=epsgs.count) if epsgs else TARGET
    cause = _diagnose(points, declared, _in_box)
    lo, hi = coords[~inside][0], coords[~inside].max(axis=0)
    detail = cause or f"for eksempel ({lo[0]:.6g}, {lo[1]:.6g}) i EPSG:25833; sjekk koordinatsystemet (--crs)"
    raise InvalidData(f"{what}: {int((~inside).sum())} av {len(coords)} koordinater ligger utenfor Norge – {detail}; "
                      f"ingenting er lagret.", detail=f"max {hi}")


def check_in_kommune(features: Sequence[RawFeature], boundary: BaseGeometry, kommune: str, what: str,
                     others: Callable[[], Sequence[tuple[str, BaseGeometry]]] | None = None) -> None:
    """Most features (by representative point) inside the kommune.

    ``others`` gives (name, boundary) of every kommune, to name where the features are instead;
    it is called only when the check fails.
    """
    points, epsgs = _sample_points(features)
    if not len(points):
        return
    area = shapely.buffer(boundary, MARGIN_M)
    shapely.prepare(area)

    def fits(xy: np.ndarray) -> np.ndarray:
        return shapely.contains_xy(area, xy[:, 0], xy[:, 1])

    share = float(fits(points).mean())
    if share >= MIN_INSIDE_SHARE:
        return
    declared = max(set(epsgs), key=epsgs.count)
    cause = _diagnose(points, declared, fits)
    if cause is None and others:
        centre = shapely.Point(np.median(points, axis=0))
        cause = next((f"de ligger i {name}" for name, geom in others() if geom.contains(centre)), None)
    raise InvalidData(f"{what}: bare {share:.0%} av objektene ligger i {kommune}"
                      + (f" – {cause}" if cause else "; sjekk kommunenummer og koordinatsystem")
                      + "; ingenting er lagret.")


def check_not_shrunk(new: int, stored: int, what: str, force: bool) -> None:
    """Refuse a copy with far fewer features than the stored one unless the analyst confirmed."""
    if force or stored == 0 or new >= MIN_KEPT_SHARE * stored:
        return
    raise InvalidData(f"{what}: den nye kopien har {new} objekter, men {stored} er lagret (under halvparten); "
                      "ingenting er byttet ut. Er det riktig, kjør igjen med --force (i appen: «Bekreft utskifting»).")
