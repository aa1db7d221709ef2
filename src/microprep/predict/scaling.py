"""Pixels as a model takes them: channels first, scaled, and the tile size per input.

* :func:`channels_first`: ``(*spatial[, c])`` -> ``(C, *spatial)``, optionally fitting the
  channel count to the model (gray to RGB, RGBA to RGB, RGB to gray).
* :func:`unit_range`: the default ``scale_fn`` of :func:`microprep.predict.predict_semantic`.
* :func:`window_for`: one window argument for sources that mix images and volumes.

Example:
    >>> pixels = channels_first(np.full((2, 3), 255, np.uint8), ndim=2)
    >>> pixels.shape, float(unit_range(pixels).max())
    ((1, 2, 3), 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = ["ScaleFn", "channels_first", "unit_range", "window_for"]

#: ``scale_fn(pixels)``: ``(C, *spatial)`` in the file's dtype -> ``(C, *spatial)`` float32.
ScaleFn = Callable[[NDArray[Any]], Any]


def channels_first(
    image: NDArray[Any], *, ndim: int, in_channels: int | None = None
) -> NDArray[Any]:
    """Pixels ``(*spatial[, c])`` as ``(C, *spatial)``, dtype kept.

    Args:
        image: ``(H, W)``, ``(H, W, C)``, ``(Z, H, W)`` or ``(Z, H, W, C)``.
        ndim: spatial axes (2 or 3).
        in_channels: channels the model takes; when given, gray is repeated to 3 channels,
            RGBA drops alpha for 3, and RGB(A) is averaged to gray for 1.

    Raises:
        UsageError: the image does not have ``ndim`` or ``ndim + 1`` axes, or its channels
            cannot be made ``in_channels``.

    Example:
        >>> channels_first(np.zeros((4, 5, 3)), ndim=2).shape
        (3, 4, 5)
        >>> channels_first(np.zeros((4, 5)), ndim=2, in_channels=3).shape
        (3, 4, 5)
    """
    array = np.asarray(image)
    if array.ndim == ndim:
        array = array[None]
    elif array.ndim == ndim + 1:
        array = np.moveaxis(array, -1, 0)
    else:
        raise UsageError(f"pixels of shape {array.shape} are not {ndim}D with optional channels")
    c = array.shape[0]
    if in_channels is None or c == in_channels:
        return array
    if c == 1:
        return np.repeat(array, in_channels, axis=0)
    if c == 4 and in_channels == 3:
        return array[:3]
    if c in (3, 4) and in_channels == 1:
        gray: NDArray[np.float64] = array[:3].mean(axis=0, keepdims=True, dtype=np.float64)
        if array.dtype.kind in "biu":
            gray = np.round(gray)
        result: NDArray[Any] = gray.astype(array.dtype)
        return result
    raise UsageError(f"the image has {c} channels but the model takes {in_channels}")


def window_for(window: int | Sequence[int], ndim: int) -> int | tuple[int, ...]:
    """The tile size for an input of ``ndim`` spatial axes.

    One int serves every input; ``(H, W)`` serves images and ``(Z, H, W)`` volumes, and a
    ``(Z, H, W)`` window also serves images (as ``(H, W)``), so one call can predict a folder
    that mixes images and stacks.

    Raises:
        UsageError: a 2-value window for a volume, or another number of values.

    Example:
        >>> window_for((16, 64, 64), 2), window_for(64, 3)
        ((64, 64), 64)
    """
    if isinstance(window, bool):
        raise UsageError(f"window must be an int or a sequence of ints, got {window!r}")
    if isinstance(window, int | np.integer):
        return int(window)
    values = tuple(int(w) for w in window)
    if len(values) == ndim:
        return values
    if len(values) == 3 and ndim == 2:
        return values[1:]
    raise UsageError(
        f"window {','.join(map(str, values))} does not fit {ndim}D inputs; give one value, "
        f"{ndim} values, or (z, y, x) for images and volumes"
    )


def unit_range(pixels: NDArray[Any]) -> NDArray[np.float32]:
    """The default scaling: integers divided by their dtype's maximum, floats as they are.

    ``uint8`` / 255, ``uint16`` / 65535, ``bool`` to 0 / 1, float unchanged; returns float32 of
    the same shape. Pass the normalisation the model was trained with instead when it differs.

    Example:
        >>> unit_range(np.array([[0, 255]], np.uint8)).tolist()
        [[0.0, 1.0]]
    """
    array = np.asarray(pixels)
    if array.dtype.kind == "u" or array.dtype.kind == "i":
        return (array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)).astype(np.float32)
    return array.astype(np.float32)
