"""Name what is wrong with an invalid polygon's outline, in words, for the findings.

:func:`describe_outline` looks at the vertices (repeats dropped) for the usual harmless faults of
real exports and says which one it sees:

* the outline turns back on itself (a vertex whose two edges run along one line in opposite
  directions) on an image border line (``x = 0``, ``y = 0``, ``x = width``, ``y = height``):
  points clamped to the border, running back and forth along it;
* the same elsewhere: zero-area spikes or runs back and forth along an edge;
* an edge traced twice in the same direction (a lobe gone round twice);
* otherwise, by shapely's reason: the ring touches itself (``Ring Self-intersection``) or the
  outline crosses itself (split into ``parts`` lobes by ``make_valid``).

Example:
    >>> import numpy as np
    >>> clamped = np.array([[2.0, 0], [6, 0], [4, 0], [9, 0], [9, 5], [2, 5]])
    >>> describe_outline(clamped, "Self-intersection[6 0]", width=12, height=8, parts=1)
    'clamped to the image border: runs back and forth along y = 0'
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from microprep.validate.geometry import dedup_vertices

logger = logging.getLogger(__name__)


def turn_backs(points: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per vertex of the closed ring ``points`` (no consecutive repeats): True where the
    outline turns back on itself (both edges on one line, in opposite directions).

    Example:
        >>> spike = np.array([[0.0, 0], [4, 0], [4, 2], [7, 2], [4, 2], [4, 4], [0, 4]])
        >>> np.flatnonzero(turn_backs(spike)).tolist()
        [3]
    """
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    dot = (before * after).sum(axis=1)
    return np.asarray((cross == 0) & (dot < 0), dtype=bool)


def _borders(
    points: NDArray[np.float64], at: NDArray[np.int64], width: int, height: int
) -> list[str]:
    """The image border lines on which the turn-backs ``at`` lie (with both neighbours)."""
    n = len(points)
    trio = points[np.stack(((at - 1) % n, at, (at + 1) % n), axis=1)]  # (k, 3, 2)
    names = []
    for axis, value, name in (
        (1, 0.0, "y = 0"),
        (0, 0.0, "x = 0"),
        (1, float(height), f"y = {height}"),
        (0, float(width), f"x = {width}"),
    ):
        if (trio[:, :, axis] == value).all(axis=1).any():
            names.append(name)
    return names


def _retraced(ring: NDArray[np.float64]) -> bool:
    """True when an edge of the closed ``ring`` appears twice, in the same direction."""
    edges = np.hstack((ring, np.roll(ring, -1, axis=0)))
    return len(np.unique(edges, axis=0)) < len(edges)


def describe_outline(
    points: NDArray[np.float64], reason: str, *, width: int, height: int, parts: int
) -> str:
    """What is wrong with the outline ``points`` of an invalid polygon, in a few words.

    Args:
        points: the vertices ``(N, 2)`` as drawn.
        reason: shapely's ``is_valid_reason``.
        width: the image's width (its border lines are ``x = 0`` and ``x = width``).
        height: the image's height.
        parts: the polygon parts of ``make_valid``'s result.

    Returns:
        A short phrase, e.g. ``"2 zero-area spike(s) or back-and-forth run(s)"``.
    """
    ring = dedup_vertices(np.asarray(points, dtype=np.float64), closed=True)
    if len(ring) >= 3:
        back = np.flatnonzero(turn_backs(ring))
        if len(back):
            borders = _borders(ring, back, width, height)
            if borders:
                return "clamped to the image border: runs back and forth along " + ", ".join(
                    borders
                )
            return f"{len(back)} zero-area spike(s) or back-and-forth run(s)"
        if _retraced(ring):
            return "the outline traces part of itself twice in the same direction"
    if reason.startswith("Ring Self-intersection"):
        return "the ring touches itself"
    if parts > 1:
        return f"the outline crosses itself ({parts} lobes)"
    return "the outline crosses or overlaps itself"
