"""The bounded count of a polygon's self-crossings, against a brute-force count."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from microprep.validate.crossings import count_crossings


def _brute(points: np.ndarray) -> int:
    n = len(points)
    a, b = points, np.roll(points, -1, axis=0)

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
        return float(np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])))

    found = 0
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            o1, o2 = orient(a[i], b[i], a[j]), orient(a[i], b[i], b[j])
            o3, o4 = orient(a[j], b[j], a[i]), orient(a[j], b[j], b[i])
            if o1 * o2 <= 0 and o3 * o4 <= 0:
                if o1 == 0 and o2 == 0:
                    lo_i, hi_i = np.minimum(a[i], b[i]), np.maximum(a[i], b[i])
                    lo_j, hi_j = np.minimum(a[j], b[j]), np.maximum(a[j], b[j])
                    if (hi_i < lo_j).any() or (hi_j < lo_i).any():
                        continue
                found += 1
    return found


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=3, max_size=14))
def test_count_matches_brute_force(vertices: list[tuple[int, int]]) -> None:
    points = np.array(vertices, dtype=np.float64)
    assert count_crossings(points, limit=10**6) == _brute(points)


def test_counting_stops_past_the_limit() -> None:
    points = np.random.default_rng(0).random((2000, 2))
    found = count_crossings(points, limit=50)
    assert 50 < found < _brute(points[:300]) * 1000


def test_a_convex_ring_has_none() -> None:
    t = np.linspace(0, 2 * np.pi, 500, endpoint=False)
    assert count_crossings(np.c_[np.cos(t), np.sin(t)], limit=10) == 0
