"""The exception tree of microprep.

Every error that microprep raises on purpose derives from :class:`PrepError`. The CLI turns a
``PrepError`` into a one-line message on stderr and exit code 2; anything else is a bug.

Errors about an input file carry *where* the problem is: the file, a line (and column) for text
formats, and an element or JSON path, so a message reads like a compiler's::

    annotations.xml:41: <polygon> in image 'grid 1.png': points contain NaN
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class PrepError(Exception):
    """Root of every error microprep raises on purpose."""


class InputError(PrepError):
    """Something is wrong with an input file.

    Args:
        message: what is wrong, and where possible how to fix it.
        file: the file the problem is in.
        line: 1-based line number, when the format has lines.
        column: 1-based column, when known.
        where: the element or JSON path, for example ``<polygon> in image 'a.png'``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        where: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        place = self.file or "<input>"
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        parts = [place]
        if self.where:
            parts.append(self.where)
        parts.append(self.message)
        return ": ".join(parts)


class FormatError(InputError):
    """The file is not a well-formed export of the expected format (syntax, structure)."""


class UnsafeInputError(FormatError):
    """The file uses a feature refused for safety (DOCTYPE, entities, XInclude, path escapes)."""


class GeometryError(InputError):
    """A shape's geometry is unusable (NaN, reversed box, RLE that does not add up, ...)."""


class ImageFileError(InputError):
    """An image file is missing, unreadable, or does not match the export."""


class ValidationError(PrepError):
    """The export has errors that checks found (``prep validate`` lists them all)."""


class StoreError(PrepError):
    """A dataset store cannot be written or opened."""


class StoreDamageError(StoreError):
    """A chunk of a dataset store is missing or does not match its checksum.

    Args:
        store: the store folder.
        node: the node (group name) the chunk belongs to.
        array: the array name, or None when the whole node is missing.
        chunk: the chunk's key inside the array (``c/0/1``), or None.
        reason: what is wrong.
    """

    def __init__(
        self,
        store: str | Path,
        *,
        node: str,
        array: str | None = None,
        chunk: str | None = None,
        reason: str,
    ) -> None:
        self.store = str(store)
        self.node = node
        self.array = array
        self.chunk = chunk
        self.reason = reason
        place = f"node {node!r}"
        if array is not None:
            place += f", array {array!r}"
        if chunk is not None:
            place += f", chunk {chunk}"
        super().__init__(f"{self.store}: {place}: {reason}")


class LockedError(StoreError):
    """Another run holds the lock on the same output."""


class UsageError(PrepError):
    """Options that do not fit together or do not fit the input."""


#: What to do when the operating system refuses a read or write, by errno.
_REFUSAL_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space or write the output elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write the output elsewhere",
    errno.EROFS: "the file system is read-only; write the output to a writable folder",
    errno.EACCES: "permission denied; check the folder's permissions or write elsewhere",
    errno.EPERM: "operation not permitted; check the folder's permissions or write elsewhere",
    errno.ENAMETOOLONG: "file name too long for the file system; shorten the (image) names or "
    "the output path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer workers",
    errno.ENFILE: "too many open files on the system; close other programs or use fewer workers",
}


class SystemRefusedError(StoreError):
    """The operating system refused a read or write: a full disk, a read-only file system, no
    permission, a name too long, too many open files. Not a bug: the message names the path
    and what to do.

    Example:
        >>> exc = OSError(errno.ENOSPC, "No space left on device", "out/masks/a.png")
        >>> print(SystemRefusedError.from_os_error(exc))
        out/masks/a.png: no space left on the device; free some space or write the output elsewhere
    """

    def __init__(self, message: str, *, path: str | Path | None = None, code: int = 0) -> None:
        self.path = None if path is None else str(path)
        self.errno = code
        super().__init__(message)

    @classmethod
    def from_os_error(cls, exc: OSError, *, path: str | Path | None = None) -> SystemRefusedError:
        """The error for ``exc`` (its errno must be one of the refusals), naming ``path`` or
        else the file named in ``exc``."""
        code = exc.errno or 0
        if path is None and exc.filename is not None:
            path = os.fsdecode(exc.filename)
        hint = _REFUSAL_HINTS.get(code, exc.strerror or str(exc))
        return cls(f"{path}: {hint}" if path is not None else hint, path=path, code=code)


def system_refusal(exc: BaseException) -> OSError | None:
    """The :class:`OSError` behind ``exc`` (itself or a cause, however deep) whose errno is an
    environment problem rather than a bug (see :class:`SystemRefusedError`), or None.

    Example:
        >>> system_refusal(RuntimeError("x")) is None
        True
        >>> system_refusal(OSError(errno.EROFS, "Read-only file system")).errno == errno.EROFS
        True
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _REFUSAL_HINTS:
            return current
        current = current.__cause__ or current.__context__
    return None
