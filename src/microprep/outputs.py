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
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from microprep.errors import StoreError, SystemRefusedError, UsageError, system_refusal
from microprep.output_lock import acquire, lock_path, release
from microprep.output_swap import CRASH_ENV, NO_EXCHANGE_ENV, exists, recover, swap

logger = logging.getLogger(__name__)

#: The modes outputs are created with; the OS takes the umask off, as for a plain ``open()`` and
#: ``mkdir()`` (``tempfile.mkstemp`` would give 0600 whatever the umask).
FILE_MODE = 0o666
DIR_MODE = 0o777

__all__ = [
    "CRASH_ENV",
    "DIR_MODE",
    "FILE_MODE",
    "MARKER",
    "NO_EXCHANGE_ENV",
    "OutputPolicy",
    "atomic_output",
    "check_not_inputs",
    "is_microprep_output",
    "output_policy",
    "write_file_atomic",
]

#: The file every output folder carries: an existing folder holding it may be replaced.
MARKER = ".microprep-output"
_MARKER_TEXT = "written by microprep; this folder is replaced by the next run writing here\n"


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
    if not overwrite and exists(path):
        raise StoreError(f"{path} already exists; remove it or allow overwriting")
    _check_target(path)
    _check_replaceable(path, policy.force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {path.parent}: {exc}") from exc
    lock = lock_path(path)
    acquire(lock, path)
    try:
        recover(path)
        if not overwrite and exists(path):
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
            swap(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        release(lock)


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
