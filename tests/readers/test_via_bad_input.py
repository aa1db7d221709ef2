"""The VIA reader on hostile, broken and inconsistent input.

Every error must be a microprep error whose message names the file and the JSON path (or, for
CSV, the line and column), and nothing huge may be parsed before it is refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzing import Edit, edits, fuzz, mutate
from microprep.errors import (
    FormatError,
    GeometryError,
    InputError,
    PrepError,
    UnsafeInputError,
)
from microprep.readers import jsonsafe
from microprep.readers.options import ReadOptions
from microprep.readers.via import MAX_VERTICES, read_via
from microprep.readers.via.csv_export import MAX_CELL_CHARS
from microprep.readers.via.jsonfast import _UNSURE, fast_loads
from microprep.readers.via.jsonlocate import locate_refusal

SIZE = ReadOptions(size=(64, 48))
CSV_HEADER = (
    "filename,file_size,file_attributes,region_count,region_id,"
    "region_shape_attributes,region_attributes"
)
KEY = "a b.png1234"
REGION = '$["a b.png1234"].regions[0]'
PROJECT_REGION = '$._via_img_metadata["a b.png1234"].regions[0]'


def export(shape: dict[str, Any], attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A VIA 2 annotations export with one image and one region."""
    region = {"shape_attributes": shape, "region_attributes": attrs or {"c": "pore"}}
    return {KEY: {"filename": "a b.png", "size": 1234, "regions": [region], "file_attributes": {}}}


def polygon(xs: list[Any], ys: list[Any]) -> dict[str, Any]:
    return {"name": "polygon", "all_points_x": xs, "all_points_y": ys}


GOOD = export(polygon([1, 5, 5], [1, 1, 4]))


def write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def read_error(path: Path, kind: type[PrepError], options: ReadOptions = SIZE) -> PrepError:
    with pytest.raises(kind) as info:
        read_via(path, on_warning=lambda _m: None, options=options)
    return info.value


def assert_at(error: PrepError, path: Path, where: str) -> None:
    text = str(error)
    assert isinstance(error, InputError), text
    assert error.file == str(path), text
    assert text.startswith(str(path)), text
    assert where in text, text


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_coordinates_are_refused_with_their_path(tmp_path: Path, token: str) -> None:
    text = json.dumps(GOOD).replace("[1, 5, 5]", f"[1, 5, {token}]")
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_x[2]")


@pytest.mark.parametrize("value", [1e12, -2e7, 10**25])
def test_coordinates_beyond_max_coordinate_are_refused(tmp_path: Path, value: float) -> None:
    path = write(tmp_path, export(polygon([1, 5, 5], [1, value, 4])))
    error = read_error(path, FormatError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_y[1]")
    assert "out of range" in str(error)


@pytest.mark.parametrize("value", ["3", True, None, [1]])
def test_non_numbers_in_points_are_refused(tmp_path: Path, value: Any) -> None:
    path = write(tmp_path, export(polygon([1, value, 5], [1, 1, 4])))
    error = read_error(path, FormatError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_x[1]")


def test_a_5000_digit_integer_is_refused(tmp_path: Path) -> None:
    text = json.dumps(GOOD).replace('"size": 1234', '"size": ' + "7" * 5000)
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert_at(error, path, '$["a b.png1234"].size')
    assert "5000 digits" in str(error)


def test_a_40_digit_integer_coordinate_is_refused(tmp_path: Path) -> None:
    text = json.dumps(GOOD).replace("[1, 5, 5]", "[1, 5, " + "9" * 40 + "]")
    path = write(tmp_path, text)
    assert_at(read_error(path, FormatError), path, f"{REGION}.shape_attributes.all_points_x[2]")


def test_nan_in_a_csv_cell_names_line_and_column(tmp_path: Path) -> None:
    cell = '"{""name"":""circle"",""cx"":NaN,""cy"":2,""r"":1}"'
    rows = ['a.png,1,"{}",0,0,"{}","{}"', f'b.png,1,"{{}}",1,0,{cell},"{{""c"":""x""}}"']
    text = "\n".join([CSV_HEADER, *rows]) + "\n"
    path = write(tmp_path, text, "bad.csv")
    error = read_error(path, FormatError)
    assert_at(error, path, "column region_shape_attributes $.cx")
    assert f"{path}:3:" in str(error)


def test_out_of_range_coordinate_in_csv_names_line_and_column(tmp_path: Path) -> None:
    cell = '"{""name"":""rect"",""x"":1e12,""y"":2,""width"":1,""height"":1}"'
    path = write(tmp_path, f'#{CSV_HEADER}\na.png,1,"{{}}",1,0,{cell},"{{""c"":""x""}}"\n', "b.csv")
    error = read_error(path, FormatError)
    assert_at(error, path, "column region_shape_attributes $.x")
    assert error.line == 2  # type: ignore[attr-defined]


# -- geometry -----------------------------------------------------------------------------------


def test_x_and_y_lists_of_different_length(tmp_path: Path) -> None:
    path = write(tmp_path, export(polygon([1, 5, 5, 2], [1, 1, 4])))
    error = read_error(path, GeometryError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_y")
    assert "4 values" in str(error) and "has 3" in str(error)


@pytest.mark.parametrize(("xs", "ys"), [([1, 5], [1, 1]), ([], []), ([1, 5, 1], [1, 1, 1])])
def test_polygon_with_fewer_than_3_points(tmp_path: Path, xs: list[int], ys: list[int]) -> None:
    path = write(tmp_path, export(polygon(xs, ys)))
    error = read_error(path, GeometryError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_x")
    assert "at least 3 points" in str(error)


@pytest.mark.parametrize(("rx", "ry", "bad"), [(0, 2, "rx"), (3, -1, "ry"), (-2, -2, "rx")])
def test_ellipse_with_non_positive_radius(tmp_path: Path, rx: float, ry: float, bad: str) -> None:
    shape = {"name": "ellipse", "cx": 5, "cy": 5, "rx": rx, "ry": ry, "theta": 0.1}
    path = write(tmp_path, export(shape))
    assert_at(read_error(path, GeometryError), path, f"{REGION}.shape_attributes.{bad}")


@pytest.mark.parametrize(("width", "height", "bad"), [(-3, 2, "width"), (3, 0, "height")])
def test_rect_with_non_positive_size(tmp_path: Path, width: float, height: float, bad: str) -> None:
    shape = {"name": "rect", "x": 1, "y": 1, "width": width, "height": height}
    path = write(tmp_path, export(shape))
    assert_at(read_error(path, GeometryError), path, f"{REGION}.shape_attributes.{bad}")


def test_circle_with_zero_radius_and_missing_field(tmp_path: Path) -> None:
    path = write(tmp_path, export({"name": "circle", "cx": 1, "cy": 1, "r": 0}))
    assert_at(read_error(path, GeometryError), path, f"{REGION}.shape_attributes.r")
    path = write(tmp_path, export({"name": "circle", "cx": 1, "r": 2}))
    assert_at(read_error(path, FormatError), path, f"{REGION}.shape_attributes.cy")


def test_error_paths_in_a_project_and_in_via1(tmp_path: Path) -> None:
    data = {"_via_settings": {}, "_via_img_metadata": export(polygon([1, 2], [1, 2])),
            "_via_attributes": {"region": {}, "file": {}}}  # fmt: skip
    path = write(tmp_path, data)
    assert_at(read_error(path, GeometryError), path, f"{PROJECT_REGION}.shape_attributes")
    v1 = export(polygon([1, 2], [1, 2]))
    v1[KEY]["regions"] = {"0": v1[KEY]["regions"][0]}
    path = write(tmp_path, v1)
    assert_at(read_error(path, GeometryError), path, '$["a b.png1234"].regions["0"]')


def test_via3_bad_shapes(tmp_path: Path) -> None:
    def via3(xy: list[Any]) -> dict[str, Any]:
        return {
            "project": {"vid_list": ["1"]},
            "attribute": {"1": {"aname": "c", "type": 1, "anchor_id": "FILE1_Z0_XY1"}},
            "file": {"1": {"fid": "1", "fname": "a.png", "type": 2}},
            "view": {"1": {"fid_list": ["1"]}},
            "metadata": {"1_x": {"vid": "1", "z": [], "xy": xy, "av": {"1": "pore"}}},
        }

    cases: list[tuple[list[Any], type[InputError], str]] = [
        ([2, 1, 2, 3], GeometryError, '$.metadata["1_x"].xy'),
        ([2, 1, 2, -3, 4], GeometryError, '$.metadata["1_x"].xy[3]'),
        ([7, 1, 1, 2, 2], GeometryError, "at least 3 points"),
        ([7, 1, 1, 2, "x", 3, 3], FormatError, '$.metadata["1_x"].xy[4]'),
        ([9, 0, 0, 1, 1, 2, 2], GeometryError, "collinear"),
        (["7", 1, 1, 2, 2, 3, 3], FormatError, '$.metadata["1_x"].xy[0]'),
    ]
    for xy, kind, where in cases:
        path = write(tmp_path, via3(xy))
        assert_at(read_error(path, kind), path, where)
    data = via3([1, 1, 1])
    data["metadata"]["1_x"]["vid"] = "9"
    path = write(tmp_path, data)
    assert_at(read_error(path, FormatError), path, '$.metadata["1_x"].vid')


# -- structure ----------------------------------------------------------------------------------


def test_duplicate_regions_key_is_refused(tmp_path: Path) -> None:
    text = json.dumps(GOOD).replace('"regions":', '"regions": [], "regions":')
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert_at(error, path, '$["a b.png1234"].regions')
    assert 'duplicate key "regions"' in str(error)


def test_nesting_deeper_than_max_depth_is_refused_with_its_path(tmp_path: Path) -> None:
    deep = "[" * 100 + "]" * 100
    path = write(tmp_path, json.dumps(GOOD).replace('"pore"', deep))
    error = read_error(path, FormatError)
    assert_at(error, path, f"{REGION}.region_attributes.c[0]")
    assert "nested deeper than 64" in str(error)


def test_extreme_nesting_is_refused_with_its_line(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = write(tmp_path, json.dumps(GOOD, indent=1).replace('"pore"', deep))
    error = read_error(path, FormatError)
    assert "nested deeper than 64" in str(error)
    assert error.line is not None and f"{path}:{error.line}:" in str(error)  # type: ignore[attr-defined]


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(GOOD, indent=2).replace('"size": 1234,', '"size": 1234')
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "invalid JSON" in str(error) and error.line and error.column  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({KEY: []}, '$["a b.png1234"]'),
        ({KEY: {"filename": "a.png", "regions": 3}}, '$["a b.png1234"].regions'),
        ({KEY: {"filename": "a.png", "regions": [7]}}, '$["a b.png1234"].regions[0]'),
        ({KEY: {"filename": "a.png", "regions": [{"shape_attributes": []}]}}, "shape_attributes"),
        ({KEY: {"size": 1, "regions": []}}, '$["a b.png1234"].filename'),
    ],
)
def test_wrong_structure(tmp_path: Path, data: Any, where: str) -> None:
    path = write(tmp_path, data)
    assert_at(read_error(path, FormatError), path, where)


def test_top_level_array_and_bad_encoding(tmp_path: Path) -> None:
    read_error(write(tmp_path, "[1, 2]"), FormatError)
    read_error(write(tmp_path, b'{"a\xff": 1}'), FormatError)
    read_error(write(tmp_path, b"filename\xff,x\n", "bad.csv"), FormatError)


def test_class_value_that_is_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, export(polygon([1, 5, 5], [1, 1, 4]), {"c": {"a": 1, "b": True}}))
    error = read_error(path, FormatError, ReadOptions(size=(8, 8), label_attribute="c"))
    assert_at(error, path, f"{REGION}.region_attributes.c")
    assert 'holds an object {"a": 1, "b": true}' in str(error)


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", "a/../../x.png", "C:\\x.png"])
def test_names_escaping_their_folder_are_refused(tmp_path: Path, name: str) -> None:
    data = export(polygon([1, 5, 5], [1, 1, 4]))
    data[KEY]["filename"] = name
    path = write(tmp_path, data)
    assert_at(read_error(path, UnsafeInputError), path, '$["a b.png1234"].filename')


def test_escaping_name_in_csv_and_via3(tmp_path: Path) -> None:
    path = write(tmp_path, f'{CSV_HEADER}\n../x.png,1,"{{}}",0,0,"{{}}","{{}}"\n', "bad.csv")
    error = read_error(path, UnsafeInputError)
    assert_at(error, path, "column filename")
    assert f"{path}:2:" in str(error)
    via3 = {"project": {}, "attribute": {}, "file": {"1": {"fname": "../x.png", "type": 2}},
            "view": {"1": {"fid_list": ["1"]}}, "metadata": {}}  # fmt: skip
    path = write(tmp_path, via3)
    assert_at(read_error(path, UnsafeInputError), path, '$.file["1"].fname')


def test_duplicate_file_names_are_refused(tmp_path: Path) -> None:
    data = export(polygon([1, 5, 5], [1, 1, 4]))
    data["a b.png99"] = dict(data[KEY], size=99)
    path = write(tmp_path, data)
    assert_at(read_error(path, FormatError), path, '$["a b.png99"].filename')
    rows = 'a.png,1,"{}",0,0,"{}","{}"\nb.png,1,"{}",0,0,"{}","{}"\na.png,1,"{}",0,0,"{}","{}"\n'
    path = write(tmp_path, CSV_HEADER + "\n" + rows, "dup.csv")
    error = read_error(path, FormatError)
    assert f"{path}:4:" in str(error) and '"a.png"' in str(error)


def test_symlink_out_of_the_images_folder_is_refused(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (images / "a.png").symlink_to(tmp_path / "secret.png")
    path = write(tmp_path, {KEY: {"filename": "a.png", "regions": []}})
    read_error(path, UnsafeInputError, ReadOptions(images=images))


def test_unreadable_image_file(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"not an image at all")
    path = write(tmp_path, {KEY: {"filename": "a.png", "regions": []}})
    error = read_error(path, PrepError, ReadOptions(images=images))
    assert "a.png" in str(error)


# -- size caps ----------------------------------------------------------------------------------


def test_5_million_vertex_polygon_is_refused_quickly(tmp_path: Path) -> None:
    many = "[" + "1," * 4_999_999 + "1]"
    text = json.dumps(GOOD).replace("[1, 5, 5]", many).replace("[1, 1, 4]", many)
    path = write(tmp_path, text)
    start = time.perf_counter()
    error = read_error(path, GeometryError)
    assert time.perf_counter() - start < 2.0
    assert str(path) in str(error) and "all_points_x" in str(error)
    assert f"{MAX_VERTICES} vertices" in str(error)


def test_5_million_vertex_polygon_in_csv_is_refused_quickly(tmp_path: Path) -> None:
    many = "[" + "1," * 4_999_999 + "1]"
    cell = '"{""name"":""polygon"",""all_points_x"":' + many + ',""all_points_y"":' + many + '}"'
    path = write(tmp_path, f'{CSV_HEADER}\na.png,1,"{{}}",1,0,{cell},"{{""c"":""x""}}"\n', "b.csv")
    start = time.perf_counter()
    error = read_error(path, FormatError)
    assert time.perf_counter() - start < 2.0
    assert f"{path}:2" in str(error) and str(MAX_CELL_CHARS) in str(error)


def test_polygon_just_over_the_vertex_cap_is_refused_with_its_path(tmp_path: Path) -> None:
    n = MAX_VERTICES + 1
    path = write(tmp_path, export(polygon([1] * n, [2] * n)))
    error = read_error(path, GeometryError)
    assert_at(error, path, f"{REGION}.shape_attributes.all_points_x")
    assert "MAX_VERTICES" in str(error)


def test_polygon_at_the_vertex_cap_is_read(tmp_path: Path) -> None:
    n = MAX_VERTICES
    xs = [float(i % 50) for i in range(n)]
    ys = [float(i % 40) for i in range(n)]
    ds = read_via(write(tmp_path, export(polygon(xs, ys))), options=SIZE)
    assert len(next(iter(ds)).shapes[0].points) == n


# -- the fast JSON path agrees with jsonsafe -----------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**35), max_value=10**35)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_fast_loads_gives_the_jsonsafe_value_or_defers(value: Any) -> None:
    text = json.dumps(value)
    try:
        expected = jsonsafe.loads(text, file="x.json")
    except FormatError:
        assert fast_loads(text) is _UNSURE  # refused: the fast path must defer to jsonsafe
        assert locate_refusal(text) is not None
        return
    got = fast_loads(text)
    assert got is _UNSURE or json.dumps(got) == json.dumps(expected)  # may defer, never differ


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": [1e400]}',
        '{"a": {"b": 1, "b": 2}}',
        '{"a": ' + "1" * 31 + "}",
        '{"a": ' + "[" * 70 + "]" * 70 + "}",
        "[1,",
    ],
)
def test_fast_loads_defers_whatever_jsonsafe_refuses(text: str) -> None:
    assert fast_loads(text) is _UNSURE
    with pytest.raises(FormatError):
        jsonsafe.loads(text, file="x.json")


# -- fuzz ---------------------------------------------------------------------------------------

VALID_JSON = json.dumps(
    {
        "_via_settings": {},
        "_via_img_metadata": {
            KEY: {
                "filename": "a b.png",
                "size": 1234,
                "regions": [
                    {"shape_attributes": polygon([1.5, 5, 5], [1, 1, 4]),
                     "region_attributes": {"c": "pore", "n": "x"}},
                    {"shape_attributes": {"name": "ellipse", "cx": 5, "cy": 6, "rx": 2, "ry": 1,
                                          "theta": 0.5},
                     "region_attributes": {"c": "bubble"}},
                    {"shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4},
                     "region_attributes": {"c": "pore"}},
                ],
                "file_attributes": {},
            },
            "b.png9": {"filename": "b.png", "size": 9, "regions": [], "file_attributes": {}},
        },
        "_via_attributes": {"region": {"c": {"type": "dropdown", "options": {"pore": ""}}}},
    }
).encode()  # fmt: skip

VALID_CSV = (
    CSV_HEADER
    + "\n"
    + 'a.png,1,"{}",2,0,"{""name"":""polygon"",""all_points_x"":[1,5,5],'
    + '""all_points_y"":[1,1,4]}","{""c"":""pore""}"\n'
    + 'a.png,1,"{}",2,1,"{""name"":""circle"",""cx"":3,""cy"":3,""r"":1}","{""c"":""x""}"\n'
    + 'b.png,1,"{}",0,0,"{}","{}"\n'
).encode()

ALPHABET = b'{}[]:,"\\ -.0123456789eEaNIn#\n\x00\xff'


def check_mutated(path: Path) -> None:
    try:
        ds = read_via(path, on_warning=lambda _m: None, options=SIZE)
    except PrepError:
        return
    items = list(ds)
    assert len(items) == len(ds.images)


@fuzz(150)
@given(edits(VALID_JSON, ALPHABET))
def test_mutated_json_gives_a_set_or_a_prep_error(tmp_path: Path, changes: list[Edit]) -> None:
    check_mutated(write(tmp_path, mutate(VALID_JSON, changes), "fuzz.json"))


@fuzz(150)
@given(edits(VALID_CSV, ALPHABET))
def test_mutated_csv_gives_a_set_or_a_prep_error(tmp_path: Path, changes: list[Edit]) -> None:
    check_mutated(write(tmp_path, mutate(VALID_CSV, changes), "fuzz.csv"))
