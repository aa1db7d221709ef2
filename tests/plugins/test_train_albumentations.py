"""``prep train`` with the user's own albumentations pipeline (``data.albumentations``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microprep.cli.main import main
from microprep.training.rundir import RunDir
from training.helpers import learnable_store

A = pytest.importorskip("albumentations")

FAST = [
    "--device", "cpu", "--batch-size", "4", "--window", "32", "--workers", "0", "--epochs", "1",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1", "-q",
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = learnable_store(tmp_path_factory.mktemp("albu") / "d.zarr", count=4, size=48)
    assert main(["split", str(path), "--val", "0.25", "--test", "0", "--by", "image"]) == 0
    return path


def test_train_with_a_saved_pipeline(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = tmp_path / "pipeline.json"
    A.save(
        A.Compose(
            [
                A.HorizontalFlip(p=0.5),
                A.RandomBrightnessContrast(p=0.5),
                A.Affine(translate_px=(-4, 4), fill_mask=255, p=0.5),
            ]
        ),
        str(pipeline),
    )
    run = tmp_path / "run"
    code = main(["train", "unet", str(store), "--out", str(run), *FAST,
                 "--set", f"data.albumentations={pipeline}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert len(RunDir.open(run).read_metrics()) == 1
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["data"]["albumentations"] == str(pipeline)


def test_the_pipeline_of_the_file_is_the_one_applied(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a pipeline that resizes the window cannot be batched: the run stops with that reason
    pipeline = tmp_path / "resize.yaml"
    A.save(A.Compose([A.Resize(16, 16)]), str(pipeline), data_format="yaml")
    code = main(["train", "unet", str(store), "--out", str(tmp_path / "r"), *FAST,
                 "--set", f"data.albumentations={pipeline}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "keep the window's size" in err and "Traceback" not in err


@pytest.mark.parametrize("content", [None, '{"transform": 1}'])
def test_a_missing_or_bad_pipeline_file_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    pipeline = tmp_path / "pipeline.json"
    if content is not None:
        pipeline.write_text(content)
    code = main(["train", "unet", str(store), "--out", str(tmp_path / "r"), *FAST,
                 "--set", f"data.albumentations={pipeline}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "data.albumentations" in err and str(pipeline) in err
    assert "Traceback" not in err
