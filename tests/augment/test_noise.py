"""Every noise kind: dtype and range kept, seeded, and the documented statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from microprep.augment import DEFAULTS, NOISE_KINDS, apply_noise, parse_noise
from microprep.augment import noise as N
from microprep.errors import UsageError

DTYPES = (np.uint8, np.uint16, np.float32)
RANDOM_KINDS = ("gaussian", "poisson", "salt_and_pepper", "jitter", "background")


def _image(dtype: Any, shape: tuple[int, ...] = (48, 64)) -> NDArray[Any]:
    rng = np.random.default_rng(123)
    ramp = rng.random(shape)
    if np.dtype(dtype).kind == "u":
        return (ramp * np.iinfo(dtype).max).astype(dtype)
    return (ramp * 3.0 - 1.0).astype(dtype)  # a float image in [-1, 2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(NOISE_KINDS))
def test_dtype_shape_and_range_kept(kind: str, dtype: Any) -> None:
    image = _image(dtype)
    out = NOISE_KINDS[kind](image, np.random.default_rng(0))
    assert out.dtype == image.dtype
    assert out.shape == image.shape
    if image.dtype.kind == "f":
        assert float(out.min()) >= float(image.min()) - 1e-6
        assert float(out.max()) <= float(image.max()) + 1e-6
        assert np.isfinite(out).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(NOISE_KINDS))
def test_channels_and_volumes(kind: str, dtype: Any) -> None:
    for shape, ndim in (((24, 32, 3), 2), ((4, 24, 32), 3)):
        image = _image(dtype, shape)
        spec = parse_noise(kind)
        out = apply_noise(image, spec, np.random.default_rng(0), ndim=ndim)
        assert out.dtype == image.dtype and out.shape == image.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_reproducible_with_seed(kind: str, dtype: Any) -> None:
    image = _image(dtype)
    a = NOISE_KINDS[kind](image, np.random.default_rng(7))
    b = NOISE_KINDS[kind](image, np.random.default_rng(7))
    c = NOISE_KINDS[kind](image, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", ["contrast", "blur"])
def test_deterministic_kinds_change_the_image(kind: str) -> None:
    image = _image(np.uint8)
    assert not np.array_equal(NOISE_KINDS[kind](image, np.random.default_rng(0)), image)


def test_noise_kinds_have_documented_defaults() -> None:
    assert set(NOISE_KINDS) == set(DEFAULTS)
    assert DEFAULTS["poisson"] == {"dose": 50.0}
    assert DEFAULTS["gaussian"] == {"sigma": 0.05}


@pytest.mark.parametrize("dose", [5.0, 50.0, 2000.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_variance_equals_mean_in_counts(dose: float, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    high = 255.0 if dtype == np.uint8 else 65535.0 if dtype == np.uint16 else 1.0
    level = 0.2 * high  # low enough that clipping at full range is negligible at dose 5
    if dtype == np.uint8:
        level = 51.0
    image = np.full((400, 400), level, dtype)
    if dtype == np.float32:
        image[0, 0] = 0.0  # the float range is [min, max] of the image: make it [0, 1]
        image[0, 1] = 1.0
    out = N.poisson_noise(image, dose=dose, rng=rng).astype(np.float64)[2:]
    counts = out / high * dose  # back to counts
    expected = level / high * dose
    assert counts.mean() == pytest.approx(expected, rel=0.02)
    # rounding to grey levels adds at most a uniform error: (dose / high)^2 / 12 in counts
    rounding = (dose / high) ** 2 / 12 if dtype != np.float32 else 0.0
    assert counts.var() == pytest.approx(expected + rounding, rel=0.05)


def test_poisson_uint8_fast_path_matches_the_exact_distribution() -> None:
    rng = np.random.default_rng(2)
    dose, level, n = 30.0, 37, 400_000
    fast = N.poisson_noise(np.full(n, level, np.uint8), dose=dose, rng=rng)
    counts = rng.poisson(level * dose / 255, size=n)
    slow = np.clip(np.floor(counts * 255 / dose + 0.5), 0, 255).astype(np.int64)
    hist_fast = np.bincount(fast, minlength=256) / n
    hist_slow = np.bincount(slow, minlength=256) / n
    assert np.abs(hist_fast - hist_slow).max() < 0.005
    exact = N.transition_matrix("poisson", dose=dose)[level]
    assert np.abs(hist_fast - exact).max() < 0.004


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_std_is_sigma_times_range(dtype: Any) -> None:
    sigma = 0.03
    if dtype == np.float32:
        image = np.zeros((300, 300), dtype)
        image[0, 0], image[0, 1] = -2.0, 2.0
        span, mid = 4.0, 0.0
    else:
        span = float(np.iinfo(dtype).max)
        mid = span / 2
        image = np.full((300, 300), round(mid), dtype)
    out = N.gaussian_noise(image, sigma=sigma, rng=np.random.default_rng(3)).astype(np.float64)
    out = out[2:]
    assert out.std() == pytest.approx(sigma * span, rel=0.03)
    assert out.mean() == pytest.approx(mid, abs=0.01 * span)


@pytest.mark.parametrize("dtype", DTYPES)
def test_salt_and_pepper_fraction(dtype: Any) -> None:
    image = np.full((300, 300), 5, dtype)
    image[0, 0] = 0
    image[0, 1] = 200
    out = N.salt_and_pepper(image, amount=0.1, salt_ratio=0.3, rng=np.random.default_rng(4))
    low, high = N.image_range(image)
    changed = out[1:] != image[1:]
    assert changed.mean() == pytest.approx(0.1, abs=0.01)
    salt = (out[1:] == high).mean()
    assert salt == pytest.approx(0.03, abs=0.005)
    assert set(np.unique(out[1:]).tolist()) <= {low, high, 5}


def test_fused_uint8_noises_follow_the_product_distribution() -> None:
    image = np.full((500, 500), 120, np.uint8)
    specs = parse_noise("gaussian:sigma=0.02,poisson:dose=40")
    fused = apply_noise(image, specs, np.random.default_rng(5)).astype(np.float64)
    rng = np.random.default_rng(6)
    step = N.gaussian_noise(image, sigma=0.02, rng=rng)
    chained = N.poisson_noise(step, dose=40.0, rng=rng).astype(np.float64)
    assert fused.mean() == pytest.approx(chained.mean(), rel=0.01)
    assert fused.std() == pytest.approx(chained.std(), rel=0.03)


def test_scanline_jitter_shifts_rows_only() -> None:
    image = np.tile(np.arange(64, dtype=np.float32), (32, 1)) + 10
    out = N.scanline_jitter(image, max_shift=3.0, rng=np.random.default_rng(0))
    inner = out[:, 8:-8] - image[:, 8:-8]
    # each row is shifted by one constant (a ramp moved sideways) within +-3 px
    assert np.allclose(inner, inner[:, :1], atol=1e-4)
    assert np.abs(inner).max() <= 3.0 + 1e-4
    assert np.unique(np.round(inner[:, 0], 3)).size > 5


def test_background_is_smooth_and_bounded() -> None:
    image = np.full((128, 128), 0.5, np.float32)
    image[0, 0], image[0, 1] = 0.0, 1.0
    out = N.background(image, strength=0.2, scale=64.0, rng=np.random.default_rng(0))
    body = out[4:, 4:]
    assert np.abs(body - 0.5).max() <= 0.5 * 0.2 * 2 + 1e-5
    assert np.abs(np.diff(body, axis=1)).max() < 0.01


def test_contrast_gamma_and_linear() -> None:
    image = np.array([0, 64, 128, 255], np.uint8)
    np.testing.assert_array_equal(N.contrast(image, gamma=1.0, gain=1.0), image)
    assert N.contrast(image, gamma=2.0)[1] < 64
    assert N.contrast(image, gain=2.0).tolist() == [0, 128, 255, 255]
    f = np.array([0.0, 0.5, 1.0], np.float32)
    assert N.contrast(f, bias=0.1).tolist() == pytest.approx([0.1, 0.6, 1.0])


def test_blur_keeps_the_mean() -> None:
    image = _image(np.float32, (64, 64))
    out = N.gaussian_blur(image, sigma=2.0)
    assert out.std() < image.std()
    assert out.mean() == pytest.approx(image.mean(), abs=0.02)


@pytest.mark.parametrize(
    "text",
    ["nope", "poisson:dose=abc", "poisson:sigma=1", "=3", "poisson:dose=inf"],
)
def test_bad_noise_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_noise(text)


def test_parse_noise_multi_parameter_kinds() -> None:
    specs = parse_noise("contrast:gamma=0.7,gain=1.2,poisson:dose=20,sp")
    assert [s.kind for s in specs] == ["contrast", "poisson", "salt_and_pepper"]
    assert specs[0].params == {"gamma": 0.7, "gain": 1.2, "bias": 0.0}


@pytest.mark.parametrize(
    ("func", "kwargs"),
    [
        (N.poisson_noise, {"dose": 0.0}),
        (N.gaussian_noise, {"sigma": -1.0}),
        (N.salt_and_pepper, {"amount": 1.5, "salt_ratio": 0.5}),
    ],
)
def test_bad_parameters_are_usage_errors(func: Any, kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        func(np.zeros((4, 4), np.uint8), rng=np.random.default_rng(0), **kwargs)
