"""Atomic output folders: an output is either the earlier complete one or the new complete one.

:func:`atomic_output` gives the caller an empty temporary folder beside the target, and only
when the ``with`` block finishes without an exception swaps it into place. A crash, an error or
Ctrl-C inside the block leaves any earlier output untouched.

Layout next to an output ``out/dataset.zarr`` while a run is writing it::

    out/dataset.zarr.lock                    the lock: "<pid>\\n<hostname>\\n"
    out/.dataset.zarr.tmp-<pid>-<random>/    what the run writes
    out/.dataset.zarr.old-<pid>-<random>/    the earlier output, during the swap only

Parent folders of the output are created when missing (like ``mkdir -p``). Every output folder
carries the marker file :data:`MARKER`; an existing folder is replaced only when it is empty,
carries the marker, or is a zarr store with microprep's root attributes, unless ``force`` is
set (:func:`output_policy`). An output is never the same as, inside, or around an input of the
run (:func:`check_not_inputs`). A symlinked output is resolved: the lock and the swap act on its
target. On Linux the new output and the earlier one trade places in one step
(``renameat2(RENAME_EXCHANGE)``); elsewhere two renames do it, and a run killed between them
leaves the earlier output at ``.NAME.old-*``, put back by the next run (see docs/safety.md).

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
import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from microprep.errors import LockedError, StoreError, SystemRefusedError, UsageError, system_refusal

logger = logging.getLogger(__name__)

#: A lock file that cannot be parsed is taken for one being written until it is this old (s).
_UNREADABLE_LOCK_GRACE_S = 10.0

#: The modes outputs are created with; the OS takes the umask off, as for a plain ``open()`` and
#: ``mkdir()`` (``tempfile.mkstemp`` would give 0600 whatever the umask).
FILE_MODE = 0o666
DIR_MODE = 0o777

#: The file every output folder carries: an existing folder holding it may be replaced.
MARKER = ".microprep-output"
_MARKER_TEXT = "written by microprep; this folder is replaced by the next run writing here\n"

#: Testing hook: a run whose environment names one of the moments of :func:`_swap`
#: (``before-swap``, ``swap-gap``, ``after-swap``) kills itself there with SIGKILL.
CRASH_ENV = "MICROPREP_CRASH_AT"
#: Testing hook: set to 1 to swap by two renames even where the OS exchanges in one step.
NO_EXCHANGE_ENV = "MICROPREP_NO_EXCHANGE"


@dataclass(frozen=True, slots=True)
class OutputPolicy:
    """The inputs of the running command (outputs must stay clear of them) and whether an
    existing folder that is not a microprep output may be replaced (``force``)."""

    inputs: tuple[Path, ...] = ()
    force: bool = False


_NO_POLICY = OutputPolicy()
_policy: ContextVar[OutputPolicy] = ContextVar(
    "microprep_output_policy",
    default=_NO_POLICY,
)


@contextmanager
def output_policy(*, inputs: Iterable[Path] = (), force: bool = False) -> Iterator[OutputPolicy]:
    """Within the block, :func:`atomic_output` and :func:`write_file_atomic` refuse outputs
    that are, hold or lie inside one of ``inputs``, and ``force`` lets them replace folders
    that are not microprep outputs. The CLI sets this once per command.

    Example:
        >>> import tempfile
        >>> inp = Path(tempfile.mkdtemp())
        >>> with output_policy(inputs=[inp]):
        ...     with atomic_output(inp / "out"):
        ...         pass
        Traceback (most recent call last):
        ...
        microprep.errors.UsageError: refusing to write .../out: it lies inside the input ...
    """
    token = _policy.set(OutputPolicy(tuple(Path(p) for p in inputs), force))
    try:
        yield _policy.get()
    finally:
        _policy.reset(token)


def check_not_inputs(out: Path, inputs: Iterable[Path]) -> None:
    """Raise :class:`~microprep.errors.UsageError` when ``out`` is one of ``inputs``, holds one
    or lies inside one (paths compared after resolving symlinks).

    Example:
        >>> check_not_inputs(Path("/data/out"), [Path("/data/export.xml")])
        >>> check_not_inputs(Path("/data"), [Path("/data/export.xml")])
        Traceback (most recent call last):
        ...
        microprep.errors.UsageError: refusing to write /data: it holds the input ...
    """
    target = Path(os.path.realpath(out))
    for given in inputs:
        source = Path(os.path.realpath(given))
        if target == source:
            how = "is"
        elif target in source.parents:
            how = "holds"
        elif source in target.parents:
            how = "lies inside"
        else:
            continue
        raise UsageError(
            f"refusing to write {out}: it {how} the input {given}; "
            "choose an output outside the inputs"
        )


def is_microprep_output(path: Path) -> bool:
    """True when the folder ``path`` carries :data:`MARKER` or is a zarr store whose root
    attributes are microprep's (stores written before the marker existed)."""
    if (path / MARKER).is_file():
        return True
    for meta in (path / "zarr.json", path / ".zattrs"):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        attrs = data.get("attributes", data) if isinstance(data, dict) else None
        if isinstance(attrs, dict) and any(str(k).startswith("microprep") for k in attrs):
            return True
    return False


def _check_replaceable(path: Path, force: bool) -> None:
    """Refuse to replace an existing folder that is not a microprep output (unless ``force``)."""
    if force or not path.is_dir():
        return
    try:
        entries = sorted(p.name for p in path.iterdir())
    except OSError as exc:
        raise StoreError(f"cannot list the existing output folder {path}: {exc}") from exc
    if not entries or is_microprep_output(path):
        return
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise UsageError(
        f"refusing to replace {path}: it holds {len(entries)} entr"
        f"{'y' if len(entries) == 1 else 'ies'} ({shown}) and is not a microprep output; "
        "choose a new folder, or pass --force to replace it"
    )


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
        ['.microprep-output', 'x']
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    policy = _policy.get()
    check_not_inputs(path, policy.inputs)
    if not overwrite and _exists(path):
        raise StoreError(f"{path} already exists; remove it or allow overwriting")
    _check_target(path)
    _check_replaceable(path, policy.force)
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
        _check_replaceable(path, policy.force)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(DIR_MODE)
        except OSError as exc:
            raise _refusal(exc, path, tmp) or StoreError(
                f"cannot create the temporary folder {tmp}: {exc}"
            ) from exc
        try:
            yield tmp
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            refused = _refusal(exc, path, tmp) if isinstance(exc, Exception) else None
            if refused is not None:
                raise refused from exc
            raise
        try:
            _mark(tmp, path)
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
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    check_not_inputs(path, _policy.get().inputs)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise _refusal(exc, path, tmp) or StoreError(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _refusal(exc: BaseException, path: Path, tmp: Path) -> SystemRefusedError | None:
    """A :class:`~microprep.errors.SystemRefusedError` for an OS refusal found in ``exc`` (or
    what caused it), naming the file as it would be in ``path``, not in the temporary ``tmp``."""
    found = system_refusal(exc)
    if found is None:
        return None
    filename = found.filename
    named = path
    if filename is not None:
        given = Path(os.fsdecode(filename))
        with contextlib.suppress(ValueError):
            named = path / given.relative_to(tmp) if given != tmp else path
    return SystemRefusedError.from_os_error(found, path=named)


def _mark(tmp: Path, path: Path) -> None:
    """Write :data:`MARKER` into the complete output ``tmp`` (unless the caller wrote one)."""
    marker = tmp / MARKER
    if marker.exists():
        return
    try:
        marker.write_text(_MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise _refusal(exc, path, tmp) or StoreError(
            f"cannot write {path / MARKER}: {exc}"
        ) from exc


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


def _crash_point(moment: str) -> None:
    """Testing hook: die here, as a kill -9 would, when :data:`CRASH_ENV` names ``moment``."""
    if os.environ.get(CRASH_ENV) == moment:
        os.kill(os.getpid(), signal.SIGKILL)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
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


def _swap(tmp: Path, path: Path) -> None:
    """Put ``tmp`` in place at ``path``; an existing ``path`` is replaced only if that succeeds.

    Where the OS allows it the two folders trade names in one step; otherwise the earlier
    output is renamed aside first, and a run killed before the second rename leaves ``path``
    missing until the next run puts the earlier output back (:func:`_recover`).
    """
    old: Path | None = None
    _crash_point("before-swap")
    if _exists(path):
        try:
            exchanged = _exchange(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot move the new output into place at {path}: {exc}") from exc
        if exchanged:
            _crash_point("after-swap")
            _remove_earlier(tmp)  # tmp now holds the earlier output
            return
        old = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.rename(old)
        except OSError as exc:
            raise StoreError(f"cannot move the earlier output {path} aside: {exc}") from exc
        _crash_point("swap-gap")
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
        _crash_point("after-swap")
        _remove_earlier(old)


def _remove_earlier(old: Path) -> None:
    try:
        shutil.rmtree(old)
    except OSError as exc:
        logger.warning("the new output is in place; cannot remove the earlier one %s: %s", old, exc)
