"""2D geometry applied to an image and its targets together.

Arrays and axes:

* ``image``: ``(H, W)`` or ``(H, W, C)``, any of uint8 / uint16 / float32 (kept);
* ``labels``: ``(H, W)`` class index map (uint8 / uint16), moved with nearest-neighbour;
* ``instances``: ``(L, H, W)`` uint32 instance-id layers (the store's layout), nearest.

The dihedral group D4 (the 8 flips and quarter turns of the square) is exact index
shuffling. Rotation by any angle and zoom are one affine warp about the image centre
(``cv2.warpAffine``): bilinear for the image, nearest for labels and instance ids (stacked as
channels of one int32 warp), zero (background) where the output comes from outside the input.
So no label value appears that was not there, except background 0 in those corners.

Example:
    >>> import numpy as np
    >>> labels = np.zeros((4, 6), np.uint8); labels[0, 0] = 2
    >>> moved = d4(labels, 1)          # a quarter turn counter-clockwise
    >>> moved.shape, int(moved[-1, 0])
    ((6, 4), 2)
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = ["D4_INVERSE", "affine_matrix", "d4", "d4_matrix", "warp_image", "warp_labels"]

Array = NDArray[Any]


def d4(array: Array, k: int, *, axes: tuple[int, int] = (0, 1)) -> Array:
    """Element ``k`` (0..7) of the square's symmetry group on ``axes`` (a view where possible).

    ``k & 3`` quarter turns counter-clockwise (``np.rot90``), then, when ``k >= 4``, a flip of
    the columns (left-right). ``k = 0`` is the identity; :data:`D4_INVERSE` gives inverses.

    Example:
        >>> a = np.arange(6).reshape(2, 3)
        >>> np.array_equal(d4(d4(a, 3), D4_INVERSE[3]), a)
        True
    """
    if not 0 <= k < 8:
        raise UsageError(f"D4 element {k}: must be 0..7")
    out = np.rot90(array, k & 3, axes=axes)
    if k >= 4:
        out = np.flip(out, axis=axes[1])
    return out


def _d4_inverse() -> tuple[int, ...]:
    probe = np.arange(12).reshape(3, 4)
    inverse = []
    for k in range(8):
        moved = d4(probe, k)
        inverse.append(next(j for j in range(8) if np.array_equal(d4(moved, j), probe)))
    return tuple(inverse)


#: ``D4_INVERSE[k]`` undoes ``d4(., k)``.
D4_INVERSE: tuple[int, ...] = _d4_inverse()


def d4_matrix(shape: tuple[int, int], k: int) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """``(3x3 matrix, output shape)``: :func:`d4` element ``k`` as a map of pixel coordinates
    ``(x, y, 1)`` of an ``(H, W)`` image to those of the result, so that it can be composed
    with a rotation into one warp.

    Example:
        >>> m, shape = d4_matrix((2, 3), 1)
        >>> shape, (m @ [2.0, 0.0, 1.0]).tolist()
        ((3, 2), [0.0, 0.0, 1.0])
    """
    if not 0 <= k < 8:
        raise UsageError(f"D4 element {k}: must be 0..7")
    h, w = shape
    matrix = np.eye(3)
    for _ in range(k & 3):  # one counter-clockwise quarter turn: x' = y, y' = W - 1 - x
        turn = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]])
        matrix = turn @ matrix
        h, w = w, h
    if k >= 4:  # left-right flip: x' = W - 1 - x
        matrix = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ matrix
    return matrix, (h, w)


def affine_matrix(
    shape: tuple[int, int], *, angle: float = 0.0, zoom: float = 1.0
) -> NDArray[np.float64]:
    """``(2, 3)`` matrix for ``cv2.warpAffine``: rotate by ``angle`` degrees (counter-clockwise
    as displayed, y down) and scale by ``zoom`` about the centre of an ``(H, W)`` image.

    Pixel centres are at integer indices, so the centre is ``((W - 1) / 2, (H - 1) / 2)``.

    Example:
        >>> bool(np.allclose(affine_matrix((5, 5), angle=0.0), [[1, 0, 0], [0, 1, 0]]))
        True
    """
    if not (math.isfinite(zoom) and zoom > 0):
        raise UsageError(f"zoom={zoom!r}: must be a finite number > 0")
    if not math.isfinite(angle):
        raise UsageError(f"angle={angle!r}: must be finite")
    h, w = shape
    center = ((w - 1) / 2.0, (h - 1) / 2.0)
    return np.asarray(cv2.getRotationMatrix2D(center, float(angle), float(zoom)), np.float64)


def warp_image(
    image: Array, matrix: NDArray[np.float64], size: tuple[int, int] | None = None
) -> Array:
    """Warp ``(H, W[, C])`` with ``matrix``: bilinear, zero outside; dtype and range kept.

    ``size`` is the output ``(H, W)`` (default: the input's).

    Example:
        >>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
        >>> np.allclose(warp_image(img, affine_matrix((4, 4))), img)
        True
    """
    h, w = size if size is not None else image.shape[:2]
    out_shape = (h, w, *image.shape[2:])
    if image.dtype in (np.uint8, np.uint16, np.float32, np.float64) and (
        image.ndim == 2 or image.shape[2] <= 4
    ):
        out = cv2.warpAffine(
            image,
            matrix,
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return np.asarray(out, image.dtype).reshape(out_shape)
    data = image.astype(np.float32)
    planes = data.reshape(*image.shape[:2], -1)
    moved = np.stack(
        [
            np.asarray(
                cv2.warpAffine(
                    np.ascontiguousarray(planes[:, :, c]),
                    matrix,
                    (w, h),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=0,
                ),
                np.float32,
            )
            for c in range(planes.shape[2])
        ],
        axis=2,
    )
    if image.dtype.kind in "ui":
        np.floor(moved + 0.5, out=moved)
    return moved.reshape(out_shape).astype(image.dtype)


def warp_labels(
    planes: list[Array], matrix: NDArray[np.float64], size: tuple[int, int] | None = None
) -> list[Array]:
    """Warp ``(H, W)`` integer maps with nearest-neighbour, zero outside (values copied exactly).

    ``size`` is the output ``(H, W)`` (default: the input's).

    Maps go through one int32 warp as channels (4 per call), so a class map and a few
    instance layers cost about one warp.

    Example:
        >>> lab = np.array([[0, 1], [2, 3]], np.uint8)
        >>> warp_labels([lab], affine_matrix((2, 2)))[0].tolist()
        [[0, 1], [2, 3]]
    """
    if not planes:
        return []
    h, w = planes[0].shape
    out_h, out_w = size if size is not None else (h, w)
    for p in planes:
        if p.dtype.kind not in "uib" or p.shape != (h, w) or p.dtype.itemsize > 4:
            raise UsageError(f"label map of dtype {p.dtype} and shape {p.shape} cannot be warped")
    stacked = np.empty((h, w, len(planes)), np.int32)
    for i, p in enumerate(planes):
        if p.dtype == np.uint32:
            stacked[:, :, i] = p.view(np.int32)
        else:
            stacked[:, :, i] = p
    outs: list[NDArray[np.int32]] = []
    for start in range(0, len(planes), 4):
        part = np.ascontiguousarray(stacked[:, :, start : start + 4])
        moved = cv2.warpAffine(
            part,
            matrix,
            (out_w, out_h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        outs.append(np.asarray(moved, np.int32).reshape(out_h, out_w, -1))
    result = np.concatenate(outs, axis=2) if len(outs) > 1 else outs[0]
    back: list[Array] = []
    for i, p in enumerate(planes):
        plane = np.ascontiguousarray(result[:, :, i])
        back.append(plane.view(np.uint32) if p.dtype == np.uint32 else plane.astype(p.dtype))
    return back
