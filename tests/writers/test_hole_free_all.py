"""hole_free_all cuts every region with holes in one pass into the pieces hole_free gives."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

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


def noisy_map(rng: np.random.Generator) -> np.ndarray:
    """Random pixels of 1 to 3 classes: many holes, and regions meeting at corners."""
    h, w = (int(v) for v in rng.integers(3, 20, 2))
    classes = int(rng.integers(2, 4))
    on = rng.random((h, w)) < rng.uniform(0.3, 0.9)
    return (on * rng.integers(1, classes, (h, w))).astype(np.uint8)


def traced_bands(region_polygon: object, shape: tuple[int, int]) -> list[str]:
    """The pieces by tracing pixels: the region's pixels cut into bands at each hole's top
    row, every band traced (the definition of the pieces), normalised."""
    pixels = paint_polygons(shape, [(1, region_polygon)]) == 1
    cuts = np.zeros(shape[0], np.int32)
    for ring in region_polygon.interiors:  # type: ignore[attr-defined]
        cuts[round(min(y for _, y in ring.coords))] = 1
    bands = np.where(pixels, (np.cumsum(cuts) + 1)[:, None], 0).astype(np.int32)
    return sorted(shapely.normalize(r.polygon).wkt for r in class_regions(bands))


def test_pieces_are_the_traced_bands_of_each_region() -> None:
    rng = np.random.default_rng(7)
    holed = 0
    for _ in range(150):
        m = noisy_map(rng)
        regions = class_regions(m)
        for region, pieces in zip(
            regions, hole_free_all([r.polygon for r in regions]), strict=True
        ):
            if not region.polygon.interiors:
                assert pieces == [region.polygon]
                continue
            holed += 1
            assert sorted(shapely.normalize(p).wkt for p in pieces) == traced_bands(
                region.polygon, m.shape
            )
    assert holed > 50


def test_parts_meeting_at_a_corner_are_separate_valid_pieces() -> None:
    # the band of rows 3-4 holds two parts that meet only at the corner (12, 4)
    region = Polygon(
        [(10, 0), (10, 1), (9, 1), (9, 2), (10, 2), (10, 3), (8, 3), (8, 4), (7, 4), (7, 6),
         (8, 6), (8, 5), (12, 5), (12, 4), (13, 4), (13, 2), (11, 2), (11, 1), (12, 1), (12, 0)],
        [[(11, 3), (12, 3), (12, 4), (11, 4)]],
    )  # fmt: skip
    pieces = hole_free(region)
    assert all(p.is_valid and not p.interiors for p in pieces)
    assert sorted(p.area for p in pieces) == [1.0, 7.0, 9.0]
    assert shapely.union_all(pieces).equals(region)


def test_no_vertex_lies_on_a_straight_run() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        m = noisy_map(rng)
        for pieces in hole_free_all([r.polygon for r in class_regions(m)]):
            for piece in pieces:
                ring = np.asarray(piece.exterior.coords)[:-1]
                before, after = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
                turns = (before[:, 0] != after[:, 0]) & (before[:, 1] != after[:, 1])
                assert turns.all(), piece.wkt


def test_a_slanted_polygon_is_cut_on_the_pixel_grid() -> None:
    # a simplified outline: slanted edges, one hole; its pieces hold the pixels it covers
    polygon = Polygon([(0, 0), (12, 1), (10, 11), (1, 9)], [[(4, 4), (7, 4), (7, 6), (4, 6)]])
    pieces = hole_free(polygon)
    assert len(pieces) > 1 and all(not p.interiors for p in pieces)
    for piece in pieces:
        coords = np.asarray(piece.exterior.coords)
        np.testing.assert_array_equal(coords, np.rint(coords))
    np.testing.assert_array_equal(
        paint_polygons((12, 13), [(1, p) for p in pieces]), paint_polygons((12, 13), [(1, polygon)])
    )
