"""The CVAT reader on hostile, broken and inconsistent input.

Every error must be a microprep InputError subclass whose message names the file and the line
(or the element), and nothing may be expanded, fetched or read from outside the file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import given

from fuzzing import Edit, edits, fuzz, mutate
from microprep.errors import (
    FormatError,
    GeometryError,
    InputError,
    PrepError,
    UnsafeInputError,
)
from microprep.readers import detect_format
from microprep.readers.cvat import read_cvat

HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
META = (
    "<meta><task><id>1</id><name>t</name><labels>"
    "<label><name>bubble</name><type>any</type><attributes/></label>"
    "</labels></task></meta>"
)


def doc(body: str) -> str:
    """A task export with ``body`` after the meta block, one element per line."""
    return f"{HEAD}<annotations>\n<version>1.1</version>\n{META}\n{body}\n</annotations>\n"


def image(shapes: str, *, name: str = "a b.png", width: str = "64", height: str = "48") -> str:
    return f'<image id="0" name="{name}" width="{width}" height="{height}">\n{shapes}\n</image>'


def write(tmp_path: Path, text: str | bytes, name: str = "bad.xml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    return text[: text.index(marker)].count("\n") + 1


def read_error(path: Path, kind: type[InputError]) -> InputError:
    with pytest.raises(kind) as info:
        read_cvat(path, on_warning=lambda _m: None)
    return info.value


def assert_place(error: InputError, path: Path, line: int) -> None:
    text = str(error)
    assert f"{path}:{line}" in text, text
    assert error.file == str(path)
    assert error.line == line


# -- DOCTYPE, entities, XInclude -----------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotations [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotations><version>1.1</version>
<image id="0" name="&lol9;.png" width="5" height="5"/></annotations>
"""


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path) -> None:
    path = write(tmp_path, BILLION_LAUGHS)
    started = time.perf_counter()
    error = read_error(path, UnsafeInputError)
    assert time.perf_counter() - started < 2.0
    assert "DOCTYPE declarations are not allowed" in str(error)
    assert_place(error, path, 2)


def test_xxe_local_file_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    text = (
        f'{HEAD}<!DOCTYPE annotations [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
        '<annotations><version>1.1</version>\n<image id="0" name="&xxe;" width="5" height="5">'
        '<tag label="&xxe;"/></image></annotations>\n'
    )
    path = write(tmp_path, text)
    seen: list[str] = []
    with pytest.raises(UnsafeInputError) as info:
        read_cvat(path, on_warning=seen.append)
    error = info.value
    assert_place(error, path, 2)
    everything = " ".join([str(error), repr(error), *map(str, error.args), *seen])
    assert "TOP-SECRET" not in everything
    assert seen == []


def test_external_dtd_is_refused_without_network(tmp_path: Path) -> None:
    text = (
        f'{HEAD}<!DOCTYPE annotations SYSTEM "http://192.0.2.1/cvat.dtd">\n'
        "<annotations><version>1.1</version></annotations>\n"
    )
    path = write(tmp_path, text)
    started = time.perf_counter()
    error = read_error(path, UnsafeInputError)
    assert time.perf_counter() - started < 2.0
    assert_place(error, path, 2)


def test_doctype_after_comments_and_in_utf16_is_refused(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0" encoding="utf-16"?>\n<!-- a <comment> -->\n<?pi x?>\n'
        '<!DOCTYPE annotations [<!ENTITY a "b">]>\n<annotations/>\n'
    )
    path = write(tmp_path, text.encode("utf-16"))
    error = read_error(path, UnsafeInputError)
    assert_place(error, path, 4)


def test_doctype_after_a_long_comment_is_refused(tmp_path: Path) -> None:
    comment = "<!--" + ("long comment line\n" * 20_000) + "-->\n"
    text = f"{HEAD}{comment}<!DOCTYPE annotations [<!ENTITY a 'b'>]>\n<annotations/>\n"
    path = write(tmp_path, text)
    error = read_error(path, UnsafeInputError)
    assert_place(error, path, line_of(text, "<!DOCTYPE"))


def test_long_comment_before_the_root_is_fine(tmp_path: Path) -> None:
    comment = "<!--" + ("<!DOCTYPE inside a comment>\n" * 5_000) + "-->\n"
    text = f"{HEAD}{comment}<annotations><version>1.1</version></annotations>\n"
    ds = read_cvat(write(tmp_path, text))
    assert ds.images == ()


def test_xinclude_is_refused(tmp_path: Path) -> None:
    body = (
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" parse="text"/>'
    )
    text = doc(body)
    path = write(tmp_path, text)
    error = read_error(path, UnsafeInputError)
    assert "XInclude" in str(error)
    assert_place(error, path, line_of(text, "<xi:include"))


# -- malformed XML -------------------------------------------------------------------------------


def test_truncated_file_reports_line_and_column(tmp_path: Path) -> None:
    text = doc(image('<box label="bubble" xtl="1" ytl="1" xbr="2" ybr="2"/>'))
    cut = text[: text.index("ybr=") + 3]
    path = write(tmp_path, cut)
    error = read_error(path, FormatError)
    assert error.line == cut.count("\n") + 1
    assert error.column is not None
    assert f"{path}:{error.line}:{error.column}" in str(error)
    assert "truncated" in str(error)


def test_wrong_root_element(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEAD}<annotation>\n<version>1.1</version></annotation>")
    error = read_error(path, FormatError)
    assert "<annotation>" in str(error)
    assert_place(error, path, 2)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    error = read_error(path, FormatError)
    assert str(path) in str(error)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    text = doc("<a>" * 300 + "</a>" * 300)
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "nested deeper than 64" in str(error)
    assert_place(error, path, line_of(text, "<a>"))


def test_huge_attribute_is_refused_quickly(tmp_path: Path) -> None:
    text = doc(image("x", name="a" * 20_000_000 + ".png"))
    path = write(tmp_path, text)
    started = time.perf_counter()
    error = read_error(path, FormatError)
    assert time.perf_counter() - started < 3.0
    # libxml2 reports where its buffer ended; the message also names the last element read.
    assert error.line is not None
    assert f"{path}:{error.line}:" in str(error)
    assert "limit" in str(error)
    assert f"line {line_of(text, '<image')}: <image>" in str(error)
    assert len(str(error)) < 500


# -- geometry and numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "kind", "message"),
    [
        ('<polygon label="bubble" points="1,1;nan,2;3,3"/>', GeometryError, "points contain NaN"),
        ('<polyline label="bubble" points="1,1;2,inf"/>', GeometryError, "infinite"),
        ('<box label="bubble" xtl="1" ytl="1" xbr="inf" ybr="2"/>', GeometryError, "infinite"),
        ('<box label="bubble" xtl="5" ytl="1" xbr="2" ybr="4"/>', GeometryError, "negative width"),
        ('<box label="bubble" xtl="1" ytl="1" xbr="1" ybr="4"/>', GeometryError, "zero or neg"),
        ('<box label="bubble" xtl="1" ytl="4" xbr="3" ybr="2"/>', GeometryError, "height"),
        ('<box label="bubble" xtl="1" ytl="1" xbr="x" ybr="2"/>', FormatError, "not a number"),
        ('<box label="bubble" xtl="1" ytl="1" xbr="2"/>', FormatError, "missing attribute 'ybr'"),
        ('<ellipse label="bubble" cx="1" cy="1" rx="0" ry="2"/>', GeometryError, "radii"),
        ('<ellipse label="bubble" cx="1" cy="1" rx="3" ry="nan"/>', GeometryError, "NaN"),
        ('<polygon label="bubble" points="1,1;2,2"/>', GeometryError, "at least 3"),
        ('<polygon label="bubble" points="1,1;2,2;3"/>', FormatError, "odd number"),
        ('<polygon label="bubble" points="1,1;2,2;3,x"/>', FormatError, "not numbers"),
        ('<points label="bubble" points=""/>', FormatError, "not numbers"),
        (
            '<box label="bubble" occluded="2" xtl="1" ytl="1" xbr="2" ybr="2"/>',
            FormatError,
            "0 or 1",
        ),
        (
            '<box label="bubble" z_order="1.5" xtl="1" ytl="1" xbr="2" ybr="2"/>',
            FormatError,
            "integer",
        ),
        (
            '<mask label="bubble" rle="1,2" left="0" top="0" width="2" height="2"/>',
            GeometryError,
            "add up to 3 pixels",
        ),
        (
            '<mask label="bubble" rle="1,-2,5" left="0" top="0" width="2" height="2"/>',
            GeometryError,
            "negative",
        ),
        (
            '<mask label="bubble" rle="4" left="63" top="0" width="2" height="2"/>',
            GeometryError,
            "does not fit",
        ),
        (
            '<mask label="bubble" rle="0" left="0" top="0" width="0" height="2"/>',
            GeometryError,
            "must be positive",
        ),
        (
            '<skeleton label="bubble"><points label="e" points="1,nan"/></skeleton>',
            GeometryError,
            "NaN",
        ),
    ],
)
def test_bad_geometry_names_file_line_image_and_shape(
    tmp_path: Path, shape: str, kind: type[InputError], message: str
) -> None:
    text = doc(image(f'<tag label="bubble"/>\n{shape}'))
    path = write(tmp_path, text)
    error = read_error(path, kind)
    assert message in str(error)
    tag = shape.split()[0]
    line = line_of(text, shape) if tag != "<skeleton" else line_of(text, '<points label="e"')
    assert_place(error, path, line)
    assert "in image 'a b.png'" in str(error)
    assert (error.where or "").startswith("<")


@pytest.mark.parametrize(
    ("width", "kind"),
    [("0", GeometryError), ("-5", GeometryError), ("70000", GeometryError), ("1e3", FormatError)],
)
def test_bad_image_width(tmp_path: Path, width: str, kind: type[InputError]) -> None:
    text = doc(image("", name="grid 1/w.png", width=width))
    path = write(tmp_path, text)
    error = read_error(path, kind)
    assert "image width" in str(error)
    assert "'grid 1/w.png'" in str(error)
    assert_place(error, path, line_of(text, "<image"))


def test_missing_image_height(tmp_path: Path) -> None:
    text = doc('<image id="0" name="a.png" width="4"/>')
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "missing image height" in str(error)
    assert_place(error, path, line_of(text, "<image"))


@pytest.mark.parametrize("name", ["../../x.png", "/etc/passwd", "a/../../b.png", "..\\..\\x.png"])
def test_image_names_escaping_their_folder_are_refused(tmp_path: Path, name: str) -> None:
    text = doc(image("", name=name))
    path = write(tmp_path, text)
    error = read_error(path, UnsafeInputError)
    assert "escapes its folder" in str(error)
    assert_place(error, path, line_of(text, "<image"))


def test_duplicate_image_id(tmp_path: Path) -> None:
    text = doc(
        '<image id="3" name="a.png" width="4" height="4"/>\n'
        '<image id="3" name="b.png" width="4" height="4"/>'
    )
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "image id 3 is used twice" in str(error)
    assert_place(error, path, line_of(text, 'name="b.png"'))


def test_duplicate_image_name(tmp_path: Path) -> None:
    text = doc(
        '<image id="1" name="g/a.png" width="4" height="4"/>\n'
        '<image id="2" name="g/a.png" width="4" height="4"/>'
    )
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "'g/a.png' is used twice" in str(error)
    assert_place(error, path, 6)


def test_duplicate_label_declaration(tmp_path: Path) -> None:
    text = doc("").replace("</labels>", "\n<label><name>bubble</name></label></labels>")
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "declared twice" in str(error)
    assert_place(error, path, line_of(text, "<label><name>bubble</name></label>"))


def test_mixed_images_and_tracks_are_refused(tmp_path: Path) -> None:
    text = doc(
        image("")
        + '\n<track id="0" label="bubble"><points frame="0" outside="0" points="1,1"/></track>'
    )
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "mixed export" in str(error)
    assert_place(error, path, line_of(text, "<track"))


# -- video ---------------------------------------------------------------------------------------


def video(tracks: str, *, original: bool = True) -> str:
    size = "<original_size><width>32</width><height>32</height></original_size>" if original else ""
    return (
        f"{HEAD}<annotations>\n<version>1.1</version>\n<meta><task><size>3</size>"
        "<mode>interpolation</mode><start_frame>10</start_frame><stop_frame>14</stop_frame>"
        f"<frame_filter>step=2</frame_filter>{size}</task></meta>\n{tracks}\n</annotations>\n"
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [("11", "not on the task's frame grid"), ("16", "outside the task's frames 10..14"),
     ("8", "outside"), ("x", "not an integer")],
)  # fmt: skip
def test_video_frame_off_the_grid_or_range(tmp_path: Path, frame: str, message: str) -> None:
    text = video(
        '<track id="0" label="bubble">\n'
        f'<points frame="{frame}" outside="0" keyframe="1" points="1,1"/>\n</track>'
    )
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert message in str(error)
    assert_place(error, path, line_of(text, "<points"))


def test_video_needs_original_size(tmp_path: Path) -> None:
    text = video('<track id="0" label="bubble"></track>', original=False)
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "<original_size>" in str(error)
    assert_place(error, path, line_of(text, "<track"))


def test_video_duplicate_track_and_frame(tmp_path: Path) -> None:
    text = video(
        '<track id="0" label="bubble"><points frame="10" points="1,1"/></track>\n'
        '<track id="0" label="bubble"><points frame="10" points="1,1"/></track>'
    )
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "track id 0 is used twice" in str(error)
    assert_place(error, path, 6)
    text = video(
        '<track id="0" label="bubble"><points frame="10" points="1,1"/>\n'
        '<points frame="10" points="2,2"/></track>'
    )
    path = write(tmp_path, text, "b.xml")
    error = read_error(path, FormatError)
    assert "two shapes on frame 10" in str(error)
    assert_place(error, path, 6)


def test_video_bad_frame_filter(tmp_path: Path) -> None:
    text = video("").replace("step=2", "step=0")
    path = write(tmp_path, text)
    error = read_error(path, FormatError)
    assert "frame_filter" in str(error)
    assert_place(error, path, 4)


# -- detection -----------------------------------------------------------------------------------


def test_detect_format_lists_the_formats_tried(tmp_path: Path) -> None:
    path = write(tmp_path, '{"images": []}', "coco.json")
    with pytest.raises(FormatError) as info:
        detect_format(path)
    assert "formats tried: cvat" in str(info.value)
    assert "coco.json" in str(info.value)
    with pytest.raises(FormatError, match="not found"):
        detect_format(tmp_path / "absent.xml")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    error = read_error(tmp_path / "absent.xml", InputError)
    assert "absent.xml" in str(error)
    assert "not found" in str(error)


# -- fuzzing -------------------------------------------------------------------------------------

VALID = (
    f"{HEAD}<annotations>\n<version>1.1</version>\n<meta><task><labels>"
    "<label><name>b</name><attributes><attribute><name>s</name><values>x\ny</values>"
    "</attribute></attributes></label><label><name>k</name></label>"
    "<label><name>e</name><parent>k</parent></label></labels></task></meta>\n"
    '<image id="0" name="g/a.png" width="16" height="12" subset="Train">\n'
    '<box label="b" xtl="1.5" ytl="2" xbr="5" ybr="6.25" rotation="10" occluded="1"/>\n'
    '<polygon label="b" points="1,1;5,1;5,5" z_order="2"><attribute name="s">x</attribute>'
    "</polygon>\n"
    '<ellipse label="b" cx="8" cy="6" rx="2" ry="1.5"/>\n'
    '<mask label="b" rle="1,2,3,2" left="2" top="3" width="4" height="2"/>\n'
    '<skeleton label="k"><points label="e" points="3,3"/></skeleton>\n'
    '<tag label="b"/>\n</image>\n'
    '<image id="1" name="b.png" width="8" height="8"><points label="b" points="1,2;3,4"/></image>\n'
    "</annotations>\n"
).encode()

ALPHABET = b"<>/=\"';,.-0123456789 \n&!?abeimnx\x00\xff"


@fuzz(200)
@given(edits(VALID, ALPHABET))
def test_mutated_exports_give_a_set_or_a_prep_error(tmp_path: Path, changes: list[Edit]) -> None:
    path = tmp_path / "fuzz.xml"
    path.write_bytes(mutate(VALID, changes))
    try:
        ds = read_cvat(path, on_warning=lambda _m: None)
    except PrepError:
        return
    items = list(ds)
    assert len(items) == len(ds.images)
    assert [item.image for item in items] == list(ds.images)


def test_random_truncations_give_format_errors(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "cut.xml"
    for cut in sorted(rng.sample(range(1, len(VALID) - 20), 40)):
        path.write_bytes(VALID[:cut])
        with pytest.raises(FormatError):
            read_cvat(path)
