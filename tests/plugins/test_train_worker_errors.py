"""``prep train``: an exception raised in a DataLoader worker is one line (exit 2); the worker's
traceback appears only with ``-v``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microprep.cli.main import main
from microprep.data.segmentation import SegmentationDataset
from microprep.errors import StoreError
from training.helpers import learnable_store

Capture = pytest.CaptureFixture[str]

ONE_WORKER = [
    "--device", "cpu", "--batch-size", "2", "--window", "32", "--workers", "1", "--epochs", "1",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1", "-q",
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = learnable_store(tmp_path_factory.mktemp("workers") / "d.zarr", count=4, size=32)
    assert main(["split", str(path), "--val", "0.25", "--test", "0", "--by", "image"]) == 0
    return path


def fail_in_the_worker(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Every window the dataset loads raises ``error`` (inside the worker process)."""

    def broken(self: SegmentationDataset, index: int) -> Any:
        raise error

    monkeypatch.setattr(SegmentationDataset, "__getitem__", broken)


def test_a_worker_exception_is_one_line(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    fail_in_the_worker(monkeypatch, ValueError("window (40, 40) does not fit the image"))
    code = main(["train", "unet", str(store), "--out", str(tmp_path / "run"), *ONE_WORKER])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("prep: error: data loading failed: ValueError in DataLoader worker"), err
    assert "window (40, 40) does not fit the image" in err and "-v" in err
    assert "Traceback" not in err


def test_a_worker_prep_error_keeps_its_message(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    fail_in_the_worker(monkeypatch, StoreError("d.zarr: img0.png/labels: chunk is corrupt"))
    code = main(["train", "unet", str(store), "--out", str(tmp_path / "run"), *ONE_WORKER])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err == (
        "prep: error: d.zarr: img0.png/labels: chunk is corrupt (in DataLoader worker process 0)"
    )


def test_verbose_shows_the_worker_traceback(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    fail_in_the_worker(monkeypatch, ValueError("window (40, 40) does not fit the image"))
    code = main(["-v", "train", "unet", str(store), "--out", str(tmp_path / "run"), *ONE_WORKER])
    err = capsys.readouterr().err
    assert code == 2
    assert "Original Traceback" in err and "in broken" in err  # the worker's own frames
    assert err.strip().splitlines()[-1].startswith("prep: error: data loading failed: ValueError")
