"""Tests of the CVAT XML 1.1 reader on well-formed exports (images, project, video)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from microprep.errors import FormatError, InputError, UsageError
from microprep.readers import READERS, detect_format, read_annotations
from microprep.readers.cvat import decode_cvat_rle, detect, read_cvat

LABELS = """
<labels>
  <label><name>bubble</name><color>#ff0000</color><type>ellipse</type>
    <attributes>
      <attribute><name>size</name><mutable>False</mutable><input_type>select</input_type>
        <default_value>small</default_value><values>small
large</values></attribute>
      <attribute><name>note</name><mutable>True</mutable><input_type>text</input_type>
        <default_value></default_value><values></values></attribute>
    </attributes>
  </label>
  <label><name>precipitate</name><color>#00ff00</color><type>any</type><attributes/></label>
  <label><name>fibre</name><color>#0000ff</color><type>polygon</type><attributes/></label>
</labels>"""


def task_xml(body: str, *, labels: str = LABELS, task_extra: str = "") -> str:
    """A CVAT for images 1.1 task export around ``body``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<annotations>\n"
        "  <version>1.1</version>\n"
        f"  <meta><task><id>7</id><name>grains</name><mode>annotation</mode>{task_extra}"
        f"{labels}</task><dumped>2024-01-01</dumped></meta>\n"
        f"{body}\n"
        "</annotations>\n"
    )


def write(tmp_path: Path, text: str, name: str = "annotations.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    return text[: text.index(marker)].count("\n") + 1


def encode_rle(mask: np.ndarray) -> str:
    """Test-side CVAT RLE encoder: row-major runs, the first run counts background pixels."""
    flat = mask.ravel().astype(np.int8)
    runs: list[int] = []
    current, count = 0, 0
    for value in flat.tolist():
        if value == current:
            count += 1
        else:
            runs.append(count)
            current, count = value, 1
    runs.append(count)
    return ", ".join(str(r) for r in runs)


ALL_KINDS = """
  <image id="0" name="grid 1/a b.png" width="512" height="256" subset="Train">
    <box label="precipitate" source="auto" occluded="1" xtl="10.25" ytl="20.5" xbr="30.125"
         ybr="40.75" rotation="15.5" z_order="2" group_id="3">
      <attribute name="kind">needle</attribute>
    </box>
    <polygon label="fibre" occluded="0" points="1.5,2.25;10.75,2.5;10.125,9.0625" z_order="-1"/>
    <polyline label="fibre" points="0,0;100.5,50.25"/>
    <points label="precipitate" points="5.5,6.5;7.25,8.75;9,10"/>
    <ellipse label="bubble" cx="100.5" cy="60.25" rx="12.5" ry="7.75" rotation="33.3">
      <attribute name="size">large</attribute>
      <attribute name="note"></attribute>
    </ellipse>
    <mask label="bubble" rle="1, 2, 3, 2" left="4" top="5" width="4" height="2" z_order="1"/>
    <tag label="bubble"><attribute name="size">small</attribute></tag>
  </image>"""


def test_every_shape_kind_is_parsed_with_exact_values(tmp_path: Path) -> None:
    ds = read_cvat(write(tmp_path, task_xml(ALL_KINDS)))
    assert ds.format == "cvat-images"
    assert ds.warnings == ()
    (item,) = list(ds)
    box, polygon, polyline, points, ellipse, mask, tag = item.shapes
    assert [s.kind for s in item.shapes] == [
        "box", "polygon", "polyline", "points", "ellipse", "mask", "tag",
    ]  # fmt: skip
    assert [s.order for s in item.shapes] == list(range(7))

    assert box.label == "precipitate"
    assert box.points.tolist() == [[10.25, 20.5], [30.125, 40.75]]
    assert box.rotation == 15.5
    assert (box.z_order, box.occluded, box.group, box.source) == (2, True, 3, "auto")
    assert dict(box.attributes) == {"kind": "needle"}

    assert polygon.points.dtype == np.float64
    assert polygon.points.tolist() == [[1.5, 2.25], [10.75, 2.5], [10.125, 9.0625]]
    assert (polygon.z_order, polygon.occluded, polygon.group, polygon.source) == (
        -1, False, 0, "manual",
    )  # fmt: skip
    assert polyline.points.tolist() == [[0.0, 0.0], [100.5, 50.25]]
    assert points.points.tolist() == [[5.5, 6.5], [7.25, 8.75], [9.0, 10.0]]

    assert ellipse.points.tolist() == [[100.5, 60.25], [12.5, 7.75]]
    assert ellipse.rotation == 33.3
    assert dict(ellipse.attributes) == {"size": "large", "note": ""}

    assert mask.points.tolist() == [[4.0, 5.0], [8.0, 7.0]]
    assert mask.z_order == 1
    assert mask.bitmap is not None
    assert mask.bitmap.dtype == np.bool_
    assert mask.bitmap.astype(int).tolist() == [[0, 1, 1, 0], [0, 0, 1, 1]]

    assert tag.kind == "tag"
    assert tag.points.shape == (0, 2)
    assert dict(tag.attributes) == {"size": "small"}


def test_image_infos_keep_names_with_folders_spaces_ids_and_subsets(tmp_path: Path) -> None:
    body = """
  <image id="3" name="grid 1/a b.png" width="512" height="256" subset="Train"/>
  <image id="5" name="grid 2/c d (1).tif" width="64" height="48" subset="Validation"/>
  <image id="9" name="plain.png" width="1" height="65536"/>"""
    ds = read_cvat(write(tmp_path, task_xml(body)))
    assert [(i.name, i.width, i.height, i.id, i.subset) for i in ds.images] == [
        ("grid 1/a b.png", 512, 256, 3, "Train"),
        ("grid 2/c d (1).tif", 64, 48, 5, "Validation"),
        ("plain.png", 1, 65536, 9, None),
    ]
    assert [item.image for item in ds] == list(ds.images)
    assert all(item.shapes == () for item in ds)
    assert len(ds) == 3


def test_label_map_from_task_meta(tmp_path: Path) -> None:
    ds = read_cvat(write(tmp_path, task_xml("")))
    assert ds.labels.class_names == ("background", "bubble", "precipitate", "fibre")
    bubble = ds.labels.get("bubble")
    assert bubble is not None
    assert (bubble.color, bubble.type, bubble.declared, bubble.parent) == (
        "#ff0000", "ellipse", True, None,
    )  # fmt: skip
    size, note = bubble.attributes
    assert (size.name, size.input_type, size.values, size.default, size.mutable) == (
        "size", "select", ("small", "large"), "small", False,
    )  # fmt: skip
    assert (note.name, note.values, note.mutable) == ("note", (), True)


def test_project_export_takes_labels_from_the_project(tmp_path: Path) -> None:
    text = f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <project>
      <id>1</id><name>grains</name>
      {LABELS}
      <tasks>
        <task><id>4</id><name>part 1</name><size>2</size><mode>annotation</mode></task>
        <task><id>5</id><name>part 2</name><size>1</size><mode>annotation</mode></task>
      </tasks>
    </project>
    <dumped>2024-01-01</dumped>
  </meta>
  <image id="0" name="t4/a.png" width="20" height="10" task_id="4" subset="Train">
    <polygon label="fibre" points="1,1;5,1;5,5"/>
  </image>
  <image id="1" name="t5/a.png" width="20" height="10" task_id="5" subset="Test"/>
</annotations>
"""
    ds = read_cvat(write(tmp_path, text))
    assert [label.name for label in ds.labels.labels] == ["bubble", "precipitate", "fibre"]
    assert all(label.declared for label in ds.labels.labels)
    assert [i.subset for i in ds.images] == ["Train", "Test"]
    assert ds.warnings == ()
    assert detect(write(tmp_path, text, "p.xml"))


def test_job_export_takes_labels_from_the_job(tmp_path: Path) -> None:
    text = task_xml('<image id="0" name="a.png" width="4" height="4"><tag label="fibre"/></image>')
    text = text.replace("<task>", "<job>").replace("</task>", "</job>")
    ds = read_cvat(write(tmp_path, text))
    assert ds.labels.class_names == ("background", "bubble", "precipitate", "fibre")
    assert ds.warnings == ()


SKELETON_LABELS = """
<labels>
  <label><name>cell</name><type>skeleton</type><attributes/></label>
  <label><name>head</name><type>points</type><attributes/><parent>cell</parent></label>
  <label><name>tail</name><type>points</type><attributes/><parent>cell</parent></label>
  <label><name>mid</name><type>points</type><attributes/><parent>cell</parent></label>
</labels>"""


def test_skeleton_with_sublabels(tmp_path: Path) -> None:
    body = """
  <image id="0" name="a.png" width="100" height="100">
    <skeleton label="cell" source="manual" z_order="4">
      <points label="head" outside="0" occluded="1" points="10.5,20.25">
        <attribute name="q">ok</attribute>
      </points>
      <points label="mid" outside="1" occluded="0" points="15,25"/>
      <points label="tail" outside="0" occluded="0" points="30.75,40.5"/>
    </skeleton>
  </image>"""
    ds = read_cvat(write(tmp_path, task_xml(body, labels=SKELETON_LABELS)))
    assert ds.labels.class_names == ("background", "cell")
    assert [(lab.name, lab.parent) for lab in ds.labels.labels] == [
        ("cell", None), ("head", "cell"), ("tail", "cell"), ("mid", "cell"),
    ]  # fmt: skip
    assert ds.warnings == ()
    (shape,) = next(iter(ds)).shapes
    assert shape.kind == "skeleton"
    assert shape.z_order == 4
    assert shape.points.tolist() == [[10.5, 20.25], [30.75, 40.5]]
    head, tail = shape.elements
    assert (head.kind, head.label, head.occluded, dict(head.attributes)) == (
        "points", "head", True, {"q": "ok"},
    )  # fmt: skip
    assert (tail.label, tail.occluded, tail.points.tolist()) == ("tail", False, [[30.75, 40.5]])


def test_order_counts_shapes_over_the_whole_file(tmp_path: Path) -> None:
    body = """
  <image id="0" name="a.png" width="50" height="50">
    <box label="bubble" xtl="1" ytl="1" xbr="2" ybr="2"/>
    <box label="bubble" xtl="1" ytl="1" xbr="3" ybr="3"/>
  </image>
  <image id="1" name="b.png" width="50" height="50"/>
  <image id="2" name="c.png" width="50" height="50">
    <box label="bubble" xtl="1" ytl="1" xbr="4" ybr="4"/>
    <tag label="fibre"/>
  </image>"""
    ds = read_cvat(write(tmp_path, task_xml(body)))
    orders = [[s.order for s in item.shapes] for item in ds]
    assert orders == [[0, 1], [], [2, 3]]


def test_iterating_twice_gives_the_same_result(tmp_path: Path) -> None:
    ds = read_cvat(
        write(
            tmp_path,
            task_xml(
                ALL_KINDS + ALL_KINDS.replace('id="0" name="grid 1/a b.png"', 'id="1" name="c.png"')
            ),
        )
    )

    def snapshot() -> list[tuple[str, list[tuple[str, list[list[float]], int]]]]:
        return [
            (item.image.name, [(s.kind, s.points.tolist(), s.order) for s in item.shapes])
            for item in ds
        ]

    first, second = snapshot(), snapshot()
    assert first == second
    assert [name for name, _ in first] == ["grid 1/a b.png", "c.png"]
    assert [order for _, shapes in first for *_, order in shapes] == list(range(14))


def test_iteration_refuses_a_file_changed_since_reading(tmp_path: Path) -> None:
    path = write(tmp_path, task_xml(ALL_KINDS))
    ds = read_cvat(path)
    path.write_text(task_xml(ALL_KINDS + "\n\n"), encoding="utf-8")
    with pytest.raises(InputError, match="changed since it was read"):
        list(ds)


# -- RLE -----------------------------------------------------------------------------------------


def test_rle_decoder_hand_made_example_pixel_by_pixel() -> None:
    # 3x4 mask, row-major: 2 background, 3 foreground, 4 background, 1 foreground, 2 background.
    mask = decode_cvat_rle("2,3,4,1,2", width=4, height=3)
    assert mask.shape == (3, 4)
    assert mask.dtype == np.bool_
    expected = [
        [False, False, True, True],
        [True, False, False, False],
        [False, True, False, False],
    ]
    assert mask.tolist() == expected


def test_rle_first_run_is_background() -> None:
    assert decode_cvat_rle("0,2,2", width=2, height=2).tolist() == [[True, True], [False, False]]
    assert decode_cvat_rle("2,2", width=2, height=2).tolist() == [[False, False], [True, True]]
    assert not decode_cvat_rle("4", width=2, height=2).any()


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        ("1,2", "add up to 3"),
        ("1,2,3,4", "add up to 10"),
        ("2,-1,3", "negative"),
        ("", "empty"),
        ("1,x,3", "integers"),
        ("99999999999999999999999", "integers"),
    ],
)
def test_rle_decoder_rejects_bad_runs(rle: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode_cvat_rle(rle, width=2, height=2)


def test_rle_decoder_rejects_a_huge_run_before_allocating() -> None:
    with pytest.raises(ValueError, match="longer than the whole mask"):
        decode_cvat_rle("0,9223372036854775000,4", width=2, height=2)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12)))
def test_rle_round_trip(mask: np.ndarray) -> None:
    height, width = mask.shape
    decoded = decode_cvat_rle(encode_rle(mask), width=width, height=height)
    assert decoded.shape == mask.shape
    assert np.array_equal(decoded, mask)


def test_mask_bitmap_matches_the_encoded_mask(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((7, 9)) > 0.6
    body = f"""
  <image id="0" name="a.png" width="40" height="30">
    <mask label="bubble" rle="{encode_rle(mask)}" left="31" top="23" width="9" height="7"/>
  </image>"""
    (item,) = list(read_cvat(write(tmp_path, task_xml(body))))
    (shape,) = item.shapes
    assert shape.bitmap is not None
    assert np.array_equal(shape.bitmap, mask)
    assert shape.points.tolist() == [[31.0, 23.0], [40.0, 30.0]]


# -- video ---------------------------------------------------------------------------------------


def video_xml(tracks: str, *, size: str = "<size>4</size>", frame_filter: str = "step=2") -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>2</id><name>stack</name>{size}<mode>interpolation</mode>
      <start_frame>2</start_frame><stop_frame>9</stop_frame>
      <frame_filter>{frame_filter}</frame_filter>
      {LABELS}
      <original_size><width>128</width><height>96</height></original_size>
    </task>
  </meta>
{tracks}
</annotations>
"""


VIDEO_TRACKS = """
  <track id="0" label="fibre" source="manual" group_id="5">
    <polygon frame="2" outside="0" occluded="0" keyframe="1" points="1.5,1;9,1;9,9.25" z_order="1">
      <attribute name="phase">alpha</attribute>
    </polygon>
    <polygon frame="4" outside="0" occluded="1" keyframe="0" points="2.5,1;10,1;10,9.25"
             z_order="1"/>
    <polygon frame="6" outside="1" occluded="0" keyframe="1" points="2.5,1;10,1;10,9.25"/>
    <polygon frame="8" outside="0" occluded="0" keyframe="1" points="3,3;12,3;12,12"/>
  </track>
  <track id="3" label="bubble" source="auto">
    <ellipse frame="4" outside="0" occluded="0" keyframe="1" cx="50" cy="40.5" rx="5" ry="3.25"
             rotation="12"/>
    <ellipse frame="6" outside="1" occluded="0" keyframe="1" cx="50" cy="40.5" rx="5" ry="3.25"/>
  </track>
  <track id="4" label="precipitate" source="manual">
    <skeleton frame="6" outside="0" occluded="0" keyframe="1" z_order="0">
      <points label="p" outside="0" occluded="0" keyframe="1" points="7.5,8.5"/>
    </skeleton>
  </track>"""


def test_video_tracks_become_frames_with_absolute_numbers(tmp_path: Path) -> None:
    ds = read_cvat(write(tmp_path, video_xml(VIDEO_TRACKS)), on_warning=lambda _m: None)
    assert ds.format == "cvat-video"
    assert ds.stack is not None
    assert (ds.stack.start_frame, ds.stack.stop_frame, ds.stack.step) == (2, 9, 2)
    assert [(i.name, i.frame, i.width, i.height) for i in ds.images] == [
        ("frame_000002", 2, 128, 96),
        ("frame_000004", 4, 128, 96),
        ("frame_000006", 6, 128, 96),
        ("frame_000008", 8, 128, 96),
    ]
    items = {item.image.frame: item.shapes for item in ds}
    assert [(s.label, s.track_id) for s in items[2]] == [("fibre", 0)]
    assert [(s.label, s.track_id) for s in items[4]] == [("fibre", 0), ("bubble", 3)]
    # frame 6: the fibre and the bubble are outside; only the skeleton is there.
    assert [(s.kind, s.track_id) for s in items[6]] == [("skeleton", 4)]
    # the fibre track reappears at frame 8.
    assert [(s.label, s.points.tolist()) for s in items[8]] == [
        ("fibre", [[3.0, 3.0], [12.0, 3.0], [12.0, 12.0]])
    ]

    first, interpolated = items[2][0], items[4][0]
    assert (first.frame, first.group, first.z_order, first.keyframe) == (2, 5, 1, True)
    assert dict(first.attributes) == {"phase": "alpha"}
    assert first.points.tolist() == [[1.5, 1.0], [9.0, 1.0], [9.0, 9.25]]
    assert (interpolated.keyframe, interpolated.occluded, interpolated.frame) == (False, True, 4)
    bubble = items[4][1]
    assert (bubble.source, bubble.rotation, bubble.points.tolist()) == (
        "auto", 12.0, [[50.0, 40.5], [5.0, 3.25]],
    )  # fmt: skip
    skeleton = items[6][0]
    assert skeleton.points.tolist() == [[7.5, 8.5]]
    assert skeleton.elements[0].frame == 6
    # the undeclared skeleton element label is appended with a warning
    assert any("'p'" in w for w in ds.warnings)
    # orders follow file order of the kept shapes
    assert sorted(s.order for shapes in items.values() for s in shapes) == list(range(5))
    assert [[s.frame for s in item.shapes] for item in ds] == [[2], [4, 4], [6], [8]]


def test_video_frames_from_stop_frame_or_last_frame_used(tmp_path: Path) -> None:
    ds = read_cvat(write(tmp_path, video_xml(VIDEO_TRACKS, size="")), on_warning=print)
    assert [i.frame for i in ds.images] == [2, 4, 6, 8]

    text = video_xml(VIDEO_TRACKS, size="").replace("<stop_frame>9</stop_frame>", "")
    ds = read_cvat(write(tmp_path, text, "b.xml"), on_warning=print)
    assert [i.frame for i in ds.images] == [2, 4, 6, 8]
    assert ds.stack is not None
    assert ds.stack.stop_frame == 8


def test_video_with_empty_frame_filter_has_step_one(tmp_path: Path) -> None:
    tracks = """
  <track id="0" label="fibre"><points frame="3" outside="0" points="1,1"/></track>"""
    ds = read_cvat(write(tmp_path, video_xml(tracks, frame_filter="")))
    assert [i.frame for i in ds.images] == [2, 3, 4, 5]
    assert [len(item.shapes) for item in ds] == [0, 1, 0, 0]


def test_video_without_tracks_still_lists_its_frames(tmp_path: Path) -> None:
    ds = read_cvat(write(tmp_path, video_xml("")))
    assert ds.format == "cvat-video"
    assert [i.name for i in ds.images] == [f"frame_{f:06d}" for f in (2, 4, 6, 8)]


def test_video_mask_track(tmp_path: Path) -> None:
    tracks = """
  <track id="1" label="bubble">
    <mask frame="2" outside="0" keyframe="1" rle="0,1,3" left="126" top="94" width="2" height="2"/>
  </track>"""
    (item, *_rest) = list(read_cvat(write(tmp_path, video_xml(tracks))))
    (shape,) = item.shapes
    assert shape.bitmap is not None
    assert shape.bitmap.tolist() == [[True, False], [False, False]]


# -- warnings and rules --------------------------------------------------------------------------


def test_undeclared_label_is_appended_with_a_warning(tmp_path: Path) -> None:
    body = """
  <image id="0" name="a.png" width="50" height="50">
    <box label="bubble" xtl="1" ytl="1" xbr="2" ybr="2"/>
    <polygon label="crack" points="1,1;4,1;4,4"/>
    <polygon label="crack" points="1,1;4,1;4,5"/>
  </image>"""
    text = task_xml(body)
    path = write(tmp_path, text)
    seen: list[str] = []
    ds = read_cvat(path, on_warning=seen.append)
    assert ds.labels.class_names == ("background", "bubble", "precipitate", "fibre", "crack")
    crack = ds.labels.get("crack")
    assert crack is not None
    assert (crack.declared, crack.type) == (False, "any")
    assert len(seen) == 1
    assert seen == list(ds.warnings)
    assert "'crack'" in seen[0]
    first_use = line_of(text, '<polygon label="crack"')
    assert f"{path}:{first_use}:" in seen[0]
    assert [s.label for s in next(iter(ds)).shapes] == ["bubble", "crack", "crack"]


def test_export_without_meta_declares_nothing(tmp_path: Path) -> None:
    text = """<annotations><version>1.1</version>
<image id="0" name="a.png" width="5" height="5"><tag label="x"/></image></annotations>"""
    ds = read_cvat(write(tmp_path, text), on_warning=lambda _m: None)
    assert [(lab.name, lab.declared) for lab in ds.labels.labels] == [("x", False)]


def test_empty_labels_are_skipped_and_counted_in_one_warning(tmp_path: Path) -> None:
    body = """
  <image id="0" name="a.png" width="50" height="50">
    <box label="" xtl="1" ytl="1" xbr="2" ybr="2"/>
    <polygon points="1,1;4,1;4,4"/>
    <box label="bubble" xtl="1" ytl="1" xbr="2" ybr="2"/>
  </image>"""
    seen: list[str] = []
    ds = read_cvat(write(tmp_path, task_xml(body)), on_warning=seen.append)
    assert len(seen) == 1
    assert "2 shape(s) with an empty label were skipped" in seen[0]
    shapes = next(iter(ds)).shapes
    assert [(s.label, s.order) for s in shapes] == [("bubble", 0)]


def test_cuboids_and_unknown_elements_are_skipped_with_a_count(tmp_path: Path) -> None:
    body = """
  <image id="0" name="a.png" width="50" height="50">
    <cuboid label="bubble" xtl1="1" ytl1="1"/>
    <cuboid label="bubble" xtl1="2" ytl1="2"/>
    <sphere label="bubble"/>
    <box label="bubble" xtl="1" ytl="1" xbr="2" ybr="2"/>
  </image>"""
    seen: list[str] = []
    ds = read_cvat(write(tmp_path, task_xml(body)), on_warning=seen.append)
    assert any("2 <cuboid> element(s) skipped" in w for w in seen)
    assert any("1 <sphere> element(s) skipped" in w for w in seen)
    assert [s.kind for s in next(iter(ds)).shapes] == ["box"]


def test_warnings_are_logged_without_a_callback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = '<image id="0" name="a.png" width="5" height="5"><tag label="new"/></image>'
    with caplog.at_level(logging.WARNING, logger="microprep.readers.cvat"):
        read_cvat(write(tmp_path, task_xml(body)))
    assert "'new' is not declared" in caplog.text


def test_other_version_reads_with_a_warning(tmp_path: Path) -> None:
    text = task_xml("").replace("<version>1.1</version>", "<version>1.0</version>")
    seen: list[str] = []
    read_cvat(write(tmp_path, text), on_warning=seen.append)
    assert len(seen) == 1
    assert "'1.0'" in seen[0]


# -- detection and the registry ------------------------------------------------------------------


def test_detect_accepts_cvat_and_rejects_others(tmp_path: Path) -> None:
    assert detect(write(tmp_path, task_xml(ALL_KINDS), "task.xml"))
    assert detect(write(tmp_path, video_xml(VIDEO_TRACKS), "video.xml"))
    bom = b"\xef\xbb\xbf<!-- exported -->\n" + task_xml("").encode()
    (tmp_path / "bom.xml").write_bytes(bom)
    assert detect(tmp_path / "bom.xml")
    utf16 = task_xml("").replace("utf-8", "utf-16").encode("utf-16")
    (tmp_path / "utf16.xml").write_bytes(utf16)
    assert detect(tmp_path / "utf16.xml")
    assert read_cvat(tmp_path / "utf16.xml").labels.class_names[1] == "bubble"

    assert not detect(write(tmp_path, '{"_via_img_metadata": {}}', "via.json"))
    assert not detect(write(tmp_path, "<annotation><object/></annotation>", "voc.xml"))
    assert not detect(write(tmp_path, "<annotations><image/></annotations>", "noversion.xml"))
    (tmp_path / "bin.dat").write_bytes(os.urandom(5000))
    assert not detect(tmp_path / "bin.dat")
    assert not detect(tmp_path / "missing.xml")
    assert not detect(tmp_path)


def test_registry_reads_cvat(tmp_path: Path) -> None:
    path = write(tmp_path, task_xml(ALL_KINDS))
    assert "cvat" in READERS
    assert detect_format(path) == "cvat"
    ds = read_annotations(path)
    assert ds.format == "cvat-images"
    assert len(next(iter(ds)).shapes) == 7
    assert read_annotations(str(path), format="cvat").images == ds.images
    with pytest.raises(UsageError, match="unknown annotation format 'coco'"):
        read_annotations(path, format="coco")


def test_detect_format_explains_failures(tmp_path: Path) -> None:
    other = write(tmp_path, "name,x,y\na.png,1,2\n", "points.csv")
    with pytest.raises(FormatError, match=r"formats tried: cvat") as info:
        detect_format(other)
    assert "points.csv" in str(info.value)
    with pytest.raises(FormatError, match="not found") as info:
        read_annotations(tmp_path / "nope.xml")
    assert "nope.xml" in str(info.value)
    with pytest.raises(FormatError, match="folder"):
        detect_format(tmp_path)
