"""Putting a complete output in place of the earlier one, and cleaning up after runs that died.

:func:`swap` trades the new folder and the earlier output in one step where the OS can (Linux
``renameat2(RENAME_EXCHANGE)``, :func:`exchange`); elsewhere two renames do it, and a run
killed between them leaves the earlier output at ``.NAME.old-*``, which :func:`recover` (the
next run, under the lock) puts back. Used by :func:`microprep.outputs.atomic_output`.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "new").mkdir(); _ = (root / "new" / "a").write_text("1")
    >>> swap(root / "new", root / "out"); sorted(p.name for p in root.iterdir())
    ['out']
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from microprep.errors import StoreError

__all__ = ["CRASH_ENV", "NO_EXCHANGE_ENV", "exchange", "exists", "recover", "swap"]

logger = logging.getLogger("microprep.outputs")

#: Testing hook: a run whose environment names one of the moments of :func:`swap`
#: (``before-swap``, ``swap-gap``, ``after-swap``) kills itself there with SIGKILL.
CRASH_ENV = "MICROPREP_CRASH_AT"
#: Testing hook: set to 1 to swap by two renames even where the OS exchanges in one step.
NO_EXCHANGE_ENV = "MICROPREP_NO_EXCHANGE"


def exists(path: Path) -> bool:
    """True when ``path`` exists or is a symlink (a broken one included)."""
    return path.exists() or path.is_symlink()


def leftovers(path: Path, kind: str) -> list[Path]:
    """Folders ``.<name>.<kind>-*`` beside ``path``, oldest first."""
    prefix = f".{path.name}.{kind}-"
    found = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def recover(path: Path) -> None:
    """Under the lock: clean up after runs that died (their temp folders are garbage).

    A run killed in the middle of a swap can leave the earlier output renamed to ``.old-*`` with
    nothing at ``path``; it is put back.
    """
    olds = leftovers(path, "old")
    if olds and not exists(path):
        latest = olds.pop()
        logger.warning("restoring %s from %s, left by an interrupted run", path, latest)
        try:
            latest.rename(path)
        except OSError as exc:
            raise StoreError(f"cannot restore {path} from {latest}: {exc}") from exc
    for leftover in [*olds, *leftovers(path, "tmp")]:
        logger.warning("removing %s, left by an interrupted run", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def crash_point(moment: str) -> None:
    """Testing hook: die here, as a kill -9 would, when :data:`CRASH_ENV` names ``moment``."""
    if os.environ.get(CRASH_ENV) == moment:
        os.kill(os.getpid(), signal.SIGKILL)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Trade the names of ``a`` and ``b`` in one step (Linux ``renameat2``); False when the OS
    or the file system cannot, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux") or os.environ.get(NO_EXCHANGE_ENV) == "1":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without renameat2 (glibc < 2.28, musl < 1.2.x)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap(tmp: Path, path: Path) -> None:
    """Put ``tmp`` in place at ``path``; an existing ``path`` is replaced only if that succeeds.

    Where the OS allows it the two folders trade names in one step; otherwise the earlier
    output is renamed aside first, and a run killed before the second rename leaves ``path``
    missing until the next run puts the earlier output back (:func:`recover`).
    """
    old: Path | None = None
    crash_point("before-swap")
    if exists(path):
        try:
            exchanged = exchange(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot move the new output into place at {path}: {exc}") from exc
        if exchanged:
            crash_point("after-swap")
            remove_earlier(tmp)  # tmp now holds the earlier output
            return
        old = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.rename(old)
        except OSError as exc:
            raise StoreError(f"cannot move the earlier output {path} aside: {exc}") from exc
        crash_point("swap-gap")
    try:
        tmp.rename(path)
    except BaseException as exc:
        if old is not None:
            try:
                old.rename(path)
            except OSError as undo:
                raise StoreError(
                    f"cannot move the new output into place at {path} ({exc}), nor the earlier "
                    f"one back ({undo}); the earlier output is at {old}"
                ) from exc
        if isinstance(exc, OSError):
            raise StoreError(f"cannot move the new output into place at {path}: {exc}") from exc
        raise
    if old is not None:
        crash_point("after-swap")
        remove_earlier(old)


def remove_earlier(old: Path) -> None:
    """Delete the earlier output ``old`` after a swap (a failure is only a warning)."""
    try:
        shutil.rmtree(old)
    except OSError as exc:
        logger.warning("the new output is in place; cannot remove the earlier one %s: %s", old, exc)
