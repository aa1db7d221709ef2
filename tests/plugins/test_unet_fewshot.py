"""Training on two labelled images: ``--by region`` split, random windows, the small-dataset
augmentation, and ``prep predict --tta``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from microprep.cli.main import main
from microprep.splits import default_splits_path, load_splits
from microprep.training.checkpoint import load_checkpoint
from microprep.training.rundir import RunDir
from training.helpers import learnable_store

FAST = [
    "--device", "cpu", "--batch-size", "4", "--window", "32", "--workers", "0",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1", "-q",
]  # fmt: skip


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = learnable_store(tmp_path_factory.mktemp("few") / "two.zarr", count=2, size=64)
    code = main(["split", str(path), "--by", "region", "--val", "0.25", "--test", "0"])
    assert code == 0
    return path


def test_region_split_of_two_images_carves_validation_from_them(two: Path) -> None:
    splits = load_splits(default_splits_path(two))
    assert len(splits.train) == 2 and len(splits.val) == 2 and not splits.test
    for train in splits.train:
        val = next(r for r in splits.val if r.node == train.node)
        assert not train.overlaps(val)
        # a block of rows of each image: validation about a quarter, training the rest
        assert val.stop[1] - val.start[1] == 64 and 8 <= val.stop[0] - val.start[0] <= 24
        assert train.stop[0] - train.start[0] >= 32


def test_train_two_images_with_random_windows_and_predict_with_tta(
    two: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(["train", "unet", str(two), "--out", str(run), "--epochs", "2", *FAST,
                 "--set", "data.samples_per_epoch=12"])  # fmt: skip
    assert code == 0
    rows = RunDir.open(run).read_metrics()
    assert len(rows) == 2 and "val_iou_macro" in rows[0]
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["data"]["samples_per_epoch"] == 12 and config["data"]["auto_augment"] is True
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    extra = json.loads(best["extra"])
    # 2 images: the small-dataset recipe is on, on top of the default geometry
    assert extra["augment"]["recipe"] == "microscopy" and extra["samples_per_epoch"] == 12
    plain, tta = tmp_path / "plain.zarr", tmp_path / "tta.zarr"
    assert main(["predict", str(run), str(two), "--out", str(plain), "--device", "cpu", "-q",
                 "--probabilities", "--no-overlays"]) == 0  # fmt: skip
    assert main(["predict", str(run), str(two), "--out", str(tta), "--device", "cpu", "-q",
                 "--probabilities", "--no-overlays", "--tta"]) == 0  # fmt: skip
    a = xr.open_datatree(plain, engine="zarr")["img0.png"]["probabilities"].values
    b = xr.open_datatree(tta, engine="zarr")["img0.png"]["probabilities"].values
    assert a.shape == b.shape
    assert not np.allclose(a, b)  # an untrained network is not symmetric
    assert np.allclose(b.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)


def test_auto_augment_off_and_a_bad_tta(
    two: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(["train", "unet", str(two), "--out", str(run), "--epochs", "1", *FAST,
                 "--set", "data.auto_augment=false"])  # fmt: skip
    assert code == 0
    extra = json.loads(load_checkpoint(run / "checkpoints" / "best.pt")["extra"])
    assert "recipe" not in extra["augment"] and extra["augment"]["geometry"] == ["flip", "rot90"]
    code = main(["predict", str(run), str(two), "--out", str(tmp_path / "p.zarr"),
                 "--device", "cpu", "-q", "--tta", "spin"])  # fmt: skip
    assert code == 2 and "--tta" in capsys.readouterr().err
