"""Zip archives of exports (CVAT's "Export dataset" downloads), read in place.

Nothing is extracted to disk: members are streamed (the annotations XML) or read into memory one
at a time (images). An archive is hostile input, so :func:`open_archive` checks every member of
the central directory before anything is read:

* names: no absolute names (``/x``, ``C:x``), no ``..`` component, no NUL; backslashes count as
  folder separators; a name may occur once;
* no links: members whose Unix mode is a symbolic link (or any other non-regular file) are
  refused, so nothing can point out of the archive;
* no encrypted members;
* zip bombs: a member larger than :data:`MAX_MEMBER_BYTES`, members together larger than
  :data:`MAX_TOTAL_BYTES`, a member above :data:`RATIO_FLOOR_BYTES` that expands more than
  :data:`MAX_RATIO` times, or members whose compressed data overlap (the "overlapping files"
  bomb) are refused. Python's :mod:`zipfile` never returns more bytes than a member declares and
  checks its CRC, so the declared sizes hold while reading.

Every refusal is one :class:`~microprep.errors.FormatError` (or
:class:`~microprep.errors.UnsafeInputError`) naming the archive and the member, e.g.
``task.zip: member '../evil.png': the name leaves the archive (absolute path or '..')``.

The annotations are the member ``annotations.xml`` at the top of the archive (CVAT's layout), or
in its one top folder when the export was zipped again with its folder.

Example:
    >>> import tempfile, zipfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "task.zip"
    >>> with zipfile.ZipFile(path, "w") as zf:
    ...     zf.writestr("annotations.xml", "<annotations/>")
    ...     zf.writestr("images/a.png", b"...")
    >>> with open_archive(path) as archive:
    ...     archive.annotations, archive.label("annotations.xml"), archive.names("images/")
    ('annotations.xml', '...task.zip:annotations.xml', ['images/a.png'])
"""

from __future__ import annotations

import io
import itertools
import logging
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from typing import IO, BinaryIO, TypeVar

from microprep.errors import FormatError, InputError, UnsafeInputError

__all__ = [
    "ANNOTATIONS_MEMBER",
    "MAX_MEMBER_BYTES",
    "MAX_RATIO",
    "MAX_TOTAL_BYTES",
    "RATIO_FLOOR_BYTES",
    "Archive",
    "annotations_size",
    "is_archive",
    "open_archive",
]

logger = logging.getLogger(__name__)

#: The annotations member of a CVAT export archive.
ANNOTATIONS_MEMBER = "annotations.xml"
#: The largest member accepted, uncompressed.
MAX_MEMBER_BYTES = 8 * 1024**3
#: The most all members together may hold, uncompressed.
MAX_TOTAL_BYTES = 64 * 1024**3
#: The most a member (above :data:`RATIO_FLOOR_BYTES`) may expand, uncompressed / compressed.
MAX_RATIO = 500
#: Members up to this size are not held to :data:`MAX_RATIO`.
RATIO_FLOOR_BYTES = 1024 * 1024

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_LOCAL_HEADER = 30  # bytes of a local file header before its name
_T = TypeVar("_T")


def is_archive(path: str | Path) -> bool:
    """True when ``path`` is a file that starts like a zip archive (or has a zip directory).

    Never raises. A damaged zip still counts, so that it gets a clear error rather than "not a
    recognised export".
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        return head in _ZIP_MAGIC or zipfile.is_zipfile(path)
    except (OSError, ValueError):
        return False


def _member_name(info: zipfile.ZipInfo, where: str) -> str:
    """The member's name as a relative POSIX path; raises when it could leave the archive."""
    name = info.filename
    posix = PurePosixPath(name.replace("\\", "/"))
    if (
        "\x00" in name
        or posix.is_absolute()
        or PureWindowsPath(name).drive
        or any(part == ".." for part in posix.parts)
    ):
        raise UnsafeInputError(
            "the name leaves the archive (absolute path or '..')", file=where, where=_m(name)
        )
    return posix.as_posix() + ("/" if info.is_dir() else "")


def _m(name: str) -> str:
    return f"member {name[:200]!r}"


def _check_kind(info: zipfile.ZipInfo, where: str) -> None:
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode and not info.is_dir():  # Unix attributes
        if stat.S_ISLNK(mode):
            raise UnsafeInputError(
                "symbolic links are not allowed in an export archive",
                file=where,
                where=_m(info.filename),
            )
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise UnsafeInputError(
                "only regular files and folders are allowed in an export archive",
                file=where,
                where=_m(info.filename),
            )
    if info.flag_bits & 0x1:
        raise FormatError(
            "encrypted members are not supported", file=where, where=_m(info.filename)
        )


def _check_sizes(infos: list[zipfile.ZipInfo], where: str) -> None:
    total = 0
    for info in infos:
        size, packed = info.file_size, info.compress_size
        if size > MAX_MEMBER_BYTES:
            raise FormatError(
                f"expands to {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} allowed per member",
                file=where,
                where=_m(info.filename),
            )
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(packed, 1):
            raise FormatError(
                f"expands {size / max(packed, 1):,.0f} times ({packed:,} -> {size:,} bytes), more "
                f"than the {MAX_RATIO} allowed: a zip bomb?",
                file=where,
                where=_m(info.filename),
            )
        total += size
        if total > MAX_TOTAL_BYTES:
            raise FormatError(
                f"the members expand to more than the {MAX_TOTAL_BYTES:,} bytes allowed in all",
                file=where,
                where=_m(info.filename),
            )
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for first, second in itertools.pairwise(ordered):
        # characters are a lower bound of the name's bytes: no false alarm
        end = first.header_offset + _LOCAL_HEADER + len(first.orig_filename)
        if end + first.compress_size > second.header_offset:
            raise FormatError(
                f"its data overlaps member {second.filename[:200]!r} (a zip bomb?)",
                file=where,
                where=_m(first.filename),
            )


class _GuardedStream(io.RawIOBase):
    """A member's stream whose read errors (bad CRC, bad deflate data) become InputError."""

    def __init__(self, stream: IO[bytes], label: str) -> None:
        super().__init__()
        self._stream = stream
        self._label = label

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guard(lambda: self._stream.seek(offset, whence))

    def tell(self) -> int:
        return self._stream.tell()

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(lambda: self._stream.read(-1 if size is None else size))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()

    def _guard(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise InputError(f"cannot read the member: {exc}", file=self._label) from exc


class Archive:
    """An open, checked zip archive. Use as a context manager (or call :meth:`close`).

    ``path`` is the archive; ``base`` the folder of ``annotations`` inside it (``""`` at the top);
    ``annotations`` the annotations member, or None when the archive holds none.
    """

    def __init__(self, path: Path, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]):
        self.path = path
        self._zf = zf
        self._members = members
        self.annotations = _find_annotations(members)
        self.base = self.annotations.rpartition("/")[0] + "/" if self.annotations else ""
        if self.base == "/":
            self.base = ""

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive file (streams opened from it stay readable until closed)."""
        self._zf.close()

    def label(self, member: str) -> str:
        """``ARCHIVE:member``: how errors name a member."""
        return f"{self.path}:{member}"

    def names(self, prefix: str = "") -> list[str]:
        """The files (not folders) whose name starts with ``prefix``, in archive order."""
        return [n for n in self._members if n.startswith(prefix) and not n.endswith("/")]

    def has_dir(self, prefix: str) -> bool:
        """True when some member lies under the folder ``prefix`` (ending with ``/``)."""
        return any(n.startswith(prefix) for n in self._members)

    def is_file(self, member: str) -> bool:
        """True when ``member`` is a file of the archive."""
        return member in self._members and not member.endswith("/")

    def size(self, member: str) -> int:
        """The uncompressed size of ``member`` in bytes."""
        return self._members[member].file_size

    def open(self, member: str) -> BinaryIO:
        """A seekable stream of ``member``; read errors raise InputError naming the member.

        Raises:
            InputError: no such member, or it cannot be opened.
        """
        info = self._members.get(member)
        if info is None or member.endswith("/"):
            raise InputError("no such member in the archive", file=self.label(member))
        try:
            stream = self._zf.open(info)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError) as exc:
            raise InputError(f"cannot open the member: {exc}", file=self.label(member)) from exc
        return io.BufferedReader(_GuardedStream(stream, self.label(member)))

    def read(self, member: str) -> bytes:
        """The whole content of ``member`` (its size is bounded by :data:`MAX_MEMBER_BYTES`)."""
        with self.open(member) as stream:
            return stream.read()


def _find_annotations(members: dict[str, zipfile.ZipInfo]) -> str | None:
    if ANNOTATIONS_MEMBER in members:
        return ANNOTATIONS_MEMBER
    nested = [n for n in members if n.count("/") == 1 and n.endswith("/" + ANNOTATIONS_MEMBER)]
    tops = {n.split("/", 1)[0] for n in members if "/" in n}
    if len(nested) == 1 and len(tops) == 1 and not any("/" not in n for n in members):
        return nested[0]
    return None


def open_archive(path: str | Path) -> Archive:
    """Open and check the zip archive ``path`` (see the module docstring for the checks).

    Raises:
        FormatError: not a readable zip archive; a member too large, expanding too much, or
            overlapping another; an encrypted member; a name used twice.
        UnsafeInputError: a member name leaving the archive, a link or special file.
        InputError: the file cannot be opened.
    """
    path = Path(path)
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise FormatError(f"not a readable zip archive: {exc}", file=where) from exc
    except OSError as exc:
        raise InputError(f"cannot open the archive: {exc.strerror or exc}", file=where) from exc
    try:
        infos = zf.infolist()
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = _member_name(info, where)
            _check_kind(info, where)
            if name in members:
                raise FormatError(
                    "the name occurs twice in the archive", file=where, where=_m(name)
                )
            members[name] = info
        _check_sizes(infos, where)
    except BaseException:
        zf.close()
        raise
    return Archive(path, zf, members)


def annotations_size(path: Path) -> int:
    """Bytes of the export's annotations: the file's size, or the annotations member's size."""
    if is_archive(path):
        try:
            with open_archive(path) as archive:
                if archive.annotations is not None:
                    return archive.size(archive.annotations)
        except InputError:
            return 0
    return path.stat().st_size
