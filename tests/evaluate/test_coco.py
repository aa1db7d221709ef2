"""COCO evaluation of instance predictions against a tiny dataset store built in code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from pycocotools import mask as coco_mask

from microprep.errors import UsageError
from microprep.evaluate.coco import coco_ground_truth, evaluate_instances, region_file_name
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.predict.coco_results import coco_results_path
from microprep.predict.instances import InstancePrediction
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.splits import Region, Splits
from microprep.store.write import ZarrSink
from microprep.targets.types import Instances, Raster, Targets

# pycocotools' decoder trips a numpy 2 deprecation warning that is not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

LABELS = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate"), LabelSpec("void")))
CLASSES = list(LABELS.class_names)


def tight(dense: NDArray[np.bool_]) -> Raster:
    hit = np.argwhere(dense)
    lo, hi = hit.min(axis=0), hit.max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return Raster(tuple(int(v) for v in lo), dense[box].copy())


def targets(name: str, masks: list[NDArray[np.bool_]], labels: list[int]) -> Targets:
    """2D targets ``(H, W)`` or a volume ``(Z, H, W)`` (slices named ``name-z.png``)."""
    shape = masks[0].shape
    cmap = np.zeros(shape, np.uint8)
    rasters, boxes = [], []
    for mask, label in zip(masks, labels, strict=True):
        cmap[mask] = label
        raster = tight(mask)
        rasters.append(raster)
        bounds = raster.bounds()
        lo, hi = [b[0] for b in bounds][::-1], [b[1] for b in bounds][::-1]
        boxes.append([*lo, *hi])
    n = len(masks)
    inst = Instances(
        shape=shape,
        rasters=tuple(rasters),
        labels=np.array(labels, np.int64),
        boxes=np.array(boxes, np.float64),
        areas=np.array([r.area for r in rasters], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )
    h, w = shape[-2:]
    if len(shape) == 2:
        images = (ImageInfo(name, w, h),)
    else:
        images = tuple(ImageInfo(f"{name}-{z}.png", w, h) for z in range(shape[0]))
    return Targets(name, images, cmap, inst, LABELS.num_classes)


def box_mask(shape: tuple[int, ...], *spans: tuple[int, int]) -> NDArray[np.bool_]:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in spans)] = True
    return mask


def write_store(path: Path, items: list[Targets]) -> Path:
    sink = ZarrSink(path, LABELS, provenance={"source": "test", "sha256": None})
    for item in items:
        sink.add(item, None)
    sink.close()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two images: 'grid 1/a.png' (2 bubbles, 1 precipitate), 'b.png' (1 precipitate)."""
    a_shape = (40, 48)
    disc = np.zeros(a_shape, bool)
    rows, cols = np.mgrid[0:40, 0:48]
    disc[(rows - 28) ** 2 + (cols - 30) ** 2 <= 36] = True
    a = targets(
        "grid 1/a.png",
        [
            box_mask(a_shape, (2, 10), (3, 12)),
            box_mask(a_shape, (15, 25), (20, 26)),  # rows 15..24: cut by a region at row 20
            disc,
        ],
        [1, 1, 2],
    )
    b = targets("b.png", [box_mask((16, 16), (4, 9), (4, 12))], [2])
    return write_store(tmp_path / "d.zarr", [a, b])


def perfect(gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The ground truth annotations as predictions with score 1, named by file_name."""
    names = {img["id"]: img["file_name"] for img in gt["images"]}
    return [
        {
            "file_name": names[ann["image_id"]],
            "category_id": ann["category_id"],
            "bbox": ann["bbox"],
            "segmentation": ann["segmentation"],
            "score": 1.0,
        }
        for ann in gt["annotations"]
    ]


def test_ground_truth_from_store(store: Path) -> None:
    gt = coco_ground_truth(store)
    assert [i["file_name"] for i in gt["images"]] == ["grid 1/a.png", "b.png"]
    assert [c["name"] for c in gt["categories"]] == ["bubble", "precipitate", "void"]
    assert [c["id"] for c in gt["categories"]] == [1, 2, 3]
    assert len(gt["annotations"]) == 4
    first = gt["annotations"][0]
    assert first["bbox"] == [3.0, 2.0, 9.0, 8.0] and first["area"] == 72
    mask = coco_mask.decode({"size": [40, 48], "counts": first["segmentation"]["counts"]})
    np.testing.assert_array_equal(mask.astype(bool), box_mask((40, 48), (2, 10), (3, 12)))


def test_ground_truth_against_itself_is_perfect(store: Path) -> None:
    gt = coco_ground_truth(store)
    report = evaluate_instances(perfect(gt), store)
    assert report.images == 2 and report.objects == 4 and report.detections == 4
    for iou_type in ("bbox", "segm"):
        s = report.scores[iou_type]
        assert (s.map, s.ap50, s.ap75) == pytest.approx((1.0, 1.0, 1.0))
        assert set(s.per_class) == {"bubble", "precipitate", "void"}
        assert s.per_class["bubble"] == pytest.approx(1.0)
        assert s.per_class["precipitate"] == pytest.approx(1.0)
        assert math.isnan(s.per_class["void"])  # no ground truth objects of that class
    data = json.loads(report.to_json())
    assert data["scores"]["segm"]["per_class"]["void"] is None
    assert data["scores"]["bbox"]["map"] == pytest.approx(1.0)
    table = report.table()
    assert "precipitate" in table and "1.000" in table and "segm" in table


def test_empty_and_partial_predictions(store: Path) -> None:
    report = evaluate_instances([], store)
    for s in report.scores.values():
        assert (s.map, s.ap50, s.ap75) == (0.0, 0.0, 0.0)
        assert s.per_class["bubble"] == 0.0 and math.isnan(s.per_class["void"])
    gt = coco_ground_truth(store)
    half = [r for r in perfect(gt) if r["category_id"] == 2]  # the precipitates only
    report = evaluate_instances(half, store, iou_types=["segm"])
    s = report.scores["segm"]
    assert s.per_class["precipitate"] == pytest.approx(1.0) and s.per_class["bubble"] == 0.0
    assert 0.0 < s.map < 1.0
    assert list(report.scores) == ["segm"]


def test_shifted_masks_lower_the_strict_thresholds(store: Path) -> None:
    records = perfect(coco_ground_truth(store))
    for r in records:  # boxes shifted by 2 px: IoU drops but stays above 0.5 for most
        x, y, w, h = r["bbox"]
        r["bbox"] = [x + 2, y, w, h]
    s = evaluate_instances(records, store, iou_types=["bbox"]).scores["bbox"]
    assert s.ap75 < 1.0 and s.map < 1.0


def test_prediction_store_and_results_file(store: Path, tmp_path: Path) -> None:
    from microprep.store import open_dataset

    with open_dataset(store) as ds:
        items = []
        for node in ds.nodes:
            inst = ds.instances(node)
            pred = InstancePrediction.from_rasters(
                inst.shape, inst.rasters, labels=inst.labels, scores=np.ones(len(inst))
            )
            items.append(PredictedImage(str(ds[node].attrs["name"]), pred))
    out = tmp_path / "pred.zarr"
    summary = write_instance_predictions(items, out, classes=CLASSES, overlays=True)
    assert summary.objects == [3, 1]
    overlays = (tmp_path / "pred.overlays").iterdir()
    assert sorted(p.name for p in overlays if p.name != ".microprep-output") == [
        "b.png",
        "grid_1_a.png",
    ]
    for source in (out, coco_results_path(out)):
        report = evaluate_instances(source, store)
        assert report.detections == 4 and report.unmatched == 0
        for s in report.scores.values():
            assert s.map == pytest.approx(1.0)


def test_ground_truth_json_file_and_unmatched_names(store: Path, tmp_path: Path) -> None:
    gt = coco_ground_truth(store)
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt), encoding="utf-8")
    records = perfect(gt)
    # another extension matches too; a name outside the ground truth is counted and left out
    records[-1]["file_name"] = "b.tif"
    records.append({**records[0], "file_name": "elsewhere.png"})
    report = evaluate_instances(records, gt_file)
    assert report.unmatched == 1 and report.detections == 4
    assert report.scores["segm"].map == pytest.approx(1.0)
    with pytest.raises(UsageError, match="split"):
        evaluate_instances(records, gt_file, split="val")


def test_region_split_crops_ground_truth_and_whole_image_predictions(store: Path) -> None:
    splits = Splits(
        train=(Region("grid_1_a.png", (0, 0), (18, 48)),),
        val=(Region("grid_1_a.png", (20, 0), (40, 48)), Region("b.png", (0, 0), (16, 16))),
        test=(),
        by="region",
    )
    gt = coco_ground_truth(store, split="val", splits=splits)
    assert [i["file_name"] for i in gt["images"]] == ["grid 1/a.png [20:40, 0:48]", "b.png"]
    assert gt["images"][0]["height"] == 20 and gt["images"][0]["width"] == 48
    # the cut bubble (rows 15..24) keeps rows 20..24, shifted to the region; the disc is whole
    cut = [a for a in gt["annotations"] if a["image_id"] == 1 and a["category_id"] == 1]
    assert len(cut) == 1 and cut[0]["bbox"] == [20.0, 0.0, 6.0, 5.0] and cut[0]["area"] == 30
    assert len(gt["annotations"]) == 3
    # predictions on whole images (all objects, train ones included) are cut to the region
    whole = perfect(coco_ground_truth(store))
    report = evaluate_instances(whole, store, split="val", splits=splits)
    assert report.objects == 3 and report.detections == 3 and report.unmatched == 0
    for s in report.scores.values():
        assert s.map == pytest.approx(1.0)
    assert region_file_name("a.png", splits.val[0]) == "a.png [20:40, 0:48]"


def test_volume_slices_are_images(tmp_path: Path) -> None:
    shape = (3, 10, 12)
    vol = targets("stack", [box_mask(shape, (0, 2), (1, 5), (2, 8))], [3])
    path = write_store(tmp_path / "v.zarr", [vol])
    gt = coco_ground_truth(path)
    assert [i["file_name"] for i in gt["images"]] == ["stack-0.png", "stack-1.png", "stack-2.png"]
    assert [a["image_id"] for a in gt["annotations"]] == [1, 2]
    assert all(a["area"] == 24 for a in gt["annotations"])
    report = evaluate_instances(perfect(gt), gt)
    assert report.scores["segm"].per_class["void"] == pytest.approx(1.0)


def test_bad_requests(store: Path) -> None:
    records = perfect(coco_ground_truth(store))
    with pytest.raises(UsageError, match="iou_types"):
        evaluate_instances(records, store, iou_types=["keypoints"])
    boxes_only = [{k: v for k, v in r.items() if k != "segmentation"} for r in records]
    with pytest.raises(UsageError, match="segmentation"):
        evaluate_instances(boxes_only, store)
    assert evaluate_instances(boxes_only, store, iou_types=["bbox"]).scores["bbox"].map == (
        pytest.approx(1.0)
    )
    with pytest.raises(UsageError, match="no splits file"):
        evaluate_instances(records, store, split="val")


def test_precision_recall_curves_at_iou50(store: Path, tmp_path: Path) -> None:
    from PIL import Image

    from microprep.evaluate.coco_report import RECALLS
    from microprep.evaluate.plots import draw_report

    gt = coco_ground_truth(store)
    half = [r for r in perfect(gt) if r["category_id"] == 2]  # the precipitates only
    report = evaluate_instances(half, store)
    for s in report.scores.values():
        assert len(s.pr50["precipitate"]) == len(RECALLS) == 101
        assert s.pr50["precipitate"] == [1.0] * 101  # every precipitate found, nothing wrong
        assert s.pr50["bubble"] == [0.0] * 101  # bubbles exist but none was detected
    data = report.as_dict()["scores"]["segm"]["precision_at_iou50"]
    assert data["precipitate"][0] == 1.0 and len(data["bubble"]) == 101
    out = draw_report(report, tmp_path / "pr.png")
    with Image.open(out) as picture:
        assert picture.size == (1000, 450)  # two panels: bbox and segm
        assert len(picture.getcolors(1 << 20) or []) > 10  # drawn, not blank
