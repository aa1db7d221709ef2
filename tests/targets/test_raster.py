"""Rasterization invariants: the pixel-centre rule, checked against shapely and arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from microprep.model import Shape, box_corners
from microprep.targets.raster import RasterOptions, fill_rings, rasterize_shape

H, W = 40, 48
YY, XX = np.mgrid[0:H, 0:W] + 0.5


def dense(shape: Shape, options: RasterOptions = RasterOptions()) -> np.ndarray:
    return rasterize_shape(shape, H, W, options).dense((H, W))


coord = st.floats(-10, 60, allow_nan=False).map(lambda v: round(v, 3))


@given(x=st.integers(-5, 50), y=st.integers(-5, 45), w=st.integers(1, 30), h=st.integers(1, 30))
def test_integer_box_covers_exactly_its_area(x: int, y: int, w: int, h: int) -> None:
    mask = dense(Shape(kind="box", label="a", points=np.array([[x, y], [x + w, y + h]])))
    inside_w = max(0, min(W, x + w) - max(0, x))
    inside_h = max(0, min(H, y + h) - max(0, y))
    assert mask.sum() == inside_w * inside_h
    if inside_w and inside_h:
        rows, cols = np.nonzero(mask)
        assert rows.min() == max(0, y)
        assert cols.max() == min(W, x + w) - 1


@given(x0=coord, y0=coord, w=st.floats(0.1, 30), h=st.floats(0.1, 30))
def test_float_box_follows_centre_rule_and_matches_polygon(
    x0: float, y0: float, w: float, h: float
) -> None:
    pts = np.array([[x0, y0], [x0 + w, y0 + h]])
    box = dense(Shape(kind="box", label="a", points=pts))
    expected = (XX >= x0) & (XX < x0 + w) & (YY >= y0) & (YY < y0 + h)
    np.testing.assert_array_equal(box, expected)
    poly = dense(Shape(kind="polygon", label="a", points=box_corners(pts, 0.0)))
    np.testing.assert_array_equal(poly, box)


@st.composite
def star_polygons(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(3, 30))
    cx, cy = draw(coord), draw(coord)
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n))))
    radii = np.array(draw(st.lists(st.floats(1, 25), min_size=n, max_size=n)))
    pts = np.column_stack((cx + radii * np.cos(angles), cy + radii * np.sin(angles)))
    return np.round(pts, 4)


@settings(max_examples=150, deadline=None)
@given(pts=star_polygons())
def test_polygon_matches_shapely_at_pixel_centres(pts: np.ndarray) -> None:
    poly = shapely.Polygon(pts)
    if not poly.is_valid or poly.area < 1e-6:
        return
    got = dense(Shape(kind="polygon", label="a", points=pts))
    inside = shapely.contains_xy(poly, XX, YY)
    boundary = shapely.intersects_xy(poly.boundary, XX, YY)
    # centres exactly on the boundary may go either way; every other pixel must agree
    np.testing.assert_array_equal(got[~boundary], inside[~boundary])


@settings(max_examples=100, deadline=None)
@given(cx=coord, cy=coord, rx=st.floats(0.5, 20), ry=st.floats(0.5, 20), rot=st.floats(-360, 360))
def test_rotated_box_matches_shapely(
    cx: float, cy: float, rx: float, ry: float, rot: float
) -> None:
    pts = np.array([[cx - rx, cy - ry], [cx + rx, cy + ry]])
    got = dense(Shape(kind="box", label="a", points=pts, rotation=rot))
    poly = shapely.Polygon(box_corners(pts, rot))
    inside = shapely.contains_xy(poly, XX, YY)
    boundary = shapely.intersects_xy(poly.boundary, XX, YY)
    np.testing.assert_array_equal(got[~boundary], inside[~boundary])


def test_rotation_is_clockwise_on_screen() -> None:
    # a wide box rotated by 90 degrees about its centre becomes a tall one
    pts = np.array([[10.0, 18.0], [30.0, 22.0]])
    got = dense(Shape(kind="box", label="a", points=pts, rotation=90.0))
    rows, cols = np.nonzero(got)
    assert (cols.min(), cols.max() + 1) == (18, 22)
    assert (rows.min(), rows.max() + 1) == (10, 30)
    # 30 degrees clockwise on screen (y down): the right end of a horizontal bar goes down
    bar = np.array([[10.0, 19.0], [30.0, 21.0]])
    tilted = dense(Shape(kind="box", label="a", points=bar, rotation=30.0))
    right = np.nonzero(tilted[:, 27])[0]
    left = np.nonzero(tilted[:, 12])[0]
    assert right.mean() > 20 > left.mean()


@settings(max_examples=100, deadline=None)
@given(cx=coord, cy=coord, rx=st.floats(0.5, 20), ry=st.floats(0.5, 20), rot=st.floats(0, 180))
def test_ellipse_is_the_analytic_set_and_quarter_turn_swaps_radii(
    cx: float, cy: float, rx: float, ry: float, rot: float
) -> None:
    e = dense(Shape(kind="ellipse", label="a", points=np.array([[cx, cy], [rx, ry]]), rotation=rot))
    t = math.radians(rot)
    u = ((XX - cx) * math.cos(t) + (YY - cy) * math.sin(t)) / rx
    v = (-(XX - cx) * math.sin(t) + (YY - cy) * math.cos(t)) / ry
    q = u * u + v * v
    clear = np.abs(q - 1.0) > 1e-9
    np.testing.assert_array_equal(e[clear], (q <= 1.0)[clear])
    turned = dense(
        Shape(kind="ellipse", label="a", points=np.array([[cx, cy], [ry, rx]]), rotation=rot + 90)
    )
    np.testing.assert_array_equal(e[clear], turned[clear])


def test_ellipse_area_close_to_pi_ab() -> None:
    e = dense(
        Shape(kind="ellipse", label="a", points=np.array([[24, 20], [15.3, 9.1]]), rotation=33)
    )
    assert abs(e.sum() - math.pi * 15.3 * 9.1) / (math.pi * 15.3 * 9.1) < 0.03


def test_polyline_is_a_band_of_the_line_width() -> None:
    line = Shape(kind="polyline", label="d", points=np.array([[2.0, 5.5], [10.0, 5.5]]))
    mask = dense(line, RasterOptions(line_width=3.0))
    rows, cols = np.nonzero(mask)
    assert set(rows.tolist()) == {4, 5, 6}
    assert (cols.min(), cols.max()) == (2, 9)
    assert mask.sum() == 24
    wide = dense(line, RasterOptions(line_width=5.0))
    assert wide.sum() == 40


def test_points_are_disks_of_the_radius() -> None:
    pts = Shape(kind="points", label="p", points=np.array([[10.5, 10.5], [30.5, 20.5]]))
    mask = dense(pts, RasterOptions(point_radius=2.0))
    # a radius-2 disk centred on a pixel centre covers 13 pixel centres
    assert mask.sum() == 26
    assert mask[10, 10] and mask[20, 30] and not mask[15, 20]


def test_mask_is_placed_at_left_top_and_clipped() -> None:
    bitmap = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    shape = Shape(kind="mask", label="m", points=np.array([[5, 7], [8, 9]]), bitmap=bitmap)
    mask = dense(shape)
    np.testing.assert_array_equal(mask[7:9, 5:8], bitmap)
    assert mask.sum() == bitmap.sum()
    edge = Shape(kind="mask", label="m", points=np.array([[W - 2, -1], [W + 1, 1]]), bitmap=bitmap)
    clipped = dense(edge)
    np.testing.assert_array_equal(clipped[0:1, W - 2 : W], bitmap[1:2, 0:2])


@pytest.mark.parametrize("kind", ["box", "polygon", "ellipse"])
def test_shape_wholly_outside_gives_empty_raster(kind: str) -> None:
    pts = {
        "box": [[100, 100], [110, 110]],
        "polygon": [[100, 100], [110, 100], [105, 110]],
        "ellipse": [[100, 100], [5, 5]],
    }[kind]
    raster = rasterize_shape(Shape(kind=kind, label="a", points=np.array(pts, float)), H, W)  # type: ignore[arg-type]
    assert raster.area == 0


def test_fill_rings_hole_is_empty() -> None:
    outer = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    hole = np.array([[3.0, 3.0], [7.0, 3.0], [7.0, 7.0], [3.0, 7.0]])
    mask = fill_rings([outer, hole], 0, 0, 10, 10)
    assert mask.sum() == 100 - 16
    assert not mask[5, 5]
