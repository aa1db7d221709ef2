"""Image names taken from exports, checked where they are written in the file.

Example:
    >>> check_image_name("grid 1/a b.png", file="a.json", path=["a.png9", "filename"])
    'grid 1/a b.png'
"""

from __future__ import annotations

from collections.abc import Sequence

from microprep.errors import UnsafeInputError
from microprep.paths import check_relative_name
from microprep.readers.jsonsafe import json_path

__all__ = ["check_image_name"]


def check_image_name(
    name: str,
    *,
    file: str,
    line: int | None = None,
    where: str | None = None,
    path: Sequence[str | int] | None = None,
) -> str:
    """``name`` normalised by :func:`~microprep.paths.check_relative_name`, as a string.

    The string is the key that tells whether two names are the same image. ``where`` (or the
    JSON ``path``, formatted only when there is an error) locates the name in ``file``.

    Raises:
        UnsafeInputError: ``name`` is empty or escapes its folder; the error names ``file``,
            ``line`` and ``where`` (or ``path``).
    """
    try:
        return str(check_relative_name(name))
    except UnsafeInputError as exc:
        place = json_path(path) if path is not None else where
        raise UnsafeInputError(exc.message, file=file, line=line, where=place) from exc
