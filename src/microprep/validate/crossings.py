"""Counting where a polygon's outline crosses itself, with a bounded amount of work.

``shapely.make_valid`` of a wildly self-intersecting polygon costs time and memory that grow
faster than the square of its crossings (a 9,999-vertex random polygon: minutes and gigabytes),
while ``shapely.is_valid`` stays fast. :func:`count_crossings` counts the crossings of an
invalid polygon's edges first and stops as soon as it passes ``limit``, so the validator can
refuse such a polygon (``too-complex``) instead of repairing it.

Edges are compared only when their x-ranges overlap (edges sorted by ``x_min``), in blocks of
at most :data:`BLOCK_PAIRS` edge pairs, so memory stays at a few tens of MB whatever the
polygon; the work is bounded by the pairs of edges whose x-ranges overlap, and stops early once
``limit`` crossings are found.

Example:
    >>> bowtie = np.array([[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> count_crossings(bowtie, limit=10)
    1
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

#: Most edge pairs tested in one vectorized block (about 8 bytes x 20 arrays each).
BLOCK_PAIRS = 1 << 18
#: Invalid polygons whose edges cross more often than this are not repaired (``too-complex``):
#: ``make_valid`` takes about 0.4 s for 1,000 crossings and grows about as crossings^1.5.
MAX_SELF_CROSSINGS = 1_000


def _orient(
    px: NDArray[np.float64],
    py: NDArray[np.float64],
    qx: NDArray[np.float64],
    qy: NDArray[np.float64],
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Sign of the turn p -> q -> r (1 left, -1 right, 0 collinear)."""
    return np.sign((qx - px) * (ry - py) - (qy - py) * (rx - px))


def count_crossings(points: NDArray[np.float64], *, limit: int) -> int:
    """Pairs of non-adjacent edges of the closed ring ``points`` (``(N, 2)``) that meet.

    Touching and collinear overlapping edges count too. Counting stops once more than
    ``limit`` are found: the result is then some number above ``limit``.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 4:
        return 0
    a = pts
    b = np.roll(pts, -1, axis=0)
    xmin = np.minimum(a[:, 0], b[:, 0])
    xmax = np.maximum(a[:, 0], b[:, 0])
    order = np.argsort(xmin, kind="stable")
    sorted_min = xmin[order]
    # for the k-th edge in x order: the later edges whose x_min lies within its x-range
    stop = np.searchsorted(sorted_min, xmax[order], side="right")
    counts = np.maximum(stop - np.arange(n) - 1, 0)
    found = 0
    first = 0
    while first < n and found <= limit:
        # a block of edges whose candidate pairs fit BLOCK_PAIRS (at least one edge)
        cum = np.cumsum(counts[first:])
        last = first + max(1, int(np.searchsorted(cum, BLOCK_PAIRS, side="right")))
        block = counts[first:last]
        if block.sum():
            k = np.repeat(np.arange(first, last), block)
            offsets = np.arange(k.size) - np.repeat(np.cumsum(block) - block, block)
            i = order[k]
            j = order[k + 1 + offsets]
            adjacent = (np.abs(i - j) == 1) | (np.abs(i - j) == n - 1)
            i, j = i[~adjacent], j[~adjacent]
            found += _meeting(a, b, i, j)
        first = last
    return found


def _meeting(
    a: NDArray[np.float64], b: NDArray[np.float64], i: NDArray[np.intp], j: NDArray[np.intp]
) -> int:
    """How many edge pairs ``(a[i], b[i])``, ``(a[j], b[j])`` meet (touching included)."""
    ax, ay, bx, by = a[i, 0], a[i, 1], b[i, 0], b[i, 1]
    cx, cy, dx, dy = a[j, 0], a[j, 1], b[j, 0], b[j, 1]
    o1 = _orient(ax, ay, bx, by, cx, cy)
    o2 = _orient(ax, ay, bx, by, dx, dy)
    o3 = _orient(cx, cy, dx, dy, ax, ay)
    o4 = _orient(cx, cy, dx, dy, bx, by)
    proper = (o1 * o2 <= 0) & (o3 * o4 <= 0)
    # all four collinear: they meet only when their extents overlap on both axes
    line = (o1 == 0) & (o2 == 0)
    overlap = (
        (np.maximum(ax, bx) >= np.minimum(cx, dx))
        & (np.maximum(cx, dx) >= np.minimum(ax, bx))
        & (np.maximum(ay, by) >= np.minimum(cy, dy))
        & (np.maximum(cy, dy) >= np.minimum(ay, by))
    )
    return int(np.count_nonzero(proper & (~line | overlap)))
