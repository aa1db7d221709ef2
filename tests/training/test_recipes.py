"""The shipped training recipes: valid for their trainer, and budgeted in steps, not wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprep.plugins import load_trainer
from microprep.training.config import build_config, trainer_schema
from microprep.training.datasets import augment_config

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.mark.parametrize(
    ("name", "trainer"), [("unet", "unet"), ("maskrcnn", "maskrcnn"), ("maskrcnn-few", "maskrcnn")]
)
def test_the_recipe_validates_and_sets_no_time_limit(name: str, trainer: str) -> None:
    schema = trainer_schema(load_trainer(trainer).config_schema())
    config = build_config(schema, file=SAMPLE_DATA / f"train-{name}.yaml")
    # a result must not depend on the machine's speed and load: no wall-time budget
    assert config["time_limit_minutes"] is None
    assert config["epochs"] >= 1


def test_the_few_image_recipe_draws_random_windows_with_the_microscopy_augmentation() -> None:
    schema = trainer_schema(load_trainer("maskrcnn").config_schema())
    config = build_config(schema, file=SAMPLE_DATA / "train-maskrcnn-few.yaml")
    data = config["data"]
    # the step budget that docs/maskrcnn.md estimates the wall time of (and the file states)
    steps = config["epochs"] * data["samples_per_epoch"] // config["batch_size"]
    assert steps == 320
    assert "320 steps" in (SAMPLE_DATA / "train-maskrcnn-few.yaml").read_text()
    # the 6 sample micrographs count as a small set: the microscopy recipe is on
    augment = augment_config(data, images=6)
    assert augment is not None and augment.recipe == "microscopy"
