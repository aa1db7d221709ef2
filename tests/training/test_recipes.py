"""The shipped training recipes: valid for their trainer, and budgeted in steps, not wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprep.plugins import load_trainer
from microprep.training.config import build_config, trainer_schema

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.mark.parametrize("name", ["unet", "maskrcnn"])
def test_the_recipe_validates_and_sets_no_time_limit(name: str) -> None:
    schema = trainer_schema(load_trainer(name).config_schema())
    config = build_config(schema, file=SAMPLE_DATA / f"train-{name}.yaml")
    # a result must not depend on the machine's speed and load: no wall-time budget
    assert config["time_limit_minutes"] is None
    assert config["epochs"] >= 1
