"""``prep train unet`` end to end on a tiny store: split, train, resume, predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr

import microprep
from microprep.cli.main import main
from microprep.training.rundir import RunDir
from training.helpers import learnable_store, learnable_volume

FAST = [
    "--device", "cpu", "--batch-size", "4", "--window", "32", "--workers", "0",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1",
    "--set", "data.geometry=flip,rot90", "--set", "data.noise=gaussian", "-q",
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = learnable_store(tmp_path_factory.mktemp("unet") / "d.zarr", count=4, size=48)
    assert main(["split", str(path), "--val", "0.25", "--test", "0", "--by", "image"]) == 0
    return path


def test_the_unet_trainer_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--list"]) == 0
    assert "unet" in capsys.readouterr().out


def test_train_predict_on_a_tiny_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(["train", "unet", str(store), "--out", str(run), "--epochs", "3", "--lr", "0.01",
                 *FAST])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = RunDir.open(run).read_metrics()
    assert len(rows) == 3 and {"val_iou_macro", "val_f1_macro", "val_iou_micro"} <= set(rows[0])
    assert 0.0 <= float(rows[-1]["val_iou_macro"]) <= 1.0
    # per-class IoU columns carry the class index and name
    classes = microprep.open_dataset(store).classes
    assert {f"val_iou_{k}_{name}" for k, name in enumerate(classes)} <= set(rows[0])
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["model"]["depth"] == 2 and config["loss"]["class_weights"] == "inverse_sqrt"
    pred = tmp_path / "pred.zarr"
    code = main(["predict", str(run), str(store), "--out", str(pred), "--device", "cpu", "-q"])
    assert code == 0, capsys.readouterr().err
    tree = xr.open_datatree(pred, engine="zarr")
    labels = tree["img0.png"]["labels"].values
    assert labels.shape == (48, 48) and labels.max() < 3
    assert any(pred.parent.glob("pred*overlays*/*.png"))
    scores = tmp_path / "scores.json"
    code = main(["evaluate", str(pred), str(store), "--split", "val", "--json", str(scores)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(scores.read_text())
    assert 0.0 <= report["macro"]["iou"] <= 1.0 and "bright" in report["per_class"]


def test_missing_splits_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = learnable_store(tmp_path / "nosplit.zarr", count=2, size=32)
    code = main(["train", "unet", str(path), "--out", str(tmp_path / "r"), *FAST])
    assert code == 2 and "prep split" in capsys.readouterr().err


def test_window_not_a_multiple_of_the_depth_is_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "unet", str(store), "--out", str(tmp_path / "r"), *FAST,
                 "--set", "model.depth=4", "--set", "data.window=36"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "36" in err and "Traceback" not in err


def test_3d_unet_trains_and_predicts_a_volume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = learnable_volume(tmp_path / "v.zarr")
    run, pred = tmp_path / "run3d", tmp_path / "pred3d.zarr"
    code = main([
        "train", "unet", str(store), "--out", str(run), "--epochs", "2", "--device", "cpu",
        "--batch-size", "2", "--window", "8", "--workers", "0", "-q",
        "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "data.stride=4",
        "--set", "data.train_split=null", "--set", "data.val_split=null",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    summary = RunDir.open(run).read_summary()
    assert summary["monitor"] == "train_loss" and summary["epochs_run"] == 2
    code = main(["predict", str(run), str(store), "--out", str(pred), "--device", "cpu", "-q"])
    assert code == 0, capsys.readouterr().err
    labels = xr.open_datatree(pred, engine="zarr")["vol"]["labels"]
    assert labels.dims == ("z", "y", "x") and labels.shape == (16, 16, 16)


def test_train_on_an_augmented_store_validate_on_the_source(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AUG.zarr of the train split trains; the source store's val split validates."""
    aug = tmp_path / "aug.zarr"
    code = main(["augment", str(store), "--noise", "poisson", "--geometry", "flip",
                 "--split", "train", "--copies", "2", "--out", str(aug), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "run"
    code = main(["train", "unet", str(aug), "--out", str(run), "--epochs", "1",
                 "--set", "data.train_split=null", "--set", f"data.val_dataset={store}",
                 *FAST])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = RunDir.open(run).read_metrics()
    assert "val_iou_macro" in rows[0] and 0.0 <= float(rows[0]["val_iou_macro"]) <= 1.0
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["data"]["val_dataset"] == str(store)
    # the AUG.zarr has no splits file: asking for its train split is a clear error
    code = main(["train", "unet", str(aug), "--out", str(tmp_path / "r2"), "--epochs", "1",
                 "--set", f"data.val_dataset={store}", *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no splits file" in err and "data.train_split to null" in err


def test_3d_unet_with_an_anisotropic_window_and_the_default_geometry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the cube symmetries would turn an 8x16x16 window into 16x8x16 (and the batch could not be
    # stacked): only those that keep the window's shape apply
    store = learnable_volume(tmp_path / "v.zarr")
    run, pred = tmp_path / "run", tmp_path / "pred.zarr"
    code = main([
        "train", "unet", str(store), "--out", str(run), "--epochs", "1", "--device", "cpu",
        "--batch-size", "4", "--window", "8,16,16", "--workers", "0", "-q",
        "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "data.stride=4",
        "--set", "data.geometry=flip,rot90",
        "--set", "data.train_split=null", "--set", "data.val_split=null",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert RunDir.open(run).config["data"]["window"] == [8, 16, 16]
    code = main(["predict", str(run), str(store), "--out", str(pred), "--device", "cpu",
                 "--window", "8,16,16", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    labels = xr.open_datatree(pred, engine="zarr")["vol"]["labels"]
    assert labels.shape == (16, 16, 16)
