"""The bad-input battery, through the CLI, for every format.

Each case: ``prep convert`` exits 2, its one-line message names the file and the place (line,
element or JSON path), nothing is written, and an earlier good output is left untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microprep.cli.main import main

Capture = pytest.CaptureFixture[str]

LABELS = (
    "<labels><label><name>bubble</name><type>any</type></label>"
    "<label><name>precipitate</name><type>any</type></label></labels>"
)


def cvat(body: str, prologue: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{prologue}<annotations>\n'
        f"<version>1.1</version>\n<meta><task><id>1</id>{LABELS}</task></meta>\n{body}\n"
        "</annotations>\n"
    )


def image(
    shapes: str = "", name: str = "a.png", w: str = "64", h: str = "64", id: str = "0"
) -> str:
    return f'<image id="{id}" name="{name}" width="{w}" height="{h}">\n{shapes}\n</image>'


BOX = '<box label="bubble" xtl="2" ytl="2" xbr="9" ybr="9"/>'
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    + "]>\n"
).replace("&lol0;", "&lol;")

CVAT_CASES: dict[str, tuple[Callable[[], str], str]] = {
    "billion laughs": (lambda: cvat(image(BOX, name="&lol9;"), LAUGHS), r":2: .*DOCTYPE"),
    "xxe local file": (
        lambda: cvat(
            image(BOX, name="&xxe;"), '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        ),
        r":2: .*DOCTYPE",
    ),
    "external dtd": (
        lambda: cvat(image(BOX), '<!DOCTYPE annotations SYSTEM "http://example.invalid/a.dtd">\n'),
        r":2: .*DOCTYPE",
    ),
    "xinclude": (
        lambda: cvat(
            image(
                '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"'
                ' parse="text"/>'
            )
        ),
        r":\d+.*XInclude",
    ),
    "deep nesting": (lambda: cvat(image("<a>" * 300 + "</a>" * 300)), r":\d+.*(deep|depth)"),
    "20 MB attribute": (
        lambda: cvat(image(f'<box label="bubble" xtl="{"1" * 20_000_000}" ytl="2"/>')),
        r":\d+",
    ),
    "nan in points": (
        lambda: cvat(image('<polygon label="bubble" points="1,1;NaN,5;9,9"/>')),
        r":\d+: <polygon.*image 'a.png'.*NaN",
    ),
    "xbr < xtl": (
        lambda: cvat(image('<box label="bubble" xtl="9" ytl="2" xbr="2" ybr="9"/>')),
        r":\d+: <box.*image 'a.png'",
    ),
    "zero size": (lambda: cvat(image(w="0")), r":\d+: .*width"),
    "negative size": (lambda: cvat(image(h="-5")), r":\d+: .*height"),
    "huge size": (lambda: cvat(image(w="1000000")), r":\d+: .*width"),
    "name escapes": (lambda: cvat(image(name="../../x")), r":\d+: .*\.\./\.\./x"),
    "duplicate image id": (lambda: cvat(image() + image(name="b.png")), r":\d+: .*id"),
    "rle wrong sum": (
        lambda: cvat(
            image('<mask label="bubble" rle="3,4,5" left="1" top="1" width="4" height="4"/>')
        ),
        r":\d+: <mask.*(sum|RLE|run)",
    ),
    "truncated": (lambda: cvat(image(BOX))[:-40], r":\d+:\d+: "),
}


def via(regions: list[dict[str, object]] | str) -> str:
    body = regions if isinstance(regions, str) else json.dumps(regions)
    return (
        '{"a.png100": {"filename": "a.png", "size": 100, "file_attributes": {}, '
        f'"regions": {body}}}}}'
    )


def region(shape: dict[str, object] | str, label: str = "bubble") -> str:
    body = shape if isinstance(shape, str) else json.dumps(shape)
    return f'{{"shape_attributes": {body}, "region_attributes": {{"class": "{label}"}}}}'


def poly(xs: str, ys: str) -> str:
    return f'{{"name": "polygon", "all_points_x": {xs}, "all_points_y": {ys}}}'


DEEP = '{"name": "point", "cx": 1, "cy": 1, "x": ' + "[" * 200 + "]" * 200 + "}"
HUGE = "[" + ",".join(["1"] * 5_000_000) + "]"

VIA_CASES: dict[str, tuple[Callable[[], str], str]] = {
    "nan": (lambda: via(f"[{region(poly('[1, NaN, 9]', '[1, 5, 9]'))}]"), r"NaN|regions"),
    "infinity": (lambda: via(f"[{region(poly('[1, Infinity, 9]', '[1, 5, 9]'))}]"), r"Infinity"),
    "1e400": (lambda: via(f"[{region(poly('[1, 1e400, 9]', '[1, 5, 9]'))}]"), r"range"),
    "x y lengths": (lambda: via(f"[{region(poly('[1, 5, 9, 3]', '[1, 5, 9]'))}]"), r"all_points"),
    "fewer than 3 points": (lambda: via(f"[{region(poly('[1, 5]', '[1, 5]'))}]"), r"regions\[0\]"),
    "bow-tie with a lobe traced twice": (
        lambda: via(
            f"[{region(poly('[2, 7, 2, 2, 7, 12, 12, 7, 2]', '[2, 7, 12, 2, 7, 2, 12, 7, 12]'))}]"
        ),
        r"a\.png.*self-intersection",
    ),
    "ellipse rx <= 0": (
        lambda: via([json.loads(region({"name": "ellipse", "cx": 5, "cy": 5, "rx": 0, "ry": 3}))]),
        r"regions\[0\]",
    ),
    "rect negative width": (
        lambda: via(
            [json.loads(region({"name": "rect", "x": 5, "y": 5, "width": -3, "height": 3}))]
        ),
        r"regions\[0\]",
    ),
    "duplicate regions key": (
        lambda: '{"a.png100": {"filename": "a.png", "size": 100, "regions": [], "regions": []}}',
        r"duplicate",
    ),
    "deep nesting": (lambda: via(f"[{region(DEEP)}]"), r"deep"),
    "5000-digit integer": (
        lambda: via(f"[{region(poly('[1, ' + '9' * 5000 + ', 9]', '[1, 5, 9]'))}]"),
        r"digits|range",
    ),
    "coordinate 1e12": (lambda: via(f"[{region(poly('[1, 1e12, 9]', '[1, 5, 9]'))}]"), r"range"),
    "wholly outside": (
        lambda: via(f"[{region(poly('[100, 110, 105]', '[100, 100, 110]'))}]"),
        r"a\.png.*wholly-outside",
    ),
    "5-million-vertex polygon": (lambda: via(f"[{region(poly(HUGE, HUGE))}]"), r"vert"),
}


def lb_row(objects: list[dict[str, object]], external_id: str = "a.png") -> dict[str, object]:
    return {
        "data_row": {"id": "dr1", "external_id": external_id},
        "media_attributes": {"height": 64, "width": 64},
        "projects": {
            "p1": {
                "name": "p",
                "labels": [
                    {
                        "annotations": {
                            "objects": objects,
                            "classifications": [],
                            "relationships": [],
                        }
                    }
                ],
            }
        },
    }


LB_BOX = {
    "feature_id": "f1",
    "name": "bubble",
    "annotation_kind": "ImageBoundingBox",
    "bounding_box": {"top": 1, "left": 2, "height": 5, "width": 6},
}

LB_CASES: dict[str, tuple[Callable[[], str], str]] = {
    "invalid json on line 2": (
        lambda: json.dumps(lb_row([LB_BOX])) + "\n{not json\n",
        r"export\.ndjson:2:",
    ),
    "over-long line": (
        lambda: json.dumps(lb_row([LB_BOX])) + '\n{"x": "' + "y" * (17 * 1024 * 1024) + '"}\n',
        r"export\.ndjson:2: .*longer",
    ),
    "bounding_box as a string": (
        lambda: json.dumps(lb_row([{**LB_BOX, "bounding_box": "10,10"}])) + "\n",
        r"export\.ndjson:1: .*bounding_box",
    ),
    "external_id escapes": (
        lambda: json.dumps(lb_row([LB_BOX], external_id="../x")) + "\n",
        r"export\.ndjson:1: .*\.\./x",
    ),
}

CASES = (
    [("annotations.xml", name, make, pattern, []) for name, (make, pattern) in CVAT_CASES.items()]
    + [
        ("via.json", name, make, pattern, ["--size", "64x64"])
        for name, (make, pattern) in VIA_CASES.items()
    ]
    + [("export.ndjson", name, make, pattern, []) for name, (make, pattern) in LB_CASES.items()]
)


def digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def good_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good")
    export = root / "good.xml"
    export.write_text(cvat(image(BOX)))
    assert (
        main(["convert", str(export), "--to", "zarr,masks", "--out", str(root / "out"), "-q"]) == 0
    )
    return root / "out"


@pytest.mark.parametrize(
    ("filename", "case", "make", "pattern", "extra"),
    CASES,
    ids=[f"{c[0].split('.')[-1]}: {c[1]}" for c in CASES],
)
def test_bad_input(
    filename: str,
    case: str,
    make: Callable[[], str],
    pattern: str,
    extra: list[str],
    good_output: Path,
    tmp_path: Path,
    capsys: Capture,
) -> None:
    export = tmp_path / filename
    export.write_text(make(), encoding="utf-8")
    before = digest(good_output)
    new = tmp_path / "new.zarr"
    assert main(["convert", str(export), "--out", str(new), *extra]) == 2
    assert (
        main(["convert", str(export), "--to", "zarr,masks", "--out", str(good_output), *extra]) == 2
    )
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err[:2000]
    assert "Traceback" not in err
    assert lines[0].startswith("prep: error: ")
    assert filename in lines[0]
    assert re.search(pattern, lines[0]), lines[0][:500]
    assert "root:" not in err  # no local file content ever shows up
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]
    assert digest(good_output) == before


def test_undeclared_label_is_added_with_a_warning(tmp_path: Path, capsys: Capture) -> None:
    export = tmp_path / "annotations.xml"
    export.write_text(cvat(image('<box label="void" xtl="2" ytl="2" xbr="9" ybr="9"/>')))
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 0
    captured = capsys.readouterr()
    assert re.search(r"annotations\.xml:\d+.*'void'", captured.err)
    assert "void" in captured.out  # a class of its own in the summary table


def test_mask_url_is_never_fetched(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*_args: object, **_kw: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    mask = {
        "feature_id": "f2",
        "name": "bubble",
        "annotation_kind": "ImageSegmentationMask",
        "mask": {"url": "https://example.invalid/mask.png?token=secret"},
    }
    export = tmp_path / "export.ndjson"
    export.write_text(json.dumps(lb_row([LB_BOX, mask])) + "\n")
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 0
    captured = capsys.readouterr()
    assert "1 objects" in captured.out
    assert re.search(r"mask", captured.err)
    assert "secret" not in captured.out + captured.err


def test_via_bow_tie_converts_whole(tmp_path: Path, capsys: Capture) -> None:
    # its repair covers the same pixels (both lobes): it converts as drawn, without --repair
    export = tmp_path / "via.json"
    export.write_text(via(f"[{region(poly('[2, 12, 12, 2]', '[2, 12, 2, 12]'))}]"))
    out = tmp_path / "o"
    args = ["convert", str(export), "--size", "16x16", "--to", "masks", "--out", str(out)]
    assert main(args) == 0
    assert "repaired:" not in capsys.readouterr().out

    mask = np.asarray(Image.open(out / "masks" / "a.png"))
    assert (mask == 1).sum() == 50  # both triangles, never halved
