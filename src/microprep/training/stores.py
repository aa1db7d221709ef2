"""What trainers read from a dataset store beside their datasets: the pixels of each class in a
split (for class weights) and the class colours (for prediction overlays).

:func:`class_counts` counts within the regions of one split and subsamples large regions, so
it is cheap before every run; :func:`microprep.store.info.store_info` (``prep info``) counts
every pixel of every node instead.

Example:
    >>> import tempfile
    >>> from microprep.model import ImageInfo, LabelMap, LabelSpec
    >>> from microprep.store import ZarrSink
    >>> from microprep.targets.types import Instances, Targets
    >>> path = Path(tempfile.mkdtemp()) / "d.zarr"
    >>> labels = np.zeros((4, 4), np.uint8); labels[:2] = 1
    >>> lm = LabelMap((LabelSpec("grain"),))
    >>> with ZarrSink(path, lm, provenance={"source": "doc", "sha256": None}) as sink:
    ...     sink.add(Targets("a.png", (ImageInfo("a.png", 4, 4),), labels,
    ...                      Instances.empty((4, 4)), 2), np.zeros((4, 4), np.uint8))
    >>> class_counts(path, None, None, 2).tolist(), len(store_colors(path, count=2))
    ([8, 8], 2)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from microprep.splits import Region, load_splits
from microprep.store.read import open_dataset

__all__ = ["COUNT_BUDGET", "class_counts", "store_colors"]

logger = logging.getLogger(__name__)

#: Pixels read per region when counting class frequencies (a strided subsample beyond this).
COUNT_BUDGET = 16_000_000


def class_counts(store: Path, splits_path: Path | None, split: str | None, k: int) -> NDArray[Any]:
    """Pixels per class (``k`` classes, background included) in the ``split`` regions of
    ``store`` (every node when ``split`` or ``splits_path`` is None). A region larger than
    :data:`COUNT_BUDGET` pixels is read with a stride along every axis; pixels of an index
    ``>= k`` (not annotated) are not counted."""
    root: Any = zarr.open_group(store, mode="r")
    ds = open_dataset(store)
    counts = np.zeros(k, np.int64)
    boxes: list[tuple[str, Region | None]]
    if split is None or splits_path is None:
        boxes = [(n, None) for n in ds.nodes]
    else:
        boxes = [(r.node, r) for r in load_splits(splits_path)[split]]
    for node, region in boxes:
        labels = root[node]["labels"]
        index = (
            tuple(slice(None) for _ in labels.shape)
            if region is None
            else tuple(slice(a, b) for a, b in zip(region.start, region.stop, strict=True))
        )
        size = int(
            np.prod([len(range(*s.indices(n))) for s, n in zip(index, labels.shape, strict=True)])
        )
        step = max(1, int(np.ceil((size / COUNT_BUDGET) ** (1 / labels.ndim))))
        index = tuple(slice(s.start, s.stop, step) for s in index)
        counts += np.bincount(np.asarray(labels[index]).ravel(), minlength=k)[:k]
    return counts


def store_colors(
    path: Path, *, count: int | None = None
) -> tuple[tuple[int, int, int], ...] | None:
    """The class colours of the store at ``path`` (a run's training store), or None when it
    cannot be read (it may have moved since training: overlays use default colours then) or
    does not hold ``count`` colours."""
    try:
        dataset = open_dataset(path)
        colors = dataset.colors
        dataset.close()
    except Exception:  # the training store may have moved; default colours then
        logger.info("training store %s not readable; default overlay colours", path)
        return None
    if count is not None and len(colors) != count:
        return None
    return colors
