"""COCO: a results file (for scoring elsewhere) or a full instances file.

Segmentations are compressed RLE (``{"size": [H, W], "counts": str}``), exact for any region,
holes included (COCO polygons cannot hold holes). Semantic regions and instances alike are one
record each; category ids are the prediction's class indices (1..K), image ids ``1..`` in store
order (names, from ``--like`` where given, in ``file_name``).

* ``results``: ``[{"image_id", "file_name", "category_id", "bbox": [x, y, w, h], "score",
  "segmentation"}]``, the records of ``PRED.coco.json``; semantic regions get score 1.0.
* ``instances``: ``{"images", "categories", "annotations"}`` with ``id``, ``area`` and
  ``iscrowd: 0`` per annotation (and ``score`` for instance predictions).

Example:
    >>> from microprep.writers.shapes import ImageShapes, OutShape
    >>> s = OutShape("mask", "pore", 1, np.zeros((0, 2)), 0, top=1, left=1,
    ...              bitmap=np.ones((1, 2), bool))
    >>> r = json.loads(coco_json([ImageShapes("a.png", 3, 3, (s,))], kind="results",
    ...                          classes=("background", "pore")))[0]
    >>> r["bbox"], r["score"], r["segmentation"]["size"]
    ([1.0, 1.0, 2.0, 1.0], 1.0, [3, 3])
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from microprep.exports.coco import raster_to_rle
from microprep.targets.types import Raster
from microprep.writers.like import Like
from microprep.writers.shapes import ImageShapes

__all__ = ["CocoKind", "coco_json"]

logger = logging.getLogger(__name__)

CocoKind = Literal["results", "instances"]


def coco_json(
    images: Iterable[ImageShapes],
    *,
    kind: CocoKind,
    classes: Sequence[str],
    like: Like | None = None,
) -> bytes:
    """The COCO ``kind`` file of ``images``, whose shapes must be masks (module docstring)."""
    records: list[dict[str, Any]] = []
    image_list: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        name = like.images[image.name].name if like is not None else image.name
        image_list.append(
            {"id": image_id, "file_name": name, "width": image.width, "height": image.height}
        )
        for shape in image.shapes:
            if shape.bitmap is None:
                raise ValueError("COCO records are written from mask shapes")
            h, w = shape.bitmap.shape
            rle = raster_to_rle(
                Raster((shape.top, shape.left), shape.bitmap), image.height, image.width
            )
            record: dict[str, Any] = {"image_id": image_id}
            if kind == "results":
                record["file_name"] = name
            record.update(
                {
                    "category_id": shape.label_index,
                    "bbox": [float(shape.left), float(shape.top), float(w), float(h)],
                    "segmentation": rle,
                }
            )
            if kind == "results":
                record["score"] = 1.0 if shape.score is None else round(shape.score, 6)
            else:
                record.update(
                    id=len(records) + 1, area=int(np.count_nonzero(shape.bitmap)), iscrowd=0
                )
                if shape.score is not None:
                    record["score"] = round(shape.score, 6)
            records.append(record)
    if kind == "results":
        return json.dumps(records, separators=(",", ":")).encode("utf-8")
    categories = [{"id": i, "name": n, "supercategory": ""} for i, n in enumerate(classes) if i]
    data = {"images": image_list, "categories": categories, "annotations": records}
    return json.dumps(data, separators=(",", ":")).encode("utf-8")
