"""Which windows a dataset serves, and which of them have enough foreground.

The layout itself (regions from a split, windows inside them) is
:mod:`microprep.crops.regions`, shared with the crop index; it is re-exported here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from microprep.crops.regions import WindowLayout, WindowSpec, layout_windows, select_regions
from microprep.crops.slabs import iter_windows
from microprep.data.source import StoreReader, box_stop

__all__ = ["WindowLayout", "WindowSpec", "foreground_mask", "layout_windows", "select_regions"]


def foreground_mask(
    layout: WindowLayout,
    reader: StoreReader,
    *,
    window: tuple[int, ...],
    min_foreground: float,
    ignore_index: int | None = None,
) -> NDArray[np.bool_]:
    """True for windows whose non-background class-map pixels (inside their region) are at
    least ``min_foreground`` of the whole window (padding and pixels of ``ignore_index``, not
    annotated, count as background).

    Reads each node's class map once per run of windows (chunk-aware, see
    :func:`microprep.crops.slabs.iter_windows`).
    """
    keep = np.zeros(len(layout), bool)
    total = float(np.prod(window))
    start = 0
    while start < len(layout):
        # a run of windows of one region: same node and stop, origins in C order
        end = start + 1
        while (
            end < len(layout)
            and layout.node_index[end] == layout.node_index[start]
            and np.array_equal(layout.stops[end], layout.stops[start])
            and layout.origins[end, 0] >= layout.origins[end - 1, 0]
        ):
            end += 1
        name = layout.nodes[int(layout.node_index[start])]
        stop = tuple(int(v) for v in layout.stops[start])
        labels = reader.array(name, "labels")
        cuts = iter_windows(labels, layout.origins[start:end], window, pad="constant")
        for k, cut in zip(range(start, end), cuts, strict=True):
            origin = tuple(int(v) for v in layout.origins[k])
            inside = box_stop(origin, stop, window)
            part = cut[tuple(slice(0, e - o) for o, e in zip(origin, inside, strict=True))]
            fg = np.count_nonzero(part)
            if ignore_index is not None:
                fg -= np.count_nonzero(part == ignore_index)
            keep[k] = fg / total >= min_foreground
        start = end
    return keep
