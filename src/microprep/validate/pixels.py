"""Does repairing an invalid polygon change its pixels? Compare the drawn and repaired forms.

A polygon that shapely finds invalid is converted as drawn: the targets fill its outline with
the even-odd, pixel-centre rule of :func:`microprep.targets.raster.fill_rings`. Its repaired form
is what :func:`microprep.validate.repair` makes of it: the polygon parts of
``shapely.make_valid`` (all rings, exteriors and holes, filled even-odd, as the repair's masks
are). :func:`compare_pixels` rasterizes both over the shape's pixel extent inside its image and
counts the pixels that differ: 0 means the repair changes nothing the targets hold (zero-area
spikes, runs back and forth along an edge or the image border, self-touching rings, crossings
that even-odd already splits into lobes), so the polygon converts as drawn.

The work is bounded: the window is rasterized in strips of rows, each holding about
:data:`STRIP_WORK` pixels and edge crossings (counted per row beforehand, in one pass over the
edges), and a window larger than :data:`MAX_PIXELS` pixels, or whose edges cross more than
:data:`MAX_CROSSINGS` pixel rows, is not compared at all (``PixelChange.changed`` is None).

Example:
    >>> import numpy as np, shapely
    >>> clamped = np.array([[2.0, 0], [6, 0], [4, 0], [9, 0], [9, 5], [2, 5]])  # back and forth
    >>> fixed = shapely.make_valid(shapely.Polygon(clamped))
    >>> change = compare_pixels(clamped, fixed, height=8, width=12)
    >>> change.changed, change.drawn, change.window
    (0, 35, (0, 2, 5, 7))
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.targets.raster import fill_rings
from microprep.validate.geometry import polygon_parts

logger = logging.getLogger(__name__)

#: Largest window (pixels) compared for one polygon; larger ones are not compared.
MAX_PIXELS = 1 << 26
#: Most edge crossings (edge x pixel row) rasterized for one polygon, both forms together.
MAX_CROSSINGS = 1 << 25
#: Work of one strip of rows: pixels of both fills plus edge crossings (bounds its memory).
STRIP_WORK = 1 << 20

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PixelChange:
    """What :func:`compare_pixels` found for one polygon.

    ``window`` is ``(top, left, height, width)`` in image pixels: the union of both forms'
    extents, clipped to the image. ``drawn`` and ``repaired`` count the pixels each form covers
    there; ``changed`` counts the pixels covered by one form only (None: not compared, the
    window or its edge crossings exceed the caps; ``drawn`` and ``repaired`` are then 0).
    ``crossings`` counts the edge x pixel-row crossings both fills need.
    """

    changed: int | None
    drawn: int
    repaired: int
    window: tuple[int, int, int, int]
    crossings: int = 0

    @property
    def harmless(self) -> bool:
        """True when the repair covers exactly the drawn pixels."""
        return self.changed == 0

    @property
    def compared(self) -> bool:
        """False when the window was too large to compare."""
        return self.changed is not None


def repaired_rings(geom: Any) -> list[FloatArray]:
    """The rings (exteriors and holes, last vertex not repeated) of the polygon parts of
    ``geom`` (``make_valid``'s result; lines and points in it have no pixels).

    Example:
        >>> import shapely
        >>> bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
        >>> [len(r) for r in repaired_rings(shapely.make_valid(bowtie))]
        [3, 3]
    """
    return [
        np.asarray(r.coords, dtype=np.float64)[:-1]
        for p in polygon_parts(geom)
        for r in (p.exterior, *p.interiors)
    ]


def _window(rings: list[FloatArray], height: int, width: int) -> tuple[int, int, int, int]:
    allp = np.concatenate(rings)
    x0, y0 = np.floor(allp.min(axis=0))
    x1, y1 = np.ceil(allp.max(axis=0))
    top, left = max(0, int(y0)), max(0, int(x0))
    bottom, right = min(height, int(y1)), min(width, int(x1))
    return top, left, max(0, bottom - top), max(0, right - left)


def _row_crossings(rings: list[FloatArray], top: int, rows: int) -> NDArray[np.int64]:
    """Per row of the window, the edge crossings :func:`fill_rings` computes for ``rings``."""
    if not rings:
        return np.zeros(rows, dtype=np.int64)
    y0 = np.concatenate([r[:, 1] for r in rings])
    y1 = np.concatenate([np.roll(r[:, 1], -1) for r in rings])
    ra = np.clip(np.ceil(y0 - (top + 0.5)), 0, rows)
    rb = np.clip(np.ceil(y1 - (top + 0.5)), 0, rows)
    lo = np.minimum(ra, rb).astype(np.int64)
    hi = np.maximum(ra, rb).astype(np.int64)
    delta = np.bincount(lo, minlength=rows + 1) - np.bincount(hi, minlength=rows + 1)
    return np.cumsum(delta[:rows])


def compare_pixels(points: FloatArray, repaired: Any, *, height: int, width: int) -> PixelChange:
    """Count the pixels where the polygon ``points`` as drawn and its repaired form differ.

    Args:
        points: the polygon's vertices ``(N, 2)`` (x, y), as drawn (repeats and all).
        repaired: ``shapely.make_valid`` of the polygon (any geometry; only its polygon parts
            cover pixels).
        height: the image's height in pixels (pixels outside the image are never drawn).
        width: the image's width.

    Returns:
        A :class:`PixelChange`; ``changed`` is None when the window exceeds :data:`MAX_PIXELS`
        or the edges cross more than :data:`MAX_CROSSINGS` rows.
    """
    drawn_rings = [np.asarray(points, dtype=np.float64)]
    fixed_rings = repaired_rings(repaired)
    top, left, rows, cols = _window(drawn_rings + fixed_rings, height, width)
    window = (top, left, rows, cols)
    if rows == 0 or cols == 0:
        return PixelChange(0, 0, 0, window)
    if rows * cols > MAX_PIXELS:
        logger.info("window %dx%d px: not compared", cols, rows)
        return PixelChange(None, 0, 0, window)
    per_row = _row_crossings(drawn_rings, top, rows) + _row_crossings(fixed_rings, top, rows)
    crossings = int(per_row.sum())
    if crossings > MAX_CROSSINGS:
        logger.info("window %dx%d px, %d crossings: not compared", cols, rows, crossings)
        return PixelChange(None, 0, 0, window, crossings)
    strip = np.cumsum(per_row + 2 * cols) // STRIP_WORK
    cuts = [0, *(np.flatnonzero(np.diff(strip)) + 1).tolist(), rows]
    changed = drawn = fixed = 0
    for r0, r1 in itertools.pairwise(cuts):
        a = fill_rings(drawn_rings, top + r0, left, r1 - r0, cols)
        b = (
            fill_rings(fixed_rings, top + r0, left, r1 - r0, cols)
            if fixed_rings
            else np.zeros_like(a)
        )
        changed += int(np.count_nonzero(a != b))
        drawn += int(np.count_nonzero(a))
        fixed += int(np.count_nonzero(b))
    return PixelChange(changed, drawn, fixed, window, crossings)


def too_large(change: PixelChange) -> str:
    """Why ``change`` was not compared, in words (for messages).

    Example:
        >>> too_large(PixelChange(None, 0, 0, (0, 0, 9000, 12000)))
        'its 12000x9000 px window is above the cap of 67,108,864 px per polygon'
    """
    rows, cols = change.window[2], change.window[3]
    if rows * cols > MAX_PIXELS:
        return f"its {cols}x{rows} px window is above the cap of {MAX_PIXELS:,} px per polygon"
    return f"its edges cross {change.crossings:,} pixel rows, above the cap of {MAX_CROSSINGS:,}"
