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

Example:
    >>> gt = coco_ground_truth("dataset.zarr", split="val")  # doctest: +SKIP
    >>> sorted(gt)  # doctest: +SKIP
    ['annotations', 'categories', 'images']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from microprep.errors import UsageError
from microprep.exports.coco import raster_to_rle
from microprep.splits import Region, Splits, check_against, default_splits_path, load_splits
from microprep.targets.types import Raster

__all__ = ["ORIGIN_KEY", "coco_ground_truth", "region_file_name"]

#: Key of the extra facts added to ground truth images (name, node, slice, region box).
ORIGIN_KEY = "microprep"


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
                            ORIGIN_KEY: {"name": plane, "node": node, "z": z, "box": list(box)},
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
