"""Window arithmetic: every pixel covered, origins in bounds, flush last window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microprep.crops.windows import as_tuple, window_grid, window_starts
from microprep.errors import UsageError

sizes = st.integers(1, 300)
windows = st.integers(1, 64)
edges = st.sampled_from(["flush", "pad"])


@given(size=sizes, window=windows, fraction=st.floats(0.01, 1.0), edge=edges)
def test_every_pixel_is_covered(size: int, window: int, fraction: float, edge: str) -> None:
    stride = max(1, int(window * fraction))
    starts = window_starts(size=size, window=window, stride=stride, edge=edge)
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all()
    assert (np.diff(starts) > 0).all()
    assert starts[0] == 0
    assert (starts >= 0).all()
    assert (starts < size).all()


@given(size=sizes, window=windows, fraction=st.floats(0.01, 1.0))
def test_flush_windows_stay_inside(size: int, window: int, fraction: float) -> None:
    stride = max(1, int(window * fraction))
    starts = window_starts(size=size, window=window, stride=stride, edge="flush")
    if size >= window:
        assert (starts + window <= size).all()
        assert starts[-1] + window == size
    else:
        assert starts.tolist() == [0]


@given(size=sizes, window=windows, fraction=st.floats(0.01, 1.0))
def test_pad_windows_keep_the_stride(size: int, window: int, fraction: float) -> None:
    stride = max(1, int(window * fraction))
    starts = window_starts(size=size, window=window, stride=stride, edge="pad")
    assert (np.diff(starts) == stride).all()
    assert starts[-1] + window >= size


@given(
    shape=st.lists(st.integers(1, 40), min_size=2, max_size=3),
    window=st.integers(1, 16),
    fraction=st.floats(0.01, 1.0),
    edge=edges,
)
def test_grid_covers_every_pixel(shape: list[int], window: int, fraction: float, edge: str) -> None:
    stride = max(1, int(window * fraction))
    origins = window_grid(shape=shape, window=window, stride=stride, edge=edge)
    assert origins.shape[1] == len(shape)
    covered = np.zeros(shape, bool)
    for origin in origins:
        covered[tuple(slice(o, o + window) for o in origin)] = True
    assert covered.all()
    assert (origins >= 0).all()
    assert (origins < np.asarray(shape)).all()


def test_grid_is_in_c_order() -> None:
    origins = window_grid(shape=(5, 7), window=(4, 4), stride=(2, 3), edge="flush")
    assert origins.tolist() == [[0, 0], [0, 3], [1, 0], [1, 3]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0, "window": 2, "stride": 1, "edge": "flush"}, "size"),
        ({"size": 4, "window": 0, "stride": 1, "edge": "flush"}, "window"),
        ({"size": 4, "window": 2, "stride": -1, "edge": "flush"}, "stride"),
        ({"size": 4, "window": 2, "stride": 1, "edge": "mirror"}, "edge"),
        ({"size": 9, "window": 2, "stride": 3, "edge": "flush"}, "skipped"),
    ],
)
def test_bad_values_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        window_starts(**kwargs)  # type: ignore[arg-type]


def test_window_length_must_match_axes() -> None:
    with pytest.raises(UsageError, match="3 values but the data has 2"):
        as_tuple((4, 4, 4), 2, "window")
