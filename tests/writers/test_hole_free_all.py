"""hole_free_all cuts every region with holes in one pass into the pieces hole_free gives."""

from __future__ import annotations

import numpy as np

from microprep.writers.vectorize import class_regions, hole_free, hole_free_all, paint_polygons


def rings_map(seed: int, size: int = 96) -> np.ndarray:
    """Squares of 3 classes, many with one or two holes, some nested in others' holes."""
    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), np.uint8)
    for _ in range(25):
        y, x = rng.integers(0, size - 12, 2)
        s = int(rng.integers(6, 12))
        m[y : y + s, x : x + s] = rng.integers(1, 4)
        for _ in range(int(rng.integers(0, 3))):
            hy, hx = y + int(rng.integers(1, s - 2)), x + int(rng.integers(1, s - 2))
            m[hy, hx] = 0
    return m


def test_same_pieces_as_one_at_a_time_and_the_map_comes_back() -> None:
    holed = 0
    for seed in range(5):
        m = rings_map(seed)
        regions = class_regions(m)
        holed += sum(1 for r in regions if r.polygon.interiors)
        together = hole_free_all([r.polygon for r in regions])
        alone = [hole_free(r.polygon) for r in regions]
        assert [[p.wkt for p in ps] for ps in together] == [[p.wkt for p in ps] for ps in alone]
        assert all(not p.interiors for ps in together for p in ps)
        painted = paint_polygons(
            m.shape, ((r.label, p) for r, ps in zip(regions, together, strict=True) for p in ps)
        )
        assert np.array_equal(painted, m)
    assert holed > 5  # the maps do exercise the cutting


def test_no_holes_and_no_polygons() -> None:
    assert hole_free_all([]) == []
    m = np.zeros((4, 4), np.uint8)
    m[1:3, 1:3] = 1
    polygon = class_regions(m)[0].polygon
    assert hole_free_all([polygon]) == [[polygon]]
