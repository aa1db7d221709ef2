"""Atomic output folders: an output is either the earlier complete one or the new complete one.

:func:`atomic_output` gives the caller an empty temporary folder beside the target, and only
when the ``with`` block finishes without an exception swaps it into place. A crash, an error or
Ctrl-C inside the block leaves any earlier output untouched.

Layout next to an output ``out/dataset.zarr`` while a run is writing it::

    out/dataset.zarr.lock                    the lock: "<pid>\\n<hostname>\\n"
    out/.dataset.zarr.tmp-<pid>-<random>/    what the run writes
    out/.dataset.zarr.old-<pid>-<random>/    the earlier output, during the swap only

Parent folders of the output are created when missing (like ``mkdir -p``).

Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_output(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("hello")
    >>> (target / "a.txt").read_text()
    'hello'
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from microprep.errors import LockedError, StoreError

logger = logging.getLogger(__name__)

#: A lock file that cannot be parsed is taken for one being written until it is this old (s).
_UNREADABLE_LOCK_GRACE_S = 10.0


@contextmanager
def atomic_output(path: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Write an output folder atomically, under a lock.

    Args:
        path: the final output folder (for example ``out/dataset.zarr``). Missing parent
            folders are created.
        overwrite: replace an existing output at ``path`` (only once the new one is
            complete). When False, an existing ``path`` is an error raised before anything is
            created or locked.

    Yields:
        An empty temporary folder beside ``path``; write the whole output into it.

    Raises:
        LockedError: another live run (this host) holds ``<path>.lock``, or a run on another
            host does. A lock left by a process that no longer exists is taken over.
        StoreError: ``path`` exists and ``overwrite`` is False, ``path`` is a file, or the
            folders cannot be created or renamed.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "nested" / "out"
        >>> with atomic_output(target) as tmp:
        ...     _ = (tmp / "x").write_bytes(b"1")
        >>> sorted(p.name for p in target.iterdir())
        ['x']
    """
    path = Path(path)
    if not overwrite and _exists(path):
        raise StoreError(f"{path} already exists; remove it or allow overwriting")
    _check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {path.parent}: {exc}") from exc
    lock = _lock_path(path)
    _acquire(lock, path)
    try:
        _recover(path)
        if not overwrite and _exists(path):
            raise StoreError(f"{path} already exists; remove it or allow overwriting")
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create the temporary folder {tmp}: {exc}") from exc
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            _swap(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        _release(lock)


def write_file_atomic(path: str | Path, data: bytes) -> Path:
    """Write the file ``path`` through a temporary file beside it (fsync, then rename), so it
    is either the earlier complete file or the new one. Returns ``path``.

    Raises:
        StoreError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> write_file_atomic(Path(tempfile.mkdtemp()) / "a.txt", b"hi").read_bytes()
        b'hi'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _check_target(path: Path) -> None:
    """Refuse targets that must never be replaced wholesale."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} exists and is not a folder; choose another output path")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    protected = {cwd, *cwd.parents}
    with contextlib.suppress(RuntimeError, KeyError):  # no home folder known
        protected.add(Path.home().resolve())
    if resolved in protected or resolved == Path(resolved.anchor):
        raise StoreError(
            f"refusing to use {path} as an output folder: it would replace the current, home or "
            "a root folder; choose a new folder name"
        )


def _host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
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


def _read_lock(lock: Path) -> tuple[int, str] | None:
    """``(pid, hostname)`` from a lock file, or None when it cannot be parsed."""
    try:
        lines = lock.read_text(encoding="utf-8").splitlines()
        return int(lines[0].strip()), lines[1].strip()
    except (OSError, ValueError, IndexError):
        return None


def _acquire(lock: Path, target: Path) -> None:
    """Create ``lock`` exclusively; take over a stale one once; else raise LockedError."""
    content = f"{os.getpid()}\n{_host()}\n".encode()
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _take_over_if_stale(lock, target)
            continue
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {lock}: {exc}") from exc
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        return
    raise LockedError(f"{target} is locked (lock file {lock}); another run keeps taking it")


def _take_over_if_stale(lock: Path, target: Path) -> None:
    """Remove ``lock`` if the process that wrote it is gone; raise LockedError otherwise."""
    try:
        before = lock.stat()
    except FileNotFoundError:
        return  # released meanwhile: try again
    owner = _read_lock(lock)
    if owner is None:
        if time.time() - before.st_mtime < _UNREADABLE_LOCK_GRACE_S:
            raise LockedError(
                f"{target} is locked by another run (lock file {lock} is being written); "
                "wait for it or remove the lock file if that run is gone"
            )
        reason = "an unreadable lock file"
    else:
        pid, host = owner
        if host != _host():
            raise LockedError(
                f"{target} is locked by a run on host {host!r} (pid {pid}, lock file {lock}); "
                "wait for it or remove the lock file if that run is gone"
            )
        if _pid_alive(pid):
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


def _release(lock: Path) -> None:
    owner = _read_lock(lock)
    if owner is not None and owner != (os.getpid(), _host()):
        logger.warning("lock %s is no longer ours (held by pid %d); leaving it", lock, owner[0])
        return
    try:
        lock.unlink()
    except FileNotFoundError:
        logger.warning("lock %s disappeared before it was released", lock)
    except OSError as exc:
        logger.warning("cannot remove the lock %s: %s", lock, exc)


def _leftovers(path: Path, kind: str) -> list[Path]:
    """Folders ``.<name>.<kind>-*`` beside ``path``, oldest first."""
    prefix = f".{path.name}.{kind}-"
    found = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _recover(path: Path) -> None:
    """Under the lock: clean up after runs that died (their temp folders are garbage).

    A run killed in the middle of a swap can leave the earlier output renamed to ``.old-*`` with
    nothing at ``path``; it is put back.
    """
    olds = _leftovers(path, "old")
    if olds and not _exists(path):
        latest = olds.pop()
        logger.warning("restoring %s from %s, left by an interrupted run", path, latest)
        try:
            latest.rename(path)
        except OSError as exc:
            raise StoreError(f"cannot restore {path} from {latest}: {exc}") from exc
    for leftover in [*olds, *_leftovers(path, "tmp")]:
        logger.warning("removing %s, left by an interrupted run", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def _swap(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; an existing ``path`` is replaced only if that succeeds."""
    old: Path | None = None
    if _exists(path):
        old = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.rename(old)
        except OSError as exc:
            raise StoreError(f"cannot move the earlier output {path} aside: {exc}") from exc
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
        try:
            shutil.rmtree(old)
        except OSError as exc:
            logger.warning(
                "the new output is in place; cannot remove the earlier one %s: %s", old, exc
            )
