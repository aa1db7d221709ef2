"""Tiled prediction of whole images and volumes, blended with Gaussian weights.

A model sees fixed-size windows (tiles); :func:`predict_tiled` cuts an image ``(C, *spatial)``
into overlapping tiles (:func:`tile_origins`), runs ``forward`` on batches of them and blends
the per-tile class probabilities with :func:`gaussian_weights` (high in a tile's centre, low
but never 0 at its border), so seams between tiles vanish and every pixel is the weighted mean
of all tiles that cover it::

    probs[k, p] = sum_t w_t(p) * out_t[k, p] / sum_t w_t(p)

**Memory.** Tiles are visited row by row along the first spatial axis (``y`` for images, ``z``
for volumes). A batch only holds tiles of one tile row, and the blend accumulator only holds
the rows that tiles of that row touch (at most ``window[0]`` rows, full width). Rows that no
pending tile covers are finished: they are divided by the weight sum and handed to
``on_rows(start, stop, probs_slab)``. So the memory is one batch of tiles plus one slab of
``window[0]`` rows: a ``2048^3`` volume never has a full-size ``K``-channel float array.

Example:
    >>> image = np.zeros((1, 5, 7), np.float32)
    >>> def forward(batch):  # two classes: everything is class 1
    ...     out = np.zeros((len(batch), 2, *batch.shape[2:]), np.float32)
    ...     out[:, 1] = 1
    ...     return out
    >>> probs = predict_tiled(forward, image, window=(4, 4), num_outputs=2)
    >>> probs.shape, float(probs[1].min())
    ((2, 5, 7), 1.0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.crops.windows import as_tuple, window_starts
from microprep.errors import UsageError

__all__ = ["Forward", "RowsCallback", "gaussian_weights", "predict_tiled", "tile_origins"]

logger = logging.getLogger(__name__)

#: ``forward(batch)``: ``(B, C, *window)`` float32 -> ``(B, K, *window)`` float32 probabilities.
Forward = Callable[[NDArray[np.float32]], Any]
#: ``on_rows(start, stop, probs)``: rows ``start:stop`` of the first spatial axis are finished;
#: ``probs`` is ``(K, stop - start, *rest)`` float32.
RowsCallback = Callable[[int, int, NDArray[np.float32]], None]


def gaussian_weights(window: Sequence[int], *, sigma_scale: float = 0.125) -> NDArray[np.float32]:
    """Blending weights of one tile: a Gaussian centred in the window, 1 at the peak.

    ``sigma = sigma_scale * window`` per axis (as in nnU-Net). The centre is at
    ``(w - 1) / 2`` so the weights are symmetric under flipping any axis; values are floored
    at the smallest positive value, so every pixel of a tile has a weight above 0.

    Args:
        window: the tile shape, ``(H, W)`` or ``(Z, H, W)`` in pixels.
        sigma_scale: sigma as a fraction of the window side (> 0).

    Returns:
        float32 array of shape ``window``, values in ``(0, 1]``.

    Raises:
        UsageError: a non-positive window side or ``sigma_scale``.

    Example:
        >>> w = gaussian_weights((5, 5))
        >>> float(w[2, 2]), bool(w.min() > 0), bool(np.allclose(w, w[::-1, ::-1]))
        (1.0, True, True)
    """
    win = tuple(int(w) for w in window)
    if not win or any(w <= 0 for w in win):
        raise UsageError(f"window sides must be positive, got {tuple(window)}")
    if not sigma_scale > 0:
        raise UsageError(f"sigma_scale must be above 0, got {sigma_scale}")
    weights = np.ones((), np.float64)
    for axis, w in enumerate(win):
        coords = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
        sigma = max(w * sigma_scale, 1e-6)
        profile = np.exp(-0.5 * (coords / sigma) ** 2)
        weights = np.multiply.outer(weights, profile) if axis else profile
    weights = weights / weights.max()
    out = weights.astype(np.float32)
    positive = out[out > 0]
    floor = float(positive.min()) if positive.size else 1.0
    result: NDArray[np.float32] = np.maximum(out, np.float32(floor))
    return result


def tile_origins(
    shape: Sequence[int], *, window: int | Sequence[int], overlap: float
) -> NDArray[np.int64]:
    """Origins ``(N, ndim)`` int64 of tiles that cover every pixel of ``shape``.

    Tiles move by ``stride = max(1, round(window * (1 - overlap)))`` per axis; the last tile
    of an axis is moved back to end flush with the edge. An axis shorter than the window gets
    one tile at 0 (the image is padded by reflection there, see :func:`predict_tiled`).
    Origins are in C order: sorted by the first axis, then the next.

    Args:
        shape: spatial shape ``(H, W)`` or ``(Z, H, W)``.
        window: tile size per axis (one int for all axes).
        overlap: fraction of the window shared by neighbouring tiles, ``0 <= overlap < 1``.

    Raises:
        UsageError: an empty shape, a non-positive window or an overlap outside ``[0, 1)``.

    Example:
        >>> tile_origins((10, 3), window=4, overlap=0.5).tolist()
        [[0, 0], [2, 0], [4, 0], [6, 0]]
    """
    spatial = tuple(int(s) for s in shape)
    if not spatial or any(s <= 0 for s in spatial):
        raise UsageError(f"cannot tile an image of shape {spatial}")
    win = as_tuple(window, len(spatial), "window")
    if not 0 <= overlap < 1:
        raise UsageError(f"overlap must be in [0, 1), got {overlap}")
    axes = [
        window_starts(size=n, window=w, stride=max(1, round(w * (1 - overlap))), edge="flush")
        for n, w in zip(spatial, win, strict=True)
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)


def _tile(image: Any, origin: Sequence[int], window: Sequence[int]) -> NDArray[np.float32]:
    """The tile at ``origin`` of ``(C, *spatial)``, reflect-padded at the end where short."""
    spatial = image.shape[1:]
    box = tuple(slice(o, min(o + w, n)) for o, w, n in zip(origin, window, spatial, strict=True))
    tile = np.asarray(image[(slice(None), *box)], dtype=np.float32)
    short = [(0, w - (s.stop - s.start)) for s, w in zip(box, window, strict=True)]
    if any(after for _, after in short):
        tile = np.pad(tile, [(0, 0), *short], mode="reflect")
    return tile


def _rows_of_tiles(origins: NDArray[np.int64], batch_size: int) -> list[NDArray[np.int64]]:
    """Batches of tile indices: consecutive, of one first-axis origin each, at most batch_size."""
    batches: list[NDArray[np.int64]] = []
    starts = np.flatnonzero(np.diff(origins[:, 0], prepend=-1))
    ends = [*starts[1:].tolist(), len(origins)]
    for a, b in zip(starts.tolist(), ends, strict=True):
        for c in range(a, b, batch_size):
            batches.append(np.arange(c, min(c + batch_size, b), dtype=np.int64))
    return batches


def predict_tiled(
    forward: Forward,
    image: Any,
    *,
    window: int | Sequence[int],
    overlap: float = 0.25,
    batch_size: int = 4,
    num_outputs: int,
    on_rows: RowsCallback | None = None,
    progress: bool = False,
    sigma_scale: float = 0.125,
) -> NDArray[np.float32] | None:
    """Predict a whole image tile by tile and blend the tiles' probabilities.

    Args:
        forward: the model, ``(B, C, *window)`` float32 -> ``(B, K, *window)`` float32
            probabilities (a numpy array or anything ``np.asarray`` takes).
        image: ``(C, H, W)`` or ``(C, Z, H, W)`` float32 (already scaled as the model expects);
            any array that supports slicing (numpy, zarr, dask) works, only tiles are read.
        window: the tile size per spatial axis (one int for all), in pixels.
        overlap: fraction of the window shared by neighbouring tiles, ``[0, 1)``.
        batch_size: tiles per ``forward`` call (batches never span two tile rows).
        num_outputs: ``K``, the number of output channels (classes).
        on_rows: when given, called as ``on_rows(start, stop, probs)`` with ``probs``
            ``(K, stop - start, *rest)`` float32 for each finished slab of the first spatial
            axis, in order, covering every row once; the function then returns None.
        progress: show a progress bar over the tiles.
        sigma_scale: of the blending weights (:func:`gaussian_weights`).

    Returns:
        ``(K, *spatial)`` float32 blended probabilities, or None when ``on_rows`` is given.

    Raises:
        UsageError: an image that is not ``(C, *spatial)`` with 2 or 3 spatial axes, bad
            window, overlap or batch size, or ``forward`` returning the wrong shape.
    """
    shape = tuple(int(s) for s in image.shape)
    if len(shape) not in (3, 4):
        raise UsageError(f"image must be (C, H, W) or (C, Z, H, W), got shape {shape}")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise UsageError(f"batch_size must be 1 or more, got {batch_size}")
    if int(num_outputs) < 1:
        raise UsageError(f"num_outputs must be 1 or more, got {num_outputs}")
    spatial = shape[1:]
    win = as_tuple(window, len(spatial), "window")
    k = int(num_outputs)
    origins = tile_origins(spatial, window=win, overlap=overlap)
    weights = gaussian_weights(win, sigma_scale=sigma_scale)
    rest = spatial[1:]
    rows = min(win[0], spatial[0])
    acc = np.zeros((k, rows, *rest), np.float32)
    wsum = np.zeros((rows, *rest), np.float32)
    lo = 0  # first row held in acc
    full: NDArray[np.float32] | None = None
    if on_rows is None:
        full = np.empty((k, *spatial), np.float32)
        target = full

        def store(start: int, stop: int, slab: NDArray[np.float32]) -> None:
            target[:, start:stop] = slab

        on_rows = store

    def emit(stop: int) -> None:
        nonlocal lo
        n = stop - lo
        if n <= 0:
            return
        on_rows(lo, stop, acc[:, :n] / wsum[:n])
        acc[:, : rows - n] = acc[:, n:].copy()
        acc[:, rows - n :] = 0
        wsum[: rows - n] = wsum[n:].copy()
        wsum[rows - n :] = 0
        lo = stop

    bar = tqdm(
        total=len(origins),
        desc="tiles",
        unit="tile",
        disable=None if progress else True,
        leave=False,
    )
    try:
        for batch in _rows_of_tiles(origins, int(batch_size)):
            emit(int(origins[batch[0], 0]))
            tiles = np.stack([_tile(image, origins[i], win) for i in batch.tolist()])
            out = np.asarray(forward(tiles), dtype=np.float32)
            expected = (len(batch), k, *win)
            if out.shape != expected:
                raise UsageError(
                    f"the model returned shape {out.shape} for a batch of shape {tiles.shape}; "
                    f"expected {expected} (batch, classes, *window)"
                )
            for j, i in enumerate(batch.tolist()):
                origin = origins[i]
                box = tuple(
                    slice(0, min(w, n - o)) for o, w, n in zip(origin, win, spatial, strict=True)
                )
                shift = (int(origin[0]) - lo, *(int(o) for o in origin[1:]))
                dest = tuple(slice(o, o + b.stop) for o, b in zip(shift, box, strict=True))
                w = weights[box]
                acc[(slice(None), *dest)] += out[j][(slice(None), *box)] * w
                wsum[dest] += w
            bar.update(len(batch))
        emit(spatial[0])
    finally:
        bar.close()
    logger.debug("predicted %d tiles of %s over %s", len(origins), win, spatial)
    return full
