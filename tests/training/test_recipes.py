"""The shipped training recipes: valid for their trainer, and budgeted in steps, not wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprep.plugins import load_trainer
from microprep.training.config import build_config, trainer_schema
from microprep.training.datasets import augment_config

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"

RECIPES = {
    "unet": "unet",
    "maskrcnn": "maskrcnn",
    "maskrcnn-few": "maskrcnn",
    "unet-3d": "unet",
    "unet-few": "unet",
}  # file -> trainer


def recipe(name: str) -> dict[str, object]:
    schema = trainer_schema(load_trainer(RECIPES[name]).config_schema())
    config: dict[str, object] = build_config(schema, file=SAMPLE_DATA / f"train-{name}.yaml")
    return config


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_recipe_validates_and_sets_no_time_limit(name: str) -> None:
    config = recipe(name)
    # a result must not depend on the machine's speed and load: no wall-time budget
    assert config["time_limit_minutes"] is None
    assert isinstance(config["epochs"], int) and config["epochs"] >= 1


def test_the_3d_recipe_is_budgeted_in_steps_of_3d_windows() -> None:
    config = recipe("unet-3d")
    data = config["data"]
    assert isinstance(data, dict)
    window = data["window"]
    assert isinstance(window, list) and len(window) == 3  # z, y, x
    # the stack is 32 x 128 x 128, split in half along z: a window must fit either half
    assert window[0] <= 16 and window[1] <= 128 and window[2] <= 128
    # the budget is a fixed number of steps: random windows per epoch, times the epochs
    per_epoch = data["samples_per_epoch"]
    assert isinstance(per_epoch, int) and per_epoch >= 1
    batch, epochs = config["batch_size"], config["epochs"]
    assert isinstance(batch, int) and isinstance(epochs, int)
    assert epochs * (per_epoch // batch) == 128
    # every level of the U-Net halves each axis of the window
    model = config["model"]
    assert isinstance(model, dict)
    assert all(side % 2 ** (int(model["depth"]) - 1) == 0 for side in window)


def test_the_few_image_unet_recipe_draws_random_windows_with_the_microscopy_augmentation() -> None:
    config = recipe("unet-few")
    data = config["data"]
    assert isinstance(data, dict)
    epochs, per_epoch, batch = config["epochs"], data["samples_per_epoch"], config["batch_size"]
    assert isinstance(epochs, int) and isinstance(per_epoch, int) and isinstance(batch, int)
    # the step budget that docs/training.md gives the wall time of (and the file states)
    assert epochs * per_epoch // batch == 640
    assert "640 steps" in (SAMPLE_DATA / "train-unet-few.yaml").read_text()
    # a few micrographs count as a small set: the microscopy recipe is on
    augment = augment_config(data, images=2)
    assert augment is not None and augment.recipe == "microscopy"
    # the best of every epoch's validation is kept
    assert config["val_every"] == 1


def test_the_few_image_maskrcnn_recipe_trains_on_the_grid_without_the_microscopy_recipe() -> None:
    config = recipe("maskrcnn-few")
    data = config["data"]
    assert isinstance(data, dict)
    # measured best at this budget (benchmarks/bench_fewshot_maskrcnn.py): the fixed grid
    assert data["samples_per_epoch"] is None and data["auto_augment"] is False
    augment = augment_config(data, images=6)
    assert augment is not None and augment.recipe is None and augment.geometry == ("flip", "rot90")
    # the step budget that docs/maskrcnn.md gives the wall time of (and the file states):
    # two 400 x 512 regions give a grid of 3 x 3 windows of 256 px each at stride 128
    epochs, batch = config["epochs"], config["batch_size"]
    assert isinstance(epochs, int) and isinstance(batch, int)
    assert data["window"] == 256 and data["stride"] is None  # half the window
    assert epochs * (2 * 3 * 3 // batch) == 288
    assert "288 steps" in (SAMPLE_DATA / "train-maskrcnn-few.yaml").read_text()
