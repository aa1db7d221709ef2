"""Semantic segmentation samples from a dataset store: :class:`SegmentationDataset`.

Each sample is one window of one node (2D tile of an image, 3D block of a volume): the
normalised image channels-first, the class-index target (or its one-hot form) and a ``valid``
mask that is False where the window holds no real pixels: padding past the region's edge,
pixels that are not annotated (the store's ``ignore_index``, see docs/classes.md) and, with
augmentation, areas warped in from outside the window. Losses and metrics should ignore those
pixels; the target is 0 (background) there.

Example:
    >>> ds = SegmentationDataset("dataset.zarr", split="train", window=256)  # doctest: +SKIP
    >>> s = ds[0]  # doctest: +SKIP
    >>> s["image"].shape, s["target"].dtype, s["valid"].dtype  # doctest: +SKIP
    (torch.Size([1, 256, 256]), torch.int64, torch.bool)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from numpy.typing import NDArray

from microprep.augment import AugmentConfig, Sample
from microprep.data.base import WindowDataset
from microprep.data.normalize import ImageScale, apply_scale, channels_first
from microprep.data.source import valid_mask
from microprep.data.transforms import transform_rng, window_transform
from microprep.errors import UsageError
from microprep.splits import Splits
from microprep.store.read import Dataset

__all__ = ["TARGETS", "SegmentationDataset", "SegmentationSample"]

#: The target kinds.
TARGETS: tuple[str, ...] = ("index", "onehot")


class SegmentationSample(TypedDict):
    """One window. ``image`` float32 ``(C, *window)``; ``target`` int64 ``(*window)`` class
    indices (``"index"``) or float32 ``(K, *window)`` one-hot (``"onehot"``, K = classes with
    background); ``valid`` bool ``(*window)``; ``node`` the node's group name; ``origin`` the
    window origin in node pixels ``(y, x)`` / ``(z, y, x)``; ``index`` the sample index."""

    image: torch.Tensor
    target: torch.Tensor
    valid: torch.Tensor
    node: str
    origin: tuple[int, ...]
    index: int


def _encode(labels: NDArray[Any], valid: NDArray[np.bool_], num_classes: int) -> NDArray[Any]:
    """Class ``k`` -> ``k + 1`` on valid pixels, 0 on padding (moved by the geometry as one map)."""
    dtype = np.uint16 if num_classes < 65535 else np.uint32
    out: NDArray[Any] = np.asarray(labels, dtype) + 1
    out[~valid] = 0
    return out


class SegmentationDataset(WindowDataset):
    """Windows of a store as segmentation samples (:class:`SegmentationSample`).

    Args:
        store: the store path, or an opened :class:`microprep.store.Dataset`.
        split: ``"train"``, ``"val"`` or ``"test"``: windows inside that split's regions only;
            None: every window of every node.
        splits: a :class:`microprep.splits.Splits` or a splits file (default: the store's
            ``DATASET.zarr.splits.json``, written by ``prep split``).
        window: window size in pixels, one int or one per spatial axis (``(y, x)`` /
            ``(z, y, x)``).
        stride: step between windows (default: the window).
        edge: ``"flush"`` (the last window ends at the region's edge) or ``"pad"``.
        pad: how the image is padded past the region: ``"reflect"`` or ``"constant"`` (0).
        target: ``"index"`` or ``"onehot"``.
        augment: geometry and noise applied to each sample (before normalisation), or None.
        seed: augmentation seed (see :meth:`set_epoch`).
        normalization: ``"percentile"``, ``"dtype"`` (see :mod:`microprep.data.normalize`), or
            one :class:`ImageScale` for every node.
        min_foreground: keep only windows with at least this fraction of non-background
            pixels (padding counts as background).
        nodes: node keys (group names, image names or positions) to use (default: all).
        transform: the user's own augmentation, applied after ``augment`` and normalisation:
            an albumentations pipeline or a callable with its dict interface (2D only; see
            :mod:`microprep.data.transforms`).
        samples_per_epoch: serve this many windows per epoch at random positions inside the
            regions, new ones every epoch (see :meth:`set_epoch`); None: the fixed grid.

    Raises:
        UsageError: bad options, no splits file, nodes without pixels, mixed channel counts.
        StoreError: the store cannot be opened.
    """

    def __init__(
        self,
        store: str | Path | Dataset,
        *,
        split: str | None = None,
        splits: Splits | str | Path | None = None,
        window: int | Sequence[int] = 256,
        stride: int | Sequence[int] | None = None,
        edge: str = "flush",
        pad: str = "reflect",
        target: str = "index",
        augment: AugmentConfig | None = None,
        seed: int = 0,
        normalization: str | ImageScale = "percentile",
        min_foreground: float = 0.0,
        nodes: Sequence[str | int] | None = None,
        transform: Callable[..., Mapping[str, Any]] | None = None,
        samples_per_epoch: int | None = None,
    ) -> None:
        if target not in TARGETS:
            raise UsageError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.target = target
        super().__init__(
            store,
            split=split,
            splits=splits,
            window=window,
            stride=stride,
            edge=edge,
            pad=pad,
            augment=augment,
            seed=seed,
            normalization=normalization,
            min_foreground=min_foreground,
            nodes=nodes,
            samples_per_epoch=samples_per_epoch,
        )
        self.transform = window_transform(transform, self)

    def read_numpy(self, i: int) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.bool_]]:
        """Sample ``i`` before normalisation: ``(image (*window[, c]) stored dtype, labels
        (*window), valid (*window) bool)``, augmented when configured; labels are 0 where
        ``valid`` is False (padding, pixels not annotated)."""
        i = self._index(i)
        spec = self.window_at(i)
        kw: dict[str, Any] = {"origin": spec.origin, "stop": spec.stop, "window": self.window}
        image = self.reader.read(spec.node, "image", pad=self.pad, **kw)
        labels = self.reader.read(spec.node, "labels", pad="constant", **kw)
        valid = valid_mask(spec.origin, spec.stop, self.window)
        if self.ignore_index is not None:
            valid &= labels != self.ignore_index
        if self._augmenter is None:
            labels[~valid] = 0
            return image, labels, valid
        sample: Sample = {"image": image, "labels": _encode(labels, valid, self.num_classes)}
        out = self._augmenter(sample, self.rng(i))
        encoded = out["labels"]
        valid = encoded > 0
        labels = np.where(valid, encoded - 1, 0).astype(labels.dtype)
        return out["image"], labels, valid

    def __getitem__(self, i: int) -> SegmentationSample:
        i = self._index(i)
        spec = self.window_at(i)
        image, labels, valid = self.read_numpy(i)
        image = apply_scale(image, self.scales[spec.node])
        if self.transform is not None:
            rng = transform_rng(seed=self.seed, index=i, epoch=self.epoch)
            image, labels, valid = self.transform.segmentation(image, labels, valid, rng=rng)
        pixels = channels_first(image, self.ndim)
        if self.target == "onehot":
            classes = np.arange(self.num_classes).reshape(-1, *([1] * labels.ndim))
            target = torch.from_numpy((labels[None] == classes).astype(np.float32))
        else:
            target = torch.from_numpy(labels.astype(np.int64))
        return SegmentationSample(
            image=torch.from_numpy(np.ascontiguousarray(pixels)),
            target=target,
            valid=torch.from_numpy(valid),
            node=spec.node,
            origin=spec.origin,
            index=i,
        )
