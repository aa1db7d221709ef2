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

import math
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special

from microprep.errors import UsageError

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

#: Number of guide-table bins per input level of the ``uint8`` sampler (12 bits).
GUIDE_BINS = 4096


# --------------------------------------------------------------------------- helpers


def image_range(image: Array) -> tuple[float, float]:
    """``(low, high)`` of the image's range: the dtype's for integers, ``[min, max]`` for floats.

    Example:
        >>> image_range(np.zeros((2, 2), np.uint16))
        (0.0, 65535.0)
        >>> image_range(np.array([0.5, 2.0], np.float32))
        (0.5, 2.0)
    """
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        return float(info.min), float(info.max)
    if image.dtype.kind == "b":
        return 0.0, 1.0
    if image.size == 0:
        return 0.0, 1.0
    return float(np.min(image)), float(np.max(image))


def _span(low: float, high: float) -> float:
    return high - low if high > low else 1.0


def _check_image(image: Array, name: str) -> None:
    if image.dtype.kind not in "uif":
        raise UsageError(
            f"{name}: image has dtype {image.dtype}; expected an integer or float type"
        )


def _finish(values: NDArray[np.floating], image: Array, low: float, high: float) -> Array:
    """Clip float ``values`` to ``[low, high]`` and cast back to ``image.dtype`` (rounding ints)."""
    if image.dtype.kind in "ui":
        np.floor(values + 0.5, out=values)
    np.clip(values, low, high, out=values)
    return values.astype(image.dtype, copy=False)


def _positive(value: float, name: str, *, zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise UsageError(f"{name}={value!r}: must be a finite number {bound}")
    return value


def _fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name}={value!r}: must be between 0 and 1")
    return value


# --------------------------------------------------------------------------- uint8 sampler


def sample_levels(
    image: NDArray[np.uint8], cdf: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Draw each pixel's new level from ``cdf[level]`` (exact inverse-CDF sampling, uint8).

    Args:
        image: any shape, ``uint8``.
        cdf: ``(256, 256)`` float64, ``cdf[v, j] = P(out <= j | in = v)``, rows non-decreasing,
            last column 1.
        rng: the generator.

    Each pixel gets a 12-bit uniform bin ``b``; a guide table built from ``cdf`` gives the level
    for every bin that lies inside one CDF step (almost all). Pixels whose bin straddles a step
    draw a float64 position inside the bin and are resolved against ``cdf`` itself, so the
    result follows ``cdf`` to float64 precision.

    Example:
        >>> cdf = np.tile(np.linspace(0, 1, 257)[1:], (256, 1))   # uniform output levels
        >>> out = sample_levels(np.zeros((4, 4), np.uint8), cdf, np.random.default_rng(1))
        >>> out.dtype
        dtype('uint8')
    """
    return _sample(image, cdf, _guide_table(cdf.tobytes()), rng)


def _sample(
    image: NDArray[np.uint8],
    cdf: NDArray[np.float64],
    table: NDArray[np.uint16],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    flat = image.reshape(-1)
    # 12 uniform bits per pixel from raw bytes (exactly uniform on 0..4095)
    bins = np.frombuffer(rng.bytes(2 * flat.size), np.uint16) & np.uint16(GUIDE_BINS - 1)
    index = flat.astype(np.uint32) << np.uint32(12)
    index |= bins
    coded = np.take(table, index)
    out = coded.astype(np.uint8)  # low byte: the level (exact where the bin is unambiguous)
    ambiguous = np.flatnonzero(coded >= 256)
    if ambiguous.size:
        levels = flat[ambiguous].astype(np.intp)
        u = (bins[ambiguous] + rng.random(ambiguous.size)) / GUIDE_BINS
        # binary search for the first level j with cdf[level, j] > u, in [guide level, 255]
        j = out[ambiguous].astype(np.intp)
        top = np.full(ambiguous.size, 255, np.intp)
        while True:
            open_ = j < top
            if not open_.any():
                break
            mid = (j + top) // 2
            above = cdf[levels, mid] > u
            top = np.where(open_ & above, mid, top)
            j = np.where(open_ & ~above, mid + 1, j)
        out[ambiguous] = j.astype(np.uint8)
    result: NDArray[np.uint8] = out.reshape(image.shape)
    return result


@lru_cache(maxsize=64)
def _guide_table(cdf_bytes: bytes) -> NDArray[np.uint16]:
    """``(256 * GUIDE_BINS,)`` uint16: level of each (input level, bin); bit 8 set: ambiguous."""
    cdf = np.frombuffer(cdf_bytes, np.float64).reshape(256, 256)
    edges = np.arange(GUIDE_BINS + 1, dtype=np.float64) / GUIDE_BINS
    table = np.empty((256, GUIDE_BINS), np.uint16)
    for v in range(256):
        row = cdf[v]
        lo = np.searchsorted(row, edges[:-1], side="right")
        hi = np.searchsorted(row, edges[1:], side="left")
        lo = np.minimum(lo, 255)
        hi = np.minimum(hi, 255)
        table[v] = lo + np.where(lo == hi, 0, 256)
    table.flags.writeable = False
    return table.reshape(-1)


@lru_cache(maxsize=64)
def _sampler(
    kind: str, params: tuple[tuple[str, float], ...]
) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    """``(cdf, guide table)`` of a noise kind's uint8 transition matrix (cached)."""
    cdf = _cdf_from_matrix(_transition(kind, params))
    cdf.flags.writeable = False
    return cdf, _guide_table(cdf.tobytes())


def _apply_kind(
    image: NDArray[np.uint8],
    kind: str,
    params: tuple[tuple[str, float], ...],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    cdf, table = _sampler(kind, params)
    return _sample(image, cdf, table, rng)


def _cdf_from_matrix(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    cdf = np.cumsum(matrix, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def transition_matrix(kind: str, **params: float) -> NDArray[np.float64]:
    """``(256, 256)`` float64 ``P[v, j]``: probability that uint8 level ``v`` becomes ``j``.

    ``kind`` is ``"gaussian"`` (``sigma``), ``"poisson"`` (``dose``) or ``"salt_and_pepper"``
    (``amount``, ``salt_ratio``). Products of these matrices give the exact distribution of
    noises applied one after the other (each pixel independently).

    Example:
        >>> p = transition_matrix("gaussian", sigma=0.0)
        >>> bool(np.allclose(p, np.eye(256)))
        True
    """
    key = tuple(sorted((k, float(v)) for k, v in params.items()))
    return _transition(kind, key).copy()


@lru_cache(maxsize=64)
def _transition(kind: str, params: tuple[tuple[str, float], ...]) -> NDArray[np.float64]:
    p = dict(params)
    levels = np.arange(256, dtype=np.float64)
    upper = levels + 0.5  # level j collects values in [j - 0.5, j + 0.5)
    if kind == "gaussian":
        s = p["sigma"] * 255.0
        if s == 0:
            return np.eye(256)
        cdf = special.ndtr((upper[None, :] - levels[:, None]) / s)
    elif kind == "poisson":
        dose = p["dose"]
        # out = floor(k * 255 / dose + 0.5) <= j  <=>  k <= ceil((j + 0.5) * dose / 255) - 1
        kmax = np.ceil(upper * dose / 255.0) - 1.0
        lam = levels * dose / 255.0
        cdf = np.where(
            kmax[None, :] >= 0, special.pdtr(np.maximum(kmax[None, :], 0), lam[:, None]), 0.0
        )
        cdf[0, :] = 1.0  # level 0: lambda 0, always 0 counts
    elif kind == "salt_and_pepper":
        a, s = p["amount"], p["salt_ratio"]
        keep = (levels[None, :] >= levels[:, None]).astype(np.float64)
        cdf = (1 - a) * keep + a * (1 - s)
        cdf[:, 255] = 1.0
    else:
        raise UsageError(f"no uint8 transition matrix for noise kind {kind!r}")
    cdf = np.asarray(cdf, np.float64)
    cdf[:, -1] = 1.0
    matrix = np.diff(cdf, axis=1, prepend=0.0)
    np.clip(matrix, 0.0, None, out=matrix)
    matrix /= matrix.sum(axis=1, keepdims=True)
    matrix.flags.writeable = False
    return matrix


def build_sampler(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    """``(cdf, guide table)`` for :func:`draw_levels` from a ``(256, 256)`` transition matrix.

    Building takes a few milliseconds; keep the result when the matrix is used again.
    """
    cdf = _cdf_from_matrix(np.asarray(matrix, np.float64))
    cdf.flags.writeable = False
    return cdf, _guide_table(cdf.tobytes())


def draw_levels(
    image: NDArray[np.uint8],
    sampler: tuple[NDArray[np.float64], NDArray[np.uint16]],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """Draw every uint8 pixel's new level with a sampler from :func:`build_sampler`."""
    return _sample(image, sampler[0], sampler[1], rng)


def apply_transition(
    image: NDArray[np.uint8], matrix: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Draw every uint8 pixel's new level from ``matrix[level]`` (see :func:`transition_matrix`).

    Example:
        >>> m = transition_matrix("poisson", dose=20.0) @ transition_matrix("gaussian", sigma=0.02)
        >>> apply_transition(np.full((8, 8), 90, np.uint8), m, np.random.default_rng(0)).shape
        (8, 8)
    """
    return draw_levels(image, build_sampler(matrix), rng)


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


# --------------------------------------------------------------------------- spatial (image only)


def _spatial(image: Array, ndim: int) -> tuple[int, ...]:
    if ndim not in (2, 3) or image.ndim not in (ndim, ndim + 1):
        raise UsageError(
            f"image of shape {image.shape} does not have {ndim} spatial axes (plus channels)"
        )
    return tuple(int(n) for n in image.shape[:ndim])


def gaussian_blur(image: Array, *, sigma: float, ndim: int = 2) -> Array:
    """Gaussian blur of standard deviation ``sigma`` pixels over the spatial axes.

    2D images use ``cv2.GaussianBlur`` (kernel radius ``ceil(3 sigma)``, reflected borders);
    volumes (``ndim=3``) use ``scipy.ndimage.gaussian_filter`` over z, y and x. Channels are
    blurred separately; dtype and range are kept.

    Example:
        >>> img = np.zeros((9, 9), np.float32); img[4, 4] = 1
        >>> round(float(gaussian_blur(img, sigma=1.0).sum()), 3)
        1.0
    """
    _check_image(image, "blur")
    sigma = _positive(sigma, "sigma", zero=True)
    _spatial(image, ndim)
    if sigma == 0:
        return image.copy()
    if ndim == 2 and image.dtype in (np.uint8, np.uint16, np.float32, np.float64):
        radius = max(1, math.ceil(3 * sigma))
        size = 2 * radius + 1
        channels = image.shape[2] if image.ndim == 3 else 1
        if channels <= 4:
            out = cv2.GaussianBlur(image, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101)
            return np.asarray(out, image.dtype).reshape(image.shape)
    sig = [sigma] * ndim + [0.0] * (image.ndim - ndim)
    low, high = image_range(image)
    values = ndimage.gaussian_filter(image.astype(np.float32), sig, mode="mirror", truncate=3.0)
    return _finish(np.asarray(values, np.float32), image, low, high)


def scanline_jitter(
    image: Array, *, max_shift: float, rng: np.random.Generator, ndim: int = 2
) -> Array:
    """Scan-line displacement of a scanning microscope: each row moves sideways by its own offset.

    Every row (``x`` line; every row of every slice for volumes) is shifted along ``x`` by an
    offset drawn uniformly from ``[-max_shift, max_shift]`` pixels, sub-pixel offsets by linear
    interpolation, the edges extended (nearest pixel). Image only: the targets do not move
    (the displacement of the sample is an artefact of the scan, not of the object); for a
    distortion that moves targets too, use the ``field`` geometry (:mod:`.fields`).

    Example:
        >>> img = np.tile(np.arange(8, dtype=np.float32), (4, 1))
        >>> out = scanline_jitter(img, max_shift=2.0, rng=np.random.default_rng(0))
        >>> out.shape, out.dtype
        ((4, 8), dtype('float32'))
    """
    _check_image(image, "jitter")
    max_shift = _positive(max_shift, "max_shift", zero=True)
    spatial = _spatial(image, ndim)
    rows = math.prod(spatial[:-1])
    width = spatial[-1]
    shifts = rng.uniform(-max_shift, max_shift, size=rows).astype(np.float32)
    lines = image.reshape(rows, width, -1)
    base = np.floor(shifts)
    frac = (shifts - base)[:, None, None]
    cols = np.arange(width)[None, :] - base.astype(np.intp)[:, None]  # out[x] = in[x - shift]
    left = np.take_along_axis(lines, np.clip(cols - 1, 0, width - 1)[:, :, None], axis=1)
    right = np.take_along_axis(lines, np.clip(cols, 0, width - 1)[:, :, None], axis=1)
    values = left.astype(np.float32) * frac + right.astype(np.float32) * (1 - frac)
    low, high = image_range(image)
    return _finish(values.reshape(image.shape), image, low, high)


def smooth_field(
    shape: tuple[int, ...], *, scale: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """A smooth random field of ``shape`` in [-1, 1]: random values on a grid of ``scale`` px.

    The coarse grid (one node per ``scale`` pixels, at least 2 per axis) is interpolated
    (cubic for 2D, linear for 3D), then rescaled so that its extremes are -1 and 1.

    Example:
        >>> f = smooth_field((32, 48), scale=16.0, rng=np.random.default_rng(0))
        >>> f.shape, float(abs(f).max())
        ((32, 48), 1.0)
    """
    scale = _positive(scale, "scale")
    grid = tuple(max(2, math.ceil(n / scale) + 1) for n in shape)
    coarse = rng.standard_normal(grid).astype(np.float32)
    if len(shape) == 2:
        field = np.asarray(
            cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), np.float32
        )
    else:
        zoom = [n / g for n, g in zip(shape, grid, strict=True)]
        field = np.asarray(ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest"))
        field = field[tuple(slice(0, n) for n in shape)].astype(np.float32)
    field -= field.min()
    peak = float(field.max())
    if peak > 0:
        field *= 2.0 / peak
    field -= 1.0
    return field


def background(
    image: Array, *, strength: float, scale: float, rng: np.random.Generator, ndim: int = 2
) -> Array:
    """Uneven illumination: multiply by ``1 + strength * f`` with ``f`` a smooth field in [-1, 1].

    ``f`` (:func:`smooth_field`) varies over ``scale`` pixels plus a random linear gradient
    across the image, so intensities vary slowly by up to ``strength`` (fraction) around the
    original. Values are relative to the range's low end; the result is clipped to the range.

    Example:
        >>> out = background(np.full((64, 64), 0.5, np.float32), strength=0.2, scale=32.0,
        ...                  rng=np.random.default_rng(0))
        >>> out.dtype
        dtype('float32')
    """
    _check_image(image, "background")
    strength = _positive(strength, "strength", zero=True)
    spatial = _spatial(image, ndim)
    field = smooth_field(spatial, scale=scale, rng=rng)
    direction = rng.standard_normal(ndim)
    direction /= max(float(np.linalg.norm(direction)), 1e-12)
    grids = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in spatial), indexing="ij")
    gradient = sum(g * np.float32(d) for g, d in zip(grids, direction, strict=True))
    field = (field + np.asarray(gradient, np.float32)) * np.float32(0.5 * strength) + np.float32(1)
    if image.ndim > ndim:
        field = field[..., None]
    low, high = image_range(image)
    values = image.astype(np.float32)
    values -= np.float32(low)
    values *= field
    values += np.float32(low)
    return _finish(values, image, low, high)
