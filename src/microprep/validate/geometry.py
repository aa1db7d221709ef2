"""Vectorized measures of many shapes at once: extents, areas, shapely geometries, validity.

:func:`measure` takes the shapes of a batch of images and returns numpy arrays (one entry per
shape) computed with whole-array numpy and shapely 2 functions, so validating thousands of shapes
costs a few shapely calls rather than thousands. Rotated boxes and ellipses get their rotated
geometry (ellipses as :data:`ELLIPSE_VERTICES`-gons, used for overlaps only: their ``area`` is
``pi * rx * ry``).

Example:
    >>> import numpy as np
    >>> from microprep.model import Shape
    >>> m = measure([Shape("box", "a", np.array([[0.0, 0.0], [2.0, 3.0]]))], max_vertices=100)
    >>> m.area.tolist(), m.bounds.tolist()
    ([6.0], [[0.0, 0.0, 2.0, 3.0]])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.model import Shape
from microprep.validate.crossings import MAX_SELF_CROSSINGS, count_crossings

logger = logging.getLogger(__name__)

#: Vertices of the polygon that stands for an ellipse in overlap and outside checks.
ELLIPSE_VERTICES = 64
#: Kinds whose ``points`` must hold exactly two rows.
TWO_POINT_KINDS = frozenset({"box", "ellipse", "mask"})
#: Kinds with an area (the others draw lines, disks or nothing).
AREA_KINDS = frozenset({"polygon", "box", "ellipse", "mask"})

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclass
class Measures:
    """Per-shape arrays for ``n`` shapes (see :func:`measure`).

    ``bounds`` ``(n, 4)`` is ``x_min, y_min, x_max, y_max`` (NaN for tags); ``area`` px²
    (NaN where unknown: non-finite points, a mask without bitmap); ``finite`` False when a point
    or the rotation is NaN or infinite; ``malformed`` True when ``points`` has the wrong number of
    rows for the kind; ``geoms`` holds the shapely polygon of polygons, boxes and ellipses that
    could be built (None elsewhere); ``valid`` is False only for polygons that shapely finds
    invalid, ``reason`` then says why and ``fixed`` / ``fixed_area`` hold ``make_valid``'s result;
    ``shoelace`` is the area shapely gives the polygon as drawn (self-intersections cancel);
    ``duplicates`` counts consecutive repeated vertices (polygons: the closing one too);
    ``pixels`` holds, for invalid polygons, what repairing them changes in their pixels (a
    :class:`~microprep.validate.pixels.PixelChange`, filled by
    :func:`~microprep.validate.invalid.compare_repairs`; None elsewhere). Invalid polygons whose
    repair covers the same pixels get that repaired geometry in ``geoms``. ``crossings`` counts,
    for invalid polygons, the pairs of their edges that meet (-1 elsewhere); above
    :data:`~microprep.validate.crossings.MAX_SELF_CROSSINGS` (the count then stops somewhere
    above the cap) the polygon is not repaired: ``fixed`` stays None and ``fixed_area`` NaN.
    """

    kinds: NDArray[Any]
    n_vertices: IntArray
    rotation: FloatArray
    bounds: FloatArray
    area: FloatArray
    finite: BoolArray
    malformed: BoolArray
    geoms: NDArray[Any]
    valid: BoolArray
    reason: NDArray[Any]
    fixed: NDArray[Any]
    fixed_area: FloatArray
    shoelace: FloatArray
    duplicates: IntArray
    pixels: NDArray[Any]
    crossings: IntArray


def _reduce(
    ufunc: np.ufunc, values: NDArray[Any], starts: IntArray, counts: IntArray, empty: Any
) -> NDArray[Any]:
    """``ufunc`` over each segment ``values[start:start + count]``; ``empty`` for empty ones."""
    out = np.full(len(counts), empty, dtype=values.dtype)
    nonempty = counts > 0
    if nonempty.any():
        out[nonempty] = ufunc.reduceat(values, starts[nonempty])
    return out


def _rotate(
    dx: FloatArray, dy: FloatArray, cx: FloatArray, cy: FloatArray, rotation: FloatArray
) -> FloatArray:
    """Points ``(cx + dx, cy + dy)`` rotated clockwise on screen by ``rotation`` degrees about
    ``(cx, cy)``; ``dx``/``dy`` are ``(n, k)``, the rest ``(n,)``. Returns ``(n, k, 2)``."""
    t = np.radians(rotation)[:, None]
    c, s = np.cos(t), np.sin(t)
    x = cx[:, None] + c * dx - s * dy
    y = cy[:, None] + s * dx + c * dy
    return np.stack((x, y), axis=-1)


def box_polygons(p0: FloatArray, p1: FloatArray, rotation: FloatArray) -> NDArray[Any]:
    """Shapely polygons of boxes ``[p0, p1]`` (``(n, 2)`` each) rotated by ``rotation``°."""
    cx, cy = (p0[:, 0] + p1[:, 0]) / 2.0, (p0[:, 1] + p1[:, 1]) / 2.0
    hw, hh = (p1[:, 0] - p0[:, 0])[:, None] / 2.0, (p1[:, 1] - p0[:, 1])[:, None] / 2.0
    dx = np.hstack((-hw, hw, hw, -hw))
    dy = np.hstack((-hh, -hh, hh, hh))
    return np.asarray(shapely.polygons(_rotate(dx, dy, cx, cy, rotation)))


def ellipse_polygons(centre: FloatArray, radii: FloatArray, rotation: FloatArray) -> NDArray[Any]:
    """Shapely polygons (:data:`ELLIPSE_VERTICES` vertices) of rotated ellipses."""
    t = np.linspace(0.0, 2.0 * math.pi, ELLIPSE_VERTICES, endpoint=False)[None, :]
    dx = radii[:, 0:1] * np.cos(t)
    dy = radii[:, 1:2] * np.sin(t)
    return np.asarray(shapely.polygons(_rotate(dx, dy, centre[:, 0], centre[:, 1], rotation)))


def _ellipse_bounds(centre: FloatArray, radii: FloatArray, rotation: FloatArray) -> FloatArray:
    t = np.radians(rotation)
    hw = np.hypot(radii[:, 0] * np.cos(t), radii[:, 1] * np.sin(t))
    hh = np.hypot(radii[:, 0] * np.sin(t), radii[:, 1] * np.cos(t))
    cx, cy = centre[:, 0], centre[:, 1]
    return np.column_stack((cx - hw, cy - hh, cx + hw, cy + hh))


def _polygons(pts: FloatArray, starts: IntArray, counts: IntArray, rows: IntArray) -> NDArray[Any]:
    """Shapely polygons of the vertex lists ``rows`` (indices into ``starts``/``counts``)."""
    if not len(rows):
        return np.empty(0, dtype=object)
    lengths = counts[rows]
    index = np.repeat(np.arange(len(rows)), lengths)
    take = np.repeat(starts[rows] - np.cumsum(lengths) + lengths, lengths) + np.arange(
        lengths.sum()
    )
    rings = shapely.linearrings(pts[take], indices=index)
    return np.asarray(shapely.polygons(rings))


def measure(shapes: Sequence[Shape], max_vertices: int) -> Measures:
    """Measure ``shapes`` (any kinds, any images) in a few vectorized passes.

    Args:
        shapes: the shapes, in any order.
        max_vertices: polygons with more vertices get no geometry (they are reported instead).

    Returns:
        A :class:`Measures` whose arrays follow the order of ``shapes``.
    """
    n = len(shapes)
    kinds = np.array([s.kind for s in shapes], dtype=object)
    counts = np.fromiter((len(s.points) for s in shapes), np.int64, n)
    rotation = np.fromiter((s.rotation for s in shapes), np.float64, n)
    starts = np.cumsum(counts) - counts
    pts = np.concatenate([s.points for s in shapes]) if counts.sum() else np.zeros((0, 2))

    bad_point = ~np.isfinite(pts).all(axis=1)
    finite = ~_reduce(np.logical_or, bad_point, starts, counts, False) & np.isfinite(rotation)
    bounds = np.column_stack(
        [
            _reduce(np.minimum, pts[:, 0], starts, counts, np.nan),
            _reduce(np.minimum, pts[:, 1], starts, counts, np.nan),
            _reduce(np.maximum, pts[:, 0], starts, counts, np.nan),
            _reduce(np.maximum, pts[:, 1], starts, counts, np.nan),
        ]
    )
    bounds[kinds == "tag"] = np.nan
    area = np.zeros(n)
    area[~finite] = np.nan
    malformed = np.isin(kinds, list(TWO_POINT_KINDS)) & (counts != 2)
    geoms = np.full(n, None, dtype=object)

    two = np.flatnonzero(np.isin(kinds, ["box", "ellipse"]) & ~malformed & finite)
    p0, p1 = pts[starts[two]], pts[starts[two] + 1]
    is_box = kinds[two] == "box"
    box, ell = two[is_box], two[~is_box]
    bp0, bp1 = p0[is_box], p1[is_box]
    area[box] = np.abs((bp1[:, 0] - bp0[:, 0]) * (bp1[:, 1] - bp0[:, 1]))
    rotated = np.flatnonzero(rotation[box] % 360.0 != 0.0)
    if len(rotated):
        corners = box_polygons(bp0[rotated], bp1[rotated], rotation[box][rotated])
        bounds[box[rotated]] = shapely.bounds(corners)
    ok = (bp1[:, 0] > bp0[:, 0]) & (bp1[:, 1] > bp0[:, 1])
    if ok.any():
        geoms[box[ok]] = box_polygons(bp0[ok], bp1[ok], rotation[box][ok])

    centre, radii = p0[~is_box], p1[~is_box]
    bounds[ell] = _ellipse_bounds(centre, radii, rotation[ell])
    ok = (radii[:, 0] > 0) & (radii[:, 1] > 0)
    area[ell] = np.where(ok, math.pi * radii[:, 0] * radii[:, 1], 0.0)
    if ok.any():
        geoms[ell[ok]] = ellipse_polygons(centre[ok], radii[ok], rotation[ell][ok])

    for i in np.flatnonzero((kinds == "mask") & ~malformed).tolist():
        bitmap = shapes[i].bitmap
        if bitmap is None:
            area[i] = np.nan
            continue
        (x0, y0), (x1, y1) = shapes[i].points
        if bitmap.shape != (round(y1 - y0), round(x1 - x0)):
            malformed[i] = True
        area[i] = float(np.count_nonzero(bitmap))

    valid = np.ones(n, dtype=bool)
    reason = np.full(n, None, dtype=object)
    fixed = np.full(n, None, dtype=object)
    fixed_area = np.full(n, np.nan)
    shoelace = np.full(n, np.nan)
    crossings = np.full(n, -1, dtype=np.int64)
    poly = np.flatnonzero((kinds == "polygon") & finite & (counts >= 3) & (counts <= max_vertices))
    if len(poly):
        polys = _polygons(pts, starts, counts, poly)
        shoelace[poly] = shapely.area(polys)
        good = np.asarray(shapely.is_valid(polys), dtype=bool)
        valid[poly] = good
        geoms[poly[good]] = polys[good]
        area[poly[good]] = shoelace[poly[good]]
        bad = poly[~good]
        if len(bad):
            reason[bad] = shapely.is_valid_reason(polys[~good])
            crossings[bad] = [
                count_crossings(shapes[i].points, limit=MAX_SELF_CROSSINGS) for i in bad.tolist()
            ]
            # make_valid's cost explodes with the crossings: too complex ones are not repaired
            ok = crossings[bad] <= MAX_SELF_CROSSINGS
            fixed[bad[ok]] = shapely.make_valid(polys[~good][ok])
            fixed_area[bad[ok]] = shapely.area(fixed[bad[ok]])
            area[bad] = np.where(ok, fixed_area[bad], shoelace[bad])

    return Measures(
        kinds=kinds,
        n_vertices=counts,
        rotation=rotation,
        bounds=bounds,
        area=area,
        finite=finite,
        malformed=malformed,
        geoms=geoms,
        valid=valid,
        reason=reason,
        fixed=fixed,
        fixed_area=fixed_area,
        shoelace=shoelace,
        duplicates=_duplicates(kinds, pts, starts, counts),
        pixels=np.full(n, None, dtype=object),
        crossings=crossings,
    )


def _duplicates(
    kinds: NDArray[Any], pts: FloatArray, starts: IntArray, counts: IntArray
) -> IntArray:
    """Consecutive repeated vertices of polygons and polylines (polygons: the closing one too)."""
    if len(pts) < 2:
        return np.zeros(len(counts), dtype=np.int64)
    is_start = np.zeros(len(pts), dtype=bool)
    is_start[starts[counts > 0]] = True
    same = np.zeros(len(pts), dtype=np.int64)
    same[:-1] = (pts[1:] == pts[:-1]).all(axis=1) & ~is_start[1:]
    dup = _reduce(np.add, same, starts, counts, 0)
    closing = (kinds == "polygon") & (counts >= 2)
    last = starts[closing] + counts[closing] - 1
    dup[closing] += (pts[starts[closing]] == pts[last]).all(axis=1)
    dup[~np.isin(kinds, ["polygon", "polyline"])] = 0
    return dup


def polygon_parts(geom: Any) -> list[Any]:
    """The polygons with area in ``geom`` (any shapely geometry or None), collections and
    multi-parts flattened.

    Example:
        >>> bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
        >>> [p.area for p in polygon_parts(shapely.make_valid(bowtie))]
        [1.0, 1.0]
    """
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom] if geom.area > 0 else []
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in polygon_parts(g)]
    return []


def dedup_vertices(points: FloatArray, closed: bool) -> FloatArray:
    """``points`` without consecutive repeats (``closed``: nor a last vertex equal to the first).

    Example:
        >>> dedup_vertices(np.array([[0.0, 0], [0, 0], [1, 0], [1, 1], [0, 0]]), True).tolist()
        [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    """
    if len(points) < 2:
        return points
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = ~(points[1:] == points[:-1]).all(axis=1)
    out = points[keep]
    while closed and len(out) > 1 and (out[-1] == out[0]).all():
        out = out[:-1]
    return out
