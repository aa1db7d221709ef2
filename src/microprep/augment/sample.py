"""One sample of the augmenter (:class:`Sample`) and the boxes of its instance layers."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["Sample", "boxes_from_layers"]

Array = NDArray[Any]


class Sample(TypedDict, total=False):
    """One sample. ``image`` ``(H, W[, C])`` / ``(Z, H, W[, C])``; ``labels`` ``(H, W)`` /
    ``(Z, H, W)`` class indices; ``instances`` ``(L, *spatial)`` uint32 instance-id layers
    (id ``i + 1`` for instance ``i``); ``boxes`` ``(N, 4)`` float64 ``x_min, y_min, x_max,
    y_max`` (volumes ``(N, 6)``), exclusive max; ``areas`` ``(N,)`` int64 pixel counts.
    ``boxes`` and ``areas`` are recomputed by the augmenter; an instance moved entirely out of
    the image keeps its row, with area 0 and box all zeros."""

    image: Array
    labels: Array
    instances: NDArray[np.uint32]
    boxes: NDArray[np.float64]
    areas: NDArray[np.int64]


def boxes_from_layers(
    layers: NDArray[np.uint32], n: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``(boxes, areas)`` of instances ``1..n`` in ``(L, *spatial)`` id layers.

    Boxes are ``x_min, y_min[, z_min], x_max, y_max[, z_max]`` float64, exclusive max; an
    instance without pixels gets a box of zeros and area 0.

    Example:
        >>> layers = np.zeros((1, 4, 5), np.uint32); layers[0, 1:3, 2:5] = 1
        >>> b, a = boxes_from_layers(layers, 1)
        >>> b.tolist(), a.tolist()
        ([[2.0, 1.0, 5.0, 3.0]], [6])
    """
    ndim = layers.ndim - 1
    boxes = np.zeros((n, 2 * ndim), np.float64)
    areas = np.zeros(n, np.int64)
    if n == 0:
        return boxes, areas
    lo = np.full((n, ndim), np.iinfo(np.int64).max, np.int64)
    hi = np.full((n, ndim), -1, np.int64)
    for layer in layers:
        found = ndimage.find_objects(layer, max_label=n)
        for i, sl in enumerate(found):
            if sl is None:
                continue
            areas[i] += int(np.count_nonzero(layer[sl] == i + 1))
            for axis, s in enumerate(sl):
                lo[i, axis] = min(lo[i, axis], s.start)
                hi[i, axis] = max(hi[i, axis], s.stop)
    present = areas > 0
    # axes are (z,) y, x; boxes list x first
    order = list(range(ndim))[::-1]
    boxes[present, :ndim] = lo[present][:, order]
    boxes[present, ndim:] = hi[present][:, order]
    return boxes, areas
