"""The lock of an output being written: ``<output>.lock`` holding ``"<pid>\\n<hostname>\\n"``.

:func:`acquire` creates it exclusively; a lock whose process no longer exists (on this host) is
taken over once, with a warning; a live one, or one from another host, is a
:class:`~microprep.errors.LockedError` naming the lock file. :func:`release` removes it unless
another run has taken it meanwhile. Used by :func:`microprep.outputs.atomic_output`.

Example:
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out"
    >>> lock = lock_path(out)
    >>> acquire(lock, out); read_lock(lock) == (os.getpid(), host())
    True
    >>> release(lock); lock.exists()
    False
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import time
from pathlib import Path

from microprep.errors import LockedError, StoreError

__all__ = ["acquire", "host", "lock_path", "pid_alive", "read_lock", "release"]

logger = logging.getLogger("microprep.outputs")

#: A lock file that cannot be parsed is taken for one being written until it is this old (s).
_UNREADABLE_LOCK_GRACE_S = 10.0


def lock_path(path: Path) -> Path:
    """The lock file of the output ``path``: ``<path>.lock`` beside it."""
    return path.with_name(path.name + ".lock")


def host() -> str:
    """This machine's host name, as lock files record it."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def read_lock(lock: Path) -> tuple[int, str] | None:
    """``(pid, hostname)`` from a lock file, or None when it cannot be parsed."""
    try:
        lines = lock.read_text(encoding="utf-8").splitlines()
        return int(lines[0].strip()), lines[1].strip()
    except (OSError, ValueError, IndexError):
        return None


def acquire(lock: Path, target: Path) -> None:
    """Create ``lock`` exclusively; take over a stale one once; else raise LockedError."""
    content = f"{os.getpid()}\n{host()}\n".encode()
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            take_over_if_stale(lock, target)
            continue
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {lock}: {exc}") from exc
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        return
    raise LockedError(f"{target} is locked (lock file {lock}); another run keeps taking it")


def take_over_if_stale(lock: Path, target: Path) -> None:
    """Remove ``lock`` if the process that wrote it is gone; raise LockedError otherwise."""
    try:
        before = lock.stat()
    except FileNotFoundError:
        return  # released meanwhile: try again
    owner = read_lock(lock)
    if owner is None:
        if time.time() - before.st_mtime < _UNREADABLE_LOCK_GRACE_S:
            raise LockedError(
                f"{target} is locked by another run (lock file {lock} is being written); "
                "wait for it or remove the lock file if that run is gone"
            )
        reason = "an unreadable lock file"
    else:
        pid, owner_host = owner
        if owner_host != host():
            raise LockedError(
                f"{target} is locked by a run on host {owner_host!r} (pid {pid}, lock file "
                f"{lock}); wait for it or remove the lock file if that run is gone"
            )
        if pid_alive(pid):
            raise LockedError(
                f"{target} is locked by another run (pid {pid}, lock file {lock}); "
                "wait for it or remove the lock file if that run is gone"
            )
        reason = f"process {pid} no longer exists"
    with contextlib.suppress(FileNotFoundError):
        if lock.stat().st_ino != before.st_ino:
            return  # replaced meanwhile by another run: look again
        lock.unlink()
    logger.warning("taking over the stale lock %s (%s)", lock, reason)


def release(lock: Path) -> None:
    """Remove ``lock`` if it is still this process's (otherwise, or on failure, warn)."""
    owner = read_lock(lock)
    if owner is not None and owner != (os.getpid(), host()):
        logger.warning("lock %s is no longer ours (held by pid %d); leaving it", lock, owner[0])
        return
    try:
        lock.unlink()
    except FileNotFoundError:
        logger.warning("lock %s disappeared before it was released", lock)
    except OSError as exc:
        logger.warning("cannot remove the lock %s: %s", lock, exc)
