"""``sample_data/train-unet-3d.yaml`` runs: one epoch of it, with a reduced budget, on a tiny
volume split along z as the sample stack is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microprep.cli.main import main
from microprep.training.rundir import RunDir
from training.helpers import learnable_volume

RECIPE = Path(__file__).resolve().parents[2] / "sample_data" / "train-unet-3d.yaml"


def test_one_epoch_of_the_3d_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = learnable_volume(tmp_path / "stack.zarr", depth=32, size=64)
    split = ["split", str(store), "--by", "region", "--axis", "z", "--val", "0.5", "--test", "0"]
    assert main([*split, "-q"]) == 0
    run = tmp_path / "run"
    code = main([
        "train", "unet", str(store), "--config", str(RECIPE), "--out", str(run),
        "--epochs", "1", "--device", "cpu", "--workers", "0", "-q",
        "--set", "data.samples_per_epoch=2", "--set", "model.base_filters=4", "--set", "threads=1",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert RunDir.open(run).finished
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["data"]["window"] == [16, 64, 64] and config["model"]["depth"] == 3
    rows = RunDir.open(run).read_metrics()
    assert len(rows) == 1 and float(rows[0]["train_loss"]) > 0
