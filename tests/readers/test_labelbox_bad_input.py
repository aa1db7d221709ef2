"""The Labelbox reader on hostile, broken and inconsistent input.

Every error must be a microprep PrepError; InputErrors name the file, the NDJSON line and the
JSON path. Nothing is fetched from the URLs in the export.
"""

from __future__ import annotations

import ast
import copy
import json
import random
import socket
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import microprep.readers.labelbox as labelbox_module
from fuzzing import Edit, edits, fuzz, mutate
from microprep.errors import (
    FormatError,
    GeometryError,
    ImageFileError,
    InputError,
    PrepError,
    UnsafeInputError,
    UsageError,
)
from microprep.readers import jsonsafe
from microprep.readers.labelbox import read_labelbox
from microprep.readers.options import ReadOptions

P = "$.projects.p1.labels[0].annotations"


def good_row(i: int = 0, objects: list[Any] | None = None, **media: Any) -> dict[str, Any]:
    """A valid data row with a box and a polygon (or ``objects``)."""
    if objects is None:
        objects = [
            {
                "feature_id": f"b{i}",
                "name": "pore",
                "annotation_kind": "ImageBoundingBox",
                "bounding_box": {"top": 1, "left": 2, "height": 3, "width": 4},
            },
            {
                "feature_id": f"p{i}",
                "name": "grain",
                "annotation_kind": "ImagePolygon",
                "polygon": [{"x": 1, "y": 1}, {"x": 5, "y": 1.5}, {"x": 5, "y": 6}],
            },
        ]
    return {
        "data_row": {"id": f"d{i}", "external_id": f"img{i}.png"},
        "media_attributes": {"width": 32, "height": 24, "mime_type": "image/png"} | media,
        "projects": {"p1": {"labels": [{"annotations": {"objects": objects}}]}},
    }


def write(tmp_path: Path, lines: list[Any], name: str = "export.ndjson") -> Path:
    """Each entry becomes one line: dicts as JSON, strings as they are."""
    path = tmp_path / name
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def read_error(path: Path, kind: type[PrepError], **options: Any) -> PrepError:
    with pytest.raises(kind) as info:
        read_labelbox(path, on_warning=lambda _m: None, options=ReadOptions(**options))
    return info.value


def assert_place(error: PrepError, path: Path, line: int | None, where: str | None) -> None:
    """The error names the file, the line and the JSON path (in the message too)."""
    assert isinstance(error, InputError)
    text = str(error)
    place = str(path) if line is None else f"{path}:{line}"
    assert text.startswith(place + ":"), text
    assert error.file == str(path)
    assert error.line == line
    if where is not None:
        assert error.where == where, text
        assert f": {where}: " in text


# -- JSON syntax and hardening ----------------------------------------------------------------


def test_invalid_json_is_reported_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, [good_row(0), good_row(1), '{"data_row": {"id": "x",}', good_row(3)])
    error = read_error(path, FormatError)
    assert_place(error, path, 3, None)
    assert "invalid JSON" in str(error)


def test_an_over_long_line_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonsafe, "MAX_LINE_BYTES", 2000)
    long_row = good_row(1) | {"padding": "x" * 5000}
    path = write(tmp_path, [good_row(0), long_row, good_row(2)])
    error = read_error(path, FormatError)
    assert_place(error, path, 2, None)
    assert "line longer than" in str(error)


def test_the_real_line_limit_is_checked_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = jsonsafe.MAX_LINE_BYTES
    assert limit == 16 * 1024 * 1024

    def never(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the over-long line was parsed")

    monkeypatch.setattr(jsonsafe, "loads", never)
    path = tmp_path / "huge.ndjson"
    with path.open("wb") as fh:
        fh.write(b'{"data_row": {"id": "' + b"x" * limit + b'"}}\n')
    error = read_error(path, FormatError)
    assert_place(error, path, 1, None)
    assert "line longer than 16 MiB" in str(error)


REFUSED = [
    ('{"data_row": {"id": "a"}, "media_attributes": {"width": NaN, "height": 4}}', "NaN"),
    ('{"data_row": {"id": "a"}, "media_attributes": {"width": Infinity}}', "NaN and Inf"),
    ('{"data_row": {"id": "a"}, "x": 1e999}', "out of range"),
    ('{"data_row": {"id": "a"}, "data_row": {"id": "b"}}', "duplicate key"),
    ('{"data_row": {"id": "a"}, "x": ' + "[" * 100 + "]" * 100 + "}", "deeper than"),
    (json.dumps(good_row(2)).replace('"y": 1.5', '"y": NaN'), "NaN"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_jsonsafe_refusals(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, [good_row(0), text])
    error = read_error(path, FormatError)
    assert isinstance(error, FormatError)
    assert str(error).startswith(f"{path}:")
    assert error.file == str(path)
    assert message in str(error)


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_jsonsafe_refusals_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, [good_row(0), text])
    assert_place(read_error(path, FormatError), path, 2, None)


def test_not_utf8_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ndjson"
    path.write_bytes(json.dumps(good_row(0)).encode() + b'\n{"data_row": {"id": "\xe9"}}\n')
    assert_place(read_error(path, FormatError), path, 2, None)
    empty = tmp_path / "empty.ndjson"
    empty.write_text("  \n\n")
    assert "the file is empty" in str(read_error(empty, FormatError))
    other = tmp_path / "other.ndjson"
    other.write_text("hello\n")
    assert "neither" in str(read_error(other, FormatError))
    error = read_error(tmp_path / "missing.ndjson", InputError)
    assert "cannot read file" in str(error)


# -- structure and geometry -------------------------------------------------------------------


def with_object(**fields: Any) -> dict[str, Any]:
    return good_row(
        0, objects=[good_row(0)["projects"]["p1"]["labels"][0]["annotations"]["objects"][0], fields]
    )


def test_bounding_box_given_as_a_string(tmp_path: Path) -> None:
    row = with_object(name="pore", annotation_kind="ImageBoundingBox", bounding_box="10,10")
    path = write(tmp_path, [good_row(5), good_row(6), row])
    error = read_error(path, FormatError)
    assert_place(error, path, 3, f"{P}.objects[1].bounding_box")
    assert "expected an object with top, left, height, width" in str(error)


@pytest.mark.parametrize(
    ("polygon", "kind", "where", "message"),
    [
        (
            [{"x": 1, "y": 1}, {"x": "5", "y": 1}, {"x": 5, "y": 6}],
            FormatError,
            "[1].x",
            "expected a number",
        ),
        (
            [{"x": 1, "y": 1}, {"x": 5, "y": True}, {"x": 5, "y": 6}],
            FormatError,
            "[1].y",
            "expected a number",
        ),
        ([{"x": 1, "y": 1}, {"x": 5}, {"x": 5, "y": 6}], FormatError, "[1]", 'missing "y"'),
        ([{"x": 1, "y": 1}, [5, 1], {"x": 5, "y": 6}], FormatError, "[1]", "expected an object"),
        (
            [{"x": 1, "y": 1}, {"x": 5, "y": 1}, {"x": 1e9, "y": 6}],
            FormatError,
            "[2].x",
            "out of range",
        ),
        ([{"x": 1, "y": 1}, {"x": 5, "y": 1}], GeometryError, "", "at least 3 points, got 2"),
        ("1,1 5,1 5,6", FormatError, "", "expected a list"),
    ],
)
def test_bad_polygons_name_the_point(
    tmp_path: Path, polygon: Any, kind: type[PrepError], where: str, message: str
) -> None:
    row = with_object(name="grain", annotation_kind="ImagePolygon", polygon=polygon)
    path = write(tmp_path, [good_row(1), good_row(2), row])
    error = read_error(path, kind)
    assert_place(error, path, 3, f"{P}.objects[1].polygon{where}")
    assert message in str(error)


def test_error_message_reads_like_a_compiler(tmp_path: Path) -> None:
    polygon = [{"x": 1, "y": 1}, {"x": None, "y": 1}, {"x": 5, "y": 6}]
    row = with_object(name="grain", annotation_kind="ImagePolygon", polygon=polygon)
    path = write(tmp_path, [good_row(1), good_row(2), row])
    error = read_error(path, FormatError)
    assert str(error) == (f"{path}:3: {P}.objects[1].polygon[1].x: expected a number, got null")


@pytest.mark.parametrize(
    ("fields", "kind", "where", "message"),
    [
        (
            {"bounding_box": {"top": 1, "left": 1, "height": 2, "width": 0}},
            GeometryError,
            ".bounding_box",
            "must be positive",
        ),
        (
            {"bounding_box": {"top": 1, "left": 1, "height": -2, "width": 3}},
            GeometryError,
            ".bounding_box",
            "must be positive",
        ),
        (
            {"bounding_box": {"top": 1, "left": 1, "height": 2}},
            FormatError,
            ".bounding_box",
            'missing "width"',
        ),
        (
            {"bounding_box": {"top": 1, "left": [1], "height": 2, "width": 3}},
            FormatError,
            ".bounding_box.left",
            "expected a number",
        ),
        (
            {"annotation_kind": "ImagePolyline", "line": [{"x": 1, "y": 2}]},
            GeometryError,
            ".line",
            "at least 2 points",
        ),
        (
            {"annotation_kind": "ImagePoint", "point": [1, 2]},
            FormatError,
            ".point",
            "expected an object with x and y",
        ),
        (
            {"annotation_kind": "ImagePoint", "point": {"x": 1}},
            FormatError,
            ".point",
            'missing "y"',
        ),
        ({"annotation_kind": 7}, FormatError, ".annotation_kind", "expected a string"),
        ({"name": ["pore"]}, FormatError, ".name", "expected a string"),
        # classifications are never a reason to fail
        ({"classifications": {"name": "q"}}, None, None, None),
        ({"classifications": [{"name": "q", "radio_answer": "yes"}]}, None, None, None),
        ({"classifications": [{"name": "q", "radio_answer": 3}]}, None, None, None),
        ({"classifications": [{"name": "q", "checklist_answers": "a,b"}]}, None, None, None),
        ({"classifications": [{"name": "q", "text_answer": "free"}]}, None, None, None),
        ({"classifications": [3, [], {"name": ["q"]}]}, None, None, None),
        (
            {"annotation_kind": "ImageSegmentationMask", "composite_mask": {"color_rgb": [1, 2]}},
            FormatError,
            ".composite_mask.color_rgb",
            "color_rgb must be",
        ),
        (
            {"annotation_kind": "ImageSegmentationMask", "feature_id": "../../etc/passwd"},
            UnsafeInputError,
            ".feature_id",
            "cannot name a mask file",
        ),
    ],
)
def test_bad_objects(
    tmp_path: Path,
    fields: dict[str, Any],
    kind: type[PrepError] | None,
    where: str | None,
    message: str | None,
) -> None:
    base = {
        "feature_id": "f9",
        "name": "pore",
        "annotation_kind": "ImageBoundingBox",
        "bounding_box": {"top": 1, "left": 1, "height": 2, "width": 3},
    }
    path = write(tmp_path, [good_row(1), with_object(**(base | fields))])
    if kind is None:
        read_labelbox(path, on_warning=lambda _m: None)
        return
    error = read_error(path, kind)
    assert_place(error, path, 2, f"{P}.objects[1]{where}")
    assert message is not None and message in str(error)


@pytest.mark.parametrize(
    ("external_id", "where"),
    [
        ("../x", "external_id"),
        ("/etc/passwd", "external_id"),
        ("C:\\x.png", "external_id"),
        ("a\\..\\..\\b", "external_id"),
    ],
)
def test_image_names_that_escape_are_refused(tmp_path: Path, external_id: str, where: str) -> None:
    row = good_row(1)
    row["data_row"]["external_id"] = external_id
    path = write(tmp_path, [good_row(0), row])
    error = read_error(path, UnsafeInputError)
    assert_place(error, path, 2, f"$.data_row.{where}")


@pytest.mark.parametrize(
    ("media", "kind", "where", "message"),
    [
        ({"width": 0}, GeometryError, "$.media_attributes.width", "outside 1..65536"),
        ({"height": -5}, GeometryError, "$.media_attributes.height", "outside 1..65536"),
        ({"width": 70000}, GeometryError, "$.media_attributes.width", "outside 1..65536"),
        ({"width": 12.5}, FormatError, "$.media_attributes.width", "must be an integer"),
        ({"width": "32"}, FormatError, "$.media_attributes.width", "must be an integer"),
        ({"height": True}, FormatError, "$.media_attributes.height", "must be an integer"),
        ({"height": None}, FormatError, "$.media_attributes", 'missing "height"'),
    ],
)
def test_bad_image_sizes(
    tmp_path: Path, media: dict[str, Any], kind: type[PrepError], where: str, message: str
) -> None:
    path = write(tmp_path, [good_row(0), good_row(1, **media)])
    error = read_error(path, kind)
    assert_place(error, path, 2, where)
    assert message in str(error)


def test_bad_size_option(tmp_path: Path) -> None:
    row = good_row(0)
    del row["media_attributes"]
    path = write(tmp_path, [row])
    with pytest.raises(UsageError, match="outside"):
        read_labelbox(path, options=ReadOptions(size=(0, 10)))
    error = read_error(path, ImageFileError, images=tmp_path)
    assert "image file not found" in str(error)
    assert_place(error, path, 1, 'image "img0.png"')


D = '{"data_row": {"id": "d"}, '
LABEL = '"projects": {{"p": {{"labels": [{{"annotations": {}}}]}}}}}}'


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("[1, 2]", "$", "a data row must be an object"),
        ('{"media_attributes": {}}', "$", 'missing "data_row"'),
        ('{"data_row": "d1"}', "$.data_row", "expected an object"),
        ('{"data_row": {"external_id": 5}}', "$.data_row.external_id", "expected a string"),
        ('{"data_row": {}}', "$.data_row", "no external_id, global_key or id"),
        ('{"data_row": {"id": "d"}, "projects": []}', "$.projects", "expected an object"),
        ('{"data_row": {"id": "d"}, "projects": {"p": 1}}', "$.projects.p", "expected an object"),
        (
            '{"data_row": {"id": "d"}, "projects": {"p": {"labels": {}}}}',
            "$.projects.p.labels",
            "expected a list",
        ),
        (
            '{"data_row": {"id": "d"}, "projects": {"p": {"labels": [1]}}}',
            "$.projects.p.labels[0]",
            "expected an object",
        ),
        (
            D + '"projects": {"p p": {"labels": [{"annotations": {"objects": {}}}]}}}',
            '$.projects["p p"].labels[0].annotations.objects',
            "expected a list",
        ),
        (
            D + LABEL.format('{"frames": {"x1": {}}}'),
            "$.projects.p.labels[0].annotations.frames.x1",
            "not a frame number",
        ),
        (
            D + LABEL.format('{"frames": {"1": []}}'),
            '$.projects.p.labels[0].annotations.frames["1"]',
            "expected an object",
        ),
        (
            D + LABEL.format('{"frames": {"1": {"objects": 3}}}'),
            '$.projects.p.labels[0].annotations.frames["1"].objects',
            "expected an object",
        ),
        (
            '{"data_row": {"id": "d"}, "media_attributes": [32, 24]}',
            "$.media_attributes",
            "expected an object",
        ),
    ],
)
def test_bad_structure(tmp_path: Path, line: str, where: str, message: str) -> None:
    path = write(tmp_path, [good_row(0), line])
    error = read_error(path, FormatError, size=(8, 8))
    assert_place(error, path, 2, where)
    assert message in str(error)


def test_an_image_name_used_twice_is_refused(tmp_path: Path) -> None:
    again = good_row(5)
    again["data_row"]["external_id"] = "img0.png"
    path = write(tmp_path, [good_row(0), good_row(1), again])
    error = read_error(path, FormatError)
    assert_place(error, path, 3, "$.data_row.external_id")
    assert "used twice (first at line 1, $.data_row.external_id)" in str(error)


def test_mask_files_of_the_wrong_size_or_unreadable(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.ones((10, 10), np.uint8)).save(masks / "m1.png")
    (masks / "m2.png").write_bytes(b"not a png")
    mask = {
        "name": "pore",
        "annotation_kind": "ImageSegmentationMask",
        "mask": {"url": "https://x"},
    }
    for fid, message in (
        ("m1", "is 10x10 pixels (width x height) but the image is 32x24"),
        ("m2", "cannot read"),
    ):
        path = write(tmp_path, [good_row(1), with_object(**mask, feature_id=fid)])
        error = read_error(path, ImageFileError, masks=masks)
        assert_place(error, path, 2, f"{P}.objects[1]")
        assert message in str(error)


# -- nothing is fetched -----------------------------------------------------------------------


def test_mask_urls_are_never_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def refuse(*args: Any, **_kw: Any) -> Any:
        calls.append(repr(args)[:80])
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = {
        "feature_id": "m1",
        "name": "pore",
        "annotation_kind": "ImageSegmentationMask",
        "mask": {"url": "https://api.labelbox.com/api/v1/masks/m1?token=abc"},
        "composite_mask": {"url": "http://127.0.0.1:9/composite.png", "color_rgb": [255, 0, 0]},
    }
    path = write(tmp_path, [with_object(**mask)])
    for folder in (None, masks):
        seen: list[str] = []
        ds = read_labelbox(path, on_warning=seen.append, options=ReadOptions(masks=folder))
        (item,) = list(ds)
        assert [s.kind for s in item.shapes] == ["box"]
        assert len(seen) == 1 and "1 mask object(s) skipped" in seen[0]
        assert "token" not in seen[0]
    assert calls == []


def test_the_reader_modules_import_no_network_client() -> None:
    readers = Path(str(labelbox_module.__file__)).parent.parent
    sources = sorted(readers.rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        bad = {
            n for n in names if n.split(".")[0] in {"urllib", "requests", "http", "socket", "httpx"}
        }
        assert not bad, (source.name, bad)


# -- legacy JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "where", "message"),
    [
        ([1], FormatError, "$[0]", "expected an object"),
        (
            [{"DataRow ID": "d", "Label": 5}],
            FormatError,
            "$[0].Label",
            'expected an object, a list of frames or "Skip", got a number 5',
        ),
        (
            [{"DataRow ID": "d", "External ID": "../a.png"}],
            UnsafeInputError,
            '$[0]["External ID"]',
            "escapes",
        ),
        (
            [{"DataRow ID": "d", "Label": {"objects": [{"title": "p", "bbox": "1,2"}]}}],
            FormatError,
            "$[0].Label.objects[0].bbox",
            "expected an object",
        ),
        (
            [
                {
                    "DataRow ID": "d",
                    "Label": {"objects": [{"title": "p", "polygon": [{"x": 1, "y": 2}]}]},
                }
            ],
            GeometryError,
            "$[0].Label.objects[0].polygon",
            "at least 3",
        ),
        (
            [{"DataRow ID": "d", "Label": {"objects": {}}}],
            FormatError,
            "$[0].Label.objects",
            "expected a list",
        ),
        (
            [{"DataRow ID": "d", "Label": [{"frameNumber": "7", "objects": []}]}],
            FormatError,
            "$[0].Label[0].frameNumber",
            'a whole number from 0), got a string "7"',
        ),
        (
            {"DataRow ID": "d", "Label": {"objects": [{"title": "p", "point": {"x": True}}]}},
            FormatError,
            "$.Label.objects[0].point.x",
            "expected a number, got a boolean true",
        ),
    ],
)
def test_bad_legacy_exports(
    tmp_path: Path, data: Any, kind: type[PrepError], where: str, message: str
) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    error = read_error(path, kind, size=(8, 8))
    assert_place(error, path, None, where)
    assert message in str(error)


def test_legacy_nan_and_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    point = '{"title": "p", "point": {"x": NaN, "y": 1}}'
    path.write_text('[\n{"DataRow ID": "d",\n "Label": {"objects": [' + point + "]}}\n]")
    error = read_error(path, FormatError, size=(8, 8))
    assert str(error).startswith(f"{path}: ") and "NaN" in str(error)
    path.write_text('[\n{"DataRow ID": "d",\n "Label": {},,\n}]\n')
    error = read_error(path, FormatError, size=(8, 8))
    assert_place(error, path, 3, None)
    assert "invalid JSON" in str(error)


# -- fuzzing ----------------------------------------------------------------------------------


def valid_export() -> list[dict[str, Any]]:
    frame = {
        "objects": {
            "v1": {
                "name": "cell",
                "annotation_kind": "VideoBoundingBox",
                "bounding_box": {"top": 1, "left": 1, "height": 2, "width": 2},
                "classifications": [{"name": "s", "radio_answer": {"name": "a"}}],
            }
        },
        "classifications": [],
    }
    video = {
        "data_row": {"id": "dv", "external_id": "v.mp4"},
        "media_attributes": {"width": 16, "height": 12, "mime_type": "video/mp4"},
        "projects": {
            "p1": {
                "labels": [
                    {
                        "annotations": {
                            "frames": {"1": frame, "3": copy.deepcopy(frame)},
                            "segments": {"v1": [[1, 3]]},
                            "key_frame_feature_map": {"v1": {"1": True}},
                            "classifications": [{"name": "t", "text_answer": {"content": "x"}}],
                        }
                    }
                ]
            }
        },
    }
    objects = good_row(0)["projects"]["p1"]["labels"][0]["annotations"]["objects"] + [
        {
            "feature_id": "l1",
            "name": "crack",
            "annotation_kind": "ImagePolyline",
            "line": [{"x": 0, "y": 0}, {"x": 3, "y": 4}],
            "classifications": [{"name": "c", "checklist_answers": [{"name": "a"}, {"name": "b"}]}],
        },
        {
            "feature_id": "q1",
            "name": "seed",
            "annotation_kind": "ImagePoint",
            "point": {"x": 2, "y": 3},
        },
        {
            "feature_id": "m1",
            "name": "pore",
            "annotation_kind": "ImageSegmentationMask",
            "mask": {"url": "https://x/m1"},
            "composite_mask": {"url": "https://x/c", "color_rgb": [255, 0, 0]},
        },
    ]
    return [good_row(0, objects=objects), video, good_row(1)]


VALID = "".join(json.dumps(row) + "\n" for row in valid_export()).encode()
ALPHABET = b'{}[]":,.-0123456789 \neE"xyNa\\\x00\xff'


def read_all(path: Path, masks: Path | None = None) -> None:
    try:
        ds = read_labelbox(path, on_warning=lambda _m: None, options=ReadOptions(masks=masks))
    except PrepError:
        return
    items = list(ds)
    assert [item.image for item in items] == list(ds.images)
    for item in items:
        for shape in item.shapes:
            assert np.isfinite(shape.points).all()
            assert shape.label in ds.labels.class_names


@fuzz(150)
@given(edits(VALID, ALPHABET))
def test_mutated_bytes_give_a_set_or_a_prep_error(tmp_path: Path, changes: list[Edit]) -> None:
    path = tmp_path / "fuzz.ndjson"
    path.write_bytes(mutate(VALID, changes))
    read_all(path)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        out.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            _containers(child, out)
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.randoms(use_true_random=False), st.lists(JSON_VALUES, min_size=1, max_size=3))
def test_mutated_values_give_a_set_or_a_prep_error(
    tmp_path: Path, rng: random.Random, values: list[Any]
) -> None:
    rows = valid_export()
    for value in values:
        parent = rng.choice(_containers(rows, []))
        if isinstance(parent, dict) and parent:
            key = rng.choice(sorted(parent))
            if rng.random() < 0.2:
                del parent[key]
            else:
                parent[key] = value
        elif isinstance(parent, list) and parent:
            parent[rng.randrange(len(parent))] = value
    path = tmp_path / "fuzz.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    masks = tmp_path / "masks"
    if not masks.exists():
        masks.mkdir()
        Image.fromarray(np.full((24, 32, 3), (255, 0, 0), np.uint8)).save(masks / "d0.png")
    read_all(path, masks)


def test_a_mask_link_leaving_the_masks_folder_is_refused(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    outside = tmp_path / "secret.png"
    Image.fromarray(np.ones((24, 32), np.uint8)).save(outside)
    (masks / "m1.png").symlink_to(outside)
    mask = {"feature_id": "m1", "name": "pore", "annotation_kind": "ImageSegmentationMask"}
    path = write(tmp_path, [good_row(1), with_object(**mask)])
    error = read_error(path, UnsafeInputError, masks=masks)
    assert_place(error, path, 2, f"{P}.objects[1]")
    assert "resolves outside" in str(error)
