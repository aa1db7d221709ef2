"""The VIA reader on small valid exports of every variant, built in code."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from microprep.errors import ImageFileError, UsageError
from microprep.model import AnnotationSet, Shape
from microprep.readers.options import ReadOptions
from microprep.readers.via import detect, read_via

SIZE = ReadOptions(size=(64, 48))
CSV_HEADER = (
    "filename,file_size,file_attributes,region_count,region_id,"
    "region_shape_attributes,region_attributes"
)


def region(shape: dict[str, Any], attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"shape_attributes": shape, "region_attributes": attrs or {}}


def via2(images: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A VIA 2 annotations export: image name -> regions."""
    return {
        f"{name}1234": {"filename": name, "size": 1234, "regions": regs, "file_attributes": {}}
        for name, regs in images.items()
    }


def project(images: dict[str, list[dict[str, Any]]], region_attrs: dict[str, Any]) -> dict:
    """A VIA 2 project: the export under ``_via_img_metadata`` plus attribute declarations."""
    meta = via2(images)
    return {
        "_via_settings": {"ui": {}, "core": {}, "project": {"name": "p"}},
        "_via_img_metadata": meta,
        "_via_attributes": {"region": region_attrs, "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(meta),
    }


def write(tmp_path: Path, data: Any, name: str = "via.json") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def read(path: Path, options: ReadOptions = SIZE, warnings: list[str] | None = None):
    sink = warnings if warnings is not None else []
    return read_via(path, on_warning=sink.append, options=options)


def shapes_of(ds: AnnotationSet) -> list[Shape]:
    return [shape for item in ds for shape in item.shapes]


POLY = {"name": "polygon", "all_points_x": [1.25, 10.5, 7], "all_points_y": [2, 3.75, 9.125]}


# -- VIA 2 annotations JSON ---------------------------------------------------------------------


def test_via2_json_every_shape_with_exact_values(tmp_path: Path) -> None:
    data = via2(
        {
            "grid 1/a b.png": [
                region(POLY, {"type": "pore"}),
                region(
                    {"name": "rect", "x": 2.5, "y": 3, "width": 7.5, "height": 6.5},
                    {"type": "pore"},
                ),
                region({"name": "circle", "cx": 20, "cy": 12.5, "r": 4.25}, {"type": "bubble"}),
                region(
                    {"name": "ellipse", "cx": 30, "cy": 20, "rx": 6, "ry": 3, "theta": math.pi / 6},
                    {"type": "bubble"},
                ),
                region({"name": "ellipse", "cx": 3, "cy": 4, "rx": 2, "ry": 1}, {"type": "bubble"}),
                region({"name": "point", "cx": 5.5, "cy": 6.5}, {"type": "dot"}),
                region(
                    {"name": "polyline", "all_points_x": [0, 4.5], "all_points_y": [1, 2]},
                    {"type": "line"},
                ),
            ],
            "empty.png": [],
        }
    )
    ds = read(write(tmp_path, data))
    assert ds.format == "via2-json"
    assert [image.name for image in ds.images] == ["grid 1/a b.png", "empty.png"]
    assert [(image.width, image.height) for image in ds.images] == [(64, 48), (64, 48)]
    items = list(ds)
    assert items[1].shapes == ()
    poly, rect, circle, ellipse, plain, point, line = items[0].shapes
    assert poly.kind == "polygon"
    assert poly.points.tolist() == [[1.25, 2.0], [10.5, 3.75], [7.0, 9.125]]
    assert poly.points.dtype == np.float64
    assert (rect.kind, rect.points.tolist()) == ("box", [[2.5, 3.0], [10.0, 9.5]])
    assert (circle.kind, circle.points.tolist(), circle.rotation) == (
        "ellipse",
        [[20.0, 12.5], [4.25, 4.25]],
        0.0,
    )
    assert ellipse.points.tolist() == [[30.0, 20.0], [6.0, 3.0]]
    assert ellipse.rotation == pytest.approx(30.0, abs=1e-12)
    assert plain.rotation == 0.0
    assert (point.kind, point.points.tolist()) == ("points", [[5.5, 6.5]])
    assert (line.kind, line.points.tolist()) == ("polyline", [[0.0, 1.0], [4.5, 2.0]])
    assert [s.order for s in items[0].shapes] == list(range(7))
    assert all(s.z_order == 0 for s in items[0].shapes)
    assert [label.name for label in ds.labels.labels] == ["pore", "bubble", "dot", "line"]
    assert all(label.declared for label in ds.labels.labels)


def test_negative_theta_gives_counter_clockwise_rotation(tmp_path: Path) -> None:
    shape = {"name": "ellipse", "cx": 10, "cy": 10, "rx": 5, "ry": 2, "theta": -math.pi / 2}
    (ellipse,) = shapes_of(read(write(tmp_path, via2({"a.png": [region(shape, {"c": "x"})]}))))
    assert ellipse.rotation == pytest.approx(-90.0)
    x0, y0, x1, y1 = ellipse.extent()  # rotated a quarter turn: the long axis is vertical
    assert (x1 - x0, y1 - y0) == (pytest.approx(4.0), pytest.approx(10.0))


def test_other_region_attributes_become_string_attributes(tmp_path: Path) -> None:
    attrs = {"type": "pore", "note": "big one", "n": 3, "flags": {"edge": True, "dim": False}}
    data = via2({"a.png": [region(POLY, attrs)]})
    (shape,) = shapes_of(
        read(write(tmp_path, data), ReadOptions(size=(8, 8), label_attribute="type"))
    )
    assert shape.label == "pore"
    assert dict(shape.attributes) == {
        "note": "big one",
        "n": "3",
        "flags": "edge",
    }


def test_shape_order_runs_over_the_whole_file(tmp_path: Path) -> None:
    data = via2(
        {
            "a.png": [region(POLY, {"c": "x"}), region(POLY, {"c": "x"})],
            "b.png": [region(POLY, {"c": "y"})],
        }
    )
    items = list(read(write(tmp_path, data)))
    assert [[s.order for s in item.shapes] for item in items] == [[0, 1], [2]]


def test_region_outside_the_image_is_read_as_it_is(tmp_path: Path) -> None:
    far = {"name": "rect", "x": 500, "y": -300, "width": 10, "height": 10}
    (shape,) = shapes_of(read(write(tmp_path, via2({"a.png": [region(far, {"c": "x"})]}))))
    assert shape.points.tolist() == [[500.0, -300.0], [510.0, -290.0]]


def test_unlabelled_and_unsupported_regions_are_skipped_with_warnings(
    tmp_path: Path,
) -> None:
    data = via2(
        {
            "a.png": [
                region(POLY, {"c": "x"}),
                region(POLY, {"c": ""}),
                region(POLY, {}),
                region({"name": "freehand", "all_points_x": [1]}, {"c": "x"}),
                region({"name": "freehand", "all_points_x": [1]}, {"c": "x"}),
            ]
        }
    )
    warnings: list[str] = []
    ds = read(write(tmp_path, data), warnings=warnings)
    assert len(shapes_of(ds)) == 1
    assert tuple(warnings) == ds.warnings
    assert any('2 region(s) without a value for the class attribute "c"' in w for w in warnings)
    assert any("--label NAME" in w for w in warnings)
    assert any('2 region(s) with unsupported shape "freehand"' in w for w in warnings)


def test_warnings_are_logged_without_a_callback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, via2({"a.png": [region(POLY, {"c": "x"}), region(POLY, {"c": ""})]}))
    with caplog.at_level(logging.WARNING, logger="microprep.readers.via"):
        ds = read_via(path, options=SIZE)
    assert ds.warnings and ds.warnings[0] in caplog.text


# -- VIA 2 project ------------------------------------------------------------------------------


def test_via2_project_declared_options_and_auto_picked_dropdown(tmp_path: Path) -> None:
    declared = {
        "type": {
            "type": "dropdown",
            "description": "",
            "options": {"bubble": "gas bubble", "pore": "", "crack": ""},
            "default_options": {},
        },
        "note": {"type": "text", "description": "", "default_value": ""},
        "flags": {"type": "checkbox", "options": {"edge": ""}, "default_options": {}},
    }
    data = project(
        {
            "a.png": [
                region(POLY, {"type": "pore", "note": "n1", "flags": {"edge": True}}),
                region(POLY, {"type": "dust", "note": "", "flags": {}}),
            ]
        },
        declared,
    )
    warnings: list[str] = []
    ds = read(write(tmp_path, data), warnings=warnings)
    assert ds.format == "via2-project"
    labels = [(label.name, label.declared) for label in ds.labels.labels]
    assert labels == [("bubble", True), ("pore", True), ("crack", True), ("dust", False)]
    assert [s.label for s in shapes_of(ds)] == ["pore", "dust"]
    assert dict(shapes_of(ds)[0].attributes) == {"note": "n1", "flags": "edge"}
    (warning,) = warnings
    assert '"dust" is not an option of the class attribute "type"' in warning
    assert '$._via_img_metadata["a.png1234"].regions[1].region_attributes.type' in warning


def test_via2_project_radio_is_a_class_and_checkbox_is_not(tmp_path: Path) -> None:
    declared = {
        "kind": {"type": "radio", "options": {"a": "", "b": ""}},
        "seen": {"type": "checkbox", "options": {"y": ""}},
    }
    data = project({"a.png": [region(POLY, {"kind": "b", "seen": {"y": True}})]}, declared)
    ds = read(write(tmp_path, data))
    assert [s.label for s in shapes_of(ds)] == ["b"]
    with pytest.raises(UsageError, match="checkbox"):
        read(write(tmp_path, data), ReadOptions(size=(8, 8), label_attribute="seen"))


def test_via2_project_text_class_attribute_labels_in_order_of_use(tmp_path: Path) -> None:
    data = project(
        {"a.png": [region(POLY, {"name": "zeta"}), region(POLY, {"name": "alpha"})]},
        {"name": {"type": "text", "description": "", "default_value": ""}},
    )
    ds = read(write(tmp_path, data))
    assert [(label.name, label.declared) for label in ds.labels.labels] == [
        ("zeta", True),
        ("alpha", True),
    ]


# -- VIA 1.x ------------------------------------------------------------------------------------


def test_via1_regions_object_and_closed_polygon(tmp_path: Path) -> None:
    closed = {"name": "polygon", "all_points_x": [1, 9, 9, 1], "all_points_y": [1, 1, 7, 1]}
    data = {
        "a.png321": {
            "fileref": "",
            "size": 321,
            "filename": "a.png",
            "base64_img_data": "",
            "file_attributes": {},
            "regions": {
                "0": region(closed, {"label": "pore"}),
                "1": region(
                    {"name": "rect", "x": 0, "y": 0, "width": 2, "height": 3}, {"label": "dust"}
                ),
            },
        }
    }
    ds = read(write(tmp_path, data))
    assert ds.format == "via1-json"
    poly, rect = shapes_of(ds)
    assert poly.points.tolist() == [[1.0, 1.0], [9.0, 1.0], [9.0, 7.0]]
    assert rect.points.tolist() == [[0.0, 0.0], [2.0, 3.0]]


# -- CSV ----------------------------------------------------------------------------------------


def csv_row(name: str, count: int, rid: int, shape: dict[str, Any], attrs: dict[str, Any]) -> str:
    def cell(value: dict[str, Any]) -> str:
        return '"' + json.dumps(value, separators=(",", ":")).replace('"', '""') + '"'

    return f'{name},1234,"{{}}",{count},{rid},{cell(shape)},{cell(attrs)}'


def test_csv_with_hash_header_and_an_image_without_regions(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "#" + CSV_HEADER,
            csv_row("a.png", 2, 0, POLY, {"type": "pore"}),
            csv_row(
                "a.png",
                2,
                1,
                {"name": "ellipse", "cx": 4, "cy": 5, "rx": 2, "ry": 1, "theta": 0.5},
                {"type": "bubble"},
            ),
            csv_row("no regions.png", 0, 0, {}, {}),
            csv_row(
                "c.png", 1, 0, {"name": "circle", "cx": 1, "cy": 2, "r": 0.5}, {"type": "pore"}
            ),
        ]
    )
    ds = read(write(tmp_path, text + "\n", "via.csv"))
    assert ds.format == "via-csv"
    assert [image.name for image in ds.images] == ["a.png", "no regions.png", "c.png"]
    items = list(ds)
    assert [len(item.shapes) for item in items] == [2, 0, 1]
    poly, ellipse = items[0].shapes
    assert poly.points.tolist() == [[1.25, 2.0], [10.5, 3.75], [7.0, 9.125]]
    assert ellipse.rotation == pytest.approx(math.degrees(0.5))
    assert items[2].shapes[0].points.tolist() == [[1.0, 2.0], [0.5, 0.5]]
    assert [s.order for item in items for s in item.shapes] == [0, 1, 2]
    assert [label.name for label in ds.labels.labels] == ["pore", "bubble"]


def test_csv_without_hash_crlf_and_bom(tmp_path: Path) -> None:
    text = "\ufeff" + CSV_HEADER + "\r\n" + csv_row("a.png", 1, 0, POLY, {"c": "x, y"}) + "\r\n"
    ds = read(write(tmp_path, text, "via.csv"))
    assert [s.label for s in shapes_of(ds)] == ["x, y"]


# -- VIA 3 --------------------------------------------------------------------------------------


def via3(metadata: dict[str, Any], attribute: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "project": {
            "pid": "__VIA_PROJECT_ID__",
            "rev": "__VIA_PROJECT_REV_ID__",
            "rev_timestamp": "__VIA_PROJECT_REV_TIMESTAMP__",
            "pname": "p",
            "creator": "VGG Image Annotator (http://www.robots.ox.ac.uk/~vgg/software/via)",
            "created": 1600000000000,
            "vid_list": ["1", "2"],
        },
        "config": {"file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}}, "ui": {}},
        "attribute": attribute
        if attribute is not None
        else {
            "1": {
                "aname": "kind",
                "anchor_id": "FILE1_Z0_XY1",
                "type": 4,
                "desc": "",
                "options": {"0": "bubble", "1": "pore", "2": "crack"},
                "default_option_id": "",
            },
            "2": {
                "aname": "tags",
                "anchor_id": "FILE1_Z0_XY1",
                "type": 2,
                "desc": "",
                "options": {"0": "edge", "1": "dim"},
                "default_option_id": "",
            },
            "3": {"aname": "scene", "anchor_id": "FILE1_Z0_XY0", "type": 3, "options": {"0": "a"}},
        },
        "file": {
            "1": {"fid": "1", "fname": "a.png", "type": 2, "loc": 1, "src": ""},
            "2": {"fid": "2", "fname": "sub/b.png", "type": 2, "loc": 1, "src": ""},
        },
        "view": {"1": {"fid_list": ["1"]}, "2": {"fid_list": ["2"]}},
        "metadata": metadata,
    }


def meta(vid: str, xy: list[Any], av: dict[str, Any], z: list[Any] | None = None) -> dict:
    return {"vid": vid, "flg": 0, "z": z or [], "xy": xy, "av": av}


def test_via3_every_shape_and_option_ids(tmp_path: Path) -> None:
    data = via3(
        {
            "2_p": meta("2", [1, 3.5, 4.5], {"1": "0"}),
            "1_r": meta("1", [2, 1, 2, 3.5, 4], {"1": "1", "2": "0,1"}),
            "1_c": meta("1", [3, 10, 11, 2.5], {"1": "0"}),
            "1_e": meta("1", [4, 20, 21, 5, 2], {"1": "0"}),
            "1_l": meta("1", [5, 0, 0, 4, 3], {"1": "2"}),
            "1_pl": meta("1", [6, 0, 0, 4, 3, 8, 0], {"1": "2"}),
            "1_pg": meta("1", [7, 1, 1, 5, 1, 5, 4], {"1": "1"}),
            "1_xr": meta("1", [8, 2, 5, 5, 1, 8, 5, 5, 9], {"1": "1"}),
            "1_xc": meta("1", [9, 0, 1, 1, 0, 2, 1], {"1": "0"}),
            "1_t": meta("1", [], {"1": "0"}, z=[1.5, 3.0]),
        }
    )
    warnings: list[str] = []
    ds = read(write(tmp_path, data), warnings=warnings)
    assert ds.format == "via3-json"
    assert [(image.name, image.id) for image in ds.images] == [("a.png", 1), ("sub/b.png", 2)]
    a, b = list(ds)
    assert [(s.kind, s.label, s.points.tolist()) for s in b.shapes] == [
        ("points", "bubble", [[3.5, 4.5]])
    ]
    got = [(s.kind, s.label, s.points.tolist(), s.rotation) for s in a.shapes]
    assert got == [
        ("box", "pore", [[1.0, 2.0], [4.5, 6.0]], 0.0),
        ("ellipse", "bubble", [[10.0, 11.0], [2.5, 2.5]], 0.0),
        ("ellipse", "bubble", [[20.0, 21.0], [5.0, 2.0]], 0.0),
        ("polyline", "crack", [[0.0, 0.0], [4.0, 3.0]], 0.0),
        ("polyline", "crack", [[0.0, 0.0], [4.0, 3.0], [8.0, 0.0]], 0.0),
        ("polygon", "pore", [[1.0, 1.0], [5.0, 1.0], [5.0, 4.0]], 0.0),
        ("box", "pore", [[2.0, 1.0], [8.0, 9.0]], 0.0),
        ("ellipse", "bubble", [[1.0, 1.0], [1.0, 1.0]], 0.0),
    ]
    assert dict(a.shapes[0].attributes) == {"tags": "edge,dim"}
    assert b.shapes[0].order == 0 and [s.order for s in a.shapes] == list(range(1, 9))
    assert [label.name for label in ds.labels.labels] == ["bubble", "pore", "crack"]
    assert any("1 metadata entries that are not spatial regions" in w for w in warnings)


def test_via3_label_attribute_by_name_and_text_attribute(tmp_path: Path) -> None:
    attribute = {
        "1": {"aname": "kind", "anchor_id": "FILE1_Z0_XY1", "type": 3, "options": {"0": "a"}},
        "2": {"aname": "name", "anchor_id": "FILE1_Z0_XY1", "type": 1, "options": {}},
    }
    data = via3({"1_x": meta("1", [1, 2, 3], {"1": "0", "2": "free text"})}, attribute)
    path = write(tmp_path, data)
    (shape,) = shapes_of(read(path, ReadOptions(size=(8, 8), label_attribute="name")))
    assert (shape.label, dict(shape.attributes)) == ("free text", {"kind": "a"})
    (shape,) = shapes_of(read(path))
    assert (shape.label, dict(shape.attributes)) == ("a", {"name": "free text"})


# -- choosing the class attribute ----------------------------------------------------------------


def test_single_region_attribute_is_picked(tmp_path: Path) -> None:
    data = via2({"a.png": [region(POLY, {"cls": "pore"}), region(POLY, {"cls": "bubble"})]})
    assert [s.label for s in shapes_of(read(write(tmp_path, data)))] == ["pore", "bubble"]


def test_checkbox_values_are_not_candidates(tmp_path: Path) -> None:
    data = via2({"a.png": [region(POLY, {"cls": "pore", "seen": {"yes": True}})]})
    (shape,) = shapes_of(read(write(tmp_path, data)))
    assert shape.label == "pore"


def test_explicit_label_attribute(tmp_path: Path) -> None:
    data = via2({"a.png": [region(POLY, {"cls": "pore", "who": "ann"})]})
    path = write(tmp_path, data)
    (shape,) = shapes_of(read(path, ReadOptions(size=(8, 8), label_attribute="who")))
    assert (shape.label, dict(shape.attributes)) == ("ann", {"cls": "pore"})


def test_several_candidates_fail_listing_them(tmp_path: Path) -> None:
    data = via2({"a.png": [region(POLY, {"cls": "pore", "who": "ann"})]})
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as info:
        read(path)
    text = str(info.value)
    assert '"cls"' in text and '"who"' in text and "--label-attribute NAME" in text
    assert "ReadOptions" not in text and "label_attribute" not in text
    assert str(path) in text


def test_several_declared_dropdowns_fail_listing_them(tmp_path: Path) -> None:
    declared = {
        "kind": {"type": "dropdown", "options": {"a": ""}},
        "size": {"type": "radio", "options": {"s": ""}},
    }
    path = write(tmp_path, project({"a.png": [region(POLY, {"kind": "a", "size": "s"})]}, declared))
    with pytest.raises(UsageError, match=r'"kind", "size"'):
        read(path)
    (shape,) = shapes_of(read(path, ReadOptions(size=(8, 8), label_attribute="size")))
    assert shape.label == "s"


def test_unknown_label_attribute_fails_listing_the_attributes(tmp_path: Path) -> None:
    path = write(tmp_path, via2({"a.png": [region(POLY, {"cls": "pore"})]}))
    with pytest.raises(UsageError, match=r'no region attribute "class".*"cls"'):
        read(path, ReadOptions(size=(8, 8), label_attribute="class"))


def test_regions_without_any_attribute_are_one_class(tmp_path: Path) -> None:
    path = write(tmp_path, via2({"a.png": [region(POLY, {}), region(POLY, {"note": ""})]}))
    warnings: list[str] = []
    ds = read(path, warnings=warnings)
    assert [s.label for s in shapes_of(ds)] == ["object", "object"]
    assert ds.labels.class_names[1:] == ("object",)
    assert any('2 region(s) read as one class "object"' in w for w in warnings)
    warnings.clear()
    ds = read(path, ReadOptions(size=(8, 8), label="grain"), warnings=warnings)
    assert [s.label for s in shapes_of(ds)] == ["grain", "grain"]
    assert warnings == []


def test_declared_but_unused_class_attribute_is_no_class(tmp_path: Path) -> None:
    declared = {"kind": {"type": "dropdown", "options": {"a": "", "b": ""}}}
    path = write(
        tmp_path, project({"a.png": [region(POLY, {}), region(POLY, {"kind": ""})]}, declared)
    )
    warnings: list[str] = []
    ds = read(path, warnings=warnings)
    assert [s.label for s in shapes_of(ds)] == ["object", "object"]
    assert any('read as one class "object"' in w for w in warnings)


def test_label_names_regions_without_a_class_value(tmp_path: Path) -> None:
    data = via2({"a.png": [region(POLY, {"c": "pore"}), region(POLY, {"c": ""})]})
    ds = read(write(tmp_path, data), ReadOptions(size=(8, 8), label="grain"))
    assert [s.label for s in shapes_of(ds)] == ["pore", "grain"]


def test_export_without_regions_needs_no_class(tmp_path: Path) -> None:
    ds = read(write(tmp_path, via2({"a.png": [], "b.png": []})))
    assert len(ds) == 2 and ds.labels.labels == ()


# -- image sizes --------------------------------------------------------------------------------


def test_sizes_from_image_files(tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / "grid 1").mkdir(parents=True)
    Image.new("L", (7, 5)).save(images / "grid 1" / "a.png")
    Image.new("RGB", (9, 4)).save(images / "b.jpg")
    tifffile.imwrite(images / "c.tif", np.zeros((3, 11), np.float32))
    data = via2({"grid 1/a.png": [region(POLY, {"c": "x"})], "b.jpg": [], "c.tif": []})
    ds = read(write(tmp_path, data), ReadOptions(images=images))
    assert [(i.name, i.width, i.height) for i in ds.images] == [
        ("grid 1/a.png", 7, 5),
        ("b.jpg", 9, 4),
        ("c.tif", 11, 3),
    ]


def test_size_option_applies_to_every_image(tmp_path: Path) -> None:
    ds = read(write(tmp_path, via2({"a.png": [], "b.png": []})), ReadOptions(size=(640, 480)))
    assert {(i.width, i.height) for i in ds.images} == {(640, 480)}


def test_missing_image_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    path = write(tmp_path, via2({"gone.png": []}))
    with pytest.raises(ImageFileError) as info:
        read(path, ReadOptions(images=tmp_path / "images"))
    assert "gone.png" in str(info.value)


def test_without_size_or_images_fails(tmp_path: Path) -> None:
    path = write(tmp_path, via2({"a.png": [region(POLY, {"c": "x"})]}))
    with pytest.raises(UsageError, match=r"--images DIR or --size WxH"):
        read(path, ReadOptions())


# -- detect -------------------------------------------------------------------------------------


def test_detect_accepts_every_variant(tmp_path: Path) -> None:
    v1 = {"a.png1": {"fileref": "", "size": 1, "filename": "a.png", "base64_img_data": "",
                     "file_attributes": {}, "regions": {}}}  # fmt: skip
    samples = {
        "v2.json": json.dumps(via2({"a.png": [region(POLY, {"c": "x"})]})),
        "project.json": json.dumps(project({"a.png": []}, {})),
        "v1.json": json.dumps(v1),
        "v3.json": json.dumps(via3({})),
        "a.csv": "#" + CSV_HEADER + "\n" + csv_row("a.png", 0, 0, {}, {}) + "\n",
        "b.csv": CSV_HEADER + "\n",
    }
    for name, text in samples.items():
        assert detect(write(tmp_path, text, name)), name


def test_detect_refuses_other_files_and_never_raises(tmp_path: Path) -> None:
    samples = {
        "cvat.xml": '<?xml version="1.0"?><annotations><version>1.1</version></annotations>',
        "coco.json": json.dumps({"images": [], "annotations": [], "categories": []}),
        "list.json": "[1, 2]",
        "other.csv": "a,b,c\n1,2,3\n",
        "empty.json": "",
    }
    for name, text in samples.items():
        assert not detect(write(tmp_path, text, name)), name
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00\x01" * 100)
    assert not detect(tmp_path / "bin")
    assert not detect(tmp_path / "missing.json")
    assert not detect(tmp_path)
