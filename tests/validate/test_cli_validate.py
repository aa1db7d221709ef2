"""``prep validate``: exit codes, the JSON report, bad input, options, and its speed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import microprep.readers
from microprep.cli import main as cli_main
from microprep.cli.validate import validate_command
from microprep.readers import read_annotations

Capture = pytest.CaptureFixture[str]
Prep = Callable[[Sequence[str]], int]

# a bow-tie whose left lobe is traced twice: make_valid fills the lobe the drawn outline leaves
# empty (even-odd), so its repair changes pixels
RETRACED = (
    '<image id="0" name="a.png" width="32" height="24">'
    '<polygon label="precipitate" occluded="0" source="manual"'
    ' points="0,0;5,5;0,10;0,0;5,5;10,0;10,10;5,5;0,10" z_order="0"/></image>'
)
UNDECLARED = (
    '<image id="0" name="a.png" width="32" height="24">'
    '<box label="crack" occluded="0" source="manual" xtl="1" ytl="1" xbr="5" ybr="5"'
    ' z_order="0"/>'
    '<box label="precipitate" occluded="0" source="manual" xtl="8" ytl="1" xbr="12" ybr="5"'
    ' z_order="0"/>'
    '<ellipse label="bubble" occluded="0" source="manual" cx="20" cy="12" rx="3" ry="2"'
    ' z_order="0"/></image>'
)


@pytest.fixture
def prep(monkeypatch: pytest.MonkeyPatch) -> Prep:
    """``prep``'s main(), with the validate command registered for the test if it is not yet."""
    if "validate" not in cli_main.cli.commands:
        monkeypatch.setitem(cli_main.cli.commands, "validate", validate_command)
    return cli_main.main


def test_clean_export_exits_0(prep: Prep, write_cvat: Callable[..., Path], capsys: Capture) -> None:
    assert prep(["validate", str(write_cvat())]) == 0
    out = capsys.readouterr().out
    assert "1 images, 2 shapes" in out and "no findings" in out
    assert "\x1b" not in out  # no colour codes when the output is not a terminal


def test_warnings_exit_0_or_1_with_strict(
    prep: Prep, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    export = write_cvat(UNDECLARED)
    assert prep(["validate", str(export)]) == 0
    out = capsys.readouterr().out
    assert "undeclared-label" in out and "reader-warning" in out
    assert prep(["validate", str(export), "--strict"]) == 1


def test_errors_exit_2_and_the_json_report(
    prep: Prep, write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat(RETRACED)
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    report = out_dir / "report.json"
    assert prep(["validate", str(export), "--json", str(report)]) == 2
    assert "polygon-self-intersection" in capsys.readouterr().out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["source"] == str(export)
    assert data["summary"]["errors"] == 1
    (finding,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert finding["code"] == "polygon-self-intersection"
    assert finding["image"] == "a.png" and finding["shape"] == 0
    assert finding["details"]["area_after"] == pytest.approx(50.0)
    assert [p.name for p in out_dir.iterdir()] == ["report.json"]  # no temporary file left


def test_bad_input_exits_2_without_a_report(
    prep: Prep, tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotations><version>1.1</version><image id='0'", encoding="utf-8")
    report = tmp_path / "report.json"
    assert prep(["validate", str(bad), "--format", "cvat", "--json", str(report)]) == 2
    assert "prep: error" in capsys.readouterr().err
    assert not report.exists()
    assert prep(["validate", str(tmp_path / "missing.xml"), "--json", str(report)]) == 2
    assert not report.exists()
    nowhere = tmp_path / "no" / "report.json"
    assert prep(["validate", str(write_cvat()), "--json", str(nowhere)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert prep(["validate", str(write_cvat()), "--format", "nope"]) == 2


def test_size_option(prep: Prep, write_cvat: Callable[..., Path], capsys: Capture) -> None:
    export = str(write_cvat())
    for bad in ("512", "512x", "0x5", "ax5", "5x5x5"):
        assert prep(["validate", export, "--size", bad]) == 2, bad
        assert "WIDTHxHEIGHT" in capsys.readouterr().err or bad == "0x5"


def test_reader_options_are_passed_through(
    prep: Prep, write_cvat: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def spy(path: Path, **kw: Any) -> Any:
        seen.update(kw)
        return read_annotations(path, format=kw["format"])

    monkeypatch.setattr(microprep.readers, "read_annotations", spy)
    args = ["--size", "640X480", "--label-attribute", "class", "--masks", str(tmp_path)]
    assert prep(["validate", str(write_cvat()), "--format", "cvat", *args]) == 0
    options = seen["options"]
    assert (options.size, options.label_attribute, options.masks) == ((640, 480), "class", tmp_path)
    assert seen["format"] == "cvat" and options.images is None


def test_image_folder_checks(
    prep: Prep, write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = str(write_cvat())
    images = tmp_path / "images"
    images.mkdir()
    assert prep(["validate", export, "--images", str(images)]) == 2
    assert "missing-image-file" in capsys.readouterr().out
    Image.new("L", (32, 20)).save(images / "a.png")
    assert prep(["validate", export, "--images", str(images)]) == 2
    assert "image-size-mismatch" in capsys.readouterr().out
    Image.new("L", (32, 24)).save(images / "a.png")
    assert prep(["validate", export, "--images", str(images)]) == 0


# ----------------------------------------------------------------------------- stress export


def _random_polygon(n: int, size: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    pts = ";".join(f"{x:.2f},{y:.2f}" for x, y in rng.random((n, 2)) * size)
    return (
        f'<image id="0" name="a.png" width="{size}" height="{size}">'
        f'<polygon label="precipitate" occluded="0" source="manual" points="{pts}"'
        ' z_order="0"/></image>'
    )


def test_a_random_9999_vertex_polygon_is_refused_as_too_complex(
    prep: Prep, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    export = write_cvat(_random_polygon(9_999, 1000, seed=0))
    assert prep(["validate", str(export)]) == 2
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("error")]
    assert "too-complex" in line and "a.png" in line and "9999 vertices" in line


def test_a_polygon_over_the_vertex_cap_is_refused_by_convert(
    prep: Prep, write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat(_random_polygon(10_001, 1000, seed=1))
    assert prep(["convert", str(export), "-o", str(tmp_path / "d.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "too-many-vertices" in err[0] and "10001 vertices" in err[0] and "'a.png'" in err[0]
    assert not (tmp_path / "d.zarr").exists()


def test_an_invalid_polygon_under_the_crossing_cap_is_still_judged_by_its_pixels(
    prep: Prep, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    # 40 random vertices: about 160 crossings, under MAX_SELF_CROSSINGS
    export = write_cvat(_random_polygon(40, 100, seed=2))
    assert prep(["validate", str(export)]) in (0, 2)
    out = capsys.readouterr().out
    assert "the outline crosses itself" in out and "make_valid" in out
    assert "too-complex" not in out
