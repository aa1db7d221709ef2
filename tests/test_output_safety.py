"""Outputs never touch inputs, replace only microprep outputs (or with --force), follow a
symlinked OUT to its target, and the system's refusals (full disk, name too long) are one line
and exit 2 with the earlier output untouched. Everything through the CLI."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from microprep.cli.main import main
from microprep.output_swap import exchange as _exchange
from microprep.outputs import MARKER

Capture = pytest.CaptureFixture[str]


def digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its SHA-256 (equal digests: an untouched tree)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def one_error_line(capsys: Capture, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("prep: error: "), err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def inputs(tmp_path: Path, write_cvat: Callable[..., Path]) -> Path:
    """``in/annotations.xml``, ``in/a.png`` and a note of the user's, as a user lays them out."""
    folder = tmp_path / "in"
    folder.mkdir()
    export = write_cvat()
    export.rename(folder / "annotations.xml")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(folder / "a.png")
    (folder / "notes.txt").write_text("mine")
    return folder


def test_out_holding_the_export_is_refused(inputs: Path, capsys: Capture) -> None:
    before = digest(inputs)
    export = str(inputs / "annotations.xml")
    assert main(["convert", export, "--to", "masks,coco", "--out", str(inputs), "-q"]) == 2
    one_error_line(capsys, "refusing to write", "holds the input", "annotations.xml")
    assert digest(inputs) == before


@pytest.mark.parametrize("where", ["same", "inside"])
def test_out_at_or_inside_the_images_folder_is_refused(
    inputs: Path, capsys: Capture, where: str
) -> None:
    before = digest(inputs)
    out = inputs if where == "same" else inputs / "out"
    args = ["convert", str(inputs / "annotations.xml"), "--images", str(inputs), "--out", str(out)]
    assert main(args) == 2
    one_error_line(capsys, "refusing to write", "the input")
    assert digest(inputs) == before
    assert not (inputs / "out").exists()


def test_out_holding_the_classes_file_is_refused(
    tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    folder = tmp_path / "cls"
    folder.mkdir()
    (folder / "classes.txt").write_text("background\nbubble\nprecipitate\n")
    before = digest(folder)
    args = ["convert", str(write_cvat()), "--classes", str(folder / "classes.txt")]
    assert main([*args, "--to", "masks", "--out", str(folder)]) == 2
    one_error_line(capsys, "holds the input", "classes.txt")
    assert digest(folder) == before


@pytest.fixture
def store(tmp_path: Path, write_cvat: Callable[..., Path]) -> Path:
    out = tmp_path / "d.zarr"
    assert main(["convert", str(write_cvat()), "--out", str(out), "-q"]) == 0
    return out


@pytest.mark.parametrize(
    "command",
    [
        ["crop", "{s}", "--window", "8", "--out", "{s}"],
        ["crop", "{s}", "--window", "8", "--out", "{s}/crops.zarr"],
        ["augment", "{s}", "--out", "{s}"],
        ["preview", "{s}", "--out", "{s}/previews"],
        ["split", "{s}", "--out", "{s}/splits.json"],
        ["evaluate", "{s}", "{s}", "--json", "{s}/report.json"],
        ["train", "unet", "{s}", "--out", "{s}/run"],
        ["export", "{s}", "--to", "masks", "--out", "{s}/masks"],
        ["export-annotations", "{s}", "--to", "cvat", "--out", "{s}/pre.xml"],
    ],
    ids=[
        "crop-same",
        "crop-inside",
        "augment",
        "preview",
        "split",
        "evaluate",
        "train",
        "export",
        "export-annotations",
    ],
)
def test_every_writing_command_refuses_an_output_in_its_store(
    store: Path, capsys: Capture, command: list[str]
) -> None:
    before = digest(store)
    assert main([part.format(s=store) for part in command]) == 2
    one_error_line(capsys, "refusing to write", str(store))
    assert digest(store) == before


def test_a_folder_that_is_no_microprep_output_is_replaced_only_with_force(
    tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    args = ["convert", str(write_cvat()), "--to", "masks", "--out", str(out), "-q"]
    assert main(args) == 2
    one_error_line(capsys, "refusing to replace", "thesis.tex", "--force")
    assert (out / "thesis.tex").read_text() == "years of work"
    assert main([*args, "--force"]) == 0
    assert not (out / "thesis.tex").exists()
    assert (out / MARKER).is_file() and (out / "classes.txt").is_file()
    assert main(args) == 0  # now it is a microprep output: replaced without --force


def test_an_empty_folder_and_a_store_without_the_marker_are_replaced(
    tmp_path: Path, write_cvat: Callable[..., Path], store: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    export = str(write_cvat())
    assert main(["convert", export, "--to", "coco", "--out", str(empty), "-q"]) == 0
    assert (empty / "coco.json").is_file()
    (store / MARKER).unlink()  # a store written before the marker existed
    assert main(["convert", export, "--out", str(store), "-q", "--line-width", "5"]) == 0
    assert (store / MARKER).is_file()


def test_a_symlinked_out_keeps_its_link_and_uses_its_targets_lock(
    tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture
) -> None:
    real = tmp_path / "real.zarr"
    link = tmp_path / "link.zarr"
    link.symlink_to(real, target_is_directory=True)
    export = str(write_cvat())
    assert main(["convert", export, "--out", str(link), "-q"]) == 0
    assert main(["convert", export, "--out", str(link), "-q", "--line-width", "5"]) == 0
    assert link.is_symlink() and (real / "zarr.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # a live run holding the target's lock keeps a run through the link out
    (tmp_path / "real.zarr.lock").write_text(f"{os.getpid()}\n{socket.gethostname()}\n")
    assert main(["convert", export, "--out", str(link), "-q"]) == 2
    one_error_line(capsys, "locked", "real.zarr.lock")


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="renameat2 is Linux's")
def test_exchange_trades_two_folders_in_one_step(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("from a")
    (b / "x").write_text("from b")
    if not _exchange(a, b):
        pytest.skip("this file system cannot exchange")
    assert (a / "x").read_text() == "from b" and (b / "x").read_text() == "from a"


def _enospc(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "somewhere/masks/a.png")


def _patch_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image.Image, "save", _enospc)


def _patch_onehot(monkeypatch: pytest.MonkeyPatch) -> None:
    import microprep.exports.masks as masks

    monkeypatch.setattr(masks.np, "save", _enospc)


def _patch_coco(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "coco.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


def _patch_zarr(monkeypatch: pytest.MonkeyPatch) -> None:
    import zarr.storage._local as local

    def put(path: Path, *_args: Any, **_kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(local, "_put", put)


@pytest.mark.parametrize(
    ("kind", "patch"),
    [
        ("masks", _patch_masks),
        ("onehot", _patch_onehot),
        ("coco", _patch_coco),
        ("zarr", _patch_zarr),
    ],
)
def test_a_full_disk_is_one_line_exit_2_and_the_earlier_output_stays(
    tmp_path: Path,
    write_cvat: Callable[..., Path],
    capsys: Capture,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    patch: Callable[[pytest.MonkeyPatch], None],
) -> None:
    export = str(write_cvat())
    out = tmp_path / "out"
    assert main(["convert", export, "--to", kind, "--out", str(out), "-q"]) == 0
    before = digest(out)
    patch(monkeypatch)
    assert main(["convert", export, "--to", kind, "--out", str(out), "-q"]) == 2
    err = one_error_line(capsys, "no space left", "free some space")
    assert ".tmp-" not in err  # names the output, not a temporary folder that is gone
    monkeypatch.undo()
    assert digest(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize("kind", ["masks", "onehot", "yolo"])
def test_a_300_character_image_name_is_a_user_error(
    tmp_path: Path, write_cvat: Callable[..., Path], capsys: Capture, kind: str
) -> None:
    name = "m" * 300 + ".png"
    image = f'<image id="0" name="{name}" width="8" height="8"></image>'
    out = tmp_path / "out"
    assert main(["convert", str(write_cvat(image)), "--to", kind, "--out", str(out), "-q"]) == 2
    one_error_line(capsys, "file name too long", "shorten")
    assert not out.exists()
