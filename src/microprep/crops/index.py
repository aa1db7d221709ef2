"""A lazy crop index over a dataset store: every window of every node, read on demand.

:class:`CropIndex` lists ``(node, origin)`` pairs; :meth:`CropIndex.read` cuts one crop (reading
only the chunks it touches), :meth:`CropIndex.iter_crops` visits them all in index order,
reading every chunk once (see :mod:`microprep.crops.slabs`).

Example:
    >>> from microprep import open_dataset
    >>> index = CropIndex(open_dataset("dataset.zarr"), window=256, stride=128)  # doctest: +SKIP
    >>> sample = index.read(0)  # doctest: +SKIP
    >>> sample["node"], sample["origin"], sample["labels"].shape  # doctest: +SKIP
    ('a.png', (0, 0), (256, 256))
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import zarr
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.crops.cut import PADS, cut_window
from microprep.crops.instances import SourceTables, check_thresholds, clip_layers
from microprep.crops.slabs import SlabReader
from microprep.crops.windows import as_tuple, window_grid
from microprep.errors import UsageError
from microprep.store_read import Dataset
from microprep.targets.types import Instances


class CropSample(TypedDict):
    """One crop. Spatial arrays have the window's shape; ``image`` keeps its channel axis."""

    index: int
    node: str
    origin: tuple[int, ...]
    valid: tuple[int, ...]
    image: NDArray[Any] | None
    labels: NDArray[Any]
    instances: Instances
    instance_ids: NDArray[np.int64]


@dataclass(frozen=True)
class CropOptions:
    """How windows are laid out and filtered (see ``docs/crops.md``)."""

    window: int | tuple[int, ...] = 256
    stride: int | tuple[int, ...] | None = None
    edge: str = "flush"
    pad: str = "constant"
    min_visible: float = 0.25
    min_area: int = 1
    min_foreground: float = 0.0

    def check(self) -> None:
        """Raise UsageError for values out of range."""
        if self.pad not in PADS:
            raise UsageError(f"pad must be one of {', '.join(PADS)}, got {self.pad!r}")
        check_thresholds(self.min_visible, self.min_area)
        if not 0.0 <= self.min_foreground <= 1.0:
            raise UsageError(f"min-foreground must be in [0, 1], got {self.min_foreground!r}")


class CropIndex:
    """Every window of the chosen nodes of a store, in node order then C order.

    Args:
        dataset: an opened store (:func:`microprep.open_dataset`).
        options: window, stride, edge and filters; keywords override fields.
        nodes: node keys to use (default: all).
    """

    def __init__(
        self,
        dataset: Dataset,
        options: CropOptions | None = None,
        *,
        nodes: Sequence[str | int] | None = None,
        **overrides: Any,
    ) -> None:
        opts = options or CropOptions()
        if overrides:
            opts = CropOptions(**{**opts.__dict__, **overrides})
        opts.check()
        self.dataset = dataset
        self.options = opts
        root: Any = zarr.open_group(dataset.path, mode="r")
        self.group = root
        keys = dataset.nodes if nodes is None else [dataset.node_name(k) for k in nodes]
        self.nodes: tuple[str, ...] = tuple(keys)
        self.windows: dict[str, tuple[int, ...]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.origins: dict[str, NDArray[np.int64]] = {}
        self._tables: dict[str, SourceTables] = {}
        for name in self.nodes:
            shape = tuple(int(s) for s in root[name]["labels"].shape)
            window = as_tuple(opts.window, len(shape), "window")
            stride = window if opts.stride is None else as_tuple(opts.stride, len(shape), "stride")
            self.shapes[name], self.windows[name] = shape, window
            self.origins[name] = window_grid(
                shape=shape, window=window, stride=stride, edge=opts.edge
            )
        if opts.min_foreground > 0:
            self._filter_foreground()
        self._offsets = np.cumsum([0, *(len(self.origins[n]) for n in self.nodes)]).tolist()

    def restrict(self, name: str, origins: NDArray[np.int64]) -> CropIndex:
        """This index limited to node ``name`` and the given window ``origins`` (a copy)."""
        other = copy.copy(self)
        other.nodes = (name,)
        other.origins = {name: np.asarray(origins, np.int64).reshape(-1, len(self.windows[name]))}
        other._tables = self._tables
        other._offsets = [0, len(other.origins[name])]
        return other

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, i: int) -> tuple[str, int]:
        """``(node, position within the node)`` of crop ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"crop {i} out of range ({len(self)} crops)")
        i %= len(self)
        k = bisect.bisect_right(self._offsets, i) - 1
        return self.nodes[k], i - int(self._offsets[k])

    def entries(self) -> Iterator[tuple[str, tuple[int, ...]]]:
        """``(node, origin)`` of every crop, in index order."""
        for name in self.nodes:
            for origin in self.origins[name]:
                yield name, tuple(int(o) for o in origin)

    def tables(self, name: str) -> SourceTables:
        """The per-object tables of node ``name`` (cached)."""
        if name not in self._tables:
            self._tables[name] = SourceTables.from_node(self.dataset[name])
        return self._tables[name]

    def _filter_foreground(self) -> None:
        for name in self.nodes:
            window, origins = self.windows[name], self.origins[name]
            reader = SlabReader(self.group[name]["labels"])
            keep = np.zeros(len(origins), bool)
            total = float(np.prod(window))
            for k, origin in enumerate(origins):
                slab = reader.rows(int(origin[0]), int(origin[0]) + window[0])
                cut = cut_window(
                    slab, tuple(origin), window, row_offset=int(origin[0]), full_rows=reader.n
                )
                keep[k] = np.count_nonzero(cut) / total >= self.options.min_foreground
            self.origins[name] = origins[keep]

    def _sample(
        self, i: int, name: str, origin: tuple[int, ...], cut: Any, row_offset: int, rows: int
    ) -> CropSample:
        window, shape, opts = self.windows[name], self.shapes[name], self.options
        kw = {"row_offset": row_offset, "full_rows": rows}
        image = cut("image")
        labels = cut("labels")
        img = None if image is None else cut_window(image, origin, window, pad=opts.pad, **kw)
        lab = cut_window(labels, origin, window, pad=opts.pad, **kw)
        layers = cut_window(cut("instances"), origin, window, pad="constant", lead=1, **kw)
        objects, ids = clip_layers(
            layers, self.tables(name), min_visible=opts.min_visible, min_area=opts.min_area
        )
        valid = tuple(min(w, n - o) for o, w, n in zip(origin, window, shape, strict=True))
        return CropSample(
            index=i,
            node=name,
            origin=origin,
            valid=valid,
            image=img,
            labels=lab,
            instances=objects,
            instance_ids=ids,
        )

    def read(self, i: int) -> CropSample:
        """Crop ``i``, reading only the chunks its window touches."""
        name, position = self.locate(i)
        i %= len(self)
        origin = tuple(int(o) for o in self.origins[name][position])
        group = self.group[name]

        def cut(var: str) -> Any:
            return group[var] if var in group else None  # noqa: SIM401

        return self._sample(i, name, origin, cut, 0, self.shapes[name][0])

    def iter_crops(
        self, *, start: int = 0, stop: int | None = None, progress: bool = False
    ) -> Iterator[CropSample]:
        """Crops ``start..stop`` in index order, every zarr chunk read once per pass.

        Memory: one slab per array (about ``window + chunk`` rows of the first spatial axis)
        plus one crop.
        """
        stop = len(self) if stop is None else min(stop, len(self))
        bar = tqdm(total=max(0, stop - start), unit="crop", disable=None if progress else True)
        try:
            for k, name in enumerate(self.nodes):
                lo, hi = max(start, self._offsets[k]), min(stop, self._offsets[k + 1])
                if lo >= hi:
                    continue
                group = self.group[name]
                readers = {
                    var: SlabReader(group[var], lead=1 if var == "instances" else 0)
                    for var in ("image", "labels", "instances")
                    if var in group
                }
                window = self.windows[name]
                for i in range(lo, hi):
                    origin = tuple(int(o) for o in self.origins[name][i - self._offsets[k]])
                    end = origin[0] + window[0]
                    slabs = {v: r.rows(origin[0], end) for v, r in readers.items()}
                    rows = self.shapes[name][0]
                    yield self._sample(i, name, origin, slabs.get, origin[0], rows)
                    bar.update(1)
        finally:
            bar.close()
