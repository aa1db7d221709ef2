"""The value range of an image and the checks shared by the noise functions.

Integer images use the dtype's range, float images ``[min, max]`` of the image (see
:mod:`microprep.augment.noise`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = ["image_range"]

Array = NDArray[Any]


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


def _spatial(image: Array, ndim: int) -> tuple[int, ...]:
    if ndim not in (2, 3) or image.ndim not in (ndim, ndim + 1):
        raise UsageError(
            f"image of shape {image.shape} does not have {ndim} spatial axes (plus channels)"
        )
    return tuple(int(n) for n in image.shape[:ndim])
