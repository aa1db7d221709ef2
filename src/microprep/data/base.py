"""What both PyTorch datasets share: the store, the windows, the scales and the epoch.

:class:`WindowDataset` opens the store once to check it and list its nodes, chooses the
regions (:mod:`microprep.data.layout`), lays out the windows, and computes the normalisation
scale of every node it uses (:mod:`microprep.data.normalize`). Pixels are read per sample by a
:class:`~microprep.data.source.StoreReader`, which opens the zarr store lazily in each process,
so a dataset pickles to a few small arrays and works in DataLoader workers started with
``fork`` or ``spawn``.

**Epochs.** Augmentation draws come from ``sample_rng(seed=seed, index=i, copy=epoch)``: a
sample depends only on ``(seed, epoch, index)``, never on the worker that reads it or the
order. :meth:`WindowDataset.set_epoch` sets the epoch in shared memory, so DataLoader workers
(persistent ones too) see it; call it before iterating the loader for that epoch
(:func:`microprep.data.loader.set_epoch` does it together with the sampler's).

**Random windows.** With ``samples_per_epoch`` set, the dataset serves that many windows per
epoch at random positions inside its regions, drawn from ``(seed, epoch, index)``
(:mod:`microprep.data.random_windows`); without it, the fixed grid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from microprep.augment import AugmentConfig, Augmenter, sample_rng
from microprep.crops.windows import EDGES, as_tuple
from microprep.data.layout import (
    WindowLayout,
    WindowSpec,
    foreground_mask,
    layout_windows,
    select_regions,
)
from microprep.data.normalize import NORMALIZATIONS, ImageScale, image_scale
from microprep.data.random_windows import RandomWindows
from microprep.data.source import StoreReader
from microprep.errors import UsageError
from microprep.splits import Splits
from microprep.store.read import Dataset, open_dataset

__all__ = ["WindowDataset"]

logger = logging.getLogger(__name__)


def _node_names(ds: Dataset, nodes: Sequence[str | int] | None) -> tuple[str, ...]:
    if nodes is None:
        return ds.nodes
    names = []
    for key in nodes:
        try:
            names.append(ds.node_name(key))
        except (KeyError, IndexError) as exc:
            raise UsageError(f"{ds.path}: no node {key!r}") from exc
    return tuple(dict.fromkeys(names))


class WindowDataset(TorchDataset[Any]):
    """Windows of a dataset store, read lazily; the base of the segmentation and instance
    datasets (see their docstrings for the arguments)."""

    #: Refuse volume stores.
    only_2d = False

    def __init__(
        self,
        store: str | Path | Dataset,
        *,
        split: str | None,
        splits: Splits | str | Path | None,
        window: int | Sequence[int],
        stride: int | Sequence[int] | None,
        edge: str,
        pad: str,
        augment: AugmentConfig | None,
        seed: int,
        normalization: str | ImageScale,
        min_foreground: float,
        nodes: Sequence[str | int] | None,
        samples_per_epoch: int | None = None,
    ) -> None:
        if samples_per_epoch is not None and int(samples_per_epoch) < 1:
            raise UsageError(f"samples_per_epoch must be at least 1, got {samples_per_epoch!r}")
        if edge not in EDGES:
            raise UsageError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")
        if pad not in ("constant", "reflect"):
            raise UsageError(f"pad must be 'constant' or 'reflect', got {pad!r}")
        if not isinstance(normalization, ImageScale) and normalization not in NORMALIZATIONS:
            raise UsageError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)} or an ImageScale, "
                f"got {normalization!r}"
            )
        if not 0.0 <= float(min_foreground) <= 1.0:
            raise UsageError(f"min_foreground must be in [0, 1], got {min_foreground!r}")
        opened = not isinstance(store, Dataset)
        ds = open_dataset(store) if not isinstance(store, Dataset) else store
        try:
            self.path = Path(ds.path)
            self._classes = ds.classes
            self._ignore_index: int | None = ds.attrs.get("ignore_index")
            all_nodes = ds.nodes
            chosen = _node_names(ds, nodes)
        finally:
            if opened:
                ds.close()
        self.reader = StoreReader(self.path)
        root = self.reader.root()
        shapes = {name: tuple(int(s) for s in root[name]["labels"].shape) for name in all_nodes}
        dims = {len(shapes[name]) for name in chosen}
        if len(dims) != 1:
            raise UsageError(
                f"{self.path}: the chosen nodes mix images and volumes; pick nodes of one kind "
                "with nodes="
            )
        self._ndim = dims.pop()
        if self.only_2d and self._ndim != 2:
            raise UsageError(
                f"{self.path}: {type(self).__name__} serves 2D images (Mask R-CNN needs 2D); "
                "this store holds volumes: use SegmentationDataset, or convert the slices as "
                "separate images"
            )
        self.window = as_tuple(window, self._ndim, "window")
        self.stride = None if stride is None else as_tuple(stride, self._ndim, "stride")
        self.edge, self.pad = edge, pad
        self.seed = int(seed)
        self.augment = augment
        # windows keep their shape: an anisotropic window is never turned onto another shape
        self._augmenter = None if augment is None else Augmenter(augment, keep_shape=True)
        regions = select_regions(
            store=self.path, shapes=shapes, nodes=chosen, split=split, splits=splits
        )
        self.split = split
        layout = layout_windows(regions, window=self.window, stride=self.stride, edge=edge)
        if min_foreground > 0:
            keep = foreground_mask(
                layout,
                self.reader,
                window=self.window,
                min_foreground=float(min_foreground),
                ignore_index=self._ignore_index,
            )
            logger.info(
                "%s: %d of %d windows have at least %g foreground",
                self.path,
                int(keep.sum()),
                len(keep),
                min_foreground,
            )
            layout = layout.keep(keep)
            if not len(layout):
                raise UsageError(
                    f"{self.path}: no window has a foreground fraction of at least "
                    f"{min_foreground}; lower min_foreground"
                )
        self.layout: WindowLayout = layout
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self._random = RandomWindows(
            regions, layout, window=self.window, seed=self.seed, uniform=min_foreground <= 0
        )
        self._in_channels = self._check_images(root)
        self.scales: dict[str, ImageScale] = {
            name: self._scale(root[name]["image"], normalization) for name in layout.nodes
        }
        self.normalization = normalization
        self._epoch = torch.zeros((), dtype=torch.int64)
        self._epoch.share_memory_()  # type: ignore[no-untyped-call]

    def _check_images(self, root: Any) -> int:
        channels: dict[str, int] = {}
        for name in self.layout.nodes:
            if "image" not in root[name]:
                raise UsageError(
                    f"{self.path}: node {name!r} has no image array (the store holds targets "
                    "only); convert the export again with --images"
                )
            shape = root[name]["image"].shape
            channels[name] = int(shape[self._ndim]) if len(shape) > self._ndim else 1
        if len(set(channels.values())) > 1:
            raise UsageError(
                f"{self.path}: the nodes have different channel counts {channels}; pick nodes "
                "with the same count with nodes="
            )
        return next(iter(channels.values()))

    def _scale(self, image: Any, normalization: str | ImageScale) -> ImageScale:
        if isinstance(normalization, ImageScale):
            return normalization
        return image_scale(image, normalization, ndim=self._ndim)

    # -- properties
    @property
    def classes(self) -> tuple[str, ...]:
        """Class names by class index, ``"background"`` first."""
        return self._classes

    @property
    def ignore_index(self) -> int | None:
        """The class-map value of pixels that are not annotated (store attribute
        ``ignore_index``, 255), or None when the store has none; such pixels are not valid."""
        return self._ignore_index

    @property
    def num_classes(self) -> int:
        """Number of classes including background (K + 1)."""
        return len(self._classes)

    @property
    def in_channels(self) -> int:
        """Image channels C of the samples (1 for grayscale)."""
        return self._in_channels

    @property
    def ndim(self) -> int:
        """Spatial axes of the samples: 2 (images) or 3 (volumes)."""
        return self._ndim

    @property
    def epoch(self) -> int:
        """The current epoch (see :meth:`set_epoch`)."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Use augmentation draws of ``epoch`` from now on (in this process and its workers)."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        if self.samples_per_epoch is not None:
            return self.samples_per_epoch
        return len(self.layout)

    def window_at(self, i: int) -> WindowSpec:
        """Node, origin and region end of window ``i``: grid window ``i``, or with
        ``samples_per_epoch`` a random window of the current epoch
        (:mod:`microprep.data.random_windows`)."""
        if self.samples_per_epoch is not None:
            return self._random(index=self._index(i), epoch=self.epoch)
        return self.layout[i]

    def _index(self, i: int) -> int:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range ({len(self)} samples)")
        return i % len(self)

    def rng(self, i: int) -> np.random.Generator:
        """The augmentation generator of sample ``i`` in the current epoch."""
        return sample_rng(seed=self.seed, index=i, copy=self.epoch)

    def __repr__(self) -> str:
        split = "" if self.split is None else f", split {self.split!r}"
        return (
            f"<{type(self).__name__} {str(self.path)!r}{split}: {len(self)} windows "
            f"{'x'.join(map(str, self.window))}, {len(self.layout.nodes)} nodes>"
        )
