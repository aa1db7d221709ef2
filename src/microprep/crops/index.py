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
from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.crops.cut import PADS, cut_window
from microprep.crops.instances import SourceTables, check_thresholds, clip_layers
from microprep.crops.regions import layout_windows, select_regions
from microprep.crops.slabs import SlabReader
from microprep.crops.windows import as_tuple
from microprep.errors import UsageError
from microprep.splits import Region, Splits, default_splits_path
from microprep.store.integrity import open_root
from microprep.store.read import Dataset
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
    """Every window of the chosen nodes (or of one split's regions) of a store, in node order
    then C order.

    Args:
        dataset: an opened store (:func:`microprep.open_dataset`).
        options: window, stride, edge and filters; keywords override fields.
        nodes: node keys to use (default: all).
        split: ``"train"``, ``"val"`` or ``"test"``: only windows inside that split's regions
            (see :mod:`microprep.crops.regions`: a window never reads past its region, the rest
            is padded); None: whole nodes.
        splits: the splits file (or a :class:`microprep.splits.Splits`) for ``split``
            (default: the one beside the store, written by ``prep split``).

    Raises:
        UsageError: bad options, an unknown split, a missing splits file, or a split without
            regions among the chosen nodes.
    """

    def __init__(
        self,
        dataset: Dataset,
        options: CropOptions | None = None,
        *,
        nodes: Sequence[str | int] | None = None,
        split: str | None = None,
        splits: Splits | str | Path | None = None,
        **overrides: Any,
    ) -> None:
        opts = options or CropOptions()
        if overrides:
            opts = CropOptions(**{**opts.__dict__, **overrides})
        opts.check()
        self.dataset = dataset
        self.options = opts
        self.split = split
        # chunks are checked as they are read (a missing or damaged one: StoreDamageError)
        root: Any = open_root(dataset.path, dataset.attrs)
        self.group = root
        keys = dataset.nodes if nodes is None else [dataset.node_name(k) for k in nodes]
        shapes = {name: tuple(int(s) for s in root[name]["labels"].shape) for name in keys}
        regions = select_regions(
            store=Path(dataset.path), shapes=shapes, nodes=keys, split=split, splits=splits
        )
        #: the splits file the regions come from (None: whole nodes, or a Splits object)
        self.splits_file: Path | None = None
        if split is not None and not isinstance(splits, Splits):
            self.splits_file = default_splits_path(dataset.path) if splits is None else Path(splits)
        self.nodes: tuple[str, ...] = tuple(dict.fromkeys(r.node for r in regions))
        self.regions: dict[str, list[Region]] = {name: [] for name in self.nodes}
        for region in regions:
            self.regions[region.node].append(region)
        self.windows: dict[str, tuple[int, ...]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.origins: dict[str, NDArray[np.int64]] = {}
        self.stops: dict[str, NDArray[np.int64]] = {}
        self._tables: dict[str, SourceTables] = {}
        for name in self.nodes:
            shape = shapes[name]
            window = as_tuple(opts.window, len(shape), "window")
            stride = window if opts.stride is None else as_tuple(opts.stride, len(shape), "stride")
            self.shapes[name], self.windows[name] = shape, window
            layout = layout_windows(
                self.regions[name], window=window, stride=stride, edge=opts.edge
            )
            self.origins[name], self.stops[name] = layout.origins, layout.stops
        if opts.min_foreground > 0:
            self._filter_foreground()
        self._offsets = np.cumsum([0, *(len(self.origins[n]) for n in self.nodes)]).tolist()

    def restrict(
        self, name: str, origins: NDArray[np.int64], stops: NDArray[np.int64] | None = None
    ) -> CropIndex:
        """This index limited to node ``name`` and the windows at ``origins`` (a copy), each
        limited to its region's ``stops`` (default: the node's shape)."""
        other = copy.copy(self)
        ndim = len(self.windows[name])
        other.nodes = (name,)
        other.origins = {name: np.asarray(origins, np.int64).reshape(-1, ndim)}
        if stops is None:
            stops = np.broadcast_to(np.asarray(self.shapes[name], np.int64), (len(origins), ndim))
        other.stops = {name: np.asarray(stops, np.int64).reshape(-1, ndim).copy()}
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
            window, origins, stops = self.windows[name], self.origins[name], self.stops[name]
            reader = SlabReader(self.group[name]["labels"])
            keep = np.zeros(len(origins), bool)
            total = float(np.prod(window))
            for k, (origin, stop) in enumerate(zip(origins.tolist(), stops.tolist(), strict=True)):
                slab = reader.rows(origin[0], origin[0] + window[0])
                cut = _cut_slab(slab, tuple(origin), tuple(stop), window, pad="constant", lead=0)
                keep[k] = np.count_nonzero(cut) / total >= self.options.min_foreground
            self.origins[name], self.stops[name] = origins[keep], stops[keep]

    def _sample(self, i: int, name: str, k: int, cut: Cutter) -> CropSample:
        """Crop ``i``: window ``k`` of node ``name``, its arrays cut by ``cut``."""
        window, opts = self.windows[name], self.options
        origin = tuple(int(o) for o in self.origins[name][k])
        stop = tuple(int(s) for s in self.stops[name][k])
        img = cut("image", origin, stop, opts.pad, 0)
        lab = cut("labels", origin, stop, opts.pad, 0)
        layers = cut("instances", origin, stop, "constant", 1)
        assert lab is not None and layers is not None
        objects, ids = clip_layers(
            layers, self.tables(name), min_visible=opts.min_visible, min_area=opts.min_area
        )
        valid = tuple(min(w, e - o) for o, w, e in zip(origin, window, stop, strict=True))
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
        """Crop ``i``, reading only the chunks its window touches (inside its region)."""
        name, position = self.locate(i)
        i %= len(self)
        group, window = self.group[name], self.windows[name]

        def cut(
            var: str, origin: tuple[int, ...], stop: tuple[int, ...], pad: str, lead: int
        ) -> NDArray[Any] | None:
            if var not in group:
                return None
            part = (slice(None),) * lead + tuple(
                slice(o, min(o + w, e)) for o, w, e in zip(origin, window, stop, strict=True)
            )
            return cut_window(
                np.asarray(group[var][part]), (0,) * len(window), window, pad=pad, lead=lead
            )

        return self._sample(i, name, position, cut)

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
                    position = i - self._offsets[k]
                    first = int(self.origins[name][position, 0])
                    slabs = {v: r.rows(first, first + window[0]) for v, r in readers.items()}

                    def cut(
                        var: str,
                        origin: tuple[int, ...],
                        end: tuple[int, ...],
                        pad: str,
                        lead: int,
                        slabs: dict[str, NDArray[Any]] = slabs,
                        window: tuple[int, ...] = window,
                    ) -> NDArray[Any] | None:
                        if var not in slabs:
                            return None
                        return _cut_slab(slabs[var], origin, end, window, pad=pad, lead=lead)

                    yield self._sample(i, name, position, cut)
                    bar.update(1)
        finally:
            bar.close()


class Cutter(Protocol):
    """Cuts one array (``image``, ``labels``, ``instances``) of a window inside its region;
    None when the node has no such array."""

    def __call__(
        self, var: str, origin: tuple[int, ...], end: tuple[int, ...], pad: str, lead: int, /
    ) -> NDArray[Any] | None: ...


def _cut_slab(
    slab: NDArray[Any],
    origin: tuple[int, ...],
    stop: tuple[int, ...],
    window: tuple[int, ...],
    *,
    pad: str,
    lead: int,
) -> NDArray[Any]:
    """The window at ``origin`` from a slab whose rows start at ``origin[0]``, limited to the
    region that ends at ``stop`` (the rest padded)."""
    inside = (slice(None),) * (lead + 1) + tuple(slice(0, e) for e in stop[1:])
    return cut_window(
        slab[inside], origin, window, pad=pad, lead=lead, row_offset=origin[0], full_rows=stop[0]
    )
