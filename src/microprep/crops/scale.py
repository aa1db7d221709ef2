"""Scale-out: the crop functions over dask arrays, and crop writing on a dask.distributed cluster.

:func:`crop_array` cuts windows from a numpy or dask array (a dask array gives a lazy dask
result). :func:`distributed_samples` returns a sample source for
:func:`microprep.crops.write.write_crops` that reads crops on the workers of a
``dask.distributed`` client, in contiguous runs of windows (each run reads its chunks once), and
hands them back in index order, so the output equals the in-process one.

Example:
    >>> import numpy as np
    >>> origins = np.array([[0, 0], [2, 2]])
    >>> crop_array(np.arange(16).reshape(4, 4), origins, (2, 2)).tolist()
    [[[0, 1], [4, 5]], [[10, 11], [14, 15]]]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.crops.cut import cut_window, stack_windows
from microprep.crops.index import CropIndex, CropOptions, CropSample
from microprep.errors import UsageError


def crop_array(
    array: Any,
    origins: NDArray[np.integer] | Sequence[Sequence[int]],
    window: Sequence[int],
    *,
    pad: str = "constant",
    out: NDArray[Any] | None = None,
    threads: int | None = None,
) -> Any:
    """Stack the windows at ``origins`` ``(N, ndim)`` of ``array`` into ``(N, *window, ...)``.

    Works on numpy arrays (numpy result, written into ``out`` when given) and dask arrays
    (lazy dask result, one task per window). Axes after the spatial ones (channels) are kept
    whole. ``threads`` splits large numpy copies (see
    :func:`microprep.crops.blockcopy.copy_block`; default up to 4, 1 copies in this thread).
    """
    win = tuple(int(w) for w in window)
    grid = np.asarray(origins, np.int64).reshape(-1, len(win))
    boxes = [tuple(o) for o in grid.tolist()]
    if type(array).__module__.startswith("dask"):
        import dask.array as da
        from dask.delayed import delayed

        stack: Any = da.stack
        from_delayed: Any = da.from_delayed

        parts = [
            from_delayed(
                delayed(cut_window)(
                    array[_bounds(o, win, array.shape)], (0,) * len(win), win, pad=pad
                ),
                shape=(*win, *array.shape[len(win) :]),
                dtype=array.dtype,
            )
            for o in boxes
        ]
        if not parts:
            return da.zeros((0, *win, *array.shape[len(win) :]), dtype=array.dtype)
        return stack(parts)
    shape = (len(boxes), *win, *array.shape[len(win) :])
    if out is None:
        out = np.empty(shape, array.dtype)
    elif out.shape != shape:
        raise UsageError(f"out has shape {out.shape}, expected {shape}")
    return stack_windows(array, grid, win, out=out, pad=pad, threads=threads)


def _bounds(origin: tuple[int, ...], window: tuple[int, ...], shape: Sequence[int]) -> Any:
    return tuple(slice(o, min(o + w, n)) for o, w, n in zip(origin, window, shape, strict=True))


def _read_run(
    path: str,
    options: CropOptions,
    name: str,
    origins: NDArray[np.int64],
    stops: NDArray[np.int64],
) -> list[CropSample]:
    """On a worker: open the store and read one run of windows of one node."""
    from microprep.store.read import open_dataset

    with open_dataset(path) as ds:
        index = CropIndex(ds, options, nodes=[name]).restrict(name, origins, stops)
        return list(index.iter_crops())


def distributed_samples(
    client: Any, *, runs_per_worker: int = 4
) -> Callable[[CropIndex, str], Iterator[CropSample]]:
    """A sample source for ``write_crops`` that reads on the workers of ``client``.

    Windows of a node are split into contiguous runs (about ``runs_per_worker`` per worker),
    aligned to rows of windows so that the runs share few chunks.
    """
    workers = max(1, len(client.scheduler_info().get("workers", {})))

    def source(index: CropIndex, name: str) -> Iterator[CropSample]:
        origins, stops = index.origins[name], index.stops[name]
        if not len(origins):
            return iter(())
        rows = np.flatnonzero(np.diff(origins[:, 0], prepend=-1))
        per = max(1, math.ceil(len(rows) / (workers * runs_per_worker)))
        cuts = [*rows[::per].tolist(), len(origins)]
        opts = CropOptions(**{**index.options.__dict__, "min_foreground": 0.0})
        path = str(index.dataset.path)
        futures = [
            client.submit(_read_run, path, opts, name, origins[a:b], stops[a:b], pure=False)
            for a, b in itertools.pairwise(cuts)
        ]

        def gather() -> Iterator[CropSample]:
            offset = sum(len(index.origins[n]) for n in index.nodes[: index.nodes.index(name)])
            for future, first in zip(futures, cuts, strict=False):
                for sample in future.result():
                    sample["index"] += offset + first
                    yield sample
                future.release()

        return gather()

    return source
