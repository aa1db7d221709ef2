"""The class step (microprep.classes) and how targets paint ignore labels and annotated regions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from microprep.classes import (
    ClassOptions,
    apply_classes,
    images_without_region,
    parse_map,
    read_classes_file,
    split_names,
)
from microprep.errors import InputError, UsageError
from microprep.model import (
    AnnotatedImage,
    AnnotationSet,
    ImageInfo,
    LabelMap,
    LabelSpec,
    Shape,
)
from microprep.targets import build_targets, build_volume_targets


def box(label: str, x0: float, y0: float, x1: float, y1: float, **kw: int) -> Shape:
    return Shape(kind="box", label=label, points=np.array([[x0, y0], [x1, y1]]), **kw)


LABELS = LabelMap(
    (
        LabelSpec("grain", color="#ffe119"),
        LabelSpec("Bubble", color="#e6194b"),
        LabelSpec("void", color="#000080"),
        LabelSpec("dust"),
    )
)


def export(*items: tuple[str, tuple[Shape, ...]], labels: LabelMap = LABELS) -> AnnotationSet:
    return AnnotationSet.from_items(
        [AnnotatedImage(ImageInfo(name, 8, 6), shapes) for name, shapes in items], labels=labels
    )


def shapes_of(annotations: AnnotationSet) -> list[list[str]]:
    return [[s.label for s in item.shapes] for item in annotations]


# -- parsing


def test_parse_map_and_names() -> None:
    assert parse_map(["Bubble=bubble", " void = bubble ,"]) == (
        ("Bubble", "bubble"),
        ("void", "bubble"),
    )
    assert split_names(["a,b", " c ", ""]) == frozenset({"a", "b", "c"})
    for bad in ("Bubble", "=bubble", "Bubble="):
        with pytest.raises(UsageError, match="OLD=NEW"):
            parse_map(bad)


def test_read_classes_file(tmp_path: Path) -> None:
    good = tmp_path / "classes.txt"
    good.write_text("background\nbubble\ngrain\n\n", encoding="utf-8")
    assert read_classes_file(good) == ("bubble", "grain")
    cases = {
        "bubble\ngrain\n": (":1:", "background"),
        "background\nbubble\n\ngrain\n": (":3:", "blank line"),
        "background\nbubble\nbubble\n": (":3:", "twice"),
        "background\n": (":1:", "no class"),
    }
    for text, (line, words) in cases.items():
        bad = tmp_path / "bad.txt"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_classes_file(bad)
        assert f"bad.txt{line}" in str(info.value) and words in str(info.value), text


def test_contradicting_options_are_refused() -> None:
    with pytest.raises(UsageError, match="both --drop and --ignore"):
        ClassOptions(drop=frozenset({"void"}), ignore=frozenset({"void"}))
    with pytest.raises(UsageError, match="more than once"):
        ClassOptions(mapping=(("a", "b"), ("a", "c")))
    with pytest.raises(UsageError, match="not a class"):
        ClassOptions(classes=("grain", "void"), ignore=frozenset({"void"}))
    with pytest.raises(UsageError, match="class 0"):
        ClassOptions(mapping=(("void", "background"),))


# -- the step on the model


def test_no_options_change_nothing() -> None:
    raw = export(("a.png", (box("grain", 0, 0, 2, 2),)))
    assert apply_classes(raw, ClassOptions()) is raw


def test_classes_file_fixes_the_order_and_keeps_empty_classes() -> None:
    raw = export(("a.png", (box("grain", 0, 0, 2, 2), box("Bubble", 3, 3, 5, 5))))
    opts = ClassOptions(classes=("pore", "Bubble", "void", "dust", "grain"))
    mapped = apply_classes(raw, opts)
    assert mapped.labels.class_names == ("background", "pore", "Bubble", "void", "dust", "grain")
    assert mapped.labels.get("grain") is not None
    assert mapped.labels.get("grain").color == "#ffe119"
    t = build_targets(next(iter(mapped)), mapped.labels)
    assert t.class_map[1, 1] == 5 and t.class_map[4, 4] == 2


def test_a_label_missing_from_the_classes_file_is_an_error_listing_them() -> None:
    raw = export(("a.png", (box("grain", 0, 0, 2, 2),)))
    opts = ClassOptions(classes=("grain",), classes_file="classes.txt")
    with pytest.raises(UsageError) as info:
        apply_classes(raw, opts)
    message = str(info.value)
    assert "'Bubble', 'void', 'dust'" in message and "classes.txt" in message
    assert "--map" in message and "--drop" in message
    # mapped or dropped, they are no longer missing
    ok = ClassOptions(
        classes=("grain", "bubble"),
        mapping=parse_map("Bubble=bubble,void=bubble"),
        drop=frozenset({"dust"}),
    )
    assert apply_classes(raw, ok).labels.class_names == ("background", "grain", "bubble")


def test_map_merges_labels_into_one_class() -> None:
    raw = export(("a.png", (box("Bubble", 0, 0, 2, 2), box("void", 4, 0, 6, 2))))
    mapped = apply_classes(raw, ClassOptions(mapping=parse_map("Bubble=bubble,void=bubble")))
    assert mapped.labels.class_names == ("background", "grain", "bubble", "dust")
    assert mapped.labels.get("bubble").color == "#e6194b"
    assert shapes_of(mapped) == [["bubble", "bubble"]]
    t = build_targets(next(iter(mapped)), mapped.labels)
    assert t.class_map[1, 1] == t.class_map[1, 5] == 2
    assert t.instances.labels.tolist() == [2, 2]


def test_drop_leaves_shapes_out_and_unknown_names_are_accepted() -> None:
    raw = export(("a.png", (box("grain", 0, 0, 2, 2), box("dust", 4, 0, 6, 2))))
    mapped = apply_classes(raw, ClassOptions(drop=frozenset({"dust", "not-in-this-export"})))
    assert "dust" not in mapped.labels.class_names
    assert shapes_of(mapped) == [["grain"]]


def test_ignore_and_region_labels_are_no_classes() -> None:
    raw = export(("a.png", (box("void", 0, 0, 2, 2),)))
    opts = ClassOptions(ignore=frozenset({"void"}), regions=frozenset({"roi"}))
    mapped = apply_classes(raw, opts)
    assert mapped.labels.class_names == ("background", "grain", "Bubble", "dust")
    assert mapped.labels.names_with_role("ignore") == {"void"}
    assert mapped.labels.names_with_role("region") == {"roi"}
    assert mapped.labels.ignore_index == 255
    assert LABELS.ignore_index is None
    prov = opts.provenance(LABELS)
    assert prov["ignore"] == ["void"] and prov["sources"]["grain"] == ["grain"]


def test_mapping_stays_lazy() -> None:
    calls = []
    raw = export(("a.png", (box("Bubble", 0, 0, 2, 2),)))

    def load() -> Iterator[AnnotatedImage]:
        calls.append(1)
        return iter(list(raw))

    from dataclasses import replace

    mapped = apply_classes(replace(raw, load=load), ClassOptions(mapping=(("Bubble", "b"),)))
    assert calls == []
    assert shapes_of(mapped) == [["b"]] and calls == [1]


# -- targets


def ignore_set(*shapes: Shape) -> AnnotationSet:
    return apply_classes(export(("a.png", shapes)), ClassOptions(ignore=frozenset({"void"})))


def test_ignore_paints_255_by_z_order_and_is_no_object() -> None:
    # void above grain: void wins where they overlap; a later Bubble above void wins there
    mapped = ignore_set(
        box("grain", 0, 0, 6, 4, z_order=0),
        box("void", 2, 0, 4, 6, z_order=1),
        box("Bubble", 3, 1, 5, 2, z_order=2),
    )
    t = build_targets(next(iter(mapped)), mapped.labels)
    assert t.class_map[0].tolist() == [1, 1, 255, 255, 1, 1, 0, 0]
    assert t.class_map[1].tolist() == [1, 1, 255, 2, 2, 1, 0, 0]
    assert t.class_map[5].tolist() == [0, 0, 255, 255, 0, 0, 0, 0]
    assert t.instances.labels.tolist() == [1, 2]  # grain and Bubble; void is no object
    onehot = t.one_hot()
    assert onehot[:, 0, 2].tolist() == [0, 0, 0, 0]  # every channel 0 where ignored
    assert onehot[:, 0, 0].tolist() == [0, 1, 0, 0]


def test_a_class_below_ignore_is_hidden_and_above_it_wins() -> None:
    below = ignore_set(box("void", 0, 0, 4, 4, z_order=1), box("grain", 0, 0, 4, 4))
    above = ignore_set(box("void", 0, 0, 4, 4), box("grain", 0, 0, 4, 4))  # later in the file
    t_below = build_targets(next(iter(below)), below.labels)
    t_above = build_targets(next(iter(above)), above.labels)
    assert t_below.class_map[1, 1] == 255 and t_above.class_map[1, 1] == 1


def region_set(*items: tuple[str, tuple[Shape, ...]]) -> AnnotationSet:
    return apply_classes(export(*items), ClassOptions(regions=frozenset({"dust"})))


def test_pixels_outside_every_annotated_region_are_ignored() -> None:
    mapped = region_set(
        ("a.png", (box("dust", 0, 0, 4, 3), box("dust", 6, 4, 8, 6), box("grain", 1, 1, 7, 5))),
        ("b.png", (box("grain", 1, 1, 7, 5),)),
    )
    a, b = (build_targets(item, mapped.labels) for item in mapped)
    expected = np.full((6, 8), 255)
    expected[0:3, 0:4] = 0
    expected[1:3, 1:4] = 1
    expected[4:6, 6:8] = 0
    expected[4:5, 6:7] = 1
    np.testing.assert_array_equal(a.class_map, expected)
    assert len(a.instances) == 1  # the region boxes are no objects
    assert (b.class_map == 255).all()  # no region: nothing of it is annotated
    assert images_without_region(mapped, mapped.labels) == ["b.png"]


def test_ignore_index_past_255_classes_is_65535() -> None:
    labels = LabelMap(tuple(LabelSpec(f"c{i}") for i in range(300)))
    raw = AnnotationSet.from_items(
        [AnnotatedImage(ImageInfo("a.png", 4, 4), (box("void", 0, 0, 2, 2),))],
        labels=labels.with_label(LabelSpec("void")),
    )
    mapped = apply_classes(raw, ClassOptions(ignore=frozenset({"void"})))
    t = build_targets(next(iter(mapped)), mapped.labels)
    assert mapped.labels.ignore_index == 65535
    assert t.class_map.dtype == np.uint16 and t.class_map[0, 0] == 65535


def test_volume_regions_are_per_slice() -> None:
    frames = [
        AnnotatedImage(ImageInfo("s0.png", 4, 4), (box("dust", 0, 0, 2, 2),)),
        AnnotatedImage(ImageInfo("s1.png", 4, 4), ()),
    ]
    raw = AnnotationSet.from_items(frames, labels=LABELS)
    mapped = apply_classes(raw, ClassOptions(regions=frozenset({"dust"})))
    t = build_volume_targets("v", list(mapped), mapped.labels)
    assert int((t.class_map[0] == 0).sum()) == 4 and (t.class_map[1] == 255).all()
