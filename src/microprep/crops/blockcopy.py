"""Fast copies of strided window blocks: short contiguous rows copied whole, over threads.

Cutting windows is a gather of short contiguous rows (64 bytes for 64³ uint8 windows, 256 bytes
for 256² tiles). numpy's strided copy pays its inner-loop set-up once per row, which makes such
a gather 3-4x slower than a memcpy of the same bytes. :func:`copy_block` views each row as one
element of a void dtype of the row's size, so numpy's copy runs one tight loop over whole rows
(about 1.5x faster for 64-byte rows), and splits large copies over a few threads (numpy's copy
releases the GIL). No library offers a strided gather like this: numpy's ``copyto`` is the
engine, this module only picks the element size and the split.

Example:
    >>> import numpy as np
    >>> src = np.arange(64, dtype=np.uint8).reshape(8, 8)
    >>> dst = np.zeros((2, 4, 4), np.uint8)
    >>> view = np.lib.stride_tricks.as_strided(src, (2, 4, 4), (4, 8, 1))
    >>> copy_block(dst, view)
    >>> dst[1, 0].tolist()
    [4, 5, 6, 7]
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Copies smaller than this run in the calling thread (thread hand-off costs tens of µs).
THREAD_BYTES = 4 << 20
#: At most this many threads copy at once.
MAX_THREADS = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def default_threads() -> int:
    """Threads used for large copies: ``MAX_THREADS`` or the CPUs this process may run on,
    whichever is less."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def _executor() -> ThreadPoolExecutor:
    """The shared copy pool (made on first use; a forked child makes its own, see below)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="microprep-copy")
        return _pool


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) starts without the parent's pool, whose threads do
    not survive a fork, and with a fresh lock (another thread may have held it at the fork)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _row_items(*arrays: NDArray[Any]) -> int:
    """Number of trailing items that are contiguous in every one of ``arrays`` (same shape)."""
    shape = arrays[0].shape
    item = arrays[0].itemsize
    count = 1
    for axis in range(len(shape) - 1, -1, -1):
        if any(a.strides[axis] != item * count for a in arrays):
            break
        count *= shape[axis]
    return count


def as_rows(array: NDArray[Any], items: int) -> NDArray[Any]:
    """``array`` with its last axes (``items`` contiguous items) seen as one void element.

    ``items`` must be a product of ``array``'s last axis lengths, contiguous in memory.
    The result is a view: writing into it writes into ``array``.
    """
    shape, strides, axis, count = array.shape, array.strides, array.ndim, 1
    while count < items:
        axis -= 1
        count *= shape[axis]
    flat = np.lib.stride_tricks.as_strided(
        array,
        shape=(*shape[:axis], items),
        strides=(*strides[:axis], array.itemsize),
        writeable=array.flags.writeable,
    )
    return flat.view(np.dtype(f"V{items * array.itemsize}"))[..., 0]


def copy_block(dst: NDArray[Any], src: NDArray[Any], *, threads: int | None = None) -> None:
    """``np.copyto(dst, src)`` for same-shape, same-dtype arrays, faster for strided gathers.

    Args:
        dst: the output (any strides, writeable).
        src: the input, the shape and dtype of ``dst`` (a strided window view, say).
        threads: threads for a copy of at least :data:`THREAD_BYTES` (split along the first
            axis); default :func:`default_threads`; 1 copies in the calling thread.

    Other dtypes, shapes or object arrays fall back to a plain ``np.copyto`` (with broadcasting).
    """
    same = dst.shape == src.shape and dst.dtype == src.dtype and not dst.dtype.hasobject
    if not same or dst.size == 0:
        np.copyto(dst, src)
        return
    items = _row_items(dst, src)
    if items == dst.size:  # both contiguous: one flat copy
        dst, src = dst.reshape(-1), src.reshape(-1)
    elif items > 1:
        dst, src = as_rows(dst, items), as_rows(src, items)
    workers = default_threads() if threads is None else max(1, int(threads))
    if workers < 2 or dst.nbytes < THREAD_BYTES:
        np.copyto(dst, src)
        return
    # split along the first axis that has more than one element
    lead = next((a for a, n in enumerate(dst.shape) if n > 1), None)
    if lead is None:
        np.copyto(dst, src)
        return
    index = (0,) * lead
    dst, src = dst[index], src[index]
    size = math.ceil(dst.shape[0] / min(workers, dst.shape[0]))
    pool = _executor()
    futures = [
        pool.submit(np.copyto, dst[a : a + size], src[a : a + size])
        for a in range(0, dst.shape[0], size)
    ]
    for future in futures:
        future.result()
