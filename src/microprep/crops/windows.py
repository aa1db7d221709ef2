"""Window arithmetic for sliding-window crops: pure functions on sizes, no data.

A window of ``window`` pixels moves by ``stride`` pixels along an axis of ``size`` pixels.
Every pixel is covered: with ``edge="flush"`` the last window is moved back so that it ends
exactly at the edge; with ``edge="pad"`` it starts one stride further and reaches past the edge
(the part outside is padded when the crop is cut). An axis shorter than the window always gets
one window at 0, padded.

Example:
    >>> window_starts(size=10, window=4, stride=3, edge="flush").tolist()
    [0, 3, 6]
    >>> window_starts(size=11, window=4, stride=3, edge="flush").tolist()
    [0, 3, 6, 7]
    >>> window_starts(size=11, window=4, stride=3, edge="pad").tolist()
    [0, 3, 6, 9]
    >>> window_grid(shape=(4, 6), window=(4, 4), stride=(2, 2), edge="flush").tolist()
    [[0, 0], [0, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

Edge = Literal["flush", "pad"]
EDGES: tuple[str, ...] = ("flush", "pad")


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def window_starts(*, size: int, window: int, stride: int, edge: str = "flush") -> NDArray[np.int64]:
    """Start index of every window along one axis, ascending, int64.

    Args:
        size: the axis length in pixels (>= 1).
        window: the window length in pixels.
        stride: the step between windows in pixels.
        edge: ``"flush"`` (the last window ends at the edge) or ``"pad"`` (it reaches past it).

    Raises:
        UsageError: a non-positive size, window or stride, a stride larger than the window
            (it would skip pixels), or an unknown edge mode.
    """
    size = _positive("size", size)
    window = _positive("window", window)
    stride = _positive("stride", stride)
    if stride > window:
        raise UsageError(
            f"stride {stride} is larger than the window {window}: pixels between windows would "
            "be skipped; use a stride <= the window"
        )
    if edge not in EDGES:
        raise UsageError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")
    if size <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, size - window + 1, stride, dtype=np.int64)
    last_end = int(starts[-1]) + window
    if last_end < size:
        extra = size - window if edge == "flush" else int(starts[-1]) + stride
        starts = np.append(starts, np.int64(extra))
    return starts


def as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """``value`` as ``ndim`` positive ints: one int is repeated, a sequence must have ``ndim``.

    Example:
        >>> as_tuple(64, 3, "window"), as_tuple((32, 16), 2, "stride")
        ((64, 64, 64), (32, 16))
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        values = (int(value),) * ndim
    else:
        values = tuple(value)  # type: ignore[arg-type]
        if len(values) != ndim:
            raise UsageError(
                f"{name} {','.join(map(str, values))} has {len(values)} values but the data has "
                f"{ndim} spatial axes; give one value or {ndim}"
            )
    return tuple(_positive(name, v) for v in values)


def window_grid(
    *,
    shape: Sequence[int],
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    edge: str = "flush",
) -> NDArray[np.int64]:
    """Origins ``(N, ndim)`` int64 of all windows over ``shape``, in C order (last axis fastest).

    Args:
        shape: the spatial shape, ``(H, W)`` or ``(Z, H, W)``.
        window: window size per axis (one int for all axes).
        stride: step per axis (default: the window, i.e. no overlap).
        edge: see :func:`window_starts`.
    """
    ndim = len(shape)
    win = as_tuple(window, ndim, "window")
    step = win if stride is None else as_tuple(stride, ndim, "stride")
    axes = [
        window_starts(size=int(n), window=w, stride=s, edge=edge)
        for n, w, s in zip(shape, win, step, strict=True)
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)


def needs_padding(*, shape: Sequence[int], origin: Sequence[int], window: Sequence[int]) -> bool:
    """Whether the window at ``origin`` reaches past ``shape`` on some axis."""
    return any(o + w > n for o, w, n in zip(origin, window, shape, strict=True))
