"""COCO ground truth from a dataset store, whole or restricted to a split's regions.

:func:`coco_ground_truth` builds the ground truth that
:func:`microprep.evaluate.coco.evaluate_instances` compares with, from a store: one COCO image
per 2D node (``file_name`` = the image name) and per slice of a volume (``file_name`` = the
slice's frame name); categories are the store's classes ``1..K``; each object with pixels is one
annotation with its mask as compressed RLE, its box and area.

**Splits.** With ``split="val"`` only the regions of that split count (the splits file beside
the store, ``DATASET.zarr.splits.json``, or ``splits``). A region that covers its whole node
keeps the image as it is. A smaller region (``--by region``) becomes an image of its own: the
node cropped to the region, objects cut to it and shifted (objects without pixels inside are
left out), named ``"NAME [y0:y1, x0:x1]"`` (:func:`region_file_name`; for volumes per slice
in the region's z range). Predictions may be made on such crops (and carry that name) or on the
whole image (its plain name): they are then cropped to every region of the image the same way.

**Pixels that are not annotated** (a store with ``ignore_index``, docs/classes.md) are left out
by the rule Mask R-CNN training follows: a ground truth object with more than half of its
pixels there (:data:`IGNORED_FRACTION`) is ``iscrowd`` (neither found nor missed; COCO ignores
detections that match it), and :func:`drop_ignored` leaves out detections with more than half
of their pixels (their box, for records without a mask) there. The image's ignored pixels are
kept as a compressed RLE under ``"microprep"`` / ``"ignore"``.

Example:
    >>> gt = coco_ground_truth("dataset.zarr", split="val")  # doctest: +SKIP
    >>> sorted(gt)  # doctest: +SKIP
    ['annotations', 'categories', 'images']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask

from microprep.errors import UsageError
from microprep.exports.coco import raster_to_rle
from microprep.splits import Region, Splits, check_against, default_splits_path, load_splits
from microprep.targets.types import Raster

__all__ = [
    "IGNORED_FRACTION",
    "ORIGIN_KEY",
    "coco_ground_truth",
    "drop_ignored",
    "region_file_name",
]

#: Key of the extra facts added to ground truth images (name, node, slice, region box,
#: ignored pixels).
ORIGIN_KEY = "microprep"
#: An object or detection with more than this fraction of its pixels not annotated is left out.
IGNORED_FRACTION = 0.5


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
        ``iscrowd`` 0, or 1 for an object mostly on pixels that are not annotated (the image's
        ``"microprep"`` entry has ``"ignore"``, the RLE of those pixels, then).

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
        ignore_index = dataset.attrs.get("ignore_index")
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for node in dataset.nodes:
            if node not in wanted:
                continue
            group = dataset[node]
            attrs = dict(group.attrs)
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
                    origin: dict[str, Any] = {"name": plane, "node": node, "z": z, "box": list(box)}
                    ignored = _ignored(group, ignore_index, z, box)
                    if ignored is not None:
                        origin["ignore"] = raster_to_rle(Raster((0, 0), ignored), height, width)
                    images.append(
                        {
                            "id": image_id,
                            "file_name": plane if full else region_file_name(plane, region),
                            "width": width,
                            "height": height,
                            ORIGIN_KEY: origin,
                        }
                    )
                    for raster, label in zip(instances.rasters, instances.labels, strict=True):
                        cut = _plane_crop(raster, z, box)
                        if cut is None:
                            continue
                        ann = _annotation(
                            cut, int(label), image_id, len(annotations) + 1, height, width
                        )
                        if ignored is not None and _mostly_ignored(cut, ignored):
                            ann["iscrowd"] = 1
                        annotations.append(ann)
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


def _ignored(
    group: Any, ignore_index: int | None, z: int | None, box: tuple[int, int, int, int]
) -> NDArray[np.bool_] | None:
    """The pixels of the image (plane ``z``, ``box``) that are not annotated; None if none."""
    if ignore_index is None:
        return None
    labels = group["labels"]
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    plane = labels[z, rows, cols] if z is not None else labels[rows, cols]
    ignored = np.asarray(plane) == ignore_index
    return ignored if ignored.any() else None


def _mostly_ignored(raster: Raster, ignored: NDArray[np.bool_]) -> bool:
    top, left = raster.origin
    h, w = raster.mask.shape
    inside = int(np.count_nonzero(ignored[top : top + h, left : left + w][raster.mask]))
    return inside > IGNORED_FRACTION * raster.area


def _rle(segmentation: Any, height: int, width: int) -> Any:
    """A pycocotools RLE of a COCO segmentation (compressed or not, or polygons)."""
    if isinstance(segmentation, list):
        return coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return coco_mask.frPyObjects(segmentation, height, width)
    size = [int(v) for v in segmentation["size"]]
    return {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def drop_ignored(
    records: Sequence[Mapping[str, Any]], truth: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """The detection records without those with more than :data:`IGNORED_FRACTION` of their
    pixels (their box, without ``segmentation``) on pixels of their ground truth image that are
    not annotated, and the count left out. Records need ``image_id`` set to a ground truth
    image; images without an ``"ignore"`` entry keep every record.

    Example:
        >>> truth = coco_ground_truth("dataset.zarr")  # doctest: +SKIP
        >>> kept, dropped = drop_ignored(records, truth)  # doctest: +SKIP
    """
    ignore: dict[Any, tuple[Any, int, int]] = {}
    for image in truth["images"]:
        origin = image.get(ORIGIN_KEY)
        if isinstance(origin, Mapping) and origin.get("ignore") is not None:
            height, width = int(image["height"]), int(image["width"])
            ignore[image["id"]] = (_rle(origin["ignore"], height, width), height, width)
    if not ignore:
        return [dict(r) for r in records], 0
    kept: list[dict[str, Any]] = []
    for record in records:
        found = ignore.get(record.get("image_id"))
        if found is None:
            kept.append(dict(record))
            continue
        region, height, width = found
        if "segmentation" in record:
            rle = _rle(record["segmentation"], height, width)
        else:
            box = np.asarray([record["bbox"]], np.float64).reshape(1, 4)
            rle = coco_mask.frPyObjects(box, height, width)[0]
        area = float(coco_mask.area(rle))
        inside = float(coco_mask.area(coco_mask.merge([rle, region], intersect=True)))
        if not (area > 0 and inside > IGNORED_FRACTION * area):
            kept.append(dict(record))
    return kept, len(records) - len(kept)
