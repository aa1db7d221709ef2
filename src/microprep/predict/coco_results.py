"""COCO results of instance predictions: ``PRED.coco.json`` beside a prediction store.

One record per object, ``{"image_id", "file_name", "category_id", "bbox": [x, y, w, h],
"score", "segmentation": {"size": [H, W], "counts"}}``; ``image_id`` is ``1..`` in input order,
``file_name`` the input's name (an extra key that pycocotools ignores and
:func:`microprep.evaluate.coco.evaluate_instances` matches images by), ``bbox`` in pixels from
the mask, the mask whole as compressed RLE. The file is lossless (the prediction store's id map
keeps one object per pixel; these records keep every mask).

Example:
    >>> coco_results_path("runs/pred.zarr").name
    'pred.coco.json'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microprep.exports.coco import raster_to_rle
from microprep.outputs import write_file_atomic
from microprep.predict.instances import InstancePrediction

__all__ = ["coco_results", "coco_results_path", "write_coco_results"]


def coco_results_path(out: str | Path) -> Path:
    """Where the COCO results of ``out`` go: ``PRED.zarr`` -> ``PRED.coco.json`` beside it.

    Example:
        >>> coco_results_path("runs/pred.zarr").as_posix()
        'runs/pred.coco.json'
    """
    path = Path(out)
    stem = path.name[: -len(".zarr")] if path.name.endswith(".zarr") else path.name
    return path.with_name(stem + ".coco.json")


def coco_results(
    prediction: InstancePrediction, *, image_id: int, file_name: str | None = None
) -> list[dict[str, Any]]:
    """COCO result records of one image's objects (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from microprep.targets.types import Raster
        >>> p = InstancePrediction.from_rasters(
        ...     (3, 3), [Raster((0, 1), np.ones((1, 2), bool))], labels=[2], scores=[0.5])
        >>> r = coco_results(p, image_id=7, file_name="a.png")[0]
        >>> r["category_id"], r["bbox"], r["segmentation"]["size"]
        (2, [1.0, 0.0, 2.0, 1.0], [3, 3])
    """
    height, width = prediction.shape
    out = []
    for raster, label, score, box in zip(
        prediction.rasters, prediction.labels, prediction.scores, prediction.boxes, strict=True
    ):
        x0, y0, x1, y1 = (float(v) for v in box)
        record: dict[str, Any] = {"image_id": int(image_id)}
        if file_name is not None:
            record["file_name"] = file_name
        record.update(
            {
                "category_id": int(label),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(score),
                "segmentation": raster_to_rle(raster, height, width),
            }
        )
        out.append(record)
    return out


def write_coco_results(records: list[dict[str, Any]], path: Path) -> Path:
    """Write ``records`` (from :func:`coco_results`) to ``path`` as compact JSON, atomically
    (:func:`~microprep.outputs.write_file_atomic`: the earlier file or the new one, never half).

    Raises:
        StoreError: the file cannot be written.
    """
    return write_file_atomic(path, json.dumps(records, separators=(",", ":")).encode("utf-8"))
