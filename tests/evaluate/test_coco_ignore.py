"""COCO evaluation leaves out what lies mostly on pixels that are not annotated: ground truth
objects there become ``iscrowd``, detections there are dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from pycocotools import mask as coco_mask

from data.helpers import make_store
from microprep.cli.main import main
from microprep.evaluate.coco import coco_ground_truth, evaluate_instances
from microprep.evaluate.coco_truth import ORIGIN_KEY, drop_ignored

SHAPE = (40, 40)


def square(top: int, left: int, size: int = 8) -> NDArray[np.bool_]:
    mask = np.zeros(SHAPE, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def detection(mask: NDArray[np.bool_], score: float, *, with_mask: bool = True) -> dict[str, Any]:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    box = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
    record: dict[str, Any] = {"file_name": "a.png", "category_id": 1, "bbox": box, "score": score}
    if with_mask:
        record["segmentation"] = {"size": list(SHAPE), "counts": rle["counts"].decode("ascii")}
    return record


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """One image: columns 24.. not annotated; object A (left, annotated), object B (right,
    inside the unannotated part)."""
    labels = np.zeros(SHAPE, np.uint8)
    a, b = square(4, 4), square(20, 28)
    labels[a] = 1
    labels[:, 24:] = 255
    node = {
        "labels": labels,
        "image": np.zeros(SHAPE, np.uint8),
        "masks": [a, b],
        "classes": [1, 1],
    }
    return make_store(tmp_path / "i.zarr", {"a.png": node}, ignore=True)


def test_ground_truth_marks_objects_in_the_unannotated_part_as_crowd(store: Path) -> None:
    truth = coco_ground_truth(store)
    [image] = truth["images"]
    ignored = coco_mask.decode(
        {"size": [40, 40], "counts": image[ORIGIN_KEY]["ignore"]["counts"].encode("ascii")}
    )
    assert ignored[:, 24:].all() and not ignored[:, :24].any()
    assert [a["iscrowd"] for a in truth["annotations"]] == [0, 1]


def test_detections_in_the_unannotated_part_are_left_out(store: Path, tmp_path: Path) -> None:
    found = detection(square(4, 4), 0.6)
    records = [
        found,
        detection(square(20, 28), 0.7),  # object B: not counted either way
        detection(square(2, 30), 0.95),  # on nothing, in the unannotated part
        detection(square(2, 20), 0.9, with_mask=False),  # box 4 of 8 columns unannotated: kept
    ]
    truth = coco_ground_truth(store)
    kept, dropped = drop_ignored([{**r, "image_id": 1} for r in records], truth)
    assert dropped == 2 and [r["score"] for r in kept] == [0.6, 0.9]
    # only the box-only false positive on annotated pixels costs precision
    report = evaluate_instances(records[:3], store)
    assert report.scores["segm"].map == pytest.approx(1.0)
    assert report.scores["bbox"].map == pytest.approx(1.0)
    assert report.objects == 1
    boxes = evaluate_instances(records, store, iou_types=["bbox"])
    assert boxes.scores["bbox"].map < 1.0
    # through the CLI
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(records[:3]))
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(pred), str(store), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["objects"] == 1 and scores["detections"] == 1
    assert scores["scores"]["segm"]["map"] == pytest.approx(1.0)


def test_a_store_without_ignored_pixels_keeps_everything(tmp_path: Path) -> None:
    labels = np.zeros(SHAPE, np.uint8)
    a = square(4, 4)
    labels[a] = 1
    node = {"labels": labels, "image": np.zeros(SHAPE, np.uint8), "masks": [a], "classes": [1]}
    store = make_store(tmp_path / "p.zarr", {"a.png": node})
    truth = coco_ground_truth(store)
    assert "ignore" not in truth["images"][0][ORIGIN_KEY]
    records = [detection(a, 0.6), detection(square(2, 30), 0.95)]
    assert evaluate_instances(records, store).scores["segm"].map < 1.0
