"""Chunk-aware reading: a rolling slab along the first spatial axis, each chunk read once.

Windows are visited in C order, so their first-axis origins ascend. :class:`SlabReader` keeps
the rows ``[lo, hi)`` of that axis (all of the other axes) that the current row of windows
needs, and reads further rows in whole chunk rows, so every zarr chunk is decoded once per pass
whatever its shape: cube chunks ``(64, 64, 64)`` and slice chunks ``(1, H, W)`` alike. Memory
is the slab (about ``window + chunk`` rows), decoded straight into one reused buffer.

Example:
    >>> import numpy as np
    >>> a = np.arange(60).reshape(6, 10)
    >>> reader = SlabReader(a, lead=0, chunk_rows=2)
    >>> reader.rows(1, 4)[:, 0].tolist(), reader.rows(3, 6)[:, 0].tolist()
    ([10, 20, 30], [30, 40, 50])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.core.buffer import default_buffer_prototype

from microprep.crops.cut import cut_window, stack_windows

#: Decoded bytes per zarr request (a slab is read in bands of whole chunks along the next axis).
BAND_BYTES = 32 << 20
#: Bytes of windows cut together (into one buffer, over threads) by :func:`iter_windows`.
GROUP_BYTES = 16 << 20


class SlabReader:
    """Rows of the first spatial axis of ``source``, read in whole chunk rows, once each.

    The rows live in one buffer that is reused (grown only when needed); zarr arrays decode
    straight into it. A view returned by :meth:`rows` is valid until the next call.

    Args:
        source: a zarr array (or numpy / dask array).
        lead: number of leading non-spatial axes (1 for instance layers).
        chunk_rows: the chunk length along the first spatial axis (default: from
            ``source.chunks``; 1 for arrays that have none).
    """

    def __init__(self, source: Any, *, lead: int = 0, chunk_rows: int | None = None) -> None:
        self.source = source
        self.lead = lead
        self.n = int(source.shape[lead])
        if chunk_rows is None:
            chunks = getattr(source, "chunks", None)
            first = chunks[lead] if chunks is not None else 1
            chunk_rows = int(first[0] if isinstance(first, tuple) else first)
        self.chunk = max(1, int(chunk_rows))
        self.lo = 0
        self.hi = 0
        self.buf: NDArray[Any] | None = None
        self._zarr = isinstance(source, zarr.Array)

    def _rows(self, a: int, b: int) -> tuple[slice, ...]:
        return (slice(None),) * self.lead + (slice(a, b),)

    def _read(self, r0: int, r1: int, out: NDArray[Any]) -> None:
        """Read rows ``[r0, r1)`` of the source into ``out``.

        zarr decodes every chunk of one request before copying, so a zarr slab is requested in
        bands of whole chunks along the next axis of about :data:`BAND_BYTES` each.
        """
        if not self._zarr:
            out[...] = np.asarray(self.source[self._rows(r0, r1)])
            return
        axis = self.lead + 1
        if out.ndim <= axis or out.size == 0:
            bands = [slice(None)]
        else:
            c1 = int(self.source.chunks[axis])
            per_row = max(1, out.nbytes // max(1, out.shape[axis]))
            band = max(c1, BAND_BYTES // per_row // c1 * c1)
            n1 = out.shape[axis]
            bands = [slice(j, min(j + band, n1)) for j in range(0, n1, band)]
        prototype = default_buffer_prototype()
        for band_slice in bands:
            extra = () if band_slice == slice(None) else (band_slice,)
            sel = (*self._rows(r0, r1), *extra)
            local = (*self._rows(0, r1 - r0), *extra)
            nd = prototype.nd_buffer.from_numpy_array(out[local])
            self.source.get_basic_selection(sel, out=nd)

    def _reserve(self, rows: int) -> NDArray[Any]:
        shape = list(self.source.shape)
        if self.buf is None or self.buf.shape[self.lead] < rows:
            keep = None if self.buf is None else self.buf[self._rows(0, self.hi - self.lo)]
            shape[self.lead] = rows
            grown = np.empty(shape, self.source.dtype)
            if keep is not None and keep.size:
                grown[self._rows(0, self.hi - self.lo)] = keep
            self.buf = grown
        return self.buf

    def rows(self, start: int, stop: int) -> NDArray[Any]:
        """Rows ``[start, stop)`` (clipped to the array) as a view into the slab.

        ``start`` must not decrease between calls (rows before it are dropped).
        """
        start, stop = max(0, start), min(self.n, stop)
        first = (start // self.chunk) * self.chunk
        want_hi = min(self.n, -(-stop // self.chunk) * self.chunk)
        if self.buf is None or not self.lo <= start < self.hi:
            self.lo = self.hi = first
        elif first > self.lo:
            # drop whole chunk rows before ``start``: move the rest to the front, block-wise
            shift, kept = first - self.lo, self.hi - first
            assert self.buf is not None
            for a in range(0, kept, shift):
                b = min(a + shift, kept)
                self.buf[self._rows(a, b)] = self.buf[self._rows(a + shift, b + shift)]
            self.lo = first
        if want_hi > self.hi:
            buf = self._reserve(want_hi - self.lo)
            self._read(self.hi, want_hi, buf[self._rows(self.hi - self.lo, want_hi - self.lo)])
            self.hi = want_hi
        assert self.buf is not None
        return self.buf[self._rows(start - self.lo, stop - self.lo)]


def iter_windows(
    source: Any,
    origins: NDArray[np.integer],
    window: tuple[int, ...],
    *,
    pad: str = "constant",
    lead: int = 0,
    threads: int | None = None,
) -> Iterator[NDArray[Any]]:
    """Every window at ``origins`` (C order, first-axis origins ascending) of a zarr array.

    Each chunk is read once (see :class:`SlabReader`). The windows that share a slab are cut
    in groups of about :data:`GROUP_BYTES` (whole rows of windows where they fit) into one new
    ``(n, *window, ...)`` buffer by :func:`microprep.crops.cut.stack_windows`, a few strided
    block copies split over ``threads`` threads (default: up to 4, at most the CPU count; 1
    copies in this thread). The yielded windows are views of that buffer: no two overlap, and
    a window kept after the loop keeps its group's buffer alive (``.copy()`` it to keep it
    alone). With ``lead`` leading axes (instance layers), each window is cut on its own.

    Example:
        >>> a = np.arange(16).reshape(4, 4)
        >>> [w.tolist() for w in iter_windows(a, np.array([[0, 0], [2, 2]]), (2, 2))]
        [[[0, 1], [4, 5]], [[10, 11], [14, 15]]]
    """
    reader = SlabReader(source, lead=lead)
    grid = np.asarray(origins, np.int64).reshape(-1, len(window))
    trailing = tuple(source.shape[lead + len(window) :])
    item = np.dtype(source.dtype).itemsize * math.prod(window) * math.prod(trailing)
    item *= math.prod(source.shape[:lead])
    per_group = max(1, GROUP_BYTES // max(1, item))
    k = 0
    while k < len(grid):
        first = int(grid[k, 0])
        end = k + 1
        while end < len(grid) and end - k < per_group and int(grid[end, 0]) == first:
            end += 1
        if end < len(grid) and int(grid[end, 0]) == first and len(window) > 1:
            # cut by size inside a slab: end at a row of windows, so the group is a grid
            rows = np.flatnonzero(np.diff(grid[k:end, 1])) + k + 1
            end = int(rows[-1]) if len(rows) else end
        slab = reader.rows(first, first + window[0])
        if lead:
            for o in grid[k:end].tolist():
                yield cut_window(
                    slab, tuple(o), window, pad=pad, lead=lead, row_offset=first, full_rows=reader.n
                )
        else:
            local = grid[k:end].copy()
            local[:, 0] -= first
            buf = np.empty((end - k, *window, *trailing), source.dtype)
            yield from stack_windows(slab, local, window, out=buf, pad=pad, threads=threads)
        k = end
