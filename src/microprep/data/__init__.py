"""PyTorch datasets over a dataset store, for one's own training code (see ``docs/data.md``).

* :class:`SegmentationDataset`: windows as ``image`` / ``target`` / ``valid`` tensors, 2D or
  3D, class indices or one-hot;
* :class:`InstanceDataset` and :func:`collate_instances`: 2D windows as ``(image, target)`` for
  torchvision's Mask R-CNN;
* :func:`make_loader` and :func:`set_epoch`: a DataLoader whose batches depend only on the seed
  and the epoch, with any number of workers;
* :mod:`~microprep.data.normalize`: the normalisation rule (:class:`ImageScale`,
  :func:`image_scale`, :func:`apply_scale`), also for prediction code.

The normalisation names import without torch; the datasets and the loader need it
(``pip install 'microprep[train]'``) and import it when first used.

Example:
    >>> from microprep.data import SegmentationDataset, make_loader  # doctest: +SKIP
    >>> ds = SegmentationDataset("dataset.zarr", split="train", window=256)  # doctest: +SKIP
    >>> loader = make_loader(ds, batch_size=8, shuffle=True, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from microprep.data.normalize import (
    NORMALIZATIONS,
    ImageScale,
    apply_scale,
    channels_first,
    image_scale,
)
from microprep.errors import UsageError

if TYPE_CHECKING:
    from microprep.data.instances import InstanceDataset, InstanceTarget, collate_instances
    from microprep.data.loader import make_loader, seed_worker, set_epoch
    from microprep.data.segmentation import SegmentationDataset, SegmentationSample

__all__ = [
    "NORMALIZATIONS",
    "ImageScale",
    "InstanceDataset",
    "InstanceTarget",
    "SegmentationDataset",
    "SegmentationSample",
    "apply_scale",
    "channels_first",
    "collate_instances",
    "image_scale",
    "make_loader",
    "seed_worker",
    "set_epoch",
]

_LAZY = {
    "InstanceDataset": "microprep.data.instances",
    "InstanceTarget": "microprep.data.instances",
    "collate_instances": "microprep.data.instances",
    "SegmentationDataset": "microprep.data.segmentation",
    "SegmentationSample": "microprep.data.segmentation",
    "make_loader": "microprep.data.loader",
    "seed_worker": "microprep.data.loader",
    "set_epoch": "microprep.data.loader",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'microprep.data' has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise UsageError(
            f"microprep.data.{name} needs torch: pip install 'microprep[train]'"
        ) from exc
