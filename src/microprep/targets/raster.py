"""Rasterize one shape into a cropped bool mask with the pixel-centre rule.

Rule: pixel (row ``r``, col ``c``) belongs to a shape when its centre ``(c + 0.5, r + 0.5)`` is
inside it. Boundaries are half-open like the pixel grid itself: a box ``[x0, x1) x [y0, y1)``
covers the centres ``x0 <= x < x1`` and ``y0 <= y < y1``, and polygons follow the same even-odd
scanline convention, so an axis-aligned box and the same box drawn as a polygon give the same
pixels. Ellipses and point disks include their boundary.

Why our own scanline fill instead of ``rasterio.features.rasterize`` or
``skimage.draw.polygon``: both implement the same centre rule, but their per-call overhead
(~440 µs for a 60x60 window here) dominates when every object is rasterized on its own, which
instance masks require; the vectorized even-odd fill below does it in a few tens of µs and is
checked pixel for pixel against ``shapely.contains_xy`` in the tests.

Polylines are drawn as a band of ``line_width`` pixels (shapely's buffer, flat caps, round joins);
points and skeleton points as disks of ``point_radius`` pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.model import Shape, box_corners, cos_sin
from microprep.targets.types import Raster

#: Default width of polylines, in pixels (dislocation lines are a few pixels wide).
DEFAULT_LINE_WIDTH = 3.0
#: Default radius of points, in pixels (point defects).
DEFAULT_POINT_RADIUS = 3.0


@dataclass(frozen=True, slots=True)
class RasterOptions:
    """How shapes without area are drawn: ``line_width`` and ``point_radius`` in pixels."""

    line_width: float = DEFAULT_LINE_WIDTH
    point_radius: float = DEFAULT_POINT_RADIUS


def _empty() -> Raster:
    return Raster((0, 0), np.zeros((0, 0), dtype=bool))


#: A window of rows ``(first, stop)``: the rows a raster is drawn on (the whole image, or a band).
Rows = tuple[int, int]


def _span(lo: float, hi: float, size: int, start: int = 0) -> tuple[int, int]:
    """Indices ``i`` in ``[start, size)`` whose centre ``i + 0.5`` lies in ``[lo, hi)``."""
    first = max(start, math.ceil(lo - 0.5))
    stop = min(size, math.ceil(hi - 0.5))
    return first, max(first, stop)


def fill_rings(
    rings: list[NDArray[np.float64]], top: int, left: int, height: int, width: int
) -> NDArray[np.bool_]:
    """Even-odd fill of closed rings (each ``(N, 2)`` x, y) on the pixel-centre grid.

    Returns a ``(height, width)`` bool mask whose ``[0, 0]`` is pixel ``(top, left)``.
    Holes are rings too (even-odd). A pixel is inside when an odd number of ring edges cross
    its row's centre line strictly left of or at its centre; edges cover ``[y_min, y_max)``.

    Example:
        >>> sq = np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]])
        >>> fill_rings([sq], 0, 0, 4, 4).astype(int).tolist()
        [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    out_shape = (height, width)
    if height <= 0 or width <= 0:
        return np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    if len(rings) == 1:
        starts = rings[0]
        ends = np.concatenate((starts[1:], starts[:1]))
    else:
        starts = np.concatenate(rings)
        ends = np.concatenate([np.concatenate((ring[1:], ring[:1])) for ring in rings])
    # each edge from its end of lower y, so an edge drawn there and back (a zero-area spike)
    # gives the same crossings both ways and cancels exactly
    up = ends[:, 1] < starts[:, 1]
    lo_end = np.where(up[:, None], ends, starts)
    hi_end = np.where(up[:, None], starts, ends)
    x0, y0, x1, y1 = lo_end[:, 0], lo_end[:, 1], hi_end[:, 0], hi_end[:, 1]
    # rows whose centre (top + r + 0.5) lies in [min(y0, y1), max(y0, y1)), clipped to the crop
    ra = np.ceil(y0 - (top + 0.5))
    rb = np.ceil(y1 - (top + 0.5))
    r0 = np.minimum(np.maximum(np.minimum(ra, rb), 0), height).astype(np.int64)
    r1 = np.minimum(np.maximum(np.maximum(ra, rb), 0), height).astype(np.int64)
    counts = r1 - r0
    keep = np.flatnonzero(counts > 0)
    if not keep.size:
        return np.zeros(out_shape, dtype=bool)
    counts, r0 = counts[keep], r0[keep]
    x0, y0 = x0[keep], y0[keep]
    slope = (x1[keep] - x0) / (y1[keep] - y0)
    edge = np.repeat(np.arange(counts.size), counts)
    offsets = np.arange(edge.size) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = r0[edge] + offsets
    xi = x0[edge] + ((top + 0.5) + rows - y0[edge]) * slope[edge]
    # first column whose centre is >= the crossing
    cols = np.ceil(xi - (left + 0.5))
    np.clip(cols, 0, width, out=cols)
    flat = rows * (width + 1) + cols.astype(np.int64)
    toggles = np.bincount(flat, minlength=height * (width + 1))
    toggles = toggles.reshape(height, width + 1)[:, :width]
    return (np.cumsum(toggles, axis=1) & 1).astype(bool)


def _polygon(rings: list[NDArray[np.float64]], rows: Rows, width: int) -> Raster:
    allp = np.concatenate(rings)
    if not np.isfinite(allp).all():
        return _empty()
    r0, r1 = _span(float(allp[:, 1].min()), float(allp[:, 1].max()), rows[1], rows[0])
    c0, c1 = _span(float(allp[:, 0].min()), float(allp[:, 0].max()), width)
    if r1 <= r0 or c1 <= c0:
        return _empty()
    return Raster((r0, c0), fill_rings(rings, r0, c0, r1 - r0, c1 - c0))


def _box(shape: Shape, rows: Rows, width: int) -> Raster:
    if shape.rotation % 360.0 != 0.0:
        return _polygon([box_corners(shape.points, shape.rotation)], rows, width)
    (x0, y0), (x1, y1) = shape.points
    r0, r1 = _span(y0, y1, rows[1], rows[0])
    c0, c1 = _span(x0, x1, width)
    if r1 <= r0 or c1 <= c0:
        return _empty()
    return Raster((r0, c0), np.ones((r1 - r0, c1 - c0), dtype=bool))


def _centres(
    extent: tuple[float, float, float, float], rows: Rows, width: int
) -> tuple[int, int, NDArray[np.float64], NDArray[np.float64]] | None:
    """Crop origin and the pixel-centre coordinates (column vector ys, row vector xs)."""
    x0, y0, x1, y1 = extent
    # closed extent: include a centre lying exactly on the far edge
    r0, r1 = _span(y0, math.nextafter(y1, math.inf), rows[1], rows[0])
    c0, c1 = _span(x0, math.nextafter(x1, math.inf), width)
    if r1 <= r0 or c1 <= c0:
        return None
    ys = (np.arange(r0, r1, dtype=np.float64) + 0.5)[:, None]
    xs = (np.arange(c0, c1, dtype=np.float64) + 0.5)[None, :]
    return r0, c0, ys, xs


def _ellipse(shape: Shape, rows: Rows, width: int) -> Raster:
    (cx, cy), (rx, ry) = shape.points
    if not (rx > 0 and ry > 0):
        return _empty()
    grid = _centres(shape.extent(), rows, width)
    if grid is None:
        return _empty()
    r0, c0, ys, xs = grid
    c, s = cos_sin(shape.rotation)
    dx, dy = xs - cx, ys - cy
    u = (c * dx + s * dy) / rx
    v = (c * dy - s * dx) / ry
    return Raster((r0, c0), u * u + v * v <= 1.0)


def _disks(points: NDArray[np.float64], radius: float, rows: Rows, width: int) -> Raster:
    if len(points) == 0 or radius <= 0:
        return _empty()
    ext = (
        float(points[:, 0].min()) - radius,
        float(points[:, 1].min()) - radius,
        float(points[:, 0].max()) + radius,
        float(points[:, 1].max()) + radius,
    )
    grid = _centres(ext, rows, width)
    if grid is None:
        return _empty()
    r0, c0, ys, xs = grid
    mask = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    r2 = radius * radius
    for px, py in points:
        mask |= (xs - px) ** 2 + (ys - py) ** 2 <= r2
    return Raster((r0, c0), mask)


def _polyline(points: NDArray[np.float64], line_width: float, rows: Rows, width: int) -> Raster:
    if len(points) < 2 or line_width <= 0:
        return _disks(points, line_width / 2.0, rows, width)
    band = shapely.LineString(points).buffer(line_width / 2.0, cap_style="flat", join_style="round")
    polys = getattr(band, "geoms", [band])
    rings: list[NDArray[np.float64]] = []
    for poly in polys:
        if poly.is_empty:
            continue
        rings.append(np.asarray(poly.exterior.coords, dtype=np.float64)[:-1])
        rings.extend(np.asarray(h.coords, dtype=np.float64)[:-1] for h in poly.interiors)
    if not rings:
        return _empty()
    return _polygon(rings, rows, width)


def _mask(shape: Shape, rows: Rows, width: int) -> Raster:
    bitmap = shape.bitmap
    if bitmap is None or bitmap.size == 0:
        return _empty()
    left, top = (round(v) for v in shape.points[0])
    r0, c0 = max(rows[0], top), max(0, left)
    r1, c1 = min(rows[1], top + bitmap.shape[0]), min(width, left + bitmap.shape[1])
    if r1 <= r0 or c1 <= c0:
        return _empty()
    return Raster((r0, c0), bitmap[r0 - top : r1 - top, c0 - left : c1 - left].astype(bool))


def rasterize_shape(
    shape: Shape,
    height: int,
    width: int,
    options: RasterOptions = RasterOptions(),
    *,
    rows: Rows | None = None,
) -> Raster:
    """Rasterize ``shape`` on a ``height`` x ``width`` image (pixels), cropped and clipped.

    Returns a :class:`Raster` whose bool mask covers the shape's pixels inside the image; it is
    empty (zero-sized) for tags and for shapes that cover no pixel centre inside the image.
    ``rows`` ``(first, stop)`` draws only those rows (a band of the image; origins stay in image
    coordinates): the bands of an image, put together, give exactly the whole raster.

    Example:
        >>> import numpy as np
        >>> s = Shape(kind="box", label="grain", points=np.array([[1.0, 1.0], [3.0, 2.0]]))
        >>> r = rasterize_shape(s, 4, 4)
        >>> r.origin, r.mask.shape
        ((1, 1), (1, 2))
    """
    window: Rows = (0, height) if rows is None else (max(0, rows[0]), min(height, rows[1]))
    kind = shape.kind
    if kind == "box":
        return _box(shape, window, width)
    if kind == "polygon":
        if len(shape.points) < 3:
            return _empty()
        return _polygon([np.asarray(shape.points)], window, width)
    if kind == "ellipse":
        return _ellipse(shape, window, width)
    if kind == "polyline":
        return _polyline(np.asarray(shape.points), options.line_width, window, width)
    if kind in ("points", "skeleton"):
        return _disks(np.asarray(shape.points), options.point_radius, window, width)
    if kind == "mask":
        return _mask(shape, window, width)
    return _empty()


def drawn_extent(shape: Shape, options: RasterOptions = RasterOptions()) -> tuple[float, ...]:
    """The extent of what :func:`rasterize_shape` draws: the shape's geometric extent, grown by
    half the line width for polylines and by the radius for points (float pixel units)."""
    x0, y0, x1, y1 = shape.extent()
    grow = 0.0
    if shape.kind == "polyline":
        grow = options.line_width / 2.0
    elif shape.kind in ("points", "skeleton"):
        grow = options.point_radius
    return (x0 - grow, y0 - grow, x1 + grow, y1 + grow)
