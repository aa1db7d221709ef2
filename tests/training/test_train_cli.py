"""``prep train`` / ``prep predict`` with a third-party plugin installed by pip, and torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microprep.training.rundir import RunDir

from .helpers import install_plugin, learnable_store

PREP = [sys.executable, "-m", "microprep.cli.main"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = install_plugin(tmp_path_factory.mktemp("site"))
    assert (target / "microprep_tiny" / "__init__.py").is_file()
    return {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return learnable_store(tmp_path_factory.mktemp("store") / "d.zarr")


def _prep(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREP, *args], env=env, capture_output=True, text=True, timeout=300)


def test_list_reports_the_broken_plugin_and_keeps_the_others(
    env: dict[str, str], store: Path
) -> None:
    result = _prep(env, "train", "--list")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "two-layer" in lines["tiny"]
    assert "BROKEN" in lines["broken"] and "not installed" in lines["broken"]
    result = _prep(env, "train", "broken", str(store))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "failed to load" in result.stderr


def test_train_then_predict_through_the_cli(
    env: dict[str, str], store: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = _prep(
        env, "train", "tiny", str(store), "--out", str(run), "--epochs", "2",
        "--batch-size", "2", "--device", "cpu", "--set", "model.hidden=3", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((run / "config.json").read_text())
    assert record["trainer"] == "tiny" and record["config"]["model"]["hidden"] == 3
    assert RunDir.open(run).finished and (run / "curves.png").is_file()
    result = _prep(env, "predict", str(run), str(store), "--out", str(tmp_path / "p"), "-q")
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "p" / "labels.npy").shape == (4, 32, 32)
    # a second run into the same folder is refused; --resume of a finished run is a no-op
    again = _prep(env, "train", "tiny", str(store), "--out", str(run), "-q")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_bad_config_and_unknown_trainer_exit_2(
    env: dict[str, str], store: Path, tmp_path: Path
) -> None:
    result = _prep(env, "train", "nope", str(store))
    assert result.returncode == 2 and "no trainer named 'nope'" in result.stderr
    assert "tiny" in result.stderr
    result = _prep(env, "train", "tiny", str(store), "--set", "model.hidden=0")
    assert result.returncode == 2 and "$.model.hidden" in result.stderr
    assert not list(tmp_path.iterdir())


def test_torchrun_two_cpu_processes(env: dict[str, str], store: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    scratch = tmp_path / "tmp"  # torchrun's own temporary folders go here, not to /tmp
    scratch.mkdir()
    result = subprocess.run(
        [
            str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "microprep.cli.main",
            "train", "tiny", str(store), "--out", str(run), "--epochs", "2",
            "--batch-size", "1", "--device", "cpu", "-q",
        ],
        env={**env, "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = RunDir.open(run).read_summary()
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    assert summary["device"] == "cpu"


def test_redirected_output_gets_a_line_per_epoch_and_a_loud_early_stop(
    env: dict[str, str], store: Path, tmp_path: Path
) -> None:
    common = ["--batch-size", "2", "--device", "cpu", "--set", "model.hidden=3"]
    result = _prep(env, "train", "tiny", str(store), "--out", str(tmp_path / "a"),
                   "--epochs", "2", *common)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == [
        "epoch 1/2",
        "epoch 2/2",
    ]
    assert all("ETA" in line for line in lines if line.startswith("epoch "))
    assert "2 of 2 epochs (all epochs done)" in result.stdout.splitlines()[-1]
    # a run cut by its time limit says so in a warning, in summary.json and in its last line
    result = _prep(env, "train", "tiny", str(store), "--out", str(tmp_path / "b"),
                   "--epochs", "3", "--set", "time_limit_minutes=1e-06", *common)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "stopped after epoch 1 of 3" in result.stderr
    assert (
        result.stdout.splitlines()[-1]
        .split(": ", 1)[1]
        .startswith("STOPPED EARLY after 1 of 3 epochs (time limit")
    )
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["stopped_early"] is True and summary["epochs_planned"] == 3
    # -q: no epoch lines, no closing line
    result = _prep(env, "train", "tiny", str(store), "--out", str(tmp_path / "c"),
                   "--epochs", "1", "-q", *common)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" not in result.stderr and result.stdout == ""
