"""Atomic outputs: an earlier output is replaced only by a complete new one, under a lock."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microprep.errors import LockedError, StoreError
from microprep.outputs import atomic_output


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its SHA-256: equal digests mean an untouched folder."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def write_output(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        (tmp / "data.txt").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "more.txt").write_text(text * 2)


def fail_inside(path: Path, error: BaseException) -> None:
    """Write part of an output, then fail."""
    with atomic_output(path) as tmp:
        (tmp / "data.txt").write_text("half written")
        raise error


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".lock")


def test_writes_and_replaces_leaving_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    assert (out / "data.txt").read_text() == "one"
    write_output(out, "two")
    assert (out / "data.txt").read_text() == "two"
    assert (out / "sub" / "more.txt").read_text() == "twotwo"
    assert leftovers(tmp_path) == []


def test_yields_an_empty_folder_beside_the_target(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    with atomic_output(out) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.tmp-")
        assert list(tmp.iterdir()) == []
        assert (tmp_path / "out.lock").read_text().split() == [
            str(os.getpid()),
            socket.gethostname(),
        ]
        (tmp / "x").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == [".microprep-output", "x"]


def test_creates_missing_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    write_output(out, "one")
    assert (out / "data.txt").read_text() == "one"


def test_overwrite_false_refuses_before_doing_anything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    before = tree_digest(out)
    entered = False
    with pytest.raises(StoreError, match="already exists"), atomic_output(out, overwrite=False):
        entered = True
    assert not entered
    assert tree_digest(out) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_inside_keeps_the_earlier_output(tmp_path: Path, error: BaseException) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    before = tree_digest(out)
    with pytest.raises(type(error)):
        fail_inside(out, error)
    assert tree_digest(out) == before
    assert leftovers(tmp_path) == []


def test_failure_on_first_write_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="bad"):
        fail_inside(out, ValueError("bad"))
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_live_lock_is_respected(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    before = tree_digest(out)
    lock = tmp_path / "out.lock"
    lock.write_text(f"{os.getpid()}\n{socket.gethostname()}\n")
    lock_before = lock.read_bytes()
    with pytest.raises(LockedError) as info, atomic_output(out):
        pytest.fail("entered a locked output")
    message = str(info.value)
    assert f"pid {os.getpid()}" in message
    assert str(lock) in message
    assert "remove the lock file" in message
    assert tree_digest(out) == before
    assert lock.read_bytes() == lock_before
    assert leftovers(tmp_path) == ["out.lock"]


def test_nested_use_of_the_same_output_is_locked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output(out), pytest.raises(LockedError), atomic_output(out):
        pass
    assert out.is_dir()
    assert leftovers(tmp_path) == []


def test_lock_of_another_host_is_respected(tmp_path: Path) -> None:
    lock = tmp_path / "out.lock"
    lock.write_text("12345\nsome-other-host.example\n")
    with pytest.raises(LockedError, match="some-other-host"), atomic_output(tmp_path / "out"):
        pass
    assert lock.exists()


def test_stale_lock_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    pid = dead_pid()
    (tmp_path / "out.lock").write_text(f"{pid}\n{socket.gethostname()}\n")
    with caplog.at_level(logging.WARNING, logger="microprep.outputs"):
        write_output(out, "two")
    assert (out / "data.txt").read_text() == "two"
    assert any(
        "stale lock" in r.getMessage() and str(pid) in r.getMessage() for r in caplog.records
    )
    assert leftovers(tmp_path) == []


def test_unreadable_lock_is_fresh_then_stale(tmp_path: Path) -> None:
    lock = tmp_path / "out.lock"
    lock.write_text("")
    with pytest.raises(LockedError, match="being written"), atomic_output(tmp_path / "out"):
        pass
    old = time.time() - 3600
    os.utime(lock, (old, old))
    write_output(tmp_path / "out", "one")
    assert leftovers(tmp_path) == []


def test_lock_is_released_after_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output(out):
        raise RuntimeError("x")
    assert not (tmp_path / "out.lock").exists()
    write_output(out, "after")
    assert (out / "data.txt").read_text() == "after"


def test_leftovers_of_a_killed_run_are_cleaned_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    stale_tmp = tmp_path / f".out.tmp-{dead_pid()}-abcd1234"
    stale_tmp.mkdir()
    (stale_tmp / "junk").write_text("junk")
    write_output(out, "two")
    assert not stale_tmp.exists()
    assert leftovers(tmp_path) == []


def test_output_moved_aside_by_a_killed_swap_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "one")
    aside = tmp_path / f".out.old-{dead_pid()}-abcd1234"
    out.rename(aside)
    with pytest.raises(RuntimeError), atomic_output(out):
        raise RuntimeError("interrupted again")
    assert (out / "data.txt").read_text() == "one"
    assert leftovers(tmp_path) == []


def test_refuses_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(StoreError, match="not a folder"), atomic_output(target):
        pass
    assert target.read_text() == "keep me"


def test_refuses_to_replace_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for target in (work, tmp_path):
        with pytest.raises(StoreError, match="refusing"), atomic_output(target):
            pass
    assert work.is_dir()
