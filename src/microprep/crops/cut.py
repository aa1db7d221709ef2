"""Cutting windows out of an in-memory array: one padded window, or a stack of many.

:func:`cut_window` cuts one window (padded where it leaves the array) from anything sliceable;
:func:`stack_windows` copies many windows of a numpy array into one ``(N, *window, ...)``
buffer, a whole grid of windows in a few strided block copies (see
:mod:`microprep.crops.blockcopy`) rather than one copy per window.

Example:
    >>> import numpy as np
    >>> a = np.arange(60).reshape(6, 10)
    >>> cut_window(a, (4, 8), (3, 3), pad="constant").tolist()
    [[48, 49, 0], [58, 59, 0], [0, 0, 0]]
    >>> out = np.empty((2, 2, 2), a.dtype)
    >>> stack_windows(a, np.array([[0, 0], [2, 2]]), (2, 2), out=out)[1].tolist()
    [[22, 23], [32, 33]]
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.crops.blockcopy import copy_block

PADS: tuple[str, ...] = ("constant", "reflect")


def cut_window(
    source: Any,
    origin: tuple[int, ...],
    window: tuple[int, ...],
    *,
    pad: str = "constant",
    lead: int = 0,
    row_offset: int = 0,
    full_rows: int | None = None,
) -> NDArray[Any]:
    """Cut one window from ``source`` (numpy, zarr or dask: anything sliceable), padded.

    Args:
        source: the array; its axes are ``lead`` leading axes (kept whole), the spatial axes,
            then any trailing axes (channels, kept whole).
        origin: the window origin in full-array coordinates (spatial axes).
        window: the window size per spatial axis.
        pad: ``"constant"`` (zeros) or ``"reflect"`` for the part outside the array.
        row_offset: ``source`` holds rows ``row_offset..`` of the first spatial axis (a slab).
        full_rows: the full length of the first spatial axis (default: from ``source``).

    Returns:
        A new array ``(*lead, *window, *trailing)`` of the source dtype.
    """
    spatial = list(source.shape[lead : lead + len(window)])
    if full_rows is not None:
        spatial[0] = full_rows
    inside = [slice(o, min(o + w, n)) for o, w, n in zip(origin, window, spatial, strict=True)]
    local = [inside[0].start - row_offset, inside[0].stop - row_offset]
    sel = (slice(None),) * lead + (slice(*local), *inside[1:])
    part = np.asarray(source[sel])
    extra = [w - (s.stop - s.start) for w, s in zip(window, inside, strict=True)]
    if not any(extra):
        return np.array(part, copy=True)
    widths = [(0, 0)] * lead + [(0, e) for e in extra]
    widths += [(0, 0)] * (part.ndim - len(widths))
    if pad == "reflect" and min(part.shape[lead : lead + len(window)]) > 1:
        return np.pad(part, widths, mode="reflect")
    if pad == "reflect":
        return np.pad(part, widths, mode="edge")
    return np.pad(part, widths, mode="constant")


def stack_windows(
    array: NDArray[Any],
    origins: NDArray[np.int64],
    win: tuple[int, ...],
    *,
    out: NDArray[Any],
    pad: str = "constant",
    threads: int | None = None,
) -> NDArray[Any]:
    """Copy the windows at ``origins`` ``(N, ndim)`` of ``array`` into ``out`` ``(N, *win, ...)``.

    A full grid of windows inside the array takes a few strided block copies; otherwise runs of
    windows along the last axis at a constant step take one copy each, and windows that leave
    the array are cut (and padded by ``pad``) one by one. Axes after the spatial ones are kept
    whole. ``threads`` splits large copies (:func:`microprep.crops.blockcopy.copy_block`).

    Returns:
        ``out``.
    """
    n = len(origins)
    if not n:
        return out
    if _copy_grid(array, origins, win, out, threads):
        return out
    spatial = np.asarray(array.shape[: len(win)])
    inside = (origins + np.asarray(win) <= spatial).all(axis=1)
    diff = np.diff(origins[:, -1])
    join = np.zeros(n, bool)  # window k continues the run of window k - 1
    if n > 1:
        join[1:] = (
            inside[1:]
            & inside[:-1]
            & (origins[1:, :-1] == origins[:-1, :-1]).all(axis=1)
            & (diff > 0)
        )
        join[2:] &= diff[1:] == diff[:-1]
    starts = [*np.flatnonzero(~join).tolist(), n]
    rows: list[list[int]] = origins.tolist()
    axis = len(win) - 1

    def copy_run(k: int, end: int) -> None:
        if not inside[k]:
            out[k] = cut_window(array, tuple(rows[k]), win, pad=pad)
            return
        step = int(diff[k]) if end - k > 1 else 0
        first = array[tuple(slice(o, None) for o in rows[k])]
        strides = (step * array.strides[axis], *array.strides)
        view = np.lib.stride_tricks.as_strided(
            first, shape=(end - k, *win, *array.shape[len(win) :]), strides=strides, writeable=False
        )
        copy_block(out[k:end], view, threads=threads)

    for k, end in itertools.pairwise(starts):
        copy_run(k, end)
    return out


def _segments(starts: list[int]) -> list[tuple[int, int, int]]:
    """``(first index, end index, step)`` of the maximal constant-step runs of ``starts``."""
    runs: list[tuple[int, int, int]] = []
    k = 0
    while k < len(starts):
        end = k + 1
        step = starts[end] - starts[k] if end < len(starts) else 0
        while end < len(starts) and starts[end] - starts[end - 1] == step:
            end += 1
        runs.append((k, end, step))
        k = end
    return runs


def _copy_grid(
    array: NDArray[Any],
    origins: NDArray[np.int64],
    win: tuple[int, ...],
    out: NDArray[Any],
    threads: int | None = None,
) -> bool:
    """Copy a full window grid (the C-order product of per-axis starts, every window inside the
    array) in a few strided copies: one per combination of constant-step runs of the axes'
    starts (a flush grid has at most two runs per axis). False when ``origins`` is no such grid.

    One copy per block instead of one per row of windows matters for small windows: numpy's
    per-call cost is then paid a handful of times rather than once per row.
    """
    ndim = len(win)
    axes = [np.unique(origins[:, a]) for a in range(ndim)]
    counts = tuple(len(a) for a in axes)
    if math.prod(counts) != len(origins):
        return False
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, ndim)
    if not np.array_equal(mesh, origins):
        return False
    spatial = array.shape[:ndim]
    if any(int(a[-1]) + w > n for a, w, n in zip(axes, win, spatial, strict=True)):
        return False
    rest = array.shape[ndim:]
    grid = out.reshape(*counts, *win, *rest)
    starts = [a.tolist() for a in axes]
    for block in itertools.product(*(_segments(s) for s in starts)):
        first = array[tuple(slice(starts[a][k], None) for a, (k, _, _) in enumerate(block))]
        shape = (*(end - k for k, end, _ in block), *win, *rest)
        steps = tuple(step * array.strides[a] for a, (_, _, step) in enumerate(block))
        view = np.lib.stride_tricks.as_strided(
            first, shape=shape, strides=(*steps, *array.strides), writeable=False
        )
        copy_block(grid[tuple(slice(k, end) for k, end, _ in block)], view, threads=threads)
    return True
