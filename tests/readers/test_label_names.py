"""Label and attribute names with control characters: every reader refuses them, naming the
name and where it is; the text outputs (classes.txt, data.yaml) keep one entry per class even
for hostile names brought in by a rename."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.conftest import GOOD_IMAGE, LABELS_XML

from microprep.cli.main import main

Capture = pytest.CaptureFixture[str]


def convert_fails(capsys: Capture, export: Path, *args: str, out: Path) -> str:
    assert main(["convert", str(export), "--out", str(out), "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"prep: error: {export}:"), err
    assert "control character" in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize(
    ("xml_name", "shown", "what"),
    [("two&#10;lines", r"'two\nlines'", "newline"), ("a&#9;b", r"'a\tb'", "tab")],
)
def test_cvat_label_names_with_control_characters_are_refused(
    tmp_path: Path,
    write_cvat: Callable[..., Path],
    capsys: Capture,
    xml_name: str,
    shown: str,
    what: str,
) -> None:
    labels = LABELS_XML.replace("<name>bubble</name>", f"<name>{xml_name}</name>")
    export = write_cvat(labels=labels)
    err = convert_fails(capsys, export, out=tmp_path / "out")
    line = next(i for i, text in enumerate(export.read_text().splitlines(), 1) if xml_name in text)
    assert f"{export}:{line}: <meta> <label>: label name {shown}" in err
    assert f"({what})" in err


def test_cvat_undeclared_shape_label_and_attribute_names_are_refused(
    tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    image = GOOD_IMAGE.replace('label="bubble"', 'label="odd&#10;one"')
    export = write_cvat(image)
    err = convert_fails(capsys, export, out=tmp_path / "a")
    line = next(i for i, t in enumerate(export.read_text().splitlines(), 1) if "odd&#10;" in t)
    assert f":{line}: <ellipse>: label name 'odd\\none'" in err
    labels = LABELS_XML.replace(
        "<attributes/></label>\n  <label><name>precipitate",
        "<attributes><attribute><name>size&#10;class</name><input_type>text</input_type>"
        "</attribute></attributes></label>\n  <label><name>precipitate",
    )
    err = convert_fails(capsys, write_cvat(labels=labels), out=tmp_path / "b")
    assert "attribute name 'size\\nclass'" in err and "<label> 'bubble'" in err


def via_export(path: Path, attrs: dict[str, str]) -> Path:
    region = {
        "shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 3, "height": 3},
        "region_attributes": attrs,
    }
    data = {
        "a.png12": {"filename": "a.png", "size": 12, "regions": [region], "file_attributes": {}}
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"type": "two\nlines"}, "label name 'two\\nlines' holds a control character (newline)"),
        ({"type": "pore", "no\u0000te": "x"}, "attribute name 'no\\x00te'"),
    ],
    ids=["label", "attribute"],
)
def test_via_names_with_control_characters_are_refused(
    tmp_path: Path, capsys: Capture, attrs: dict[str, str], fragment: str
) -> None:
    export = via_export(tmp_path / "via.json", attrs)
    err = convert_fails(
        capsys, export, "--size", "8x8", "--label-attribute", "type", out=tmp_path / "o"
    )
    assert fragment in err
    assert "regions[0].region_attributes" in err


def test_labelbox_names_with_control_characters_are_refused(
    tmp_path: Path, capsys: Capture
) -> None:
    box = {"top": 1, "left": 2, "height": 3, "width": 4}
    obj = {"name": "po\u2028re", "annotation_kind": "ImageBoundingBox", "bounding_box": box}
    row = {
        "data_row": {"id": "d1", "external_id": "a.png"},
        "media_attributes": {"width": 8, "height": 6},
        "projects": {"p1": {"labels": [{"annotations": {"objects": [obj]}}]}},
    }
    export = tmp_path / "export.ndjson"
    export.write_text(json.dumps(row) + "\n", encoding="utf-8")
    err = convert_fails(capsys, export, out=tmp_path / "o")
    assert f"{export}:1: " in err
    assert "$.projects.p1.labels[0].annotations.objects[0].name: label name 'po\\u2028re'" in err
    assert "U+2028 LINE SEPARATOR" in err


def test_classes_txt_and_data_yaml_hold_one_entry_per_class_for_hostile_names(
    tmp_path: Path, write_cvat: Callable[..., Path]
) -> None:
    out = tmp_path / "out"
    hostile = "bubble=two\nlines\u2028and\ttab\x00"
    args = ["convert", str(write_cvat()), "--to", "masks,yolo", "--map", hostile]
    assert main([*args, "--out", str(out), "-q"]) == 0
    classes = (out / "classes.txt").read_text(encoding="utf-8")
    assert classes.split("\n") == [
        "background",
        "two\\nlines\\u2028and\\ttab\\x00",
        "precipitate",
        "",
    ]
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert data["nc"] == len(data["names"]) == 2
    assert data["names"] == {0: "two\\nlines\\u2028and\\ttab\\x00", 1: "precipitate"}
