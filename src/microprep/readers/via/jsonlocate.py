"""Where in a JSON text a value is refused: the vertex cap before parsing, and located refusals.

:func:`check_array_lengths` refuses arrays too long for any shape before the text is parsed.
When :func:`microprep.readers.jsonsafe.loads` has refused a text, :func:`locate_refusal` finds
the JSON path of the refused value and :func:`depth_position` the bracket that nests too deep.

Example:
    >>> depth_position("[" * 70)
    64
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from microprep.errors import GeometryError
from microprep.readers.jsonsafe import MAX_DEPTH, MAX_INT_DIGITS, json_path
from microprep.readers.via.regions import MAX_VERTICES

#: An innermost array of number characters long enough to hold more numbers than any shape may.
_LONG_ARRAY = re.compile(r"\[[-+.0-9eE,\s]{" + str(4 * MAX_VERTICES + 3) + r",}\]")
_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.){0,80})"\s*:\s*$')
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_array_lengths(text: str, *, file: str, line: int | None = None) -> None:
    """Refuse, before parsing, a JSON array of more than ``2 * MAX_VERTICES + 1`` numbers.

    No shape can hold that many numbers (a VIA 3 ``xy`` list has ``1 + 2 * vertices``), and
    parsing millions of numbers only to refuse them takes seconds. ``line`` is the line of
    ``text`` in the file (CSV cells); without it the line is counted in ``text``.

    Raises:
        GeometryError: naming the line, column and the key that holds the array.
    """
    for match in _LONG_ARRAY.finditer(text):
        count = match.group().count(",") + 1
        if count <= 2 * MAX_VERTICES + 1:
            continue
        start = match.start()
        key = _KEY_BEFORE.search(text, max(0, start - 120), start)
        where = f"array {json.dumps(key.group(1))}" if key else "array"
        if line is None:
            at_line = text.count("\n", 0, start) + 1
            column = start - text.rfind("\n", 0, start)
        else:
            at_line, column = line, None
        raise GeometryError(
            f"{count} numbers in one array: more than {MAX_VERTICES} vertices per shape are "
            "refused (MAX_VERTICES)",
            file=file,
            line=at_line,
            column=column,
            where=where,
        )


class _Bad:
    """A value the hardened parser refuses, found again by :func:`locate_refusal`."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Dup(dict[str, Any]):
    """An object with a duplicate key (the key is kept in ``duplicate``)."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            dup = _Dup(out)
            dup.duplicate = key
            return dup
        out[key] = value
    return out


def _int(text: str) -> Any:
    digits = len(text.lstrip("-"))
    return _Bad(f"integer with {digits} digits is out of range") if digits > MAX_INT_DIGITS else 0


def _float(text: str) -> Any:
    return 0.0 if math.isfinite(float(text)) else _Bad(f"number {text[:40]} is out of range")


def locate_refusal(text: str) -> tuple[str, list[str | int]] | None:
    """Message and JSON path of the first value the hardened parser refuses in ``text``.

    Called only after :func:`microprep.readers.jsonsafe.loads` refused ``text``, to add the
    path to its error: NaN/Infinity, overflowing numbers, over-long integers, duplicate keys and
    nesting deeper than ``MAX_DEPTH``. None when ``text`` cannot be parsed even leniently.

    Example:
        >>> locate_refusal('{"a": [1, NaN]}')
        ('NaN is not a number (NaN and Infinity are refused)', ['a', 1])
    """
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=lambda name: _Bad(
                f"{name} is not a number (NaN and Infinity are refused)"
            ),
            parse_float=_float,
            parse_int=_int,
        )
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Bad):
            return node.message, path
        if len(path) >= MAX_DEPTH and isinstance(node, dict | list):
            return f"JSON nested deeper than {MAX_DEPTH} levels", path
        if isinstance(node, _Dup):
            return f"duplicate key {json.dumps(node.duplicate)} in one object", [
                *path,
                node.duplicate,
            ]
        if isinstance(node, dict):
            stack.extend((v, [*path, k]) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, [*path, i]) for i, v in reversed(list(enumerate(node))))
    return None


def depth_position(text: str) -> int | None:
    """Offset in ``text`` of the bracket that opens level ``MAX_DEPTH + 1``, or None."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


def short_path(path: list[str | int], keep: int = 12) -> str:
    """``json_path(path)``, its middle elided when it is longer than ``keep`` parts."""
    if len(path) <= keep:
        return json_path(path)
    tail = json_path(path[-2:])[1:]
    return f"{json_path(path[: keep - 2])}...{tail} ({len(path)} levels)"
