"""Geometry: image and targets move together, labels never gain values, boxes follow masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from microprep.augment import AugmentConfig, Augmenter, Sample, parse_noise, sample_rng
from microprep.augment.geometry2d import D4_INVERSE, d4, d4_matrix, warp_image, warp_labels
from microprep.augment.geometry3d import CUBE_INVERSE, cube_symmetry
from microprep.augment.pipeline import boxes_from_layers
from microprep.errors import UsageError

GEOMETRIES_2D = [("flip",), ("rot90",), ("flip", "rot90"), ("rotate",), ("zoom",), ("field",)]
GEOMETRIES_3D = [("flip",), ("rot90",), ("flip", "rot90"), ("rotate",), ("zoom",), ("field",)]


def _sample(shape: tuple[int, ...], rng: np.random.Generator, n: int = 4) -> Sample:
    """Rectangles of classes 1..3 and instance layers; image bright on objects."""
    labels = np.zeros(shape, np.uint8)
    layers = np.zeros((1, *shape), np.uint32)
    for i in range(n):
        lo = [int(rng.integers(0, max(1, s - 4))) for s in shape]
        sl = tuple(slice(a, a + 4) for a in lo)
        labels[sl] = 1 + i % 3
        layers[(0, *sl)] = i + 1
    image = (labels * 60 + 10).astype(np.uint8)
    return {"image": image, "labels": labels, "instances": layers, "boxes": np.zeros((n, 4))}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    geometry=st.sampled_from(GEOMETRIES_2D),
    h=st.integers(3, 40),
    w=st.integers(3, 40),
    values=st.lists(st.integers(1, 255), min_size=1, max_size=5),
)
def test_labels_stay_within_input_values_2d(
    seed: int, geometry: tuple[str, ...], h: int, w: int, values: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array(values, np.uint8), size=(h, w))
    out = Augmenter(AugmentConfig(geometry=geometry))({"labels": labels}, rng)["labels"]
    allowed = set(values)
    if geometry not in (("flip",), ("rot90",), ("flip", "rot90")):
        allowed.add(0)  # background where the output comes from outside the input
    assert set(np.unique(out).tolist()) <= allowed
    assert out.dtype == labels.dtype


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    geometry=st.sampled_from(GEOMETRIES_3D),
    values=st.lists(st.integers(1, 65535), min_size=1, max_size=4),
)
def test_labels_stay_within_input_values_3d(
    seed: int, geometry: tuple[str, ...], values: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array(values, np.uint16), size=(5, 7, 6))
    out = Augmenter(AugmentConfig(geometry=geometry))({"labels": labels}, rng)["labels"]
    allowed = set(values) | ({0} if geometry in (("rotate",), ("zoom",), ("field",)) else set())
    assert set(np.unique(out).tolist()) <= allowed


def test_d4_has_8_distinct_invertible_elements() -> None:
    a = np.arange(12).reshape(3, 4)
    seen = {(d4(a, k).shape, d4(a, k).tobytes()) for k in range(8)}
    assert len(seen) == 8
    for k in range(8):
        np.testing.assert_array_equal(d4(d4(a, k), D4_INVERSE[k]), a)


def test_cube_has_48_distinct_invertible_elements() -> None:
    v = np.arange(27).reshape(3, 3, 3)
    seen = {cube_symmetry(v, k).tobytes() for k in range(48)}
    assert len(seen) == 48
    for k in range(48):
        np.testing.assert_array_equal(cube_symmetry(cube_symmetry(v, k), CUBE_INVERSE[k]), v)
    with pytest.raises(UsageError):
        cube_symmetry(v, 48)


def _marker_2d(h: int = 41, w: int = 53) -> Sample:
    image = np.zeros((h, w), np.float32)
    labels = np.zeros((h, w), np.uint8)
    layers = np.zeros((1, h, w), np.uint32)
    image[8:13, 30:35] = 1.0
    labels[8:13, 30:35] = 2
    layers[0, 8:13, 30:35] = 1
    return {"image": image, "labels": labels, "instances": layers, "boxes": np.zeros((1, 4))}


@pytest.mark.parametrize("geometry", GEOMETRIES_2D)
@pytest.mark.parametrize("copy", range(4))
def test_marker_moves_with_image_2d(geometry: tuple[str, ...], copy: int) -> None:
    config = AugmentConfig(geometry=geometry, zoom_range=(0.8, 1.2), field_alpha=3.0)
    out = Augmenter(config)(_marker_2d(), sample_rng(seed=1, index=0, copy=copy))
    image, labels, layers = out["image"], out["labels"], out["instances"]
    on = labels == 2
    assert on.any()
    np.testing.assert_array_equal(on, layers[0] == 1)
    # where the label is, the image is bright (the marker's centre of mass matches)
    centre_label = np.argwhere(on).mean(axis=0)
    weights = np.argwhere(image > 0.5)
    assert np.abs(weights.mean(axis=0) - centre_label).max() < 1.0
    assert image[on].mean() > 0.6


@pytest.mark.parametrize("geometry", GEOMETRIES_3D)
def test_marker_moves_with_image_3d(geometry: tuple[str, ...]) -> None:
    image = np.zeros((9, 21, 17), np.float32)
    labels = np.zeros(image.shape, np.uint8)
    image[2:5, 4:8, 10:14] = 1.0
    labels[2:5, 4:8, 10:14] = 3
    layers = labels[None].astype(np.uint32) // 3
    sample: Sample = {"image": image, "labels": labels, "instances": layers}
    out = Augmenter(AugmentConfig(geometry=geometry, zoom_range=(0.9, 1.1)))(
        sample, np.random.default_rng(3)
    )
    on = out["labels"] == 3
    assert on.any()
    np.testing.assert_array_equal(on, out["instances"][0] == 1)
    assert out["image"][on].mean() > 0.6
    assert out["boxes"].shape == (1, 6)


def test_boxes_are_recomputed_from_moved_masks() -> None:
    rng = np.random.default_rng(0)
    sample = _sample((40, 50), rng, n=5)
    config = AugmentConfig(geometry=("flip", "rot90", "rotate", "zoom"))
    for copy in range(6):
        out = Augmenter(config)(sample, sample_rng(seed=5, index=0, copy=copy))
        layers = out["instances"]
        for i in range(5):
            mask = (layers == i + 1).any(axis=0)
            if not mask.any():
                assert out["areas"][i] == 0
                continue
            ys, xs = np.nonzero(mask)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert out["boxes"][i].tolist() == box
            assert out["areas"][i] == mask.sum()


def test_noise_never_changes_labels() -> None:
    sample = _sample((32, 32), np.random.default_rng(1))
    config = AugmentConfig(
        noise=parse_noise("gaussian,poisson,salt_and_pepper,jitter,background,contrast,blur")
    )
    out = Augmenter(config)(sample, np.random.default_rng(2))
    np.testing.assert_array_equal(out["labels"], sample["labels"])
    np.testing.assert_array_equal(out["instances"], sample["instances"])
    assert not np.array_equal(out["image"], sample["image"])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_geometry_keeps_image_dtype_and_range(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    image: NDArray[Any] = (rng.random((30, 40, 3)) * 200).astype(dtype)
    config = AugmentConfig(geometry=("flip", "rot90", "rotate", "zoom", "field"))
    out = Augmenter(config)({"image": image}, rng)["image"]
    assert out.dtype == image.dtype
    assert out.shape in ((30, 40, 3), (40, 30, 3))
    assert float(out.max()) <= float(image.max()) + 1e-4
    assert float(out.min()) >= float(image.min()) - 1e-4 or image.dtype.kind == "u"


def test_float_volume_keeps_its_range_under_rotation() -> None:
    image = np.random.default_rng(0).uniform(0.5, 2.0, (4, 16, 16)).astype(np.float32)
    config = AugmentConfig(geometry=("rotate", "zoom"), zoom_range=(0.7, 0.8))
    out = Augmenter(config)({"image": image}, np.random.default_rng(1))["image"]
    assert out.dtype == np.float32
    assert float(out.min()) >= float(image.min()) - 1e-5
    assert float(out.max()) <= float(image.max()) + 1e-5


def test_augmenter_is_reproducible_and_leaves_input_alone() -> None:
    sample = _sample((32, 48), np.random.default_rng(4))
    before = {k: np.array(v, copy=True) for k, v in sample.items()}
    config = AugmentConfig(noise=parse_noise("poisson"), geometry=("flip", "rot90", "rotate"))
    a = Augmenter(config)(sample, sample_rng(seed=3, index=2, copy=1))
    b = Augmenter(config)(sample, sample_rng(seed=3, index=2, copy=1))
    c = Augmenter(config)(sample, sample_rng(seed=3, index=2, copy=2))
    for key in ("image", "labels", "instances", "boxes"):
        np.testing.assert_array_equal(a[key], b[key])  # type: ignore[literal-required]
    assert not np.array_equal(a["image"], c["image"])
    for key, value in before.items():
        np.testing.assert_array_equal(sample[key], value)  # type: ignore[literal-required]


def test_boxes_from_layers_overlapping_instances() -> None:
    layers = np.zeros((2, 10, 10), np.uint32)
    layers[0, 1:5, 2:6] = 1
    layers[1, 3:8, 4:9] = 2
    boxes, areas = boxes_from_layers(layers, 3)
    assert boxes.tolist() == [[2, 1, 6, 5], [4, 3, 9, 8], [0, 0, 0, 0]]
    assert areas.tolist() == [16, 25, 0]


def test_field_moves_volume_and_labels_together() -> None:
    image = np.zeros((8, 24, 24), np.float32)
    labels = np.zeros(image.shape, np.uint8)
    image[2:6, 8:16, 8:16] = 1.0
    labels[2:6, 8:16, 8:16] = 2
    config = AugmentConfig(geometry=("field",), field_alpha=2.0, field_grid=8.0)
    out = Augmenter(config)({"image": image, "labels": labels}, np.random.default_rng(0))
    on = out["labels"] == 2
    assert set(np.unique(out["labels"]).tolist()) <= {0, 2}
    assert on.any() and out["image"][on].mean() > 0.6
    assert not np.array_equal(out["labels"], labels)


@pytest.mark.parametrize("k", range(8))
def test_d4_matrix_warp_equals_index_shuffle(k: int) -> None:
    labels = np.arange(5 * 7, dtype=np.uint16).reshape(5, 7)
    image = labels.astype(np.float32)
    matrix, size = d4_matrix(labels.shape, k)
    moved = warp_labels([labels], matrix[:2], size)[0]
    np.testing.assert_array_equal(moved, d4(labels, k))
    np.testing.assert_allclose(warp_image(image, matrix[:2], size), d4(image, k))


@pytest.mark.parametrize("geometry", [("flip",), ("rot90",), ("flip", "rot90")])
def test_in_plane_volume_symmetries_keep_z(geometry: tuple[str, ...]) -> None:
    labels = np.random.default_rng(0).integers(1, 5, (3, 8, 8)).astype(np.uint8)
    config = AugmentConfig(geometry=geometry, cube=False)
    seen = set()
    for copy in range(24):
        out = Augmenter(config)({"labels": labels}, sample_rng(seed=0, index=0, copy=copy))
        moved = out["labels"]
        assert moved.shape == labels.shape
        assert sorted(moved.ravel().tolist()) == sorted(labels.ravel().tolist())
        seen.add(moved.tobytes())
    assert len(seen) > 2


@pytest.mark.parametrize(
    ("shape", "cube"),
    [((8, 16), True), ((4, 8, 8), True), ((4, 8, 16), True), ((4, 8, 16), False)],
)
def test_keep_shape_draws_only_symmetries_that_keep_the_window(
    shape: tuple[int, ...], cube: bool
) -> None:
    labels = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) % 251
    config = AugmentConfig(geometry=("flip", "rot90"), cube=cube)
    kept, free = Augmenter(config, keep_shape=True), Augmenter(config)
    seen: set[bytes] = set()
    changed = 0
    for i in range(64):
        sample: Sample = {"labels": labels.astype(np.uint8)}
        out = kept(sample, sample_rng(seed=0, index=i, copy=0))["labels"]
        assert out.shape == shape
        seen.add(out.tobytes())
        changed += free(sample, sample_rng(seed=0, index=i, copy=0))["labels"].shape != shape
    assert len(seen) > 2  # flips and the shape-keeping turns are still drawn
    if shape == (4, 8, 8):
        # y and x may swap (a quarter turn in the y-x plane) though z may not
        turned = np.swapaxes(labels.astype(np.uint8), 1, 2)
        assert any(turned.tobytes() == s or np.flip(turned, 1).tobytes() == s for s in seen)
    assert changed > 0  # without keep_shape, whole images may be turned onto other shapes


def test_keep_shape_on_a_square_window_draws_as_before() -> None:
    config = AugmentConfig(geometry=("flip", "rot90"))
    labels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    for i in range(16):
        a = Augmenter(config, keep_shape=True)(
            {"labels": labels}, sample_rng(seed=1, index=i, copy=0)
        )
        b = Augmenter(config)({"labels": labels}, sample_rng(seed=1, index=i, copy=0))
        np.testing.assert_array_equal(a["labels"], b["labels"])
