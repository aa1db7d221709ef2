"""A file's size and modification time, to check that it did not change between two passes.

Readers that check a file in one pass and stream it again when the set is iterated (CVAT for
images, Labelbox) take the fingerprint before the first pass and check it before the second.
"""

from __future__ import annotations

import os
from pathlib import Path

from microprep.errors import InputError

__all__ = ["check_unchanged", "file_fingerprint"]


def file_fingerprint(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of ``path``: the streaming pass checks the file did not change."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def check_unchanged(path: Path, fingerprint: tuple[int, int]) -> None:
    """Raise InputError when the file's size or modification time differ from ``fingerprint``."""
    try:
        same = file_fingerprint(path) == fingerprint
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    if not same:
        raise InputError("the file changed since it was read; read it again", file=path)
