"""Spatial noise on the image only: blur, scan-line jitter and uneven background.

Images are ``(H, W)``, ``(H, W, C)``, ``(Z, H, W)`` or ``(Z, H, W, C)``; ``ndim`` is the number
of leading spatial axes (2 for images, 3 for volumes). Ranges and units as in
:mod:`microprep.augment.noise`.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microprep.augment.ranges import _check_image, _finish, _positive, _spatial, image_range

__all__ = ["background", "gaussian_blur", "scanline_jitter", "smooth_field"]

Array = NDArray[Any]


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
