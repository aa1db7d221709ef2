"""COCO evaluation of instance predictions (pycocotools' ``COCOeval``): mAP, AP50, AP75, per class.

**Ground truth** is a dataset store, a COCO json file (``prep convert --to coco``'s
``coco.json``, or any COCO instance file) or a COCO dict; from a store it is built by
:func:`~microprep.evaluate.coco_truth.coco_ground_truth` (one COCO image per 2D node or volume
slice; with ``split``, only that split's regions, a region smaller than its node becoming an
image of its own named ``"NAME [y0:y1, x0:x1]"``). Predictions may be made on such crops (and
carry that name) or on the whole image (its plain name): they are then cropped to every region
of the image the same way.

**Predictions** are COCO results (a list of ``{"image_id" or "file_name", "category_id",
"bbox", "score", "segmentation"}`` records, as a json file or a list), a json file with COCO
``images`` and ``annotations`` (annotations with ``score``), or an instance prediction store
(:mod:`microprep.predict.instances_write`; masks are then the visible parts of its id map).
Images are matched by ``file_name``: exactly, else without the last extension (``a.png`` matches
``a.tif``); records without ``file_name`` keep their ``image_id``, which must then be a ground
truth image id. Records on images outside the ground truth are left out and counted.

**Report**: :class:`~microprep.evaluate.coco_report.InstanceReport`, per IoU type COCO mAP,
AP50, AP75 and AP per class (see :mod:`microprep.evaluate.coco_report`). pycocotools' printing
is silenced.

Example:
    >>> report = evaluate_instances("pred.zarr", "dataset.zarr", split="val")  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from microprep.errors import InputError, UsageError
from microprep.evaluate.coco_report import InstanceReport, IouScores
from microprep.evaluate.coco_truth import (
    ORIGIN_KEY,
    coco_ground_truth,
    drop_ignored,
    region_file_name,
)
from microprep.evaluate.semantic import match_key
from microprep.exports.coco import raster_to_rle
from microprep.splits import Splits
from microprep.targets.types import Raster

__all__ = [
    "IOU_TYPES",
    "InstanceReport",
    "IouScores",
    "coco_ground_truth",
    "evaluate_instances",
    "region_file_name",
]

logger = logging.getLogger(__name__)

IOU_TYPES = ("bbox", "segm")


def evaluate_instances(
    pred: str | Path | Sequence[Mapping[str, Any]],
    ground_truth: str | Path | Mapping[str, Any],
    *,
    split: str | None = None,
    splits: Splits | str | Path | None = None,
    iou_types: Sequence[str] = IOU_TYPES,
    max_detections: int = 100,
) -> InstanceReport:
    """COCO-evaluate instance predictions against ground truth (see the module docstring).

    Args:
        pred: a COCO results json file, a list of result records, or an instance prediction
            store (``PRED.zarr``).
        ground_truth: a dataset store, a COCO json file or a COCO dict.
        split: restrict a dataset store to this split's regions (stores only).
        splits: the splits or splits file (default: the one beside the store).
        iou_types: any of ``"bbox"``, ``"segm"``.
        max_detections: detections per image counted (the highest scored).

    Returns:
        An :class:`InstanceReport`.

    Raises:
        UsageError: an unknown IoU type, a split without a dataset store, segm without masks
            in the predictions, or records without a usable image. InputError: unreadable json.
        StoreError: a store that cannot be opened.

    Example:
        >>> gt = {"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
        ...       "categories": [{"id": 1, "name": "pore"}],
        ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
        ...                        "bbox": [0, 0, 2, 2], "area": 4}]}
        >>> dt = [{"file_name": "a.png", "category_id": 1, "bbox": [0, 0, 2, 2], "score": 1}]
        >>> round(evaluate_instances(dt, gt, iou_types=["bbox"]).scores["bbox"].map, 6)
        1.0
    """
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise UsageError(f"iou_types must be among {', '.join(IOU_TYPES)}, got {list(iou_types)}")
    if max_detections < 1:
        raise UsageError(f"max_detections must be 1 or more, got {max_detections}")
    truth = _ground_truth(ground_truth, split, splits)
    records, pred_label = _records(pred)
    results, unmatched = _match(records, truth)
    results, ignored = drop_ignored(results, truth)
    if ignored:
        logger.info("%d detections mostly on pixels that are not annotated left out", ignored)
    if unmatched:
        # with a split, predictions on the other splits' images are expected: not a warning
        log = logger.info if split is not None else logger.warning
        log("%d prediction records are on images outside the ground truth", unmatched)
    ids = sorted(int(c["id"]) for c in truth["categories"])
    raw_names = {int(c["id"]): str(c.get("name", c["id"])) for c in truth["categories"]}
    names = [raw_names[i] for i in ids]
    class_names = [
        n if names.count(n) == 1 else f"{n} ({i})" for n, i in zip(names, ids, strict=True)
    ]
    results = [r for r in results if int(r["category_id"]) in raw_names]
    if "segm" in iou_types and any("segmentation" not in r for r in results):
        raise UsageError(
            "the predictions have records without 'segmentation': evaluate them with "
            "iou_types=('bbox',)"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dict(truth))
        gt.dataset.setdefault("info", {})
        gt.dataset.setdefault("licenses", [])
        gt.createIndex()
        dt = gt.loadRes(results) if results else None
    counts = {i: 0 for i in ids}
    for ann in truth["annotations"]:
        if not ann.get("iscrowd", 0) and int(ann["category_id"]) in counts:
            counts[int(ann["category_id"])] += 1
    scores = {t: _scores(gt, dt, t, ids, class_names, counts, max_detections) for t in iou_types}
    return InstanceReport(
        scores=scores,
        class_names=class_names,
        prediction=pred_label,
        ground_truth=_label(ground_truth),
        split=split,
        images=len(truth["images"]),
        objects=sum(counts.values()),
        detections=len(results),
        unmatched=unmatched,
        max_detections=max_detections,
    )


def _label(value: Any) -> str:
    if isinstance(value, str | Path):
        return str(value)
    return "<dict>" if isinstance(value, Mapping) else "<list>"


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the json: {exc}", file=path) from exc


def _ground_truth(
    ground_truth: str | Path | Mapping[str, Any], split: str | None, splits: Any
) -> Mapping[str, Any]:
    if isinstance(ground_truth, Mapping):
        truth: Any = ground_truth
    else:
        path = Path(ground_truth)
        if path.is_dir():
            return coco_ground_truth(path, split=split, splits=splits)
        truth = _load_json(path)
    if split is not None:
        raise UsageError("a split needs a dataset store as ground truth (its splits file)")
    if not isinstance(truth, Mapping) or not all(
        isinstance(truth.get(k), list) for k in ("images", "categories", "annotations")
    ):
        raise InputError(
            "not a COCO instance file (needs 'images', 'categories' and 'annotations')",
            file=None if isinstance(ground_truth, Mapping) else str(ground_truth),
        )
    return truth


def _records(pred: str | Path | Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The prediction records as plain dicts, and a label for the report."""
    if not isinstance(pred, str | Path):
        return [dict(r) for r in pred], "<list>"
    path = Path(pred)
    if path.is_dir():
        from microprep.predict.coco_results import coco_results
        from microprep.predict.instances_read import read_instance_predictions

        records: list[dict[str, Any]] = []
        for k, (name, prediction) in enumerate(read_instance_predictions(path), start=1):
            records.extend(coco_results(prediction, image_id=-k, file_name=name))
        return records, str(path)
    data = _load_json(path)
    if isinstance(data, Mapping) and isinstance(data.get("annotations"), list):
        names = {img.get("id"): img.get("file_name") for img in data.get("images") or []}
        data = [
            {**a, "file_name": names[a["image_id"]]}
            if names.get(a.get("image_id")) is not None
            else dict(a)
            for a in data["annotations"]
        ]
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise InputError("not COCO results (a list of detection records)", file=path)
    return [dict(r) for r in data], str(path)


def _match(
    records: list[dict[str, Any]], truth: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Records with ``image_id`` set to their ground truth image (cropped to its region when a
    record is on the whole image), and the count of records on no ground truth image."""
    exact: dict[str, dict[str, Any]] = {}
    loose: dict[str, dict[str, Any]] = {}
    regions: dict[str, list[dict[str, Any]]] = {}
    ids = set()
    for image in truth["images"]:
        ids.add(image["id"])
        file_name = str(image["file_name"])
        exact.setdefault(file_name, image)
        origin = image.get(ORIGIN_KEY)
        if isinstance(origin, Mapping) and origin.get("name") != file_name:
            regions.setdefault(str(origin["name"]), []).append(image)
        else:
            loose.setdefault(match_key(file_name), image)
    loose_regions = {match_key(k): v for k, v in regions.items()}
    out: list[dict[str, Any]] = []
    unmatched = 0
    for k, record in enumerate(records):
        for key in ("category_id", "score"):
            if key not in record:
                raise UsageError(f"prediction record {k} has no {key!r}")
        name = record.pop("file_name", None)
        if name is None:
            if record.get("image_id") in ids:
                out.append(record)
            else:
                unmatched += 1
            continue
        name = str(name)
        image = exact.get(name)
        targets = [] if image is not None else regions.get(name)
        if image is None and targets is None:
            image = loose.get(match_key(name))
            targets = [] if image is not None else loose_regions.get(match_key(name), [])
        if image is not None:
            out.append({**record, "image_id": image["id"]})
        elif not targets:
            unmatched += 1
        for target in targets or []:
            cropped = _crop_record(record, target)
            if cropped is not None:
                out.append(cropped)
    return out, unmatched


def _crop_record(record: dict[str, Any], image: Mapping[str, Any]) -> dict[str, Any] | None:
    """A whole-image record cut to the region of ``image`` (None when nothing is inside)."""
    y0, y1, x0, x1 = (int(v) for v in image[ORIGIN_KEY]["box"])
    out = {**record, "image_id": image["id"]}
    if "segmentation" in record:
        mask = _decode(record["segmentation"])[y0:y1, x0:x1]
        if not mask.any():
            return None
        raster = Raster((0, 0), mask)
        (r0, r1), (c0, c1) = raster.bounds()
        out["segmentation"] = raster_to_rle(raster, y1 - y0, x1 - x0)
        out["bbox"] = [float(c0), float(r0), float(c1 - c0), float(r1 - r0)]
        return out
    bx, by, bw, bh = (float(v) for v in record["bbox"])
    left, top = max(bx, x0), max(by, y0)
    right, bottom = min(bx + bw, x1), min(by + bh, y1)
    if right <= left or bottom <= top:
        return None
    out["bbox"] = [left - x0, top - y0, right - left, bottom - top]
    return out


def _decode(segmentation: Any) -> NDArray[np.bool_]:
    """A full-image bool mask ``(H, W)`` from a COCO RLE (compressed or not)."""
    height, width = (int(v) for v in segmentation["size"])
    counts = segmentation["counts"]
    if isinstance(counts, list):
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": [height, width], "counts": counts.encode("ascii")}
    return np.asarray(coco_mask.decode(rle), dtype=bool)


def _scores(
    gt: COCO,
    dt: COCO | None,
    iou_type: str,
    ids: list[int],
    names: list[str],
    counts: Mapping[int, int],
    max_detections: int,
) -> IouScores:
    """COCOeval of one IoU type; without detections AP is 0 where there is ground truth."""
    if dt is None:
        per_class = {n: (0.0 if counts[i] else math.nan) for n, i in zip(names, ids, strict=True)}
        value = 0.0 if any(counts.values()) else math.nan
        return IouScores(value, value, value, per_class)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = sorted(gt.getImgIds())
        evaluator.params.catIds = ids
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [math.nan if v < 0 else float(v) for v in evaluator.stats[:3]]
    precision = evaluator.eval["precision"]  # (iou, recall, class, area, max dets)
    per_class, pr50 = {}, {}
    for k, name in enumerate(names):
        values = precision[:, :, k, 0, -1]
        pr50[name] = [math.nan if v < 0 else float(v) for v in values[0].tolist()]
        values = values[values > -1]
        per_class[name] = float(values.mean()) if values.size else math.nan
    return IouScores(stats[0], stats[1], stats[2], per_class, pr50)
