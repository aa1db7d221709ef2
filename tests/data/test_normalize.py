"""Normalisation: the percentile and dtype rules for uint8, uint16 and float32, channels."""

from __future__ import annotations

import numpy as np
import pytest

from microprep.data.normalize import (
    CLIP,
    ImageScale,
    apply_scale,
    channels_first,
    image_scale,
    spatial_ndim,
)
from microprep.errors import UsageError


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_percentile_maps_the_bulk_to_unit_range(dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = 200 if dtype == np.uint8 else 60000
    image = rng.integers(10, top, (300, 200)).astype(dtype)
    image[0, :5] = 0  # outliers below
    image[1, :5] = top + 50  # and above
    scale = image_scale(image, "percentile")
    lo, hi = np.percentile(image.astype(np.float64), [0.5, 99.5])
    assert scale.lo == pytest.approx(lo) and scale.hi == pytest.approx(hi)
    assert scale.clip == CLIP
    out = apply_scale(image, scale)
    assert out.dtype == np.float32 and out.shape == image.shape
    inside = (image >= lo) & (image <= hi)
    assert out[inside].min() >= 0.0 and out[inside].max() <= 1.0
    assert np.mean(inside) >= 0.98
    assert out.min() >= CLIP[0] and out.max() <= CLIP[1]
    expected = (image.astype(np.float64) - lo) / (hi - lo)
    assert np.allclose(out, np.clip(expected, *CLIP), atol=1e-5)


def test_percentile_clips_far_outliers_and_keeps_near_ones() -> None:
    image = np.linspace(0.0, 1.0, 10_000, dtype=np.float32).reshape(100, 100)
    image[0, 0], image[0, 1] = -50.0, 50.0
    out = apply_scale(image, image_scale(image, "percentile"))
    assert out[0, 0] == CLIP[0] and out[0, 1] == CLIP[1]
    assert 0.0 < out[50, 50] < 1.0


def test_dtype_rule() -> None:
    u8 = np.array([[0, 255, 51]], np.uint8)
    u16 = np.array([[0, 65535, 13107]], np.uint16)
    f32 = np.array([[-0.5, 0.25, 3.0]], np.float32)
    assert np.allclose(apply_scale(u8, image_scale(u8, "dtype")), [[0.0, 1.0, 0.2]])
    assert np.allclose(apply_scale(u16, image_scale(u16, "dtype")), [[0.0, 1.0, 0.2]])
    assert apply_scale(f32, image_scale(f32, "dtype")).tolist() == [[-0.5, 0.25, 3.0]]
    assert image_scale(u8, "dtype").clip is None


def test_constant_and_non_finite_images() -> None:
    flat = np.full((8, 8), 7, np.uint16)
    scale = image_scale(flat, "percentile")
    assert scale.hi == scale.lo + 1.0
    assert np.all(apply_scale(flat, scale) == 0.0)
    with_nan = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    with_nan[0, :4] = np.nan
    with_nan[1, :4] = np.inf
    scale = image_scale(with_nan, "percentile")
    assert np.isfinite(scale.lo) and np.isfinite(scale.hi) and scale.hi <= 1.0
    with pytest.raises(UsageError, match="finite"):
        image_scale(np.full((4, 4), np.nan, np.float32), "percentile")


def test_subsample_is_capped_deterministic_and_close() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(100.0, 10.0, (400, 500)).astype(np.float32)
    small = image_scale(image, "percentile", max_values=5_000)
    again = image_scale(image, "percentile", max_values=5_000)
    full = image_scale(image, "percentile")
    assert small == again
    assert small.lo == pytest.approx(full.lo, abs=3.0)
    assert small.hi == pytest.approx(full.hi, abs=3.0)


def test_subsample_reads_at_most_max_values() -> None:
    class Spy:
        """An array that records the size of what is read."""

        def __init__(self, array: np.ndarray) -> None:
            self.array, self.shape, self.dtype, self.read = array, array.shape, array.dtype, 0

        def __getitem__(self, sel: object) -> np.ndarray:
            part = self.array[sel]  # type: ignore[index]
            self.read += part.size
            return part

    spy = Spy(np.zeros((64, 50, 40, 3), np.uint16))
    image_scale(spy, "percentile", ndim=3, max_values=3_000)
    assert 0 < spy.read <= 3_000


def test_rgb_shares_one_scale_and_channels_first() -> None:
    image = np.zeros((10, 12, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 100, 200
    scale = image_scale(image, "percentile")
    out = channels_first(apply_scale(image, scale), 2)
    assert out.shape == (3, 10, 12)
    assert out[0].mean() < out[1].mean() < out[2].mean()
    assert channels_first(np.zeros((4, 5, 6)), 3).shape == (1, 4, 5, 6)
    assert channels_first(np.zeros((4, 5, 6, 2)), 3).shape == (2, 4, 5, 6)
    assert spatial_ndim((5, 6, 3)) == 2 and spatial_ndim((5, 6, 7)) == 3


def test_bad_rules_and_scales() -> None:
    with pytest.raises(UsageError, match="normalization"):
        image_scale(np.zeros((2, 2)), "zscore")
    with pytest.raises(UsageError, match="lo < hi"):
        ImageScale(1.0, 1.0)
