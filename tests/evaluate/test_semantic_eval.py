"""evaluate_semantic: stores and folders, exact scores, matching, splits, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from microprep.errors import InputError, UsageError
from microprep.evaluate import evaluate_semantic, match_key, write_json
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.predict.instances import InstancePrediction
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.write import PredictionWriter
from microprep.splits import Region, Splits, default_splits_path, save_splits
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Raster, Targets

CLASSES = ["background", "pore", "crack"]


def class_maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "grid 1/a.png": rng.integers(0, 3, (6, 8)).astype(np.uint8),
        "b.tif": rng.integers(0, 3, (5, 7)).astype(np.uint8),
        "vol": rng.integers(0, 3, (3, 4, 5)).astype(np.uint8),
    }


def make_truth(path: Path, maps: dict[str, np.ndarray]) -> Path:
    lm = LabelMap((LabelSpec("pore"), LabelSpec("crack")))
    with ZarrSink(path, lm, provenance={"source": "x.xml", "sha256": None}) as sink:
        for name, labels in maps.items():
            frames = 1 if labels.ndim == 2 else labels.shape[0]
            infos = tuple(
                ImageInfo(f"{name}-{k}" if frames > 1 else name, labels.shape[-1], labels.shape[-2])
                for k in range(frames)
            )
            sink.add(Targets(name, infos, labels, Instances.empty(labels.shape), 3), None)
    return path


def make_prediction(path: Path, maps: dict[str, np.ndarray], classes=CLASSES) -> Path:
    writer = PredictionWriter(path, classes=classes, colors=[[0, 0, 0]] * len(classes),
                              kind="semantic")  # fmt: skip
    for name, labels in maps.items():
        node = writer.begin(name, labels.shape, probabilities=None)
        onehot = np.stack([labels == c for c in range(len(classes))]).astype(np.float32)
        writer.write_rows(node, 0, labels.shape[0], onehot)
        writer.finish_node(node)
    writer.close()
    return path


def write_folder(folder: Path, maps: dict[str, np.ndarray], suffix: str = ".png") -> Path:
    for name, labels in maps.items():
        stem = name.rsplit(".", 1)[0] if "." in name.split("/")[-1] else name
        target = folder / (stem + (suffix if labels.ndim == 2 else ".tif"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if labels.ndim == 2 and suffix == ".png":
            Image.fromarray(labels).save(target)
        else:
            tifffile.imwrite(target, labels, photometric="minisblack")
    return folder


def test_perfect_prediction_scores_one(tmp_path: Path) -> None:
    maps = class_maps()
    truth = make_truth(tmp_path / "gt.zarr", maps)
    pred = make_prediction(tmp_path / "pred.zarr", maps)
    report = evaluate_semantic(pred, truth)
    assert report.scores.iou.tolist() == [1.0, 1.0, 1.0]
    assert report.scores.macro_iou == 1.0 and report.scores.micro_f1 == 1.0
    assert report.pixels == sum(m.size for m in maps.values())
    assert [image.name for image in report.images] == list(maps)
    assert report.class_names == CLASSES


def test_one_wrong_pixel_gives_the_exact_iou(tmp_path: Path) -> None:
    maps = {"a.png": np.zeros((4, 5), np.uint8)}
    maps["a.png"][1:3, 1:3] = 1  # 4 pore pixels, 16 background
    truth = make_truth(tmp_path / "gt.zarr", maps)
    wrong = maps["a.png"].copy()
    wrong[0, 0] = 1  # one background pixel predicted as pore
    pred = make_prediction(tmp_path / "pred.zarr", {"a.png": wrong})
    report = evaluate_semantic(pred, truth)
    assert report.scores.iou[1] == pytest.approx(4 / 5)
    assert report.scores.iou[0] == pytest.approx(15 / 16)
    assert np.isnan(report.scores.iou[2])
    assert report.scores.macro_iou == pytest.approx((15 / 16 + 4 / 5) / 2)
    no_bg = evaluate_semantic(pred, truth, include_background=False)
    assert no_bg.scores.macro_iou == pytest.approx(4 / 5)
    assert no_bg.scores.micro_iou == pytest.approx(4 / 5)


def test_png_folder_ground_truth_and_prediction_folder(tmp_path: Path) -> None:
    maps = class_maps()
    truth = write_folder(tmp_path / "gt", maps)
    pred_maps = {k: v.copy() for k, v in maps.items()}
    pred_maps["b.tif"][0, 0] = (maps["b.tif"][0, 0] + 1) % 3
    pred = write_folder(tmp_path / "pred", pred_maps, suffix=".tif")  # TIFFs match PNGs by name
    report = evaluate_semantic(pred, truth)
    cm = report.scores.confusion
    assert cm.sum() == sum(m.size for m in maps.values())
    assert cm.sum() - np.trace(cm) == 1
    store_pred = make_prediction(tmp_path / "pred.zarr", maps)
    assert evaluate_semantic(store_pred, truth).scores.micro_iou == 1.0


def test_unmatched_names_are_listed(tmp_path: Path) -> None:
    maps = class_maps()
    truth = make_truth(tmp_path / "gt.zarr", maps)
    partial = {"grid 1/a.png": maps["grid 1/a.png"], "other.png": maps["b.tif"]}
    pred = make_prediction(tmp_path / "pred.zarr", partial)
    with pytest.raises(UsageError) as info:
        evaluate_semantic(pred, truth)
    message = str(info.value)
    assert "'b.tif'" in message and "'vol'" in message and "'other.png'" in message


def test_shape_mismatch_names_both(tmp_path: Path) -> None:
    truth = make_truth(tmp_path / "gt.zarr", {"a.png": np.zeros((4, 5), np.uint8)})
    pred = make_prediction(tmp_path / "pred.zarr", {"a.png": np.zeros((5, 4), np.uint8)})
    with pytest.raises(UsageError, match=r"pred.zarr.*\(5, 4\).*gt.zarr.*\(4, 5\)"):
        evaluate_semantic(pred, truth)


def test_classes_must_agree_and_indices_fit(tmp_path: Path) -> None:
    maps = {"a.png": np.zeros((4, 5), np.uint8)}
    truth = make_truth(tmp_path / "gt.zarr", maps)
    pred = make_prediction(tmp_path / "p.zarr", maps, classes=["background", "x", "y"])
    with pytest.raises(UsageError, match="classes differ"):
        evaluate_semantic(pred, truth)
    bad = {"a.png": np.full((4, 5), 7, np.uint8)}
    folder = write_folder(tmp_path / "bad", bad)
    with pytest.raises(UsageError, match="class index 7"):
        evaluate_semantic(folder, truth)


def test_split_restricts_to_its_regions(tmp_path: Path) -> None:
    maps = {"a.png": np.zeros((6, 4), np.uint8), "b.png": np.ones((3, 3), np.uint8)}
    truth = make_truth(tmp_path / "gt.zarr", maps)
    pred_a = maps["a.png"].copy()
    pred_a[0, 0] = 1  # an error in the train rows
    pred_a[4, 1] = 2  # an error in the val rows
    pred = make_prediction(tmp_path / "p.zarr", {"a.png": pred_a, "b.png": maps["b.png"]})
    splits = Splits(
        train=(Region("a.png", (0, 0), (3, 4)),),
        val=(Region("a.png", (3, 0), (6, 4)),),
        test=(Region("b.png", (0, 0), (3, 3)),),
        by="region",
    )
    save_splits(splits, default_splits_path(truth))
    report = evaluate_semantic(pred, truth, split="val")
    assert report.pixels == 12  # rows 3..5 of a.png only
    assert report.scores.confusion[0, 2] == 1 and report.scores.confusion[0, 1] == 0
    assert [image.name for image in report.images] == ["a.png"]
    test = evaluate_semantic(pred, truth, split="test")
    assert test.pixels == 9 and test.scores.iou[1] == 1.0
    with pytest.raises(UsageError, match="no split"):
        evaluate_semantic(pred, truth, split="holdout")
    folder = write_folder(tmp_path / "gt_png", maps)
    with pytest.raises(UsageError, match="dataset store"):
        evaluate_semantic(pred, folder, split="val")


def test_missing_splits_file_is_a_clear_error(tmp_path: Path) -> None:
    maps = {"a.png": np.zeros((2, 2), np.uint8)}
    truth = make_truth(tmp_path / "gt.zarr", maps)
    pred = make_prediction(tmp_path / "p.zarr", maps)
    with pytest.raises(UsageError, match="prep split"):
        evaluate_semantic(pred, truth, split="val")


def test_bad_inputs(tmp_path: Path) -> None:
    truth = make_truth(tmp_path / "gt.zarr", {"a.png": np.zeros((2, 2), np.uint8)})
    with pytest.raises(InputError, match="does not exist"):
        evaluate_semantic(tmp_path / "nothing", truth)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="must be"):
        evaluate_semantic(tmp_path / "file.txt", truth)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(rgb / "a.png")
    with pytest.raises(InputError, match="not a class-index image"):
        evaluate_semantic(rgb, truth)


def test_instance_prediction_scores_the_merged_objects(tmp_path: Path) -> None:
    truth_map = np.zeros((8, 8), np.uint8)
    truth_map[1:4, 1:4] = 1  # one pore
    truth_map[5:7, 5:8] = 2  # one crack, never found
    truth = make_truth(tmp_path / "gt.zarr", {"a.png": truth_map})
    # the pore found as two objects whose union is exactly the pore
    left, right = np.ones((3, 2), bool), np.ones((3, 1), bool)
    pred = InstancePrediction.from_rasters(
        (8, 8), [Raster((1, 1), left), Raster((1, 3), right)], labels=[1, 1], scores=[0.9, 0.8]
    )
    out = tmp_path / "inst.zarr"
    write_instance_predictions([PredictedImage("a.png", pred)], out, classes=CLASSES,
                               colors=[[0, 0, 0]] * 3, coco=False, overlays=False)  # fmt: skip
    report = evaluate_semantic(out, truth)
    per_class = report.as_dict()["per_class"]
    assert per_class["pore"]["iou"] == 1.0  # merged IoU: the two objects together
    assert per_class["crack"]["iou"] == 0.0


def test_report_json_round_trip(tmp_path: Path) -> None:
    maps = class_maps()
    truth = make_truth(tmp_path / "gt.zarr", maps)
    pred = make_prediction(tmp_path / "p.zarr", maps)
    report = evaluate_semantic(pred, truth, include_background=False)
    data = json.loads(report.to_json())
    assert data["kind"] == "semantic" and data["images"] == 3
    assert data["macro"]["iou"] == 1.0 and data["include_background"] is False
    assert [item["name"] for item in data["per_image"]] == list(maps)
    path = write_json(report.as_dict(), tmp_path / "out" / "scores.json")
    assert json.loads(path.read_text(encoding="utf-8")) == data
    assert "macro" in report.table() and "3 images" in report.table()


def test_match_key() -> None:
    assert match_key("grid 1/a.png") == match_key("grid 1/a.tif") == "grid 1/a"
    assert match_key("vol") == "vol"


def test_plot_of_a_semantic_report(tmp_path: Path) -> None:
    from PIL import Image

    from microprep.evaluate.plots import draw_semantic
    from microprep.evaluate.report import SemanticReport
    from microprep.metrics import SegmentationScores

    confusion = np.array([[90, 10, 0], [5, 45, 0], [0, 0, 0]])
    scores = SegmentationScores.from_confusion(confusion)
    report = SemanticReport(scores, ["background", "pore", "crack"], "p.zarr", "t.zarr", "val")
    out = draw_semantic(report, tmp_path / "sub" / "s.png")
    with Image.open(out) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    assert rgb.shape[1] > rgb.shape[0] > 300
    # drawn: the dark blue of the 0.9 cell is there, not only white paper and black text
    blue = (rgb[..., 2] > 100) & (rgb[..., 0] < 60)
    assert blue.sum() > 1000
    assert not list(out.parent.glob(".s.png.tmp-*"))
