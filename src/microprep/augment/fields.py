"""Smooth random displacement fields, applied to the image and its targets together.

A field moves every pixel by a smooth random vector: random displacements on a coarse grid
(one node per ``grid`` pixels) are interpolated to every pixel and scaled so that the largest
displacement is ``alpha`` pixels. The image is resampled bilinearly, class maps and instance
ids with nearest-neighbour (so no new label values appear), zero outside.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> field = random_field((32, 32), alpha=3.0, grid=16.0, rng=rng)
    >>> field.shape, float(np.abs(field).max()) <= 3.0 + 1e-5
    ((2, 32, 32), True)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microprep.augment.noise import smooth_field
from microprep.errors import UsageError

__all__ = [
    "random_field",
    "random_field_3d",
    "remap_image",
    "remap_labels",
    "remap_volume",
]

Array = NDArray[Any]


def random_field(
    shape: tuple[int, int], *, alpha: float, grid: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """``(2, H, W)`` float32 displacements ``(dy, dx)`` in pixels, at most ``alpha`` long.

    Args:
        shape: ``(H, W)``.
        alpha: largest displacement in pixels (>= 0).
        grid: spacing of the random nodes in pixels (larger: smoother).
        rng: the generator.
    """
    if not alpha >= 0:
        raise UsageError(f"alpha={alpha!r}: must be >= 0")
    dy = smooth_field(shape, scale=grid, rng=rng)
    dx = smooth_field(shape, scale=grid, rng=rng)
    field = np.stack([dy, dx])
    length = float(np.sqrt(dy * dy + dx * dx).max())
    if length > 0:
        field *= np.float32(alpha / length)
    return field


def _maps(field: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    h, w = field.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + field[1], ys + field[0]


def remap_image(image: Array, field: NDArray[np.float32]) -> Array:
    """Resample ``(H, W[, C])`` at ``position + field`` (bilinear, zero outside); dtype kept."""
    map_x, map_y = _maps(field)
    if image.dtype not in (np.uint8, np.uint16, np.float32) or (
        image.ndim == 3 and image.shape[2] > 4
    ):
        data = image.astype(np.float32)
        out = (
            np.stack(
                [
                    np.asarray(
                        cv2.remap(
                            np.ascontiguousarray(data[..., c]),
                            map_x,
                            map_y,
                            cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT,
                        )
                    )
                    for c in range(data.shape[-1])
                ],
                axis=-1,
            )
            if image.ndim == 3
            else np.asarray(
                cv2.remap(data, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            )
        )
        if image.dtype.kind in "ui":
            info = np.iinfo(image.dtype)
            out = np.clip(np.floor(out + 0.5), info.min, info.max)
        return np.asarray(out).astype(image.dtype)
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(out, image.dtype).reshape(image.shape)


def remap_labels(planes: list[Array], field: NDArray[np.float32]) -> list[Array]:
    """Resample ``(H, W)`` integer maps at ``position + field`` with nearest-neighbour."""
    map_x, map_y = _maps(field)
    out: list[Array] = []
    for plane in planes:
        data = plane.view(np.int32) if plane.dtype == np.uint32 else plane.astype(np.int32)
        moved = np.asarray(
            cv2.remap(data, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT),
            np.int32,
        )
        out.append(moved.view(np.uint32) if plane.dtype == np.uint32 else moved.astype(plane.dtype))
    return out


def random_field_3d(
    shape: tuple[int, int, int], *, alpha: float, grid: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """``(3, Z, H, W)`` float32 displacements ``(dz, dy, dx)`` in voxels, at most ``alpha`` long.

    Example:
        >>> f = random_field_3d((4, 8, 8), alpha=2.0, grid=4.0, rng=np.random.default_rng(0))
        >>> f.shape
        (3, 4, 8, 8)
    """
    if not alpha >= 0:
        raise UsageError(f"alpha={alpha!r}: must be >= 0")
    field = np.stack([smooth_field(shape, scale=grid, rng=rng) for _ in range(3)])
    length = float(np.sqrt((field * field).sum(axis=0)).max())
    if length > 0:
        field *= np.float32(alpha / length)
    return field


def remap_volume(volume: Array, field: NDArray[np.float32], *, nearest: bool) -> Array:
    """Resample ``(Z, H, W[, C])`` at ``position + field`` (zero outside).

    ``nearest`` for labels and instance ids (values copied exactly); otherwise linear in
    float32, rounded and clipped back to integer dtypes.

    Example:
        >>> vol = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
        >>> same = remap_volume(vol, np.zeros((3, 4, 4, 4), np.float32), nearest=True)
        >>> bool(np.array_equal(same, vol))
        True
    """
    spatial = field.shape[1:]
    coords = np.indices(spatial, dtype=np.float32) + field
    if nearest:
        return np.asarray(
            ndimage.map_coordinates(volume, coords, order=0, mode="constant", cval=0),
            volume.dtype,
        )
    data = volume.astype(np.float32)
    planes = data[..., None] if volume.ndim == 3 else data
    out = np.stack(
        [
            ndimage.map_coordinates(planes[..., c], coords, order=1, mode="constant", cval=0.0)
            for c in range(planes.shape[-1])
        ],
        axis=-1,
    ).reshape(volume.shape)
    if volume.dtype.kind in "ui":
        info = np.iinfo(volume.dtype)
        out = np.clip(np.floor(out + 0.5), info.min, info.max)
    return np.asarray(out).astype(volume.dtype)
