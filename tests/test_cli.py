"""The ``prep`` command: help, version, conversion, and bad input that must leave outputs alone."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import microprep
from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert

Capture = pytest.CaptureFixture[str]


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its SHA-256: equal digests mean an untouched output."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_version_and_help(capsys: Capture) -> None:
    assert main(["--version"]) == 0
    assert microprep.__version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "convert" in capsys.readouterr().out
    assert main(["convert", "--help"]) == 0
    assert "--to" in capsys.readouterr().out


def test_convert_to_every_target(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat()
    out = tmp_path / "out"
    code = main(["convert", str(export), "--to", "zarr,masks,onehot,coco,yolo", "--out", str(out)])
    assert code == 0
    report = capsys.readouterr().out
    assert "1 images, 2 shapes -> 2 objects" in report
    for part in ("dataset.zarr", "masks/a.png", "onehot/a.npy", "coco.json", "labels/a.txt"):
        assert (out / part).exists(), part
    ds = microprep.open_dataset(out / "dataset.zarr")
    labels = ds[0]["labels"].values
    onehot = np.load(out / "onehot" / "a.npy")
    np.testing.assert_array_equal(onehot.argmax(axis=0), labels)
    assert labels[5, 5] == 2  # the box is precipitate (class 2)
    assert labels[12, 20] == 1  # the ellipse is bubble (class 1)


def test_convert_replaces_an_earlier_output(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    export = write_cvat()
    out = tmp_path / "d.zarr"
    assert main(["convert", str(export), "--out", str(out), "-q"]) == 0
    first = tree_digest(out)
    assert main(["convert", str(export), "--out", str(out), "-q", "--line-width", "5"]) == 0
    assert tree_digest(out).keys() == first.keys()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


BAD_INPUTS = {
    "doctype": (
        '<image id="0" name="a.png" width="8" height="8"/>',
        {"prologue": '<!DOCTYPE a [<!ENTITY x "xx">]>\n'},
        r"DOCTYPE",
    ),
    "nan": (
        '<image id="0" name="a.png" width="8" height="8">'
        '<polygon label="bubble" points="1,1;nan,2;3,3"/></image>',
        {},
        r"NaN|nan",
    ),
    "reversed box": (
        '<image id="0" name="a.png" width="8" height="8">'
        '<box label="bubble" xtl="5" ytl="1" xbr="2" ybr="4"/></image>',
        {},
        r"box",
    ),
    "rle sum": (
        '<image id="0" name="a.png" width="8" height="8">'
        '<mask label="bubble" rle="1,2,3" left="0" top="0" width="2" height="2"/></image>',
        {},
        r"RLE|rle|run",
    ),
    "zero width": ('<image id="0" name="a.png" width="0" height="8"/>', {}, r"width"),
    "negative height": ('<image id="0" name="a.png" width="8" height="-3"/>', {}, r"height"),
    "huge size": ('<image id="0" name="a.png" width="100000" height="8"/>', {}, r"width"),
    "escaping name": ('<image id="0" name="../../x.png" width="8" height="8"/>', {}, r"\.\./"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_names_the_place_and_writes_nothing(
    case: str, write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    images, kw, pattern = BAD_INPUTS[case]
    export = write_cvat(images, **kw)
    good = tmp_path / "good.zarr"
    assert main(["convert", str(write_cvat(name="good.xml")), "--out", str(good), "-q"]) == 0
    before = tree_digest(good)
    capsys.readouterr()
    new = tmp_path / "new.zarr"
    assert main(["convert", str(export), "--out", str(new)]) == 2
    assert main(["convert", str(export), "--out", str(good)]) == 2
    err = capsys.readouterr().err
    first_line = err.strip().splitlines()[0]
    assert "annotations.xml" in first_line
    assert re.search(r"annotations\.xml:\d+", first_line), first_line
    assert re.search(pattern, first_line), first_line
    assert "Traceback" not in err
    assert not new.exists()
    assert tree_digest(good) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["annotations.xml", "good.xml", "good.zarr"]
    )


def test_truncated_file_reports_line_and_column(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat()
    export.write_text(export.read_text()[:-60])
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 2
    assert re.search(r"annotations\.xml:\d+:\d+", capsys.readouterr().err)
    assert not (tmp_path / "o.zarr").exists()


def test_verbose_shows_the_traceback(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat('<image id="0" name="a.png" width="0" height="8"/>')
    assert main(["-v", "convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_image_file_fails_unless_skipped(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat()
    images = tmp_path / "imgs"
    images.mkdir()
    out = tmp_path / "o.zarr"
    assert main(["convert", str(export), "--images", str(images), "--out", str(out)]) == 2
    assert "a.png" in capsys.readouterr().err
    assert not out.exists()
    args = ["convert", str(export), "--images", str(images), "--out", str(out), "--skip-missing"]
    assert main(args) == 0
    assert "skipped 1 images without a file: a.png" in capsys.readouterr().out
    assert len(microprep.open_dataset(out)) == 0


def test_locked_output_is_refused(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "o.zarr"
    lock = tmp_path / "o.zarr.lock"
    lock.write_text(f"{os.getpid()} {os.uname().nodename}\n")
    assert main(["convert", str(write_cvat()), "--out", str(out)]) == 2
    assert "locked" in capsys.readouterr().err
    assert not out.exists()
    assert lock.exists()


def test_interrupted_run_keeps_the_earlier_output(
    write_cvat: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = write_cvat()
    out = tmp_path / "o"
    convert(export, out, ConvertOptions(to=("zarr", "masks")))
    before = tree_digest(out)

    def interrupted(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("microprep.conversion.build_targets", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(export, out, ConvertOptions(to=("zarr", "masks")))
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.xml", "o"]


def test_a_bug_is_one_line_exit_3_and_keeps_the_earlier_output(
    write_cvat: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
) -> None:
    export = write_cvat()
    out = tmp_path / "o"
    assert main(["convert", str(export), "--to", "zarr,masks", "--out", str(out), "-q"]) == 0
    before = tree_digest(out)

    def broken(*_args: object, **_kw: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("microprep.conversion.build_targets", broken)
    capsys.readouterr()
    assert main(["convert", str(export), "--to", "zarr,masks", "--out", str(out), "-q"]) == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: division by zero" in err
    assert "Traceback" not in err
    assert tree_digest(out) == before
    assert main(["-v", "convert", str(export), "--to", "zarr", "--out", str(out), "-q"]) == 3
    assert "Traceback" in capsys.readouterr().err


# a bow-tie whose left lobe is traced twice: its repair fills pixels the outline leaves empty
BOW_TIE = (
    '<image id="0" name="a.png" width="16" height="16">'
    '<polygon label="precipitate" points="2,2;7,7;2,12;2,2;7,7;12,2;12,12;7,7;2,12"/></image>'
)


def test_convert_refuses_a_bow_tie_and_repairs_it_whole(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat(BOW_TIE)
    out = tmp_path / "o.zarr"
    assert main(["convert", str(export), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "a.png" in err
    assert "--repair" in err
    assert not out.exists()
    assert main(["convert", str(export), "--out", str(out), "--repair"]) == 0
    assert "repaired" in capsys.readouterr().out
    ds = microprep.open_dataset(out)
    objects = ds.instances(0)
    # both triangles of the bow-tie stay, as one object (never halved)
    assert len(objects) == 1
    assert objects.areas[0] == (ds[0]["labels"].values == 2).sum()
    assert 40 <= objects.areas[0] <= 60


def test_checks_in_a_second_process_refuse_the_same_way(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    from microprep.errors import ValidationError

    good_out, bad_out = tmp_path / "good", tmp_path / "bad"
    convert(write_cvat(name="good.xml"), good_out, ConvertOptions(check_beside=True))
    assert len(microprep.open_dataset(good_out)) == 1
    with pytest.raises(ValidationError, match="self-intersection"):
        convert(write_cvat(BOW_TIE), bad_out, ConvertOptions(check_beside=True))
    assert not bad_out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.xml", "good", "good.xml"]
