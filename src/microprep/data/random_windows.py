"""Windows at random positions, drawn anew every epoch: :class:`RandomWindows`.

With ``samples_per_epoch`` set, a :class:`~microprep.data.base.WindowDataset` serves that many
windows per epoch, each at a random position inside the regions it serves (the training
split's regions), instead of the fixed grid. Sample ``i`` of epoch ``e`` depends only on
``(seed, e, i)`` (its own generator, independent of the augmentation draws), so a run is
reproducible and DataLoader workers agree.

* Without a foreground filter, a region is picked with probability proportional to its number
  of window positions, and the origin is uniform among them (a region smaller than the window
  along an axis starts at its edge and is padded, as the grid's windows are).
* With ``min_foreground`` (the grid windows kept by it), a kept grid window is picked and moved
  by up to half a window along each axis, staying inside its region.

Example:
    >>> from microprep.splits import Region
    >>> from microprep.data.layout import layout_windows
    >>> regions = [Region("a", (0, 0), (100, 60))]
    >>> grid = layout_windows(regions, window=(32, 32), stride=None, edge="flush")
    >>> draw = RandomWindows(regions, grid, window=(32, 32), seed=0, uniform=True)
    >>> spec = draw(index=3, epoch=0)
    >>> spec == draw(index=3, epoch=0), spec == draw(index=3, epoch=1)
    (True, False)
    >>> all(0 <= o <= s - 32 for o, s in zip(spec.origin, (100, 60)))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from microprep.data.layout import WindowLayout, WindowSpec
from microprep.splits import Region

__all__ = ["RandomWindows", "window_rng"]

#: Last entropy word of the window generators (keeps them apart from the augmentation's).
_STREAM = 0x57494E44


def window_rng(*, seed: int, index: int, epoch: int) -> np.random.Generator:
    """The position generator of sample ``index`` in ``epoch`` (not the augmentation's)."""
    entropy = [int(seed), int(index), int(epoch), _STREAM]
    return np.random.default_rng(np.random.SeedSequence(entropy))


class RandomWindows:
    """``draw(index=i, epoch=e) -> WindowSpec``: a random window inside ``regions``.

    Args:
        regions: the regions served (a split's regions, or whole nodes).
        grid: the grid windows of those regions (after any foreground filter).
        window: window size per spatial axis.
        seed: the run's seed.
        uniform: True: uniform over the regions' window positions; False: around the windows of
            ``grid`` (used when a foreground filter chose them).
    """

    def __init__(
        self,
        regions: Sequence[Region],
        grid: WindowLayout,
        *,
        window: tuple[int, ...],
        seed: int,
        uniform: bool,
    ) -> None:
        self.regions = tuple(regions)
        self.grid = grid
        self.window = np.asarray(window, np.int64)
        self.seed = int(seed)
        self.uniform = bool(uniform)
        positions = [
            float(np.prod([max(1, b - a - w + 1) for a, b, w in zip(*box, strict=True)]))
            for box in ((r.start, r.stop, window) for r in self.regions)
        ]
        total = sum(positions)
        self._weights = np.asarray(positions) / total if total else np.zeros(0)

    def __call__(self, *, index: int, epoch: int) -> WindowSpec:
        rng = window_rng(seed=self.seed, index=index, epoch=epoch)
        if self.uniform:
            region = self.regions[int(rng.choice(len(self.regions), p=self._weights))]
            start = np.asarray(region.start, np.int64)
            stop = np.asarray(region.stop, np.int64)
            high = np.maximum(start, stop - self.window)
            origin = rng.integers(start, high + 1)
            return WindowSpec(region.node, tuple(int(v) for v in origin), region.stop)
        k = int(rng.integers(len(self.grid)))
        spec = self.grid[k]
        stop = np.asarray(spec.stop, np.int64)
        base = np.asarray(spec.origin, np.int64)
        low = self._region_of(spec)
        half = self.window // 2
        moved = base + rng.integers(-half, half + 1)
        origin = np.clip(moved, low, np.maximum(low, stop - self.window))
        return WindowSpec(spec.node, tuple(int(v) for v in origin), spec.stop)

    def _region_of(self, spec: WindowSpec) -> NDArray[np.int64]:
        """The start of the region holding grid window ``spec``."""
        for r in self.regions:
            inside = all(a <= o < b for a, o, b in zip(r.start, spec.origin, r.stop, strict=True))
            if r.node == spec.node and tuple(r.stop) == tuple(spec.stop) and inside:
                return np.asarray(r.start, np.int64)
        return np.asarray(spec.origin, np.int64)
