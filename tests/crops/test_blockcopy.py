"""copy_block equals np.copyto for strided gathers of any row size, dtype and thread count."""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

import microprep.crops.blockcopy as blockcopy
from microprep.crops.blockcopy import as_rows, copy_block


def _windows(src: np.ndarray, window: int, stride: int) -> np.ndarray:
    """All (window x window) tiles of a 2D ``src`` at ``stride``, as one strided view."""
    n0 = (src.shape[0] - window) // stride + 1
    n1 = (src.shape[1] - window) // stride + 1
    s0, s1 = src.strides[:2]
    return np.lib.stride_tricks.as_strided(
        src,
        (n0, n1, window, window, *src.shape[2:]),
        (stride * s0, stride * s1, s0, s1, *src.strides[2:]),
        writeable=False,
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("channels", [(), (3,)])
def test_gather_equals_copyto(
    dtype: type, threads: int, channels: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blockcopy, "THREAD_BYTES", 1)  # thread even these small copies
    src = np.random.default_rng(0).integers(0, 200, (70, 90, *channels)).astype(dtype)
    view = _windows(src, 16, 6)
    want = np.array(view)
    got = np.full(view.shape, 7, dtype)
    copy_block(got, view, threads=threads)
    assert np.array_equal(got, want)


def test_rows_are_views_of_the_whole_contiguous_tail() -> None:
    a = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    rows = as_rows(a[:, 1], 20)
    assert rows.shape == (2,) and rows.dtype.itemsize == 40
    assert np.shares_memory(rows, a)
    b = np.zeros_like(a)
    np.copyto(as_rows(b[:, 1], 20), rows)
    assert np.array_equal(b[:, 1], a[:, 1]) and not b[:, 0].any() and not b[:, 2].any()


def test_contiguous_arrays_are_copied_flat_over_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blockcopy, "THREAD_BYTES", 1)
    src = np.arange(5 * 7 * 3, dtype=np.float64).reshape(5, 7, 3)
    dst = np.empty_like(src)
    copy_block(dst, src, threads=4)
    assert np.array_equal(dst, src)


def test_reversed_and_transposed_views() -> None:
    src = np.random.default_rng(1).random((20, 30)).astype(np.float32)
    for view in (src[::-1, ::2], src.T, src[3:17, 29:1:-3]):
        dst = np.zeros(view.shape, view.dtype)
        copy_block(dst, view, threads=2)
        assert np.array_equal(dst, view)
    dst = np.zeros((30, 20), np.float32)[::-1]  # a writeable output with negative strides
    copy_block(dst, src.T, threads=2)
    assert np.array_equal(dst, src.T)


def test_other_dtypes_shapes_and_objects_fall_back_to_copyto() -> None:
    src = np.arange(12, dtype=np.uint8).reshape(3, 4)
    wide = np.zeros((3, 4), np.float32)
    copy_block(wide, src)  # a cast
    assert np.array_equal(wide, src)
    row = np.zeros((3, 4), np.uint8)
    copy_block(row, src[:1])  # a broadcast
    assert np.array_equal(row, np.repeat(src[:1], 3, axis=0))
    objs = np.empty((2, 2), object)
    copy_block(objs, np.array([["a", "b"], ["c", "d"]], object))
    assert objs.tolist() == [["a", "b"], ["c", "d"]]
    empty = np.zeros((0, 4), np.uint8)
    copy_block(empty, src[:0])


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="needs fork")
def test_a_forked_child_gets_its_own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent's pool threads do not survive fork (DataLoader workers): the child makes new."""
    monkeypatch.setattr(blockcopy, "THREAD_BYTES", 1)
    src = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    for _ in range(8):  # the parent's pool exists now, its threads idle
        copy_block(np.empty_like(src), src[::-1], threads=2)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        signal.alarm(20)  # a child waiting on its parent's dead threads is killed, not hung
        dst = np.empty_like(src)
        copy_block(dst, src[::-1], threads=2)
        os.write(write, b"1" if np.array_equal(dst, src[::-1]) else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0
