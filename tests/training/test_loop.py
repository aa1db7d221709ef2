"""The shared training loop, through the tiny plugin: run directory, resume, stopping rules."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from microprep.training.checkpoint import epoch_checkpoints, load_checkpoint
from microprep.training.config import build_config, trainer_schema
from microprep.training.job import TrainJob
from microprep.training.rundir import RunDir

from .helpers import PLUGIN_SOURCE, learnable_store

sys.path.insert(0, str(PLUGIN_SOURCE / "src"))
from microprep_tiny import TinyTrainer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return learnable_store(tmp_path_factory.mktemp("store") / "d.zarr")


def _config(**options: Any) -> dict[str, Any]:
    schema = trainer_schema(TinyTrainer().config_schema())
    base = {"batch_size": 2, "lr": 0.05, "device": "cpu", "data.workers": 0}
    return build_config(schema, options={**base, **options})


class Killed(Exception):
    pass


def _kill_at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Interrupt the run as ``epoch`` starts (as Ctrl-C or a lost machine would)."""
    import microprep.training.loop as loop

    original = loop.set_epoch

    def hook(loader: Any, e: int) -> None:
        if e == epoch:
            raise Killed
        original(loader, e)

    monkeypatch.setattr(loop, "set_epoch", hook)


def _train(store: Path, out: Path, *, resume: bool = False, **options: Any) -> dict[str, Any]:
    config = _config(**options)
    if resume:
        run = RunDir.open(out)
        config = {**run.config, "epochs": config["epochs"]}
    else:
        run = RunDir.create(out, trainer="tiny", dataset=store, config=config)
    job = TrainJob(dataset=store, config=config, run=run, resume=resume, progress=False)
    return TinyTrainer().fit(job)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]  # type: ignore[no-any-return]


def test_run_directory_is_complete(store: Path, tmp_path: Path) -> None:
    summary = _train(store, tmp_path / "run", epochs=3)
    run = RunDir.open(tmp_path / "run")
    assert run.finished and run.read_summary()["epochs_run"] == 3 == summary["epochs_run"]
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"train_loss", "val_accuracy", "lr", "seconds"} <= set(rows[0])
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert run.curves_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run.checkpoints / "best.pt").is_file()
    # keep_checkpoints (2) newest epoch files only
    assert [e for e, _ in epoch_checkpoints(run.checkpoints)] == [2, 3]
    state = load_checkpoint(run.checkpoints / "epoch-0003.pt")
    assert state["epoch"] == 3 and json.loads(state["config"])["epochs"] == 3


def test_resume_gives_the_same_weights(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _train(store, tmp_path / "a", epochs=4)
    with monkeypatch.context() as m:
        _kill_at(m, 3)
        with pytest.raises(Killed):
            _train(store, tmp_path / "b", epochs=4)
    assert not (tmp_path / "b" / "checkpoints" / "epoch-0003.pt").exists()
    assert not RunDir.open(tmp_path / "b").finished
    _train(store, tmp_path / "b", resume=True, epochs=4)
    a = _weights(tmp_path / "a" / "checkpoints" / "epoch-0004.pt")
    b = _weights(tmp_path / "b" / "checkpoints" / "epoch-0004.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a = RunDir.open(tmp_path / "a").read_metrics()
    rows_b = RunDir.open(tmp_path / "b").read_metrics()
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]


def test_resume_falls_back_past_a_tampered_checkpoint(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _train(store, tmp_path / "a", epochs=3, keep_checkpoints=3)
    with monkeypatch.context() as m:
        _kill_at(m, 3)
        with pytest.raises(Killed):
            _train(store, tmp_path / "b", epochs=3, keep_checkpoints=3)
    latest = tmp_path / "b" / "checkpoints" / "epoch-0002.pt"
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    latest.write_bytes(bytes(data))
    # epoch 2 is refused, the run continues from epoch 1 and ends where the clean run ended
    _train(store, tmp_path / "b", resume=True, epochs=3, keep_checkpoints=3)
    a = _weights(tmp_path / "a" / "checkpoints" / "epoch-0003.pt")
    b = _weights(tmp_path / "b" / "checkpoints" / "epoch-0003.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_different_seeds_give_different_weights(store: Path, tmp_path: Path) -> None:
    _train(store, tmp_path / "a", epochs=1, seed=1)
    _train(store, tmp_path / "b", epochs=1, seed=2)
    a = _weights(tmp_path / "a" / "checkpoints" / "epoch-0001.pt")
    b = _weights(tmp_path / "b" / "checkpoints" / "epoch-0001.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_target_metric_and_early_stopping_stop_the_run(store: Path, tmp_path: Path) -> None:
    summary = _train(store, tmp_path / "t", epochs=5, target_metric=0.0)
    assert summary["epochs_run"] == 1 and "target" in summary["stopped"]
    summary = _train(store, tmp_path / "e", epochs=6, lr=1e-9, **{"early_stopping.patience": 1})
    assert summary["epochs_run"] < 6 and "early stopping" in summary["stopped"]


def test_an_existing_run_is_not_overwritten(store: Path, tmp_path: Path) -> None:
    _train(store, tmp_path / "r", epochs=1)
    with pytest.raises(Exception, match="already exists"):
        _train(store, tmp_path / "r", epochs=1)


def test_curve_points_join_validation_epochs() -> None:
    from microprep.training.curves import curve_points

    rows = [
        {"epoch": 1, "train_loss": 1.0, "val_iou_macro": ""},
        {"epoch": 2, "train_loss": 0.8, "val_iou_macro": 0.5},
        {"epoch": 3, "train_loss": 0.7, "val_iou_macro": "nan"},
        {"epoch": 4, "train_loss": 0.6, "val_iou_macro": 0.7},
    ]
    assert curve_points(rows, "val_iou_macro") == ([2.0, 4.0], [0.5, 0.7])
    assert curve_points(rows, "train_loss") == ([1.0, 2.0, 3.0, 4.0], [1.0, 0.8, 0.7, 0.6])
    assert curve_points(rows, "missing") == ([], [])


def test_time_limit_stops_before_an_epoch_that_would_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import microprep.training.stopping as stopping

    monkeypatch.setattr(stopping.time, "monotonic", lambda: 100.0)
    # began at 0 s, this epoch ran from 40 s to 100 s: the next would end near 160 s
    assert stopping.out_of_time(0.0, [60.0], 150.0)  # 100 s used of 150: no room for 60
    assert not stopping.out_of_time(0.0, [60.0], 170.0)
    # the estimate is the mean epoch: [20, 60] -> 40 s, so 100 + 40 fits in 150
    assert not stopping.out_of_time(0.0, [20.0, 60.0], 150.0)


def test_time_limit_in_a_run(store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="microprep.training.loop"):
        summary = _train(store, tmp_path / "run", epochs=4, time_limit_minutes=1e-6)
    assert summary["epochs_run"] == 1 and summary["epochs_planned"] == 4
    assert summary["stopped"].startswith("time limit") and summary["stopped_early"] is True
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stopped after epoch 1 of 4: time limit" in m for m in warned), warned
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["stopped_early"] is True and saved["epochs_planned"] == 4


def test_a_run_that_finishes_is_not_early(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="microprep.training.loop"):
        summary = _train(store, tmp_path / "run", epochs=2)
    assert summary["stopped_early"] is False and summary["epochs_run"] == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_epoch_line_names_epoch_losses_metrics_and_eta() -> None:
    from microprep.training.curves import epoch_line

    row = {"epoch": 3, "lr": 0.1, "train_loss": 0.25, "val_iou_macro": 0.5, "seconds": 12.0}
    line = epoch_line(row, epochs=5, durations=[10.0, 20.0, 30.0])
    assert line.startswith("epoch 3/5: ")
    assert "train_loss 0.2500" in line and "val_iou_macro 0.5000" in line
    assert "lr" not in line and line.endswith("ETA 0 min 40 s")  # mean 20 s x 2 epochs left
