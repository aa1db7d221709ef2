"""Pixel-edge polygons hold exactly their pixels; hole-free pieces tile their region."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from microprep.readers.cvat_rle import decode_cvat_rle
from microprep.writers.vectorize import class_regions, encode_cvat_rle, hole_free, paint_polygons
from writers.helpers import tricky_map


def _redraw(class_map: np.ndarray, *, split: bool) -> np.ndarray:
    pairs = []
    for region in class_regions(class_map):
        pieces = hole_free(region.polygon) if split else [region.polygon]
        pairs.extend((region.label, p) for p in pieces)
    return paint_polygons(class_map.shape, pairs)


def test_tricky_map_comes_back_pixel_for_pixel() -> None:
    m = tricky_map()
    np.testing.assert_array_equal(_redraw(m, split=False), m)
    np.testing.assert_array_equal(_redraw(m, split=True), m)


def test_pieces_have_no_holes_and_integer_corners() -> None:
    regions = class_regions(tricky_map())
    assert any(r.polygon.interiors for r in regions)
    for region in regions:
        for piece in hole_free(region.polygon):
            assert not piece.interiors
            coords = np.asarray(piece.exterior.coords)
            np.testing.assert_array_equal(coords, np.rint(coords))


def test_diagonal_pixels_are_separate_regions() -> None:
    m = np.array([[1, 0], [0, 1]], np.uint8)
    assert len(class_regions(m)) == 2


@settings(deadline=None, max_examples=60)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 3))
)
def test_any_class_map_round_trips(m: np.ndarray) -> None:
    np.testing.assert_array_equal(_redraw(m, split=True), m)


@settings(deadline=None, max_examples=60)
@given(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_cvat_rle_round_trips(mask: np.ndarray) -> None:
    h, w = mask.shape
    np.testing.assert_array_equal(decode_cvat_rle(encode_cvat_rle(mask), w, h), mask)
