"""Killed runs: ``prep convert`` is killed (SIGKILL, SIGTERM) at several moments of writing an
output; the earlier output must survive byte for byte (or be put back by the next run), and no
child process may outlive the run.

The moments around the swap are reached through the testing hook
:data:`microprep.outputs.CRASH_ENV`, which makes the run kill itself with SIGKILL there; the
moment "writing" is a run paused inside the conversion and killed from here.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from microprep.cli.main import main
from microprep.outputs import CRASH_ENV, NO_EXCHANGE_ENV, atomic_output

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

#: Runs ``prep`` with two test switches: CHAOS_BESIDE forces the checks into a second process
#: (as for a large export), CHAOS_PAUSE pauses the run inside the conversion.
RUNNER = """
import os, sys, time

import microprep.conversion as conversion
from microprep.cli.main import main


def paused(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(300)


if __name__ == "__main__":  # not in the checker process, which imports this module too
    if os.environ.get("CHAOS_BESIDE"):
        conversion.check_beside_worthwhile = lambda export: True
    if os.environ.get("CHAOS_PAUSE"):
        conversion._targets = paused
    sys.exit(main(sys.argv[1:]))
"""

NEW_IMAGE = (
    '<image id="0" name="a.png" width="32" height="24">\n'
    '  <box label="bubble" occluded="0" source="manual" xtl="1" ytl="1" xbr="20"'
    ' ybr="20" z_order="0"/>\n'
    "</image>"
)

KINDS = {"zarr": "zarr", "files": "masks,coco,yolo"}
#: moment -> (environment of the killed run, what OUT holds right after the kill)
MOMENTS = {
    "writing": ({"CHAOS_PAUSE": "1"}, "earlier"),
    "before-swap": ({CRASH_ENV: "before-swap"}, "earlier"),
    "swap-gap": ({CRASH_ENV: "swap-gap", NO_EXCHANGE_ENV: "1"}, "missing"),
    "after-swap": ({CRASH_ENV: "after-swap"}, "new"),
    "after-two-renames": ({CRASH_ENV: "after-swap", NO_EXCHANGE_ENV: "1"}, "new"),
}


def digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def start(tmp_path: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Run ``prep ARGS`` under the runner; stderr goes to ``tmp_path/stderr.txt`` (a pipe would
    be held open by a process that outlives the run)."""
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    with (tmp_path / "stderr.txt").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(runner), *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs; never waits on its pipes."""
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"the run did not pause: {line!r} (see stderr.txt)"


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


def wait_gone(pids: list[int], *, limit_s: float = 10.0) -> list[int]:
    """Poll until none of ``pids`` runs (at most ``limit_s``); the ones still running."""
    end = time.monotonic() + limit_s
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < end:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_killed_run_keeps_the_earlier_output(
    tmp_path: Path, write_cvat: Callable[..., Path], kind: str, moment: str
) -> None:
    out = tmp_path / "out"
    to = ["--to", KINDS[kind]]
    old_export, new_export = write_cvat(), write_cvat(NEW_IMAGE, name="new.xml")
    reference = tmp_path / "reference"
    assert main(["convert", str(new_export), *to, "--out", str(reference), "-q"]) == 0
    assert main(["convert", str(old_export), *to, "--out", str(out), "-q"]) == 0
    earlier = digest(out)

    env, expected = MOMENTS[moment]
    proc = start(tmp_path, ["convert", str(new_export), *to, "--out", str(out), "-q"], env)
    try:
        if moment == "writing":
            wait_ready(proc)
            proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=120) == -signal.SIGKILL
    finally:
        stop(proc)

    if expected == "missing":
        assert not out.exists()
        assert list(tmp_path.glob(".out.old-*"))
    else:
        new = {**digest(reference)}
        assert digest(out) == (earlier if expected == "earlier" else new)

    # the next run takes the dead run's lock over and cleans up (here it fails on purpose,
    # so what it leaves is what it found, healed)
    with pytest.raises(RuntimeError), atomic_output(out):
        raise RuntimeError("the next run fails")
    assert digest(out) == (digest(reference) if expected == "new" else earlier)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out."))) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_the_checker_process_dies_with_its_run(
    tmp_path: Path, write_cvat: Callable[..., Path], sig: signal.Signals
) -> None:
    out = tmp_path / "out"
    earlier_export = write_cvat()
    assert main(["convert", str(earlier_export), "--out", str(out), "-q"]) == 0
    earlier = digest(out)
    env = {"CHAOS_BESIDE": "1", "CHAOS_PAUSE": "1"}
    proc = start(tmp_path, ["convert", str(earlier_export), "--out", str(out), "-q"], env)
    try:
        wait_ready(proc)
        kids = children(proc.pid)
        assert kids, "the checks should run in a second process"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == -sig
    finally:
        stop(proc)
    assert wait_gone(kids) == []
    assert digest(out) == earlier
