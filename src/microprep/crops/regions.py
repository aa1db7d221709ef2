"""Windows inside regions: the regions a split gives (or whole nodes), and the windows in them.

A *region* is a box of one node (:class:`microprep.splits.Region`). Without a split every
chosen node is one region; with one, the regions are those of that split in the splits file.
Windows are laid out inside each region with :func:`microprep.crops.window_grid` over the
region's box (``edge="flush"``: the last window ends at the region's edge; a region shorter
than the window along an axis gets one window at its start), and every window is limited to its
region: the part past the region's end is padded, never read. So a validation window never
reads a pixel of a training region. The torch Datasets (:mod:`microprep.data`) and the crop
index (:class:`microprep.crops.index.CropIndex`) both lay out their windows here.

Example:
    >>> from microprep.splits import Region
    >>> layout = layout_windows([Region("a", (0, 10), (20, 30))], window=(16, 16), stride=None,
    ...                         edge="flush")
    >>> [(w.origin, w.stop) for w in layout]
    [((0, 10), (20, 30)), ((0, 14), (20, 30)), ((4, 10), (20, 30)), ((4, 14), (20, 30))]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from microprep.crops.windows import window_grid
from microprep.errors import UsageError
from microprep.splits import (
    SPLIT_NAMES,
    Region,
    Splits,
    check_against,
    default_splits_path,
    load_splits,
)

__all__ = ["WindowLayout", "WindowSpec", "layout_windows", "select_regions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window: ``node``, its ``origin`` and the exclusive ``stop`` of its region (pixels,
    ``(y, x)`` or ``(z, y, x)``)."""

    node: str
    origin: tuple[int, ...]
    stop: tuple[int, ...]


@dataclass(frozen=True)
class WindowLayout:
    """Windows as arrays: ``node_index`` ``(N,)`` into ``nodes``, ``origins`` and ``stops``
    ``(N, ndim)`` int64."""

    nodes: tuple[str, ...]
    node_index: NDArray[np.int32]
    origins: NDArray[np.int64]
    stops: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.node_index)

    def __getitem__(self, i: int) -> WindowSpec:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        return WindowSpec(
            self.nodes[int(self.node_index[i])],
            tuple(int(v) for v in self.origins[i]),
            tuple(int(v) for v in self.stops[i]),
        )

    def __iter__(self) -> Iterator[WindowSpec]:
        for i in range(len(self)):
            yield self[i]

    def keep(self, mask: NDArray[np.bool_]) -> WindowLayout:
        """The windows where ``mask`` is True."""
        return WindowLayout(self.nodes, self.node_index[mask], self.origins[mask], self.stops[mask])


def layout_windows(
    regions: Sequence[Region],
    *,
    window: tuple[int, ...],
    stride: tuple[int, ...] | None,
    edge: str,
) -> WindowLayout:
    """Every window of every region, regions in the given order, windows in C order."""
    nodes = tuple(dict.fromkeys(r.node for r in regions))
    ndim = len(window)
    index, origins, stops = [], [], []
    for region in regions:
        size = tuple(b - a for a, b in zip(region.start, region.stop, strict=True))
        grid = window_grid(shape=size, window=window, stride=stride, edge=edge)
        grid += np.asarray(region.start, np.int64)
        index.append(np.full(len(grid), nodes.index(region.node), np.int32))
        origins.append(grid)
        stops.append(np.broadcast_to(np.asarray(region.stop, np.int64), grid.shape))
    if not regions:
        empty = np.zeros((0, ndim), np.int64)
        return WindowLayout(nodes, np.zeros(0, np.int32), empty, empty.copy())
    return WindowLayout(
        nodes, np.concatenate(index), np.concatenate(origins), np.concatenate(stops).copy()
    )


def select_regions(
    *,
    store: Path,
    shapes: dict[str, tuple[int, ...]],
    nodes: Sequence[str],
    split: str | None,
    splits: Splits | str | Path | None,
) -> list[Region]:
    """The regions a dataset serves: whole ``nodes``, or the regions of ``split`` among them.

    Args:
        store: the store path (for the default splits file and messages).
        shapes: spatial shape of every node of the store (to check the splits against).
        nodes: the chosen node names, in order.
        split: ``"train"``, ``"val"``, ``"test"`` or None (whole nodes).
        splits: a :class:`Splits`, a splits file, or None for
            :func:`microprep.splits.default_splits_path` of the store.

    Raises:
        UsageError: an unknown split name, a missing splits file (run ``prep split``), splits
            that do not fit the store, or a split without regions among ``nodes``.
    """
    if split is None:
        if splits is not None:
            raise UsageError("splits were given but no split: pass split='train', 'val' or 'test'")
        return [Region(name, (0,) * len(shapes[name]), shapes[name]) for name in nodes]
    if split not in SPLIT_NAMES:
        raise UsageError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    if not isinstance(splits, Splits):
        path = default_splits_path(store) if splits is None else Path(splits)
        if not path.is_file():
            raise UsageError(
                f"no splits file {path}: run `prep split {store} --val 0.15 --test 0.15` first "
                "(or give another splits file)"
            )
        splits = load_splits(path)
    check_against(splits, shapes)
    chosen = set(nodes)
    regions = [r for r in splits[split] if r.node in chosen]
    if not regions:
        raise UsageError(
            f"{store}: the {split!r} split has no regions"
            + ("" if len(chosen) == len(shapes) else " among the chosen nodes")
        )
    logger.debug("%s: split %r, %d regions", store, split, len(regions))
    return regions
