"""The Labelbox reader on good input: both export formats, every object kind, masks, video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from microprep.errors import InputError, UsageError
from microprep.model import AnnotationSet
from microprep.readers.labelbox import detect, read_labelbox
from microprep.readers.options import ReadOptions

# -- tiny exports built in code ---------------------------------------------------------------


def obj(kind: str, name: str, fid: str, **geometry: Any) -> dict[str, Any]:
    """A v2 object of ``annotation_kind`` ``kind``."""
    return {
        "feature_id": fid,
        "feature_schema_id": "schema-" + name,
        "name": name,
        "value": name.lower(),
        "annotation_kind": kind,
        "classifications": geometry.pop("classifications", []),
        **geometry,
    }


def box(
    name: str, fid: str, top: float, left: float, height: float, width: float
) -> dict[str, Any]:
    bb = {"top": top, "left": left, "height": height, "width": width}
    return obj("ImageBoundingBox", name, fid, bounding_box=bb)


def poly(name: str, fid: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    return obj("ImagePolygon", name, fid, polygon=[{"x": x, "y": y} for x, y in points])


def data_row(
    external_id: str | None,
    objects: list[dict[str, Any]] | None = None,
    *,
    row_id: str = "dr1",
    size: tuple[int, int] | None = (64, 48),
    classifications: list[dict[str, Any]] | None = None,
    labels: list[dict[str, Any]] | None = None,
    projects: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One NDJSON line: a data row with one project and one label of ``objects``."""
    row: dict[str, Any] = {
        "data_row": {
            "id": row_id,
            "external_id": external_id,
            "row_data": "https://storage.example.com/" + row_id,
            "global_key": extra.pop("global_key", None),
        },
        "projects": projects
        if projects is not None
        else {
            "p1": {
                "name": "project",
                "labels": labels
                if labels is not None
                else [
                    {
                        "label_kind": "Default",
                        "annotations": {
                            "objects": objects or [],
                            "classifications": classifications or [],
                            "relationships": [],
                        },
                    }
                ],
            }
        },
        **extra,
    }
    if size is not None:
        row["media_attributes"] = {"width": size[0], "height": size[1], "mime_type": "image/png"}
    return row


def write_ndjson(tmp_path: Path, rows: list[Any], name: str = "export.ndjson") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path, **options: Any) -> tuple[AnnotationSet, list[str]]:
    seen: list[str] = []
    ds = read_labelbox(path, on_warning=seen.append, options=ReadOptions(**options))
    return ds, seen


# -- NDJSON: object kinds, classes, classifications -------------------------------------------


def test_every_object_kind_with_exact_floats(tmp_path: Path) -> None:
    objects = [
        box("Pore", "f1", top=3.25, left=2.5, height=6.125, width=7.5),
        poly("Grain", "f2", [(1.5, 2.0), (10.25, 2.0), (10.25, 9.75), (1, 9)]),
        obj("ImagePolyline", "Crack", "f3", line=[{"x": 0.5, "y": 0.5}, {"x": 20.125, "y": 11}]),
        obj("ImagePoint", "Seed", "f4", point={"x": 33.3, "y": 44.4}),
    ]
    path = write_ndjson(tmp_path, [data_row("grid 1/a b.png", objects)])
    ds, warnings = read(path)
    assert warnings == []
    assert ds.format == "labelbox-ndjson"
    assert ds.source == path
    (item,) = list(ds)
    assert item.image.name == "grid 1/a b.png"
    assert (item.image.width, item.image.height) == (64, 48)
    assert [s.kind for s in item.shapes] == ["box", "polygon", "polyline", "points"]
    assert [s.label for s in item.shapes] == ["Pore", "Grain", "Crack", "Seed"]
    assert [s.order for s in item.shapes] == [0, 1, 2, 3]
    b, p, line, point = item.shapes
    assert b.points.tolist() == [[2.5, 3.25], [10.0, 9.375]]
    assert p.points.tolist() == [[1.5, 2.0], [10.25, 2.0], [10.25, 9.75], [1.0, 9.0]]
    assert line.points.tolist() == [[0.5, 0.5], [20.125, 11.0]]
    assert point.points.tolist() == [[33.3, 44.4]]
    assert all(s.points.dtype == np.float64 for s in item.shapes)
    assert all(s.track_id is None and s.frame is None and s.keyframe for s in item.shapes)


def test_labels_in_order_of_first_appearance_over_the_file(tmp_path: Path) -> None:
    rows = [
        data_row("a.png", [poly("b", "f1", [(0, 0), (1, 0), (1, 1)]), box("a", "f2", 0, 0, 1, 1)]),
        data_row("b.png", [box("c", "f3", 0, 0, 1, 1), box("a", "f4", 0, 0, 1, 1)], row_id="d2"),
        data_row("c.png", [], row_id="d3"),
    ]
    ds, _ = read(write_ndjson(tmp_path, rows))
    assert ds.labels.class_names == ("background", "b", "a", "c")
    assert all(label.declared and label.parent is None for label in ds.labels.labels)
    assert [i.name for i in ds.images] == ["a.png", "b.png", "c.png"]
    items = list(ds)
    assert [s.order for item in items for s in item.shapes] == [0, 1, 2, 3]
    assert items[2].shapes == ()


def test_classifications_become_attributes(tmp_path: Path) -> None:
    radio = {
        "name": "phase",
        "value": "phase",
        "radio_answer": {
            "name": "alpha",
            "value": "alpha",
            "classifications": [{"name": "sure", "text_answer": {"content": "mostly"}}],
        },
    }
    checklist = {
        "name": "flags",
        "checklist_answers": [{"name": "cut", "value": "cut"}, {"name": "blurred"}],
    }
    text = {"name": "note", "text_answer": {"content": "near the edge, left"}}
    label_level = [
        {"name": "quality", "radio_answer": {"name": "good"}},
        {"name": "note", "text_answer": {"content": "label note"}},
    ]
    objects = [
        box("pore", "f1", 1, 1, 2, 2) | {"classifications": [radio, checklist, text]},
        box("pore", "f2", 5, 5, 2, 2),
    ]
    ds, warnings = read(
        write_ndjson(tmp_path, [data_row("a.png", objects, classifications=label_level)])
    )
    assert warnings == []
    first, second = next(iter(ds)).shapes
    assert dict(first.attributes) == {
        "quality": "good",
        "note": "near the edge, left",
        "phase": "alpha",
        "phase/sure": "mostly",
        "flags": "cut,blurred",
    }
    assert dict(second.attributes) == {"quality": "good", "note": "label note"}


def test_all_projects_and_labels_of_a_data_row_are_read(tmp_path: Path) -> None:
    label = {"annotations": {"objects": [box("pore", "f1", 0, 0, 2, 2)]}}
    other = {"annotations": {"objects": [box("grain", "f2", 1, 1, 2, 2)]}}
    projects = {"p1": {"labels": [label, other]}, "p2": {"labels": [label]}, "p3": {"labels": []}}
    ds, _ = read(write_ndjson(tmp_path, [data_row("a.png", projects=projects)]))
    (item,) = list(ds)
    assert [s.label for s in item.shapes] == ["pore", "grain", "pore"]
    assert ds.labels.class_names == ("background", "pore", "grain")


def test_image_name_falls_back_to_global_key_then_id(tmp_path: Path) -> None:
    rows = [
        data_row(None, global_key="keys/g1.tif", row_id="d1"),
        data_row("", row_id="d2"),
    ]
    ds, _ = read(write_ndjson(tmp_path, rows))
    assert [i.name for i in ds.images] == ["keys/g1.tif", "d2"]


def test_unknown_kinds_and_unnamed_objects_are_skipped_with_a_warning(tmp_path: Path) -> None:
    objects = [
        obj("ImageEntity", "thing", "f1"),
        obj("ImageEntity", "thing", "f2"),
        box("", "f3", 0, 0, 1, 1) | {"value": ""},
        box("pore", "f4", 0, 0, 1, 1),
        {"name": "geometry-less", "feature_id": "f5"},
    ]
    ds, warnings = read(write_ndjson(tmp_path, [data_row("a.png", objects)]))
    assert [s.label for s in next(iter(ds)).shapes] == ["pore"]
    assert ds.labels.class_names == ("background", "pore")
    assert any('2 object(s) of kind "ImageEntity" skipped' in w for w in warnings)
    assert any("1 object(s) without a name" in w for w in warnings)
    assert any("(no geometry)" in w for w in warnings)
    assert tuple(warnings) == ds.warnings


def test_warnings_go_to_the_logger_without_callback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_ndjson(tmp_path, [data_row("a.png", [obj("ImageEntity", "t", "f1")])])
    with caplog.at_level("WARNING", logger="microprep.readers.labelbox"):
        ds = read_labelbox(path)
    assert len(ds.warnings) == 1
    assert ds.warnings[0] in caplog.text


def test_bom_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.ndjson"
    lines = [json.dumps(data_row("a.png", [box("p", "f1", 0, 0, 1, 1)])), "", "  "]
    lines.append(json.dumps(data_row("b.png", row_id="d2")))
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    assert detect(path)
    ds, _ = read(path)
    assert [i.name for i in ds.images] == ["a.png", "b.png"]
    assert [len(item.shapes) for item in ds] == [1, 0]


# -- sizes ------------------------------------------------------------------------------------


def test_size_from_options_when_the_export_has_none(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path, [data_row("a.png", [box("p", "f1", 0, 0, 1, 1)], size=None)])
    ds, _ = read(path, size=(100, 80))
    assert (ds.images[0].width, ds.images[0].height) == (100, 80)
    with pytest.raises(UsageError, match=r'export\.ndjson:1: image "a\.png" has no size'):
        read(path)


def test_size_from_the_image_header_when_the_export_has_none(tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / "g").mkdir(parents=True)
    Image.new("L", (37, 21)).save(images / "g" / "a.png")
    path = write_ndjson(tmp_path, [data_row("g/a.png", size=None)])
    ds, _ = read(path, images=images)
    assert (ds.images[0].width, ds.images[0].height) == (37, 21)


def test_media_attributes_win_over_options(tmp_path: Path) -> None:
    ds, _ = read(write_ndjson(tmp_path, [data_row("a.png", size=(12, 10))]), size=(5, 5))
    assert (ds.images[0].width, ds.images[0].height) == (12, 10)


# -- video ------------------------------------------------------------------------------------


def video_row() -> dict[str, Any]:
    def vbox(fid: str, left: float, classifications: list[Any] | None = None) -> dict[str, Any]:
        bb = {"top": 1.5, "left": left, "height": 4.0, "width": 3.0}
        return {
            "feature_id": fid,
            "name": "cell" if fid == "fa" else "nucleus",
            "annotation_kind": "VideoBoundingBox",
            "classifications": classifications or [],
            "bounding_box": bb,
        }

    frames = {
        "13": {
            "objects": {
                "fa": vbox("fa", 10.0, [{"name": "stage", "radio_answer": {"name": "G1"}}])
            },
            "classifications": [{"name": "focus", "radio_answer": {"name": "sharp"}}],
        },
        "14": {"objects": {"fa": vbox("fa", 11.5), "fb": vbox("fb", 2.0)}, "classifications": []},
        "2": {"objects": {"fb": vbox("fb", 1.0)}, "classifications": []},
    }
    annotations = {
        "frames": frames,
        "segments": {"fa": [[13, 14]], "fb": [[2, 2], [14, 14]]},
        "key_frame_feature_map": {"fa": {"13": True}, "fb": [2, 14]},
        "classifications": [{"name": "movie", "text_answer": {"content": "run 4"}}],
    }
    row = data_row("movies/m1.mp4", labels=[{"label_kind": "Video", "annotations": annotations}])
    row["media_attributes"] = {
        "width": 320,
        "height": 240,
        "mime_type": "video/mp4",
        "frame_count": 30,
    }
    return row


def test_video_frames_become_images_with_tracks(tmp_path: Path) -> None:
    still = data_row("still.png", [box("cell", "fz", 0, 0, 2, 2)], row_id="d2")
    ds, warnings = read(write_ndjson(tmp_path, [video_row(), still]))
    assert warnings == []
    assert [(i.name, i.frame, i.width, i.height) for i in ds.images] == [
        ("movies/m1.mp4#frame_000002", 2, 320, 240),
        ("movies/m1.mp4#frame_000013", 13, 320, 240),
        ("movies/m1.mp4#frame_000014", 14, 320, 240),
        ("still.png", None, 64, 48),
    ]
    items = list(ds)
    f2, f13, f14, still_item = items
    assert [(s.label, s.track_id, s.frame, s.keyframe) for s in f2.shapes] == [
        ("nucleus", 1, 2, True)
    ]
    assert [(s.label, s.track_id, s.frame, s.keyframe) for s in f13.shapes] == [
        ("cell", 2, 13, True)
    ]
    assert [(s.label, s.track_id, s.keyframe) for s in f14.shapes] == [
        ("cell", 2, False),
        ("nucleus", 1, True),
    ]
    assert f13.shapes[0].points.tolist() == [[10.0, 1.5], [13.0, 5.5]]
    assert f14.shapes[0].points.tolist() == [[11.5, 1.5], [14.5, 5.5]]
    assert dict(f13.shapes[0].attributes) == {"movie": "run 4", "focus": "sharp", "stage": "G1"}
    assert dict(f14.shapes[1].attributes) == {"movie": "run 4"}
    assert still_item.shapes[0].track_id is None
    assert [s.order for item in items for s in item.shapes] == [0, 1, 2, 3, 4]
    assert ds.labels.class_names == ("background", "nucleus", "cell")


def test_video_track_ids_are_the_same_on_every_iteration(tmp_path: Path) -> None:
    ds, _ = read(write_ndjson(tmp_path, [video_row()]))
    runs = [[(s.track_id, s.frame) for item in ds for s in item.shapes] for _ in range(2)]
    assert runs[0] == runs[1] == [(1, 2), (2, 13), (2, 14), (1, 14)]


# -- legacy JSON ------------------------------------------------------------------------------


def legacy_export() -> list[dict[str, Any]]:
    return [
        {
            "ID": "l1",
            "DataRow ID": "d1",
            "Labeled Data": "https://storage.example.com/a.png",
            "External ID": "a.png",
            "Label": {
                "objects": [
                    {
                        "featureId": "f1",
                        "schemaId": "s1",
                        "title": "Pore",
                        "value": "pore",
                        "bbox": {"top": 2.5, "left": 1.25, "height": 3, "width": 4},
                        "instanceURI": "https://api.labelbox.com/masks/f1",
                        "classifications": [
                            {"title": "shape", "answer": {"title": "round", "value": "round"}},
                            {"title": "comment", "answer": "small"},
                            {"title": "tags", "answers": [{"title": "x"}, {"title": "y"}]},
                        ],
                    },
                    {
                        "featureId": "f2",
                        "title": "Grain",
                        "polygon": [{"x": 1, "y": 1}, {"x": 5.5, "y": 1}, {"x": 5.5, "y": 6}],
                    },
                    {"featureId": "f3", "value": "seed", "point": {"x": 7, "y": 8.5}},
                    {
                        "featureId": "f4",
                        "title": "Crack",
                        "line": [{"x": 0, "y": 0}, {"x": 3, "y": 4}],
                    },
                ],
                "classifications": [{"title": "quality", "answer": {"title": "good"}}],
            },
        },
        {"ID": "l2", "DataRow ID": "d2", "External ID": "b.png", "Label": "Skip"},
        {"ID": "l3", "DataRow ID": "d3", "External ID": "c.png", "Label": {}},
        {
            "ID": "l4",
            "DataRow ID": "d1",
            "External ID": "a.png",
            "Label": {"objects": [{"featureId": "f5", "title": "Pore", "point": {"x": 1, "y": 1}}]},
        },
        {
            "ID": "l5",
            "DataRow ID": "d9",
            "External ID": "v.mp4",
            "Label": {"frames": "https://x/f"},
        },
    ]


def test_legacy_json_export(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(legacy_export(), indent=2), encoding="utf-8")
    assert detect(path)
    ds, warnings = read(path, size=(32, 24))
    assert ds.format == "labelbox-json"
    assert [(i.name, i.width, i.height) for i in ds.images] == [
        ("a.png", 32, 24),
        ("b.png", 32, 24),
        ("c.png", 32, 24),
    ]
    assert ds.labels.class_names == ("background", "Pore", "Grain", "seed", "Crack")
    a, b, c = list(ds)
    assert [(s.kind, s.label) for s in a.shapes] == [
        ("box", "Pore"),
        ("polygon", "Grain"),
        ("points", "seed"),
        ("polyline", "Crack"),
        ("points", "Pore"),
    ]
    assert a.shapes[0].points.tolist() == [[1.25, 2.5], [5.25, 5.5]]
    assert a.shapes[1].points.tolist() == [[1.0, 1.0], [5.5, 1.0], [5.5, 6.0]]
    assert a.shapes[2].points.tolist() == [[7.0, 8.5]]
    assert dict(a.shapes[0].attributes) == {
        "quality": "good",
        "shape": "round",
        "comment": "small",
        "tags": "x,y",
    }
    assert [s.order for s in a.shapes] == [0, 1, 2, 3, 4]
    assert b.shapes == () and c.shapes == ()
    assert len(warnings) == 1 and "1 video label(s) skipped" in warnings[0]


def test_legacy_json_needs_a_size(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(legacy_export()[:1]), encoding="utf-8")
    with pytest.raises(UsageError, match="has no size"):
        read(path)
    images = tmp_path / "img"
    images.mkdir()
    Image.new("RGB", (9, 7)).save(images / "a.png")
    ds, _ = read(path, images=images)
    assert (ds.images[0].width, ds.images[0].height) == (9, 7)


def test_legacy_media_attributes_give_the_size(tmp_path: Path) -> None:
    entry = legacy_export()[0] | {"Media Attributes": {"width": 50, "height": 40}}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([entry]), encoding="utf-8")
    ds, _ = read(path)
    assert (ds.images[0].width, ds.images[0].height) == (50, 40)


# -- masks from a local folder ----------------------------------------------------------------


def mask_obj(fid: str, name: str = "pore", color: list[int] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"mask": {"url": f"https://api.labelbox.com/masks/{fid}?token=secret"}}
    if color is not None:
        extra["composite_mask"] = {
            "url": "https://api.labelbox.com/composite/dr1",
            "color_rgb": color,
        }
    return obj("ImageSegmentationMask", name, fid, **extra)


def test_mask_by_feature_id(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    pixels = np.zeros((48, 64), np.uint8)
    pixels[10:13, 20:24] = 255
    pixels[12, 30] = 1
    Image.fromarray(pixels).save(masks / "f1.png")
    ds, warnings = read(write_ndjson(tmp_path, [data_row("a.png", [mask_obj("f1")])]), masks=masks)
    assert warnings == []
    (shape,) = next(iter(ds)).shapes
    assert shape.kind == "mask"
    assert shape.points.tolist() == [[20.0, 10.0], [31.0, 13.0]]
    assert shape.bitmap is not None and shape.bitmap.shape == (3, 11)
    full = np.zeros((48, 64), bool)
    full[10:13, 20:31] = shape.bitmap
    assert np.array_equal(full, pixels != 0)


def test_masks_by_composite_colour(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[0:4, 0:5] = (255, 0, 0)
    rgb[40:48, 60:64] = (0, 128, 255)
    rgb[20, 20] = (255, 0, 1)  # close to red but not red
    Image.fromarray(rgb).save(masks / "dr1.png")
    objects = [mask_obj("fa", "pore", [255, 0, 0]), mask_obj("fb", "grain", [0, 128, 255])]
    ds, warnings = read(write_ndjson(tmp_path, [data_row("a.png", objects)]), masks=masks)
    assert warnings == []
    red, blue = next(iter(ds)).shapes
    assert red.points.tolist() == [[0.0, 0.0], [5.0, 4.0]]
    assert red.bitmap is not None and red.bitmap.all() and red.bitmap.shape == (4, 5)
    assert blue.points.tolist() == [[60.0, 40.0], [64.0, 48.0]]
    assert blue.bitmap is not None and blue.bitmap.all()
    assert [s.label for s in (red, blue)] == ["pore", "grain"]


def test_per_object_mask_wins_over_composite(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    own = np.zeros((48, 64), np.uint8)
    own[5, 6] = 9
    Image.fromarray(own).save(masks / "fa.png")
    Image.fromarray(np.full((48, 64, 3), 255, np.uint8)).save(masks / "dr1.png")
    path = write_ndjson(tmp_path, [data_row("a.png", [mask_obj("fa", color=[255, 255, 255])])])
    ds, _ = read(path, masks=masks)
    assert next(iter(ds)).shapes[0].points.tolist() == [[6.0, 5.0], [7.0, 6.0]]


def test_masks_without_a_local_file_are_skipped_in_one_warning(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    objects = [mask_obj("f1"), mask_obj("f2", color=[1, 2, 3]), box("pore", "f3", 0, 0, 1, 1)]
    path = write_ndjson(tmp_path, [data_row("a.png", objects)])
    ds, warnings = read(path, masks=masks)
    assert len(warnings) == 1
    assert "2 mask object(s) skipped" in warnings[0]
    assert "never downloaded" in warnings[0]
    assert ds.warnings == tuple(warnings)
    assert [s.kind for s in next(iter(ds)).shapes] == ["box"]
    # the classes do not depend on the masks folder
    assert ds.labels.class_names == ("background", "pore")
    ds, warnings = read(path)
    assert len(warnings) == 1 and "no masks folder was given" in warnings[0]


def test_empty_masks_are_skipped_with_a_warning(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(masks / "f1.png")
    ds, warnings = read(write_ndjson(tmp_path, [data_row("a.png", [mask_obj("f1")])]), masks=masks)
    assert next(iter(ds)).shapes == ()
    assert warnings == [
        f"{tmp_path / 'export.ndjson'}: 1 mask object(s) skipped: the mask is empty"
    ]


def test_video_masks_are_looked_up_per_frame(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    pixels = np.zeros((48, 64), np.uint8)
    pixels[1:3, 2:4] = 1
    Image.fromarray(pixels).save(masks / "fm#frame_000005.png")
    frame = {"objects": {"fm": mask_obj("fm") | {"annotation_kind": "VideoSegmentationMask"}}}
    row = data_row("m.mp4", labels=[{"annotations": {"frames": {"5": frame, "6": frame}}}])
    ds, warnings = read(write_ndjson(tmp_path, [row]), masks=masks)
    f5, f6 = list(ds)
    assert f5.shapes[0].points.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert f6.shapes == ()
    assert len(warnings) == 1 and "1 mask object(s) skipped" in warnings[0]


# -- streaming --------------------------------------------------------------------------------


def many_rows(count: int) -> list[dict[str, Any]]:
    return [
        data_row(
            f"img_{i:03d}.png",
            [
                poly(f"c{j % 3}", f"f{i}_{j}", [(i, j), (i + 1.5, j), (i + 1.5, j + 2.25)])
                for j in range(4)
            ],
            row_id=f"d{i}",
        )
        for i in range(25)
    ]


def test_iterating_twice_gives_the_same_result(tmp_path: Path) -> None:
    ds, _ = read(write_ndjson(tmp_path, many_rows(25)))
    assert len(ds) == 25

    def snapshot() -> list[Any]:
        return [
            (item.image, [(s.kind, s.label, s.order, s.points.tolist()) for s in item.shapes])
            for item in ds
        ]

    first, second = snapshot(), snapshot()
    assert first == second
    assert [item[0] for item in first] == list(ds.images)
    assert sum(len(item[1]) for item in first) == 100


def test_iteration_is_lazy_and_streams(tmp_path: Path) -> None:
    ds, _ = read(write_ndjson(tmp_path, many_rows(25)))
    it = iter(ds)
    assert next(it).image.name == "img_000.png"
    assert next(it).image.name == "img_001.png"


def test_a_file_changed_after_reading_is_refused(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path, many_rows(3))
    ds, _ = read(path)
    with path.open("a") as fh:
        fh.write(json.dumps(data_row("late.png", row_id="late")) + "\n")
    with pytest.raises(InputError, match="changed since it was read"):
        list(ds)


# -- detect -----------------------------------------------------------------------------------


def test_detect(tmp_path: Path) -> None:
    v2 = write_ndjson(tmp_path, [data_row("a.png")])
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(legacy_export()), encoding="utf-8")
    via = tmp_path / "via.json"
    via.write_text('{"_via_settings": {}, "_via_img_metadata": {}}', encoding="utf-8")
    cvat = tmp_path / "annotations.xml"
    cvat.write_text("<annotations><version>1.1</version></annotations>", encoding="utf-8")
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)))
    assert detect(v2) and detect(legacy)
    assert not any(detect(p) for p in (via, cvat, binary, tmp_path / "missing", tmp_path))
