"""Instance samples for torchvision detection models: :class:`InstanceDataset`.

``dataset[i]`` is ``(image, target)`` exactly as torchvision's Mask R-CNN / Faster R-CNN take
them in training: ``image`` float32 ``(C, H, W)`` and ``target`` an :class:`InstanceTarget`.
Objects cut by the window (or region) border are clipped to it and dropped when less than
``min_visible`` of their area or fewer than ``min_area`` pixels remain
(:func:`microprep.crops.clip_layers`); objects that augmentation moves out of the window
entirely are dropped too. Windows without objects are kept as negatives. What was dropped is
logged at debug level and counted in :attr:`InstanceDataset.stats` (per process). With
``samples_per_epoch`` the windows are drawn at random positions every epoch, as for
:class:`~microprep.data.segmentation.SegmentationDataset`, and clipped the same way.

The target's ``valid`` mask is False where the window holds no annotated pixels, as in
:class:`~microprep.data.segmentation.SegmentationDataset`: padding past the region's edge,
pixels that are not annotated (the store's ``ignore_index``, see docs/classes.md) and, with
augmentation, areas warped in from outside the window. torchvision's own models pass the key
through unused; the Mask R-CNN of the ``maskrcnn`` trainer samples no negatives there.

Example:
    >>> from torch.utils.data import DataLoader  # doctest: +SKIP
    >>> ds = InstanceDataset("dataset.zarr", split="train", window=512)  # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=2, collate_fn=collate_instances)  # doctest: +SKIP
    >>> images, targets = next(iter(loader))  # doctest: +SKIP
    >>> losses = model(images, targets)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from numpy.typing import NDArray

from microprep.augment import AugmentConfig, Sample
from microprep.crops.instances import check_thresholds, clip_layers
from microprep.data.base import WindowDataset
from microprep.data.normalize import ImageScale, apply_scale, channels_first
from microprep.data.source import valid_mask
from microprep.data.transforms import transform_rng, window_transform
from microprep.splits import Splits
from microprep.store.read import Dataset

__all__ = ["InstanceDataset", "InstanceTarget", "collate_instances"]

logger = logging.getLogger(__name__)


class InstanceTarget(TypedDict):
    """The target of one window, N objects: ``boxes`` float32 ``(N, 4)`` ``x_min, y_min,
    x_max, y_max`` in window pixels (exclusive max); ``labels`` int64 ``(N,)`` in 1..K;
    ``masks`` uint8 ``(N, H, W)``; ``image_id`` int64 scalar (the sample index); ``area``
    float32 ``(N,)`` mask pixel counts; ``iscrowd`` int64 ``(N,)`` zeros; ``valid`` bool
    ``(H, W)``: False on padding and on pixels that are not annotated."""

    boxes: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    image_id: torch.Tensor
    area: torch.Tensor
    iscrowd: torch.Tensor
    valid: torch.Tensor


def _masks(layers: NDArray[np.uint32], n: int) -> NDArray[np.uint8]:
    """``(n, *spatial)`` uint8 masks of ids ``1..n`` in ``(L, *spatial)`` layers."""
    out = np.zeros((n, *layers.shape[1:]), np.uint8)
    for layer in layers:
        hit = layer > 0
        ids = layer[hit].astype(np.int64) - 1
        out[(ids, *np.nonzero(hit))] = 1
    return out


class InstanceDataset(WindowDataset):
    """2D windows of a store as ``(image, InstanceTarget)`` pairs for torchvision detection.

    Args:
        store, split, splits, window, stride, augment, seed, normalization, nodes: as for
            :class:`~microprep.data.segmentation.SegmentationDataset` (windows are laid
            out with ``edge="flush"``; a region smaller than the window is padded with 0,
            where there are no objects).
        min_visible: drop a clipped object with less than this fraction of its full area in
            the window.
        min_area: drop a clipped object with fewer pixels in the window.
        transform: the user's own augmentation, applied after ``augment`` and normalisation
            (see :mod:`microprep.data.transforms`); objects it moves out of the window are
            dropped and boxes are recomputed from the masks.
        samples_per_epoch: serve this many windows per epoch at random positions inside the
            regions, new ones every epoch (:mod:`microprep.data.random_windows`); None: the
            fixed grid. Objects are clipped to each window as to a grid window.

    Raises:
        UsageError: a volume store (Mask R-CNN needs 2D images), bad thresholds, and see
            :class:`~microprep.data.segmentation.SegmentationDataset`.
    """

    only_2d = True

    def __init__(
        self,
        store: str | Path | Dataset,
        *,
        split: str | None = None,
        splits: Splits | str | Path | None = None,
        window: int | Sequence[int] = 256,
        stride: int | Sequence[int] | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        normalization: str | ImageScale = "percentile",
        min_visible: float = 0.25,
        min_area: int = 16,
        nodes: Sequence[str | int] | None = None,
        transform: Callable[..., Mapping[str, Any]] | None = None,
        samples_per_epoch: int | None = None,
    ) -> None:
        check_thresholds(min_visible, min_area)
        self.min_visible = float(min_visible)
        self.min_area = int(min_area)
        super().__init__(
            store,
            split=split,
            splits=splits,
            window=window,
            stride=stride,
            edge="flush",
            pad="constant",
            augment=augment,
            seed=seed,
            normalization=normalization,
            min_foreground=0.0,
            nodes=nodes,
            samples_per_epoch=samples_per_epoch,
        )
        self.transform = window_transform(transform, self)
        #: Per-process counts: ``samples``, ``kept``, ``dropped_border`` (min_visible /
        #: min_area), ``dropped_augment`` (moved out by augmentation), ``dropped_transform``
        #: (moved out by ``transform``).
        self.stats: Counter[str] = Counter()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["stats"] = Counter()
        return state

    def read_numpy(
        self, i: int
    ) -> tuple[
        NDArray[Any], NDArray[np.float64], NDArray[np.int64], NDArray[np.uint8], NDArray[np.bool_]
    ]:
        """Sample ``i`` before normalisation: ``(image (H, W[, c]) stored dtype, boxes (N, 4)
        float64, labels (N,) int64, masks (N, H, W) uint8, valid (H, W) bool)``, augmented
        when configured."""
        i = self._index(i)
        spec = self.window_at(i)
        kw: dict[str, Any] = {"origin": spec.origin, "stop": spec.stop, "window": self.window}
        image = self.reader.read(spec.node, "image", pad="constant", **kw)
        valid = valid_mask(spec.origin, spec.stop, self.window)
        if self.ignore_index is not None:
            valid &= (
                self.reader.read(spec.node, "labels", pad="constant", **kw) != self.ignore_index
            )
        layers = self.reader.read(spec.node, "instances", pad="constant", lead=1, **kw)
        tables = self.reader.tables(spec.node)
        touched = int(np.count_nonzero(np.bincount(layers.reshape(-1))[1:]))
        objects, _ = clip_layers(
            layers, tables, min_visible=self.min_visible, min_area=self.min_area
        )
        labels = objects.labels
        dropped_augment = 0
        if self._augmenter is None:
            boxes = objects.boxes
            masks = _masks(objects.layers(), len(objects))
        else:
            sample: Sample = {
                "image": image,
                "instances": objects.layers(),
                "boxes": objects.boxes,
                # moved with the pixels; areas warped in from outside become 0: not valid
                "labels": valid.astype(np.uint8),
            }
            out = self._augmenter(sample, self.rng(i))
            image = out["image"]
            valid = out["labels"] > 0
            present = out["areas"] > 0
            dropped_augment = int((~present).sum())
            boxes = out["boxes"][present]
            labels = labels[present]
            masks = _masks(out["instances"], len(present))[present]
        self.stats.update(
            samples=1,
            kept=len(labels),
            dropped_border=touched - len(objects),
            dropped_augment=dropped_augment,
        )
        if touched > len(labels):
            logger.debug(
                "sample %d (%s at %s): %d of %d objects kept, %d below min_visible=%g / "
                "min_area=%d, %d moved out by augmentation",
                i,
                spec.node,
                spec.origin,
                len(labels),
                touched,
                touched - len(objects),
                self.min_visible,
                self.min_area,
                dropped_augment,
            )
        return image, boxes, labels, masks, valid

    def __getitem__(self, i: int) -> tuple[torch.Tensor, InstanceTarget]:
        i = self._index(i)
        spec = self.window_at(i)
        image, boxes, labels, masks, valid = self.read_numpy(i)
        image = apply_scale(image, self.scales[spec.node])
        if self.transform is not None:
            rng = transform_rng(seed=self.seed, index=i, epoch=self.epoch)
            before = len(labels)
            image, boxes, labels, masks, valid = self.transform.instances(
                image, masks, labels, valid, rng=rng
            )
            self.stats["kept"] -= before - len(labels)
            self.stats["dropped_transform"] += before - len(labels)
        pixels = channels_first(image, 2)
        target = InstanceTarget(
            boxes=torch.from_numpy(boxes.astype(np.float32).reshape(-1, 4)),
            labels=torch.from_numpy(labels.astype(np.int64)),
            masks=torch.from_numpy(np.ascontiguousarray(masks)),
            image_id=torch.tensor(i, dtype=torch.int64),
            area=torch.from_numpy(masks.sum(axis=(1, 2), dtype=np.int64).astype(np.float32)),
            iscrowd=torch.zeros(len(labels), dtype=torch.int64),
            valid=torch.from_numpy(np.ascontiguousarray(valid)),
        )
        return torch.from_numpy(np.ascontiguousarray(pixels)), target


def collate_instances(
    batch: Sequence[tuple[torch.Tensor, InstanceTarget]],
) -> tuple[list[torch.Tensor], list[InstanceTarget]]:
    """A DataLoader ``collate_fn``: ``[(image, target), ...]`` -> ``(images, targets)`` lists,
    the form torchvision detection models take.

    Example:
        >>> t = InstanceTarget(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64),
        ...                    masks=torch.zeros(0, 2, 2, dtype=torch.uint8),
        ...                    image_id=torch.tensor(0), area=torch.zeros(0),
        ...                    iscrowd=torch.zeros(0, dtype=torch.int64),
        ...                    valid=torch.ones(2, 2, dtype=torch.bool))
        >>> images, targets = collate_instances([(torch.zeros(1, 2, 2), t)] * 2)
        >>> len(images), len(targets)
        (2, 2)
    """
    return [image for image, _ in batch], [target for _, target in batch]
