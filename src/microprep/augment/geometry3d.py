"""3D geometry for volumes ``(Z, H, W)``: the 48 symmetries of the cube, rotation and zoom.

Arrays: ``image`` ``(Z, H, W[, C])``, ``labels`` ``(Z, H, W)``, ``instances`` ``(L, Z, H, W)``.
The cube symmetries permute and flip the three spatial axes (exact index shuffling; a
permutation swaps axis lengths, so a ``(Z, H, W)`` volume can come back as ``(H, Z, W)``).
Rotation and zoom are one ``scipy.ndimage.affine_transform`` about the volume centre: linear
interpolation (``order=1``) for the image, ``order=0`` (nearest) for labels and instance ids,
zero (background) outside.

Example:
    >>> import numpy as np
    >>> vol = np.arange(24).reshape(2, 3, 4)
    >>> len({cube_symmetry(vol, k).tobytes() + bytes(cube_symmetry(vol, k).shape)
    ...      for k in range(48)})
    48
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microprep.errors import UsageError

__all__ = [
    "CUBE_INVERSE",
    "cube_symmetry",
    "permuted_shape",
    "rotation_zoom_3d",
    "transform_volume",
]

Array = NDArray[Any]

_PERMS: tuple[tuple[int, int, int], ...] = tuple(itertools.permutations(range(3)))  # type: ignore[arg-type]


def cube_symmetry(array: Array, k: int, *, first_axis: int = 0) -> Array:
    """Element ``k`` (0..47) of the cube's symmetry group on 3 spatial axes from ``first_axis``.

    ``k // 8`` picks an axis permutation (6), ``k % 8`` the flips (bit ``i`` flips spatial axis
    ``i`` after permuting). ``k = 0`` is the identity; :data:`CUBE_INVERSE` gives inverses.
    Trailing axes (channels) and leading ones (instance layers) stay in place.

    Example:
        >>> v = np.arange(8).reshape(2, 2, 2)
        >>> np.array_equal(cube_symmetry(cube_symmetry(v, 13), CUBE_INVERSE[13]), v)
        True
    """
    if not 0 <= k < 48:
        raise UsageError(f"cube symmetry {k}: must be 0..47")
    perm = _PERMS[k // 8]
    order = list(range(array.ndim))
    for i, p in enumerate(perm):
        order[first_axis + i] = first_axis + p
    out = np.transpose(array, order)
    flips = tuple(first_axis + i for i in range(3) if (k % 8) >> i & 1)
    return np.flip(out, axis=flips) if flips else out


def permuted_shape(shape: tuple[int, ...], k: int) -> tuple[int, ...]:
    """The spatial shape ``(Z, H, W)`` becomes after :func:`cube_symmetry` element ``k``.

    Example:
        >>> permuted_shape((16, 64, 64), 0), permuted_shape((16, 64, 64), 8 * 5)
        ((16, 64, 64), (64, 64, 16))
    """
    perm = _PERMS[k // 8]
    return tuple(shape[p] for p in perm)


def _cube_inverse() -> tuple[int, ...]:
    probe = np.arange(24).reshape(2, 3, 4)
    inverse = []
    for k in range(48):
        moved = cube_symmetry(probe, k)
        inverse.append(
            next(
                j
                for j in range(48)
                if cube_symmetry(moved, j).shape == probe.shape
                and np.array_equal(cube_symmetry(moved, j), probe)
            )
        )
    return tuple(inverse)


#: ``CUBE_INVERSE[k]`` undoes ``cube_symmetry(., k)``.
CUBE_INVERSE: tuple[int, ...] = _cube_inverse()


def rotation_zoom_3d(
    shape: tuple[int, int, int],
    *,
    angles: tuple[float, float, float] = (0.0, 0.0, 0.0),
    zoom: float = 1.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(matrix, offset)`` for ``scipy.ndimage.affine_transform`` (output -> input indices).

    ``angles`` are degrees about the z, y and x axes (applied in that order), ``zoom`` scales
    about the volume centre (> 1 enlarges).

    Example:
        >>> m, o = rotation_zoom_3d((4, 4, 4))
        >>> m.tolist() == np.eye(3).tolist(), o.tolist()
        (True, [0.0, 0.0, 0.0])
    """
    if not (math.isfinite(zoom) and zoom > 0):
        raise UsageError(f"zoom={zoom!r}: must be a finite number > 0")
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        a = math.radians(angle)
        c, s = math.cos(a), math.sin(a)
        i, j = [d for d in range(3) if d != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rotation = r @ rotation
    forward = rotation * zoom
    inverse = np.asarray(np.linalg.inv(forward), np.float64)
    center = (np.asarray(shape, np.float64) - 1) / 2.0
    offset = np.asarray(center - inverse @ center, np.float64)
    return inverse, offset


def transform_volume(
    array: Array,
    matrix: NDArray[np.float64],
    offset: NDArray[np.float64],
    *,
    nearest: bool,
) -> Array:
    """Apply ``(matrix, offset)`` to ``(Z, H, W[, C])``; ``nearest`` for labels (values kept).

    The image path interpolates linearly in float32 and rounds / clips back to the dtype.

    Example:
        >>> m, o = rotation_zoom_3d((3, 3, 3), angles=(90.0, 0.0, 0.0))
        >>> v = np.zeros((3, 3, 3), np.uint8); v[1, 0, 1] = 5
        >>> int(transform_volume(v, m, o, nearest=True).sum())
        5
    """
    if nearest:
        moved = ndimage.affine_transform(
            array, matrix, offset, order=0, mode="constant", cval=0, prefilter=False
        )
        return np.asarray(moved, array.dtype)
    data = array.astype(np.float32)
    planes = data[..., None] if array.ndim == 3 else data
    out = np.stack(
        [
            ndimage.affine_transform(
                planes[..., c],
                matrix,
                offset,
                order=1,
                mode="constant",
                cval=0.0,
                prefilter=False,
            )
            for c in range(planes.shape[-1])
        ],
        axis=-1,
    )
    out = out.reshape(array.shape)
    if array.dtype.kind in "ui":
        info = np.iinfo(array.dtype)
        out = np.clip(np.floor(out + 0.5), info.min, info.max)
    return np.asarray(out).astype(array.dtype)
