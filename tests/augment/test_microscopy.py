"""The ``microscopy`` augmentation recipe and the small-dataset rule of ``data.auto_augment``."""

from __future__ import annotations

import numpy as np
import pytest

from microprep.augment import AugmentConfig, Augmenter, sample_rng
from microprep.augment.microscopy import microscopy_noise
from microprep.errors import UsageError
from microprep.training.datasets import augment_config


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_recipe_is_seeded_and_varies(dtype: type) -> None:
    image = (np.indices((32, 32)).sum(0) * 3).astype(dtype)
    draws = [
        microscopy_noise(image, sample_rng(seed=0, index=i, copy=0), ndim=2) for i in range(12)
    ]
    again = microscopy_noise(image, sample_rng(seed=0, index=3, copy=0), ndim=2)
    assert np.array_equal(draws[3], again)
    assert all(d.dtype == image.dtype and d.shape == image.shape for d in draws)
    changed = [not np.array_equal(d, image) for d in draws]
    assert sum(changed) >= 8  # contrast alone runs 80% of the time
    means = [float(d.mean()) for d in draws]
    assert max(means) - min(means) > 0.02 * float(image.max())  # brightness and gain vary


def test_recipe_in_the_augmenter_touches_the_image_only() -> None:
    labels = np.zeros((16, 16), np.uint8)
    labels[4:8, 4:8] = 1
    sample = {"image": np.full((16, 16), 100, np.uint8), "labels": labels}
    aug = Augmenter(AugmentConfig(recipe="microscopy"))
    images = [aug(sample, sample_rng(seed=1, index=i, copy=0))["image"] for i in range(6)]
    assert any(not np.array_equal(im, sample["image"]) for im in images)
    assert np.array_equal(aug(sample, sample_rng(seed=1, index=0, copy=0))["labels"], labels)
    with pytest.raises(UsageError, match="recipe"):
        AugmentConfig(recipe="vivid")
    assert AugmentConfig(recipe="microscopy").as_dict()["recipe"] == "microscopy"
    assert "recipe" not in AugmentConfig().as_dict()


def test_the_small_dataset_rule() -> None:
    defaults = {"noise": None, "geometry": "flip,rot90"}
    assert augment_config(defaults, images=2).recipe == "microscopy"  # type: ignore[union-attr]
    assert augment_config(defaults, images=8).recipe == "microscopy"  # type: ignore[union-attr]
    assert augment_config(defaults, images=9).recipe is None  # type: ignore[union-attr]
    assert augment_config(defaults).recipe is None  # type: ignore[union-attr]
    off = augment_config({**defaults, "auto_augment": False}, images=2)
    assert off is not None and off.recipe is None and off.geometry == ("flip", "rot90")
    # a configuration that chose its own augmentation keeps it as it is
    chosen = augment_config({"noise": "gaussian", "geometry": "flip,rot90"}, images=2)
    assert chosen is not None and chosen.recipe is None
    assert augment_config({"noise": None, "geometry": "flip"}, images=2).recipe is None  # type: ignore[union-attr]
    assert augment_config({"noise": None, "geometry": None}, images=2) is None
