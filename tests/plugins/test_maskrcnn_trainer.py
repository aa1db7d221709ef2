"""The ``maskrcnn`` trainer: ``prep train`` / ``prep predict`` / ``prep evaluate`` on a tiny store,
and the COCO validation of detections."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from numpy.typing import NDArray
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
plugin_module = pytest.importorskip("microprep_maskrcnn.plugin")

import microprep_maskrcnn.validation as validation_module  # noqa: E402
from crops.helpers import disk, instances_from_masks  # noqa: E402
from microprep.cli.main import main  # noqa: E402
from microprep.model import ImageInfo, LabelMap, LabelSpec  # noqa: E402
from microprep.predict.instances_read import read_instance_predictions  # noqa: E402
from microprep.predict.write import read_prediction_attrs  # noqa: E402
from microprep.store import ZarrSink  # noqa: E402
from microprep.targets.types import Targets  # noqa: E402
from microprep.training.checkpoint import BEST, load_checkpoint  # noqa: E402
from microprep.training.rundir import RunDir  # noqa: E402
from microprep.training.runtime import Precision  # noqa: E402
from microprep_maskrcnn.model import build_model  # noqa: E402
from microprep_maskrcnn.validation import evaluate_detector  # noqa: E402

WINDOW = 128
#: Few proposals and detections keep a ResNet-50 Mask R-CNN fast enough on a CPU.
FAST = [
    "--device", "cpu", "--batch-size", "1", "--workers", "0", "--window", str(WINDOW), "-q",
    "--set", "threads=1", "--set", "optimizer=sgd",
    "--set", "model.box_detections_per_img=4", "--set", "model.rpn_pre_nms_top_n_train=100",
    "--set", "model.rpn_post_nms_top_n_train=50", "--set", "model.rpn_pre_nms_top_n_test=50",
    "--set", "model.rpn_post_nms_top_n_test=20", "--set", "model.box_batch_size_per_image=32",
]  # fmt: skip


def synthetic_image(
    size: int, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], list[NDArray[np.bool_]], list[int]]:
    """A gray image with bright disks (class 1) and dimmer disks (class 2) on a dark ground."""
    class_map = np.zeros((size, size), np.uint8)
    image = np.full((size, size), 60.0)
    masks, labels = [], []
    for j in range(3 * size // 64):
        centre = tuple(float(v) for v in rng.integers(12, size - 12, 2))
        mask = disk((size, size), centre, float(rng.uniform(5, 10))) & (class_map == 0)
        if mask.sum() < 20:
            continue
        label = 1 + j % 2
        masks.append(mask)
        labels.append(label)
        class_map[mask] = label
        image[mask] = 200 if label == 1 else 130
    noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    return noisy, class_map, masks, labels


def instance_store(path: Path, *, count: int = 2, size: int = WINDOW) -> Path:
    rng = np.random.default_rng(0)
    label_map = LabelMap((LabelSpec("pore"), LabelSpec("grain")))
    with ZarrSink(path, label_map, provenance={"source": "synthetic", "sha256": None}) as sink:
        for k in range(count):
            image, class_map, masks, labels = synthetic_image(size, rng)
            name = f"img{k}.png"
            objects = instances_from_masks(masks, labels)
            sink.add(Targets(name, (ImageInfo(name, size, size),), class_map, objects, 3), image)
    return path


def starting_weights(path: Path) -> Path:
    """A local Mask R-CNN weights file: random weights with batch norm statistics measured on
    random input, so the frozen batch norm of a model started from it keeps activations
    bounded."""
    torch.manual_seed(0)
    net = build_model(num_classes=2, min_size=64)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batches seen
    net.train()
    with torch.no_grad():
        net.backbone(torch.randn(2, 3, 64, 64))
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``(store, run)``: one training step and one validation at 128 px."""
    threads = torch.get_num_threads()
    folder = tmp_path_factory.mktemp("maskrcnn")
    store = instance_store(folder / "d.zarr")
    assert main(["split", str(store), "--val", "0.5", "--test", "0", "--by", "image", "-q"]) == 0
    weights = starting_weights(folder / "start.pt")
    run = folder / "run"
    # a tiny learning rate keeps the starting network's detections, so that prediction has
    # scored objects to merge and write
    code = main(["train", "maskrcnn", str(store), "--out", str(run), "--epochs", "1",
                 "--lr", "1e-9", *FAST, "--weights", str(weights),
                 "--set", "model.trainable_backbone_layers=0",
                 "--set", "data.geometry=flip", "--set", "data.noise=gaussian"])  # fmt: skip
    assert code == 0
    yield store, run
    torch.set_num_threads(threads)


def test_the_trainer_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--list"]) == 0
    assert "maskrcnn" in capsys.readouterr().out


def test_training_writes_a_complete_run(trained: tuple[Path, Path]) -> None:
    _, run = trained
    rows = RunDir.open(run).read_metrics()
    assert len(rows) == 1
    names = {f"val_{k}" for k in validation_module.METRICS} | {"val_loss", "train_loss"}
    assert names <= set(rows[0])
    assert math.isfinite(float(rows[0]["train_loss"]))
    for key in validation_module.METRICS:
        assert 0.0 <= float(rows[0][f"val_{key}"]) <= 1.0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trainer"] == "maskrcnn" and summary["monitor"] == "segm_ap50"
    assert summary["epochs_run"] == 1
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["model"]["variant"] == "v1" and config["model"]["min_size"] is None
    state = load_checkpoint(run / "checkpoints" / BEST)
    extra = json.loads(state["extra"])
    assert extra["classes"] == ["background", "pore", "grain"]
    assert extra["in_channels"] == 1 and extra["window"] == [WINDOW, WINDOW]
    assert (extra["min_size"], extra["max_size"]) == (WINDOW, WINDOW)  # crops kept 1:1
    assert extra["frozen_batch_norm"] is True and extra["variant"] == "v1"
    # three output classes; the backbone came from the weights file (and stayed frozen)
    assert state["model"]["roi_heads.box_predictor.cls_score.weight"].shape[0] == 3
    start = torch.load(extra["weights"], weights_only=True)
    for key in ("backbone.body.conv1.weight", "backbone.body.layer4.0.bn1.running_var"):
        assert torch.equal(state["model"][key], start[key])


def test_predict_an_image_twice_the_window(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = trained
    image, *_ = synthetic_image(2 * WINDOW, np.random.default_rng(5))
    source = tmp_path / "big.png"
    Image.fromarray(image).save(source)
    out = tmp_path / "pred.zarr"
    code = main(["predict", str(run), str(source), "--out", str(out), "--device", "cpu",
                 "--score-threshold", "0", "-q"])  # fmt: skip
    assert code == 0
    [(name, pred)] = list(read_instance_predictions(out))
    assert name == "big.png" and pred.shape == (2 * WINDOW, 2 * WINDOW)
    assert len(pred) > 0 and set(pred.labels.tolist()) <= {1, 2}
    attrs = read_prediction_attrs(out)
    assert attrs["kind"] == "instances" and attrs["classes"] == ["background", "pore", "grain"]
    assert attrs["run"]["trainer"] == "maskrcnn" and attrs["run"]["window"] == [WINDOW, WINDOW]
    records = json.loads((tmp_path / "pred.coco.json").read_text())
    assert len(records) == len(pred)
    assert all(r["file_name"] == "big.png" for r in records)
    assert all(r["segmentation"]["size"] == [2 * WINDOW, 2 * WINDOW] for r in records)
    overlays = (tmp_path / "pred.overlays").iterdir()
    assert [p.suffix for p in overlays if p.name != ".microprep-output"] == [".png"]


def test_evaluate_the_predictions_of_the_store(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, run = trained
    out = tmp_path / "pred.zarr"
    code = main(["predict", str(run), str(store), "--out", str(out), "--device", "cpu",
                 "--score-threshold", "0", "--no-overlays", "-q"])  # fmt: skip
    assert code == 0
    assert not (tmp_path / "pred.overlays").exists()
    assert [name for name, _ in read_instance_predictions(out)] == ["img0.png", "img1.png"]
    capsys.readouterr()
    code = main(["evaluate", str(out), str(store), "--split", "val", "--json",
                 str(tmp_path / "scores.json")])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "split 'val': 1 images" in text and "mAP 0.50:0.95" in text and "grain" in text
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["kind"] == "instances" and scores["images"] == 1 and scores["objects"] > 0


def test_truth_outlines_the_stores_objects(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from microprep.predict.truth import TRUTH_COLOR, truth_edges
    from microprep.store import open_dataset

    store, run = trained
    args = ["predict", str(run), str(store), "--device", "cpu", "--score-threshold", "0", "-q"]
    assert main([*args, "--out", str(tmp_path / "p.zarr"), "--truth"]) == 0
    dataset = open_dataset(store)
    truth = np.asarray(dataset[dataset.nodes[0]]["instances"])
    dataset.close()
    picture = np.array(Image.open(tmp_path / "p.overlays" / "img0.png").convert("RGB"))
    factor = -(-256 // WINDOW)  # small overlays are enlarged to 256 px
    body = picture[
        20 : 20 + WINDOW * factor : factor, : WINDOW * factor : factor
    ]  # below the title
    white = np.all(body == TRUTH_COLOR, axis=-1)
    assert np.array_equal(white & truth_edges(truth), truth_edges(truth))


def test_a_volume_cannot_be_predicted(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = trained
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((3, 32, 32), np.uint8), photometric="minisblack")
    code = main(["predict", str(run), str(stack), "--out", str(tmp_path / "p.zarr"), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "2D images" in err and "stack.tif" in err and "Traceback" not in err
    assert not (tmp_path / "p.zarr").exists()


def test_missing_weights_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = instance_store(tmp_path / "d.zarr", count=1, size=32)
    code = main(["train", "maskrcnn", str(store), "--out", str(tmp_path / "r"), *FAST,
                 "--set", "model.weights=/nonexistent/maskrcnn.pth",
                 "--set", "data.train_split=null", "--set", "data.val_split=null"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "model.weights" in err and "/nonexistent/maskrcnn.pth: not found" in err
    assert "downloaded" in err and "Traceback" not in err


def test_weights_option_sets_model_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = instance_store(tmp_path / "d.zarr", count=1, size=32)
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not read by --print-config")
    code = main(["train", "maskrcnn", str(store), "--weights", str(weights), "--print-config"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["model"]["weights"] == str(weights)
    code = main(["train", "unet", str(store), "--weights", str(weights), "--print-config"])
    assert code == 2
    assert "'unet' takes no starting weights" in capsys.readouterr().err


def test_unknown_monitor_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = instance_store(tmp_path / "d.zarr", count=1, size=32)
    code = main(["train", "maskrcnn", str(store), "--set", "monitor=iou_macro", "--print-config"])
    assert code == 2 and "$.monitor" in capsys.readouterr().err


# -- COCO validation of detections, with a stand-in detector


class Replay(torch.nn.Module):
    """Eval mode: the given outputs, one per image in order. Train mode: a loss of 2.0, after
    passing noise through a batch norm layer (which must stay in eval mode)."""

    def __init__(self, outputs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.outputs = outputs
        self.norm = torch.nn.BatchNorm2d(1)
        self.calls = 0

    def forward(self, images: list[Any], targets: Any = None) -> Any:
        if self.training:
            assert targets is not None and not self.norm.training
            self.norm(torch.randn(2, 1, 4, 4) * 5 + 3)
            return {"loss_a": torch.tensor(1.5), "loss_b": torch.tensor(0.5)}
        out = self.outputs[self.calls : self.calls + len(images)]
        self.calls += len(images)
        return out


def window_target(index: int, boxes: list[tuple[int, int, int, int]], labels: list[int]) -> Any:
    masks = torch.zeros((len(boxes), 32, 32), dtype=torch.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = 1
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": masks,
        "image_id": torch.tensor(index),
    }


def as_detections(target: Any, score: float) -> dict[str, Any]:
    n = len(target["labels"])
    return {
        "boxes": target["boxes"].clone(),
        "labels": target["labels"].clone(),
        "scores": torch.full((n,), score),
        "masks": target["masks"][:, None].float() * 0.9,
    }


def batches() -> list[Any]:
    """Two batches: windows 0 and 1 with objects, window 2 without (a negative)."""
    t0 = window_target(0, [(2, 2, 10, 12), (15, 15, 30, 28)], [1, 2])
    t1 = window_target(1, [(5, 20, 16, 31)], [1])
    t2 = window_target(2, [], [])
    images = [torch.zeros(1, 32, 32) for _ in range(3)]
    return [(images[:2], [t0, t1]), (images[2:], [t2])]


def run_validation(outputs: list[dict[str, Any]], **kwargs: Any) -> dict[str, float]:
    model = Replay(outputs)
    before = model.norm.running_mean.clone()
    precision = Precision("off", torch.device("cpu"))
    scores = evaluate_detector(
        model, batches(), torch.device("cpu"), precision, classes=("bg", "a", "b"), **kwargs
    )
    assert torch.equal(model.norm.running_mean, before)  # validation left batch norm alone
    return scores


def test_perfect_detections_score_one() -> None:
    targets = [t for _, ts in batches() for t in ts]
    scores = run_validation([as_detections(t, 0.9) for t in targets])
    for key in validation_module.METRICS:
        assert scores[key] == pytest.approx(1.0), key
    assert scores["loss"] == pytest.approx(2.0)


def test_detections_on_an_empty_window_are_false_positives() -> None:
    targets = [t for _, ts in batches() for t in ts]
    outputs = [as_detections(t, 0.9) for t in targets]
    # a confident class-1 detection on the window without objects
    outputs[2] = as_detections(window_target(2, [(0, 0, 8, 8)], [1]), 0.95)
    assert run_validation(outputs)["segm_ap50"] < 0.99
    # below score_threshold it is left out
    outputs[2] = as_detections(window_target(2, [(0, 0, 8, 8)], [1]), 0.04)
    assert run_validation(outputs, score_threshold=0.05)["segm_ap50"] == pytest.approx(1.0)


def test_no_detections_score_zero_and_no_objects_score_nan() -> None:
    empty = as_detections(window_target(0, [], []), 0.5)
    scores = run_validation([empty] * 3, loss=False)
    assert scores["segm_ap"] == 0.0 and scores["bbox_ap50"] == 0.0 and "loss" not in scores
    model = Replay([empty])
    nothing = [([torch.zeros(1, 32, 32)], [window_target(0, [], [])])]
    precision = Precision("off", torch.device("cpu"))
    out = evaluate_detector(model, nothing, torch.device("cpu"), precision, classes=("bg", "a"))
    assert math.isnan(out["segm_ap"]) and math.isnan(out["bbox_ap"])
