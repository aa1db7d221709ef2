"""Chunk-aware window cutting: every window equals a plain cut of the whole array."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import zarr

import microprep.crops.blockcopy as blockcopy
import microprep.crops.slabs as slabs
from microprep.crops.cut import cut_window
from microprep.crops.slabs import iter_windows
from microprep.crops.windows import window_grid


def _zarr(data: np.ndarray, chunks: tuple[int, ...]) -> zarr.Array:
    arr = zarr.create_array(
        store=zarr.storage.MemoryStore(), shape=data.shape, chunks=chunks, dtype=data.dtype
    )
    arr[...] = data
    return arr


@pytest.mark.parametrize("chunks", [(1, 40, 36), (8, 8, 8), (5, 40, 7)])
@pytest.mark.parametrize("threads", [1, 2, None])
@pytest.mark.parametrize("edge", ["flush", "pad"])
@pytest.mark.parametrize("group", [1, 5, 13])
def test_windows_equal_plain_cuts(
    chunks: tuple[int, ...],
    threads: int | None,
    edge: str,
    group: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = np.random.default_rng(0).integers(0, 255, (21, 40, 36), dtype=np.uint8)
    window = (8, 8, 8)
    origins = window_grid(shape=data.shape, window=window, stride=(5, 6, 7), edge=edge)
    # small groups: a row of windows is cut in several groups, each over the threads
    monkeypatch.setattr(slabs, "GROUP_BYTES", group * 8**3)
    monkeypatch.setattr(blockcopy, "THREAD_BYTES", 1)
    got = list(iter_windows(_zarr(data, chunks), origins, window, pad="reflect", threads=threads))
    assert len(got) == len(origins)
    for origin, cut in zip(origins.tolist(), got, strict=True):
        assert np.array_equal(cut, cut_window(data, tuple(origin), window, pad="reflect"))
    # every window is its own array: no two share memory
    assert not any(np.shares_memory(a, b) for a, b in itertools.pairwise(got))


def test_leading_axis_is_kept_whole() -> None:
    layers = np.random.default_rng(1).integers(0, 9, (3, 30, 26), dtype=np.int32)
    origins = window_grid(shape=(30, 26), window=(10, 10), stride=(10, 8))
    got = list(iter_windows(_zarr(layers, (1, 4, 26)), origins, (10, 10), lead=1, threads=2))
    for (y, x), cut in zip(origins.tolist(), got, strict=True):
        assert np.array_equal(cut, layers[:, y : y + 10, x : x + 10])


def test_closing_the_generator_early_stops_its_threads() -> None:
    data = np.arange(16 * 64 * 64, dtype=np.uint16).reshape(16, 64, 64)
    origins = window_grid(shape=data.shape, window=(8, 8, 8), stride=8)
    windows = iter_windows(_zarr(data, (1, 64, 64)), origins, (8, 8, 8), threads=2)
    first = next(windows)
    windows.close()
    assert np.array_equal(first, data[:8, :8, :8])
