"""Noise and intensity changes: pure numpy functions on the image only, seeded by ``rng``.

Every function takes the image first and keyword-only parameters, returns a new array of the
same shape and dtype, and keeps values inside the image's *range*:

* integer images (``uint8``, ``uint16``, ...): the dtype's range, e.g. ``[0, 255]``;
* float images (``float32``, ...): ``[min, max]`` of the input image (a constant image:
  ``[v, v + 1]``
  is used to scale parameters, and values stay at ``v`` or above).

Parameters in *relative* units are fractions of that range (``sigma=0.05`` on ``uint8`` is
12.75 grey levels). Random draws come only from the ``rng`` argument
(:class:`numpy.random.Generator`), so the same generator state gives the same result.

Images are ``(H, W)``, ``(H, W, C)``, ``(Z, H, W)`` or ``(Z, H, W, C)``. Pointwise functions
(gaussian, poisson, salt-and-pepper, contrast) ignore the layout; the spatial ones take
``ndim`` (the number of leading spatial axes: 2 for images, 3 for volumes).

``uint8`` images take an exact fast path for the pointwise noises: the output grey level of a
pixel depends only on its input level, so the 256 x 256 transition probabilities are computed
once (per parameter set) and each pixel is drawn with one uniform number through a guide table
(:func:`sample_levels`). The distribution is the same as the generic path's (rounding to the
nearest level, clipping to the range); only the draws differ.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = np.full((64, 64), 100, np.uint8)
    >>> out = poisson_noise(img, dose=50.0, rng=rng)
    >>> out.dtype, out.shape
    (dtype('uint8'), (64, 64))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment.levels import (
    GUIDE_BINS as GUIDE_BINS,
)
from microprep.augment.levels import (
    _apply_kind,
    apply_transition,
    build_sampler,
    draw_levels,
    sample_levels,
    transition_matrix,
)
from microprep.augment.ranges import (
    _check_image,
    _finish,
    _fraction,
    _positive,
    _span,
    image_range,
)
from microprep.augment.spatial_noise import (
    background,
    gaussian_blur,
    scanline_jitter,
)
from microprep.augment.spatial_noise import smooth_field as smooth_field

__all__ = [
    "apply_transition",
    "background",
    "build_sampler",
    "contrast",
    "draw_levels",
    "gaussian_blur",
    "gaussian_noise",
    "image_range",
    "poisson_noise",
    "salt_and_pepper",
    "sample_levels",
    "scanline_jitter",
    "transition_matrix",
]

Array = NDArray[Any]


# --------------------------------------------------------------------------- pointwise noise


def gaussian_noise(image: Array, *, sigma: float, rng: np.random.Generator) -> Array:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` x the image's range.

    Args:
        image: any layout; uint8, uint16, float32 (or another int / float dtype).
        sigma: standard deviation as a fraction of the range (dimensionless, >= 0); ``0.05``
            on uint8 is 12.75 grey levels.
        rng: the generator.

    Returns:
        The same dtype; integers rounded to the nearest level, everything clipped to the range.

    Example:
        >>> img = np.tile(np.array([[0.0], [1.0]], np.float32), (2, 4))
        >>> out = gaussian_noise(img, sigma=0.1, rng=np.random.default_rng(0))
        >>> out.dtype, float(out.min()) >= 0, float(out.max()) <= 1
        (dtype('float32'), True, True)
    """
    _check_image(image, "gaussian noise")
    sigma = _positive(sigma, "sigma", zero=True)
    if image.dtype == np.uint8:
        return _apply_kind(image, "gaussian", (("sigma", sigma),), rng)
    low, high = image_range(image)
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(sigma * _span(low, high))
    noise += image
    return _finish(noise, image, low, high)


def poisson_noise(image: Array, *, dose: float, rng: np.random.Generator) -> Array:
    """Photon (shot) noise at ``dose`` expected counts for a full-intensity pixel.

    A pixel at relative intensity ``x = (value - low) / (high - low)`` receives
    ``k ~ Poisson(dose * x)`` counts and becomes ``low + k / dose * (high - low)``: the mean is
    kept and the variance is ``x / dose`` in relative units, so a lower dose gives a noisier
    image. Counts are drawn exactly (no normal approximation, no gamma or camera model) at every
    dose; ``uint8`` images use the exact guide-table sampler (:func:`sample_levels`).

    Args:
        image: any layout; uint8, uint16, float32 (or another int / float dtype).
        dose: expected counts at full intensity (> 0), e.g. 10 (very noisy) to 1000 (mild).
        rng: the generator.

    Returns:
        The same dtype, rounded (integers) and clipped to the range.

    Example:
        >>> img = np.full((100, 100), 255, np.uint8)
        >>> out = poisson_noise(img, dose=100.0, rng=np.random.default_rng(0))
        >>> 240 < float(out.mean()) < 256
        True
    """
    _check_image(image, "poisson noise")
    dose = _positive(dose, "dose")
    if image.dtype == np.uint8:
        return _apply_kind(image, "poisson", (("dose", dose),), rng)
    low, high = image_range(image)
    span = _span(low, high)
    lam = image.astype(np.float64)
    lam -= low
    lam *= dose / span
    np.clip(lam, 0.0, None, out=lam)
    counts = rng.poisson(lam).astype(np.float64)
    counts *= span / dose
    counts += low
    return _finish(counts, image, low, high)


def salt_and_pepper(
    image: Array, *, amount: float, salt_ratio: float, rng: np.random.Generator
) -> Array:
    """Set a fraction ``amount`` of the pixels to the range's maximum (salt) or minimum (pepper).

    Args:
        image: any layout; every channel of a chosen pixel is set.
        amount: expected fraction of affected pixels, 0..1.
        salt_ratio: fraction of those that become salt (the maximum), 0..1.
        rng: the generator.

    Example:
        >>> out = salt_and_pepper(np.full((100, 100), 7, np.uint8), amount=0.1, salt_ratio=0.5,
        ...                       rng=np.random.default_rng(0))
        >>> sorted(np.unique(out).tolist())
        [0, 7, 255]
    """
    _check_image(image, "salt-and-pepper")
    amount = _fraction(amount, "amount")
    salt_ratio = _fraction(salt_ratio, "salt_ratio")
    if (
        image.dtype == np.uint8
        and image.ndim in (2, 3)
        and (image.ndim == 2 or image.shape[-1] == 1)
    ):
        key = (("amount", amount), ("salt_ratio", salt_ratio))
        return _apply_kind(image, "salt_and_pepper", key, rng)
    low, high = image_range(image)
    # one draw per pixel (all channels of a pixel together) for multi-channel images
    pixel_shape = image.shape[:-1] if image.ndim >= 3 and image.shape[-1] <= 4 else image.shape
    u = rng.random(pixel_shape, dtype=np.float32)
    out = image.copy()
    salt = u < amount * salt_ratio
    pepper = (u >= amount * salt_ratio) & (u < amount)
    out[salt] = high
    out[pepper] = low
    return out


def contrast(image: Array, *, gamma: float = 1.0, gain: float = 1.0, bias: float = 0.0) -> Array:
    """Gamma then linear contrast: ``y = gain * x ** gamma + bias`` on relative intensities.

    ``x = (value - low) / (high - low)`` in [0, 1]; ``y`` is clipped to [0, 1] and mapped back.

    Args:
        image: any layout.
        gamma: exponent (> 0); < 1 brightens the dark levels, > 1 darkens them.
        gain: linear factor (dimensionless).
        bias: offset as a fraction of the range.

    Example:
        >>> contrast(np.array([0, 64, 255], np.uint8), gamma=0.5).tolist()
        [0, 128, 255]
    """
    _check_image(image, "contrast")
    gamma = _positive(gamma, "gamma")
    low, high = image_range(image)
    span = _span(low, high)
    if image.dtype == np.uint8:
        x = np.arange(256, dtype=np.float64) / 255.0
        lut = np.floor(np.clip(gain * x**gamma + bias, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return lut[image]
    x = image.astype(np.float32)
    x -= low
    x /= span
    np.clip(x, 0.0, 1.0, out=x)
    if gamma != 1.0:
        np.power(x, np.float32(gamma), out=x)
    x *= np.float32(gain)
    x += np.float32(bias)
    np.clip(x, 0.0, 1.0, out=x)
    x *= np.float32(span)
    x += np.float32(low)
    return _finish(x, image, low, high)
