"""Compare predicted class maps with ground truth: per-class IoU, F1, precision, recall.

:func:`evaluate_semantic` takes either side as

* a **prediction store** (``PRED.zarr`` from :func:`microprep.predict.predict_semantic`),
* a **dataset store** (``DATASET.zarr``; its ``labels``), or
* a **folder** of class-index images: single-channel integer PNG or TIFF files (a TIFF stack
  is a volume), found recursively like :func:`microprep.predict.inputs.iter_inputs`.

Images are matched by name without the last extension: a store node's ``name`` attribute, a
file's path relative to its folder (``"grid 1/a.png"`` and ``"grid 1/a.tif"`` both match
``"grid 1/a"``). Every ground truth image needs a prediction and, without a split, every
prediction a ground truth image; unmatched names are listed in the error. Shapes must agree.

``split="val"`` restricts the ground truth to the regions of that split in the splits file
beside the ground truth store (``DATASET.zarr.splits.json``, see :mod:`microprep.splits`):
only nodes with a region in the split are compared, and only the pixels inside their regions.

Ground truth pixels that are not annotated (the dataset store's ``ignore_index``, 255, or the
``ignore_index`` argument for folders, e.g. the PNGs of ``prep convert --to masks``) are left
out of every count (docs/classes.md).

Class maps are read in slabs along the first axis, so a large volume is never read whole.
The confusion matrices of all images are summed, then scored
(:class:`~microprep.metrics.SegmentationScores`).

Example:
    >>> report = evaluate_semantic("pred.zarr", "dataset.zarr", split="val")  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError
from microprep.evaluate.labels import LabelItem, LabelSource, match_key, open_labels
from microprep.evaluate.report import ImageResult, SemanticReport
from microprep.metrics.semantic import SegmentationScores, confusion_matrix

__all__ = ["SLAB_PIXELS", "evaluate_semantic", "match_key", "open_labels"]

logger = logging.getLogger(__name__)

#: Pixels read per slab of a class map.
SLAB_PIXELS = 1 << 24


def _by_key(source: LabelSource, role: str) -> dict[str, LabelItem]:
    out: dict[str, LabelItem] = {}
    for item in source.items:
        if item.key in out:
            raise UsageError(
                f"{source.path}: two {role} images match the name {item.key!r}: "
                f"{out[item.key].name!r} and {item.name!r}"
            )
        out[item.key] = item
    return out


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 10 else "")


def _split_boxes(
    ground_truth: LabelSource, split: str, splits_path: str | Path | None
) -> dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Per ground truth node, the ``(start, stop)`` boxes of its regions in ``split``."""
    from microprep.splits import SPLIT_NAMES, check_against, default_splits_path, load_splits

    if ground_truth.kind != "dataset":
        raise UsageError(
            f"--split needs a dataset store as ground truth (its splits file names its nodes); "
            f"{ground_truth.path} is a {ground_truth.kind}"
        )
    if split not in SPLIT_NAMES:
        raise UsageError(f"no split {split!r}; the splits are {', '.join(SPLIT_NAMES)}")
    file = Path(splits_path) if splits_path is not None else default_splits_path(ground_truth.path)
    if not file.is_file():
        raise UsageError(
            f"no splits file {file}: run 'prep split {ground_truth.path}' first, or name one "
            "with --splits"
        )
    splits = load_splits(file)
    shapes = {str(i.node): tuple(int(s) for s in i.get().shape) for i in ground_truth.items}
    check_against(splits, shapes)
    boxes: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    for region in splits[split]:
        boxes.setdefault(region.node, []).append((region.start, region.stop))
    if not boxes:
        raise UsageError(f"{file}: the {split!r} split has no regions")
    return boxes


def _slab_mask(
    boxes: list[tuple[tuple[int, ...], tuple[int, ...]]],
    start: int,
    stop: int,
    rest: tuple[int, ...],
) -> NDArray[np.bool_]:
    mask = np.zeros((stop - start, *rest), bool)
    for lo, hi in boxes:
        a, b = max(lo[0], start), min(hi[0], stop)
        if a < b:
            mask[
                (
                    slice(a - start, b - start),
                    *(slice(x, y) for x, y in zip(lo[1:], hi[1:], strict=True)),
                )
            ] = True
    return mask


def _compare(
    pred: LabelItem,
    truth: LabelItem,
    arrays: tuple[Any, Any],
    k: int | None,
    boxes: list[tuple[tuple[int, ...], tuple[int, ...]]] | None,
    ignore: int | None = None,
) -> NDArray[np.int64]:
    """The confusion matrix of one pair, slab by slab (``k`` None: from the values seen)."""
    a, b = arrays
    if tuple(a.shape) != tuple(b.shape):
        raise UsageError(
            f"shapes differ: prediction {pred.where} is {tuple(a.shape)}, ground truth "
            f"{truth.where} is {tuple(b.shape)}"
        )
    shape = tuple(int(s) for s in b.shape)
    rest = shape[1:]
    step = max(1, SLAB_PIXELS // max(1, math.prod(rest)))
    if k is None:  # folders on both sides: the arrays are in memory
        k = _observed_classes(pred, truth, np.asarray(a), np.asarray(b), ignore)
    total = np.zeros((k, k), np.int64)
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        valid = None if boxes is None else _slab_mask(boxes, start, stop, rest)
        if valid is not None and not valid.any():
            continue
        p, t = np.asarray(a[start:stop]), np.asarray(b[start:stop])
        if ignore is not None:
            annotated = t != ignore
            valid = annotated if valid is None else valid & annotated
        try:
            total += confusion_matrix(p, t, num_classes=k, valid=valid)
        except UsageError as exc:
            raise UsageError(f"{pred.where} vs {truth.where}: {exc}") from exc
    return total


def _num_classes(pred: LabelSource, truth: LabelSource) -> tuple[list[str] | None, int | None]:
    if pred.classes is not None and truth.classes is not None and pred.classes != truth.classes:
        raise UsageError(
            f"the classes differ: prediction {pred.path} has {pred.classes}, ground truth "
            f"{truth.path} has {truth.classes}"
        )
    names = truth.classes if truth.classes is not None else pred.classes
    return names, None if names is None else len(names)


def _observed_classes(
    pred: LabelItem, truth: LabelItem, a: NDArray[Any], b: NDArray[Any], ignore: int | None
) -> int:
    if ignore is not None:
        b = b[b != ignore]
    high = max(int(a.max(initial=0)), int(b.max(initial=0)))
    low = min(int(a.min(initial=0)), int(b.min(initial=0)))
    if low < 0:
        raise UsageError(f"{pred.where} vs {truth.where}: negative class index {low}")
    return high + 1


def evaluate_semantic(
    pred: str | Path,
    ground_truth: str | Path,
    *,
    include_background: bool = True,
    split: str | None = None,
    splits_path: str | Path | None = None,
    ignore_index: int | None = None,
) -> SemanticReport:
    """Score predicted class maps against ground truth (see the module docstring).

    Args:
        pred: a prediction store, a dataset store or a folder of class-index images.
        ground_truth: a dataset store or a folder of class-index images (or a store).
        include_background: count class 0 in the macro and micro averages.
        split: restrict to the regions of this split (``train``, ``val``, ``test``); needs a
            dataset store as ground truth.
        splits_path: the splits file (default: ``DATASET.zarr.splits.json`` beside the store).
        ignore_index: ground truth value of pixels that are not annotated, left out (default:
            the ground truth store's ``ignore_index``; none for folders).

    Returns:
        A :class:`~microprep.evaluate.report.SemanticReport`.

    Raises:
        UsageError: unmatched names, shapes that differ, class indices out of range, classes
            that differ between the stores, or a bad split.
        InputError, StoreError: inputs that cannot be read.
    """
    pred_source = open_labels(pred, role="prediction")
    truth_source = open_labels(ground_truth, role="ground truth")
    names, k = _num_classes(pred_source, truth_source)
    ignore = ignore_index if ignore_index is not None else truth_source.ignore_index
    boxes = None if split is None else _split_boxes(truth_source, split, splits_path)
    truths = _by_key(truth_source, "ground truth")
    preds = _by_key(pred_source, "prediction")
    if boxes is not None:
        truths = {key: item for key, item in truths.items() if item.node in boxes}
    missing = [truths[key].name for key in truths if key not in preds]
    extra = [preds[key].name for key in preds if key not in truths] if boxes is None else []
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"ground truth images without a prediction: {_listing(missing)}")
        if extra:
            parts.append(f"predictions without ground truth: {_listing(extra)}")
        raise UsageError(f"{pred} vs {ground_truth}: " + "; ".join(parts))
    results: list[ImageResult] = []
    for key, truth in truths.items():
        item = preds[key]
        region = None if boxes is None else boxes[str(truth.node)]
        cm = _compare(item, truth, (item.get(), truth.get()), k, region, ignore)
        results.append(ImageResult(truth.name, int(cm.sum()), cm))
    size = k if k is not None else max([len(r.confusion) for r in results] + [1])
    padded = []
    for r in results:
        full = np.zeros((size, size), np.int64)
        full[: len(r.confusion), : len(r.confusion)] = r.confusion
        padded.append(ImageResult(r.name, r.pixels, full))
    total = sum((r.confusion for r in padded), np.zeros((size, size), np.int64))
    scores = SegmentationScores.from_confusion(total, include_background=include_background)
    class_names = (
        names if names is not None else ["background", *(f"class {i}" for i in range(1, size))]
    )
    logger.info("compared %d images (%d pixels)", len(padded), int(total.sum()))
    return SemanticReport(
        scores=scores,
        class_names=list(class_names),
        prediction=str(pred),
        ground_truth=str(ground_truth),
        split=split,
        images=padded,
    )
