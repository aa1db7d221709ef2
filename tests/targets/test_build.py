"""Class maps, one-hot, boxes and objects built from shapes: overlap rules and invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from microprep.model import AnnotatedImage, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.targets import build_targets, build_volume_targets

LABELS = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate"), LabelSpec("grain")))


def box(label: str, x0: float, y0: float, x1: float, y1: float, **kw: object) -> Shape:
    return Shape(kind="box", label=label, points=np.array([[x0, y0], [x1, y1]]), **kw)  # type: ignore[arg-type]


def image(*shapes: Shape, w: int = 32, h: int = 24) -> AnnotatedImage:
    return AnnotatedImage(ImageInfo("a.png", w, h), shapes)


def test_class_indices_follow_label_map_order() -> None:
    t = build_targets(image(box("grain", 0, 0, 2, 2), box("bubble", 4, 4, 6, 6)), LABELS)
    assert t.class_map.dtype == np.uint8
    assert t.class_map[0, 0] == 3
    assert t.class_map[5, 5] == 1
    assert t.num_classes == 4


def test_higher_z_order_wins_whatever_the_file_order() -> None:
    top = box("grain", 0, 0, 10, 10, z_order=2, order=0)
    under = box("bubble", 5, 5, 15, 15, z_order=1, order=1)
    t = build_targets(image(top, under), LABELS)
    assert t.class_map[7, 7] == 3


def test_equal_z_order_later_in_file_wins() -> None:
    first = box("grain", 0, 0, 10, 10, order=0)
    later = box("bubble", 5, 5, 15, 15, order=1)
    t = build_targets(image(first, later), LABELS)
    assert t.class_map[7, 7] == 1
    # painting order comes from ``order``, not from the position in the tuple
    t2 = build_targets(image(later, first), LABELS)
    assert t2.class_map[7, 7] == 1


def test_instances_keep_overlaps_whole() -> None:
    a = box("grain", 0, 0, 10, 10, order=0)
    b = box("bubble", 5, 5, 15, 15, order=1)
    t = build_targets(image(a, b), LABELS)
    masks = t.instances.dense()
    assert masks.shape == (2, 24, 32)
    assert masks[0].sum() == 100 and masks[1].sum() == 100
    assert masks[0, 7, 7] and masks[1, 7, 7]
    np.testing.assert_array_equal(t.instances.labels, [3, 1])
    np.testing.assert_array_equal(t.instances.areas, [100, 100])
    np.testing.assert_array_equal(t.instances.boxes, [[0, 0, 10, 10], [5, 5, 15, 15]])
    layers = t.instances.layers()
    assert layers.shape[0] == 2
    for i in range(2):
        np.testing.assert_array_equal((layers == i + 1).any(axis=0), masks[i])


def test_group_with_same_label_is_one_object_other_label_is_not() -> None:
    p1 = box("precipitate", 0, 0, 4, 4, group=7, order=0, occluded=True)
    p2 = box("precipitate", 10, 10, 14, 14, group=7, order=1)
    other = box("bubble", 20, 0, 22, 2, group=7, order=2)
    t = build_targets(image(p1, p2, other), LABELS)
    assert len(t.instances) == 2
    np.testing.assert_array_equal(t.instances.areas, [32, 4])
    np.testing.assert_array_equal(t.instances.boxes[0], [0, 0, 14, 14])
    assert t.instances.occluded.tolist() == [True, False]
    assert t.instances.groups.tolist() == [7, 7]


def test_boxes_are_float_and_clipped_to_the_image() -> None:
    t = build_targets(image(box("grain", -3.25, 2.5, 10.75, 40.0)), LABELS)
    np.testing.assert_array_equal(t.instances.boxes, [[0.0, 2.5, 10.75, 24.0]])
    assert t.instances.boxes.dtype == np.float64


def test_shape_outside_image_is_skipped_and_counted() -> None:
    t = build_targets(image(box("grain", 100, 100, 110, 110), box("grain", 1, 1, 2, 2)), LABELS)
    assert len(t.instances) == 1
    assert t.skipped == 1


def test_tags_are_not_drawn() -> None:
    tag = Shape(kind="tag", label="grain", points=np.zeros((0, 2)))
    t = build_targets(image(tag), LABELS)
    assert not t.class_map.any()
    assert len(t.instances) == 0


def test_more_than_255_classes_use_uint16() -> None:
    labels = LabelMap(tuple(LabelSpec(f"c{i}") for i in range(300)))
    t = build_targets(image(box("c299", 0, 0, 2, 2)), labels)
    assert t.class_map.dtype == np.uint16
    assert t.class_map[0, 0] == 300
    assert t.one_hot().shape == (301, 24, 32)


rects = st.tuples(
    st.sampled_from(["bubble", "precipitate", "grain"]),
    st.floats(-5, 30),
    st.floats(-5, 20),
    st.floats(0.5, 15),
    st.floats(0.5, 15),
    st.integers(0, 3),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(rects, max_size=8))
def test_onehot_sums_to_one_and_isolated_areas_agree(spec: list) -> None:
    shapes = tuple(
        box(label, x, y, x + w, y + h, z_order=z, order=i)
        for i, (label, x, y, w, h, z) in enumerate(spec)
    )
    t = build_targets(image(*shapes), LABELS)
    onehot = t.one_hot()
    assert onehot.dtype == np.uint8
    np.testing.assert_array_equal(onehot.sum(axis=0), 1)
    np.testing.assert_array_equal(onehot.argmax(axis=0), t.class_map)
    masks = t.instances.dense()
    coverage = masks.sum(axis=0)
    for i in range(len(t.instances)):
        assert masks[i].sum() == t.instances.areas[i]
        alone = masks[i] & (coverage == 1)
        # where nothing overlaps an object, the class map shows exactly its class
        assert (t.class_map[alone] == t.instances.labels[i]).all()
        if not (masks[i] & (coverage > 1)).any():
            assert (t.class_map == t.instances.labels[i])[masks[i]].sum() == t.instances.areas[i]


def test_volume_track_is_one_3d_object() -> None:
    frames = []
    for z in range(4):
        shapes: tuple[Shape, ...] = ()
        if z in (1, 2):
            shapes = (box("bubble", 2 + z, 2, 6 + z, 6, track_id=5, frame=z),)
        frames.append(AnnotatedImage(ImageInfo(f"frame_{z:06d}", 16, 12, frame=z), shapes))
    t = build_volume_targets("stack", frames, LABELS)
    assert t.class_map.shape == (4, 12, 16)
    assert len(t.instances) == 1
    assert t.instances.tracks.tolist() == [5]
    np.testing.assert_array_equal(t.instances.boxes[0], [3, 2, 1, 8, 6, 3])
    assert t.instances.areas[0] == 32
    dense = t.instances.dense()[0]
    np.testing.assert_array_equal(dense, t.class_map == 1)
