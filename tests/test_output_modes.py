"""Every output follows the user's umask: files get ``0o666 & ~umask`` and folders
``0o777 & ~umask``, as a plain ``open()`` or ``mkdir()`` would give them (never mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from microprep.cli.main import main
from microprep.outputs import atomic_output, write_file_atomic

UMASKS = [0o022, 0o077, 0o002]


@pytest.fixture(params=UMASKS, ids=[f"umask{m:03o}" for m in UMASKS])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this umask, restoring the process's one after."""
    mask: int = request.param
    before = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_file_atomic_follows_the_umask(tmp_path: Path, umask: int) -> None:
    out = write_file_atomic(tmp_path / "a.txt", b"hi")
    assert mode(out) == 0o666 & ~umask
    replaced = write_file_atomic(tmp_path / "a.txt", b"again")  # the replacement too
    assert mode(replaced) == 0o666 & ~umask


def test_atomic_output_folder_follows_the_umask(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "out"
    with atomic_output(out) as tmp:
        (tmp / "x.txt").write_text("x")
    assert mode(out) == 0o777 & ~umask
    assert mode(out / "x.txt") == 0o666 & ~umask
    assert mode(out / ".microprep-output") == 0o666 & ~umask


def test_validate_json_report_follows_the_umask(
    tmp_path: Path, write_cvat: Callable[..., Path], umask: int
) -> None:
    report = tmp_path / "report.json"
    assert main(["validate", str(write_cvat()), "--json", str(report)]) == 0
    assert mode(report) == 0o666 & ~umask


def test_converted_store_follows_the_umask(
    tmp_path: Path, write_cvat: Callable[..., Path], umask: int
) -> None:
    out = tmp_path / "d.zarr"
    assert main(["convert", str(write_cvat()), "--out", str(out), "-q"]) == 0
    found = [out, *out.rglob("*")]
    assert len(found) > 3
    wrong = {
        str(p.relative_to(tmp_path)): oct(mode(p))
        for p in found
        if mode(p) != (0o777 if p.is_dir() else 0o666) & ~umask
    }
    assert wrong == {}
