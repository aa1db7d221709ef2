"""Image names taken from exports, checked where they are written in the file.

Example:
    >>> check_image_name("grid 1/a b.png", file="a.json", path=["a.png9", "filename"])
    'grid 1/a b.png'
    >>> check_label_name("two\\nlines", file="a.xml", line=7, where="<label>")
    Traceback (most recent call last):
    ...
    microprep.errors.FormatError: a.xml:7: <label>: label name 'two\\nlines' holds a control ...
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from microprep.errors import FormatError, UnsafeInputError
from microprep.paths import check_relative_name
from microprep.readers.jsonsafe import json_path

__all__ = ["check_image_name", "check_label_name", "control_character"]


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


_CONTROL_NAMES = {"\n": "newline", "\r": "carriage return", "\t": "tab", "\x00": "NUL"}


def control_character(text: str) -> str | None:
    """A description of the first character of ``text`` that would break a line-based text
    file (a control character, or a line or paragraph separator), or None.

    Example:
        >>> control_character("a\\tb"), control_character("ok"), control_character("a\\u2028")
        ('tab', None, 'U+2028 LINE SEPARATOR')
    """
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            known = _CONTROL_NAMES.get(char)
            return known or f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"
    return None


def check_label_name(
    name: str,
    *,
    file: str,
    what: str = "label",
    line: int | None = None,
    where: str | None = None,
    path: Sequence[str | int] | None = None,
) -> str:
    """``name`` unchanged when it holds no control character; class names end up one a line in
    ``classes.txt`` and ``data.yaml``, where a newline would shift every later class.

    ``what`` says what the name is (``"label"``, ``"attribute"``); ``where`` (or the JSON
    ``path``) and ``line`` locate it in ``file``.

    Raises:
        FormatError: ``name`` holds a control character (newline, tab, NUL, ...) or a line
            separator; the message names it and where it is.
    """
    found = control_character(name)
    if found is None:
        return name
    place = json_path(path) if path is not None else where
    raise FormatError(
        f"{what} name {name!r} holds a control character ({found}); rename it in the "
        "annotation tool and export again",
        file=file,
        line=line,
        where=place,
    )
