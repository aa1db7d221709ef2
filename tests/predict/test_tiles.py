"""Tiling and blending: coverage, exact reconstruction, slab streaming, Gaussian weights."""

from __future__ import annotations

import numpy as np
import pytest

from microprep.errors import UsageError
from microprep.predict.tiles import gaussian_weights, predict_tiled, tile_origins

AWKWARD_2D = [((5, 7), (8, 8)), ((17, 23), (8, 6)), ((16, 16), (8, 8)), ((9, 40), (9, 7))]
AWKWARD_3D = [((3, 10, 11), (4, 4, 4)), ((9, 5, 13), (4, 6, 5))]


def one_hot_forward(k: int):
    """A 'model' that returns the one-hot of the class stored (as a float) in channel 0."""

    def forward(batch: np.ndarray) -> np.ndarray:
        classes = np.rint(batch[:, 0]).astype(np.int64)
        out = np.zeros((batch.shape[0], k, *batch.shape[2:]), np.float32)
        for c in range(k):
            out[:, c] = classes == c
        return out

    return forward


def coverage(shape, window, origins) -> np.ndarray:
    hits = np.zeros(shape, np.int64)
    for origin in origins:
        box = tuple(slice(o, o + w) for o, w in zip(origin, window, strict=True))
        hits[box] += 1
    return hits


@pytest.mark.parametrize(("shape", "window"), AWKWARD_2D + AWKWARD_3D)
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_tiles_cover_every_pixel(shape, window, overlap) -> None:
    origins = tile_origins(shape, window=window, overlap=overlap)
    assert origins.dtype == np.int64 and origins.shape[1] == len(shape)
    assert (coverage(shape, window, origins) > 0).all()
    # tiles start inside the image; a tile reaches past the edge only along axes shorter
    # than the window (those get one tile at 0)
    for axis, (n, w) in enumerate(zip(shape, window, strict=True)):
        assert (origins[:, axis] >= 0).all()
        if n >= w:
            assert (origins[:, axis] + w <= n).all()
            assert (origins[:, axis] + w == n).any()  # the last tile is flush with the edge
        else:
            assert (origins[:, axis] == 0).all()
    # visited in order of the first axis
    assert (np.diff(origins[:, 0]) >= 0).all()


def test_tile_origins_refuses_bad_arguments() -> None:
    with pytest.raises(UsageError, match="overlap"):
        tile_origins((8, 8), window=4, overlap=1.0)
    with pytest.raises(UsageError, match="window"):
        tile_origins((8, 8), window=(4, 0), overlap=0.5)
    with pytest.raises(UsageError, match="spatial axes"):
        tile_origins((8, 8), window=(4, 4, 4), overlap=0.5)


@pytest.mark.parametrize(("shape", "window"), AWKWARD_2D + AWKWARD_3D)
def test_identity_forward_reconstructs_the_class_map(shape, window) -> None:
    k = 4
    rng = np.random.default_rng(sum(shape))
    classes = rng.integers(0, k, shape)
    image = classes[None].astype(np.float32)
    probs = predict_tiled(
        one_hot_forward(k), image, window=window, overlap=0.5, batch_size=3, num_outputs=k
    )
    assert probs is not None and probs.shape == (k, *shape) and probs.dtype == np.float32
    np.testing.assert_array_equal(np.argmax(probs, axis=0), classes)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs.max(axis=0), 1.0, rtol=1e-5)


def test_blending_is_the_weighted_mean_of_overlapping_tiles() -> None:
    # every tile predicts a constant: its own index; the blend is a weighted mean of those
    image = np.zeros((1, 6, 10), np.float32)
    calls: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        out = np.zeros((len(batch), 1, *batch.shape[2:]), np.float32)
        for j in range(len(batch)):
            out[j] = len(calls) + j
        calls.extend(range(len(batch)))
        return out

    window = (6, 6)
    probs = predict_tiled(forward, image, window=window, overlap=0.5, batch_size=1, num_outputs=1)
    origins = tile_origins((6, 10), window=window, overlap=0.5)
    weights = gaussian_weights(window)
    num = np.zeros((6, 10))
    den = np.zeros((6, 10))
    for t, (y, x) in enumerate(origins):
        num[y : y + 6, x : x + 6] += t * weights
        den[y : y + 6, x : x + 6] += weights
    np.testing.assert_allclose(probs[0], num / den, rtol=1e-5)
    assert len(calls) == len(origins)


@pytest.mark.parametrize(
    ("shape", "window", "batch_size"),
    [((37, 13), (8, 8), 2), ((23, 9, 10), (6, 4, 4), 5), ((5, 30), (8, 8), 4)],
)
def test_on_rows_slabs_equal_the_full_result_and_stay_small(shape, window, batch_size) -> None:
    k = 3
    rng = np.random.default_rng(7)
    image = rng.integers(0, k, shape)[None].astype(np.float32)
    forward = one_hot_forward(k)
    full = predict_tiled(
        forward, image, window=window, overlap=0.25, batch_size=batch_size, num_outputs=k
    )
    slabs: list[tuple[int, int, np.ndarray]] = []
    result = predict_tiled(
        forward,
        image,
        window=window,
        overlap=0.25,
        batch_size=batch_size,
        num_outputs=k,
        on_rows=lambda a, b, p: slabs.append((a, b, p.copy())),
    )
    assert result is None
    starts = [a for a, _, _ in slabs]
    stops = [b for _, b, _ in slabs]
    assert starts[0] == 0 and stops[-1] == shape[0] and starts[1:] == stops[:-1]
    for a, b, p in slabs:
        assert p.shape == (k, b - a, *shape[1:])
        assert b - a <= window[0]  # never more than one slab of window rows
    np.testing.assert_array_equal(np.concatenate([p for _, _, p in slabs], axis=1), full)


def test_forward_with_the_wrong_output_shape_is_refused() -> None:
    def bad(batch: np.ndarray) -> np.ndarray:
        return np.zeros((len(batch), 2, 3, 3), np.float32)

    with pytest.raises(UsageError, match=r"expected \(1, 2, 4, 4\)"):
        predict_tiled(bad, np.zeros((1, 4, 4), np.float32), window=4, num_outputs=2)


def test_predict_tiled_refuses_bad_images() -> None:
    with pytest.raises(UsageError, match="must be"):
        predict_tiled(lambda b: b, np.zeros((4, 4), np.float32), window=4, num_outputs=1)
    with pytest.raises(UsageError, match="batch_size"):
        predict_tiled(
            lambda b: b, np.zeros((1, 4, 4), np.float32), window=4, num_outputs=1, batch_size=0
        )


def test_batches_hold_tiles_of_one_row_and_at_most_batch_size() -> None:
    seen: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return np.ones((len(batch), 1, *batch.shape[2:]), np.float32)

    # 3 tile rows of 5 tiles each
    predict_tiled(forward, np.zeros((1, 12, 20), np.float32), window=4, overlap=0.0,
                  batch_size=2, num_outputs=1)  # fmt: skip
    assert seen == [2, 2, 1] * 3


@pytest.mark.parametrize("window", [(8, 8), (7, 9), (4, 5, 6), (1, 3)])
def test_gaussian_weights_positive_symmetric_peaked(window) -> None:
    w = gaussian_weights(window)
    assert w.shape == window and w.dtype == np.float32
    assert (w > 0).all()
    assert w.max() == pytest.approx(1.0)
    for axis in range(len(window)):
        np.testing.assert_allclose(w, np.flip(w, axis=axis), rtol=1e-6)
    centre = tuple((n - 1) // 2 for n in window)
    corner = (0,) * len(window)
    if min(window) > 2:
        assert w[centre] > w[corner]


def test_gaussian_weights_of_a_large_3d_tile_are_never_zero() -> None:
    w = gaussian_weights((64, 64, 64), sigma_scale=0.05)
    assert (w > 0).all()


def test_gaussian_weights_refuse_bad_arguments() -> None:
    with pytest.raises(UsageError):
        gaussian_weights((0, 4))
    with pytest.raises(UsageError):
        gaussian_weights((4, 4), sigma_scale=0)
