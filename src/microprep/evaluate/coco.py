"""COCO evaluation of instance predictions (pycocotools' ``COCOeval``): mAP, AP50, AP75, per class.

**Ground truth** is a dataset store, a COCO json file (``prep convert --to coco``'s
``coco.json``, or any COCO instance file) or a COCO dict. :func:`coco_ground_truth` builds the
dict from a store: one COCO image per 2D node (``file_name`` = the image name) and per slice of
a volume (``file_name`` = the slice's frame name); categories are the store's classes ``1..K``;
each object with pixels is one annotation with its mask as compressed RLE, its box and area.

**Splits.** With ``split="val"`` only the regions of that split count (the splits file beside
the store, ``DATASET.zarr.splits.json``, or ``splits``). A region that covers its whole node
keeps the image as it is. A smaller region (``--by region``) becomes an image of its own: the
node cropped to the region, objects cut to it and shifted (objects without pixels inside are
left out), named ``"NAME [y0:y1, x0:x1]"`` (:func:`region_file_name`; for volumes per slice
in the region's z range). Predictions may be made on such crops (and carry that name) or on the
whole image (its plain name): they are then cropped to every region of the image the same way.

**Predictions** are COCO results (a list of ``{"image_id" or "file_name", "category_id",
"bbox", "score", "segmentation"}`` records, as a json file or a list), a json file with COCO
``images`` and ``annotations`` (annotations with ``score``), or an instance prediction store
(:mod:`microprep.predict.instances_write`; masks are then the visible parts of its id map).
Images are matched by ``file_name``: exactly, else without the last extension (``a.png`` matches
``a.tif``); records without ``file_name`` keep their ``image_id``, which must then be a ground
truth image id. Records on images outside the ground truth are left out and counted.

**Report** (:class:`InstanceReport`): per IoU type (``"bbox"``, ``"segm"``) the COCO mAP
(IoU 0.50:0.95), AP50 and AP75 over all object sizes with at most ``max_detections`` detections
per image (COCO's 100 by default; raise it for images with more objects), and the AP
(0.50:0.95) of every class: ``nan`` for classes without ground truth objects. No predictions at
all give AP 0 where there is ground truth. pycocotools' printing is silenced.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from microprep.errors import InputError, UsageError
from microprep.evaluate.semantic import match_key
from microprep.exports.coco import raster_to_rle
from microprep.splits import Region, Splits, check_against, default_splits_path, load_splits
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
#: Key of the extra facts this module adds to ground truth images (node, slice, region).
_ORIGIN = "microprep"


def region_file_name(name: str, region: Region | None) -> str:
    """The COCO ``file_name`` of image ``name`` cropped to ``region``'s rows and columns.

    Example:
        >>> region_file_name("a.png", Region("a.png", (0, 10), (64, 80)))
        'a.png [0:64, 10:80]'
        >>> region_file_name("a.png", None)
        'a.png'
    """
    if region is None:
        return name
    (y0, x0), (y1, x1) = region.start[-2:], region.stop[-2:]
    return f"{name} [{y0}:{y1}, {x0}:{x1}]"


def coco_ground_truth(
    store_path: str | Path, *, split: str | None = None, splits: Splits | str | Path | None = None
) -> dict[str, Any]:
    """A COCO instance dict (``images``, ``categories``, ``annotations``) from a dataset store.

    Args:
        store_path: the dataset store.
        split: only the regions of this split (``"train"``, ``"val"``, ``"test"``).
        splits: the splits (a :class:`~microprep.splits.Splits` or a splits file; default:
            the file beside the store). Only used with ``split``.

    Returns:
        The dict. Every image has ``id`` (``1..``), ``file_name``, ``width``, ``height`` and a
        ``"microprep"`` entry: ``{"name", "node", "z", "box": [y0, y1, x0, x1]}`` saying where
        in the store it comes from. Annotations: ``id``, ``image_id``, ``category_id``,
        ``segmentation`` (compressed RLE), ``area`` (pixels), ``bbox`` ``[x, y, w, h]``,
        ``iscrowd`` 0.

    Raises:
        StoreError: not a dataset store. UsageError: an unknown split, no splits file, or
            regions that do not fit the store.

    Example:
        >>> gt = coco_ground_truth("dataset.zarr", split="val")  # doctest: +SKIP
        >>> [image["file_name"] for image in gt["images"]][:1]  # doctest: +SKIP
        ['grid 1/a.png']
    """
    from microprep.store import open_dataset

    store_path = Path(store_path)
    dataset = open_dataset(store_path)
    try:
        shapes = {n: tuple(int(v) for v in dataset[n]["labels"].shape) for n in dataset.nodes}
        wanted = _regions(store_path, shapes, split, splits)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for node in dataset.nodes:
            if node not in wanted:
                continue
            attrs = dict(dataset[node].attrs)
            name = str(attrs.get("name", node))
            instances = dataset.instances(node)
            shape = shapes[node]
            frames = list(attrs.get("frames") or [])
            for region in wanted[node]:
                full = region is None
                start = (0,) * len(shape) if region is None else region.start
                stop = shape if region is None else region.stop
                z_range = range(start[0], stop[0]) if len(shape) == 3 else [None]
                for z in z_range:
                    plane = name if z is None else str(frames[z] if z < len(frames) else z)
                    box = (start[-2], stop[-2], start[-1], stop[-1])
                    image_id = len(images) + 1
                    height, width = box[1] - box[0], box[3] - box[2]
                    images.append(
                        {
                            "id": image_id,
                            "file_name": plane if full else region_file_name(plane, region),
                            "width": width,
                            "height": height,
                            _ORIGIN: {"name": plane, "node": node, "z": z, "box": list(box)},
                        }
                    )
                    for raster, label in zip(instances.rasters, instances.labels, strict=True):
                        cut = _plane_crop(raster, z, box)
                        if cut is None:
                            continue
                        annotations.append(
                            _annotation(
                                cut, int(label), image_id, len(annotations) + 1, height, width
                            )
                        )
        categories = [
            {"id": i, "name": c, "supercategory": ""}
            for i, c in enumerate(dataset.classes)
            if i > 0
        ]
    finally:
        dataset.close()
    return {"images": images, "categories": categories, "annotations": annotations}


def _regions(
    store_path: Path,
    shapes: Mapping[str, tuple[int, ...]],
    split: str | None,
    splits: Splits | str | Path | None,
) -> dict[str, list[Region | None]]:
    """Per node, the regions to evaluate (None: the whole node)."""
    if split is None:
        return {node: [None] for node in shapes}
    if isinstance(splits, Splits):
        loaded = splits
    else:
        file = Path(splits) if splits is not None else default_splits_path(store_path)
        if not file.is_file():
            raise UsageError(
                f"no splits file {file}: run 'prep split {store_path}' first, or name one"
            )
        loaded = load_splits(file)
    check_against(loaded, shapes)
    out: dict[str, list[Region | None]] = {}
    for region in loaded[split]:
        whole = all(a == 0 for a in region.start) and tuple(region.stop) == shapes[region.node]
        out.setdefault(region.node, []).append(None if whole else region)
    if not out:
        raise UsageError(f"the {split!r} split has no regions")
    return out


def _plane_crop(raster: Raster, z: int | None, box: tuple[int, int, int, int]) -> Raster | None:
    """The part of ``raster`` (2D, or slice ``z`` of a 3D one) inside ``box``, shifted to it
    and cropped tight; None when no pixel is inside."""
    mask, origin = raster.mask, raster.origin
    if not mask.size:
        return None
    if z is not None:
        if not origin[0] <= z < origin[0] + mask.shape[0]:
            return None
        mask, origin = mask[z - origin[0]], origin[1:]
    top, left = max(box[0], origin[0]), max(box[2], origin[1])
    bottom = min(box[1], origin[0] + mask.shape[0])
    right = min(box[3], origin[1] + mask.shape[1])
    if top >= bottom or left >= right:
        return None
    part = mask[top - origin[0] : bottom - origin[0], left - origin[1] : right - origin[1]]
    rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    if not rows.size:
        return None
    tight = part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Raster((top - box[0] + int(rows[0]), left - box[2] + int(cols[0])), tight.copy())


def _annotation(
    raster: Raster, label: int, image_id: int, ann_id: int, height: int, width: int
) -> dict[str, Any]:
    top, left = raster.origin
    h, w = raster.mask.shape
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": label,
        "segmentation": raster_to_rle(raster, height, width),
        "area": raster.area,
        "bbox": [float(left), float(top), float(w), float(h)],
        "iscrowd": 0,
    }


@dataclass(frozen=True, slots=True)
class IouScores:
    """COCO scores of one IoU type: ``mAP`` (IoU 0.50:0.95), ``ap50``, ``ap75`` (all object
    sizes) and ``per_class`` AP (0.50:0.95) by class name (``nan``: no ground truth objects)."""

    map: float
    ap50: float
    ap75: float
    per_class: dict[str, float]


@dataclass(frozen=True, slots=True)
class InstanceReport:
    """The result of :func:`evaluate_instances`.

    Attributes:
        scores: per IoU type (``"bbox"``, ``"segm"``) its :class:`IouScores`.
        class_names: the ground truth's category names, by category id.
        prediction, ground_truth: what was compared (as given; ``"<list>"`` / ``"<dict>"``).
        split: the split the ground truth was restricted to, or None.
        images: ground truth images evaluated. objects: ground truth objects.
        detections: prediction records evaluated. unmatched: records on images outside the
            ground truth (left out). max_detections: detections per image counted.
    """

    scores: dict[str, IouScores]
    class_names: list[str]
    prediction: str
    ground_truth: str
    split: str | None = None
    images: int = 0
    objects: int = 0
    detections: int = 0
    unmatched: int = 0
    max_detections: int = 100

    def table(self) -> str:
        """A text report: what was compared, the summary per IoU type, then AP per class."""
        scope = f", split {self.split!r}" if self.split else ""
        lines = [
            f"{self.prediction} vs {self.ground_truth}{scope}: {self.images} images, "
            f"{self.objects} objects, {self.detections} detections"
            + (f" ({self.unmatched} on other images, left out)" if self.unmatched else ""),
            f"COCO AP, all object sizes, up to {self.max_detections} detections per image",
        ]
        types = list(self.scores)
        width = max([len(n) for n in self.class_names] + [len("class"), len("mAP 0.50:0.95")])
        lines.append(f"{'':<{width}}" + "".join(f"  {t:>6}" for t in types))
        for label, key in (("mAP 0.50:0.95", "map"), ("AP50", "ap50"), ("AP75", "ap75")):
            row = "".join(f"  {_fmt(getattr(self.scores[t], key)):>6}" for t in types)
            lines.append(f"{label:<{width}}{row}")
        lines.append(f"{'class (AP)':<{width}}" + "".join(f"  {t:>6}" for t in types))
        for name in self.class_names:
            row = "".join(f"  {_fmt(self.scores[t].per_class[name]):>6}" for t in types)
            lines.append(f"{name:<{width}}{row}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (``nan`` -> None): inputs, counts and the scores per IoU type."""
        return {
            "kind": "instances",
            "prediction": self.prediction,
            "ground_truth": self.ground_truth,
            "split": self.split,
            "images": self.images,
            "objects": self.objects,
            "detections": self.detections,
            "unmatched": self.unmatched,
            "max_detections": self.max_detections,
            "scores": {
                t: {
                    "map": _json(s.map),
                    "ap50": _json(s.ap50),
                    "ap75": _json(s.ap75),
                    "per_class": {k: _json(v) for k, v in s.per_class.items()},
                }
                for t, s in self.scores.items()
            },
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`as_dict` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.as_dict(), indent=indent, allow_nan=False, ensure_ascii=False)


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _json(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


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
    if unmatched:
        logger.warning("%d prediction records are on images outside the ground truth", unmatched)
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
        from microprep.predict.instances_write import coco_results, read_instance_predictions

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
        origin = image.get(_ORIGIN)
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
    y0, y1, x0, x1 = (int(v) for v in image[_ORIGIN]["box"])
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
    per_class = {}
    for k, name in enumerate(names):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[name] = float(values.mean()) if values.size else math.nan
    return IouScores(stats[0], stats[1], stats[2], per_class)
