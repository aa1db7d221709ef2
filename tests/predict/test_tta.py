"""Test-time augmentation (``prep predict --tta``): symmetries, inverses, averaging."""

from __future__ import annotations

import numpy as np
import pytest

from microprep.errors import UsageError
from microprep.predict.tta import chosen, parse_tta, symmetries, with_tta


def threshold(batch: np.ndarray) -> np.ndarray:
    """Per-pixel two-class probabilities: equivariant under every symmetry."""
    bright = (batch[:, :1] > 0.5).astype(np.float32)
    return np.concatenate([1 - bright, bright], axis=1)


def corner(batch: np.ndarray) -> np.ndarray:
    """Class 1 at the first pixel of the tile, whatever the input: not equivariant."""
    out = np.zeros((batch.shape[0], 2, *batch.shape[2:]), np.float32)
    out[:, 0] = 1
    first = (slice(None), slice(None), *([0] * (batch.ndim - 2)))
    out[first] = np.array([0, 1], np.float32).reshape(1, 2)
    return out


@pytest.mark.parametrize("shape", [(6, 6), (4, 6, 6), (5, 5, 5), (4, 7)])
def test_every_symmetry_is_inverted(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).random((2, 3, *shape)).astype(np.float32)
    group = symmetries(shape)
    seen = set()
    for sym in group:
        moved = sym.apply(x)
        assert moved.shape == x.shape
        assert np.array_equal(sym.invert(moved), x)
        seen.add(moved.tobytes())
    assert len(seen) == len(group)  # all distinct
    assert len(group) == {(6, 6): 8, (4, 6, 6): 16, (5, 5, 5): 48, (4, 7): 4}[shape]


def test_tta_of_an_equivariant_forward_equals_no_tta() -> None:
    rng = np.random.default_rng(1)
    for shape in ((8, 8), (4, 8, 8), (6, 6, 6)):
        x = rng.random((3, 1, *shape)).astype(np.float32)
        for spec in ("all", "flips", 3):
            assert np.allclose(with_tta(threshold, spec)(x), threshold(x))


def test_tta_of_a_corner_forward_spreads_over_the_corners() -> None:
    x = np.zeros((1, 1, 4, 4), np.float32)
    probs = with_tta(corner, "all")(x)
    ones = probs[0, 1]
    # the corner marker goes back to each of the 4 corners (2 symmetries each): 1/4 there
    assert np.allclose(ones[[0, 0, -1, -1], [0, -1, 0, -1]], 0.25)
    assert ones.sum() == pytest.approx(1.0) and np.allclose(probs.sum(axis=1), 1.0)
    flips = with_tta(corner, "flips")(x)[0, 1]
    assert np.allclose(flips[[0, 0, -1, -1], [0, -1, 0, -1]], 0.25)
    # identity only: the plain forward
    assert np.array_equal(with_tta(corner, 1)(x), corner(x))
    assert with_tta(corner, None) is corner
    # 3D: 48 symmetries of a cube put the marker on the 8 corners
    cube = with_tta(corner, "all")(np.zeros((1, 1, 3, 3, 3), np.float32))[0, 1]
    assert np.isclose(cube[0, 0, 0], 1 / 8) and np.isclose(cube[-1, -1, -1], 1 / 8)


def test_the_inverse_is_right_for_a_shifting_forward() -> None:
    """A forward that looks one pixel up: under TTA each symmetry looks a different way, and
    the inverse must put every answer back on the pixel it belongs to."""

    def up(batch: np.ndarray) -> np.ndarray:
        shifted = np.zeros_like(batch[:, :1])
        shifted[:, :, 1:] = batch[:, :1, :-1]
        return np.concatenate([1 - shifted, shifted], axis=1)

    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 1
    probs = with_tta(up, "all")(x)[0, 1]
    # each of the 8 symmetries looks one pixel along one of the 4 directions: 2 per neighbour
    assert np.allclose(probs[[1, 3, 2, 2], [2, 2, 1, 3]], 0.25)
    assert probs[2, 2] == 0 and probs.sum() == pytest.approx(1.0)


def test_a_non_square_tile_keeps_its_shape() -> None:
    calls = []

    def record(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return threshold(batch)

    x = np.zeros((2, 1, 4, 8, 8), np.float32)
    with_tta(record, "all")(x)
    assert len(calls) == 16 and set(calls) == {(2, 1, 4, 8, 8)}
    assert len(chosen((4, 8, 8), "flips")) == 8


def test_parse_tta() -> None:
    assert parse_tta("ALL") == "all" and parse_tta("flips") == "flips" and parse_tta("5") == 5
    assert parse_tta("none") is None and parse_tta(None) is None
    for bad in ("rot", "0", "-2"):
        with pytest.raises(UsageError, match="--tta"):
            parse_tta(bad)
