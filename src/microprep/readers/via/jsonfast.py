"""JSON text of VIA exports (whole files and CSV cells): the hardened result, computed faster.

:func:`load_json_text` follows the rules of :mod:`microprep.readers.jsonsafe` (NaN/Infinity,
overflowing numbers, integers over ``MAX_INT_DIGITS`` digits, duplicate keys, nesting over
``MAX_DEPTH`` are refused):

* arrays too long for any shape are refused before parsing
  (:func:`~microprep.readers.via.jsonlocate.check_array_lengths`);
* :func:`fast_loads` parses with the C parser and default number conversions, then checks the
  result; it returns the value only when ``jsonsafe.loads`` would return the same value, and
  defers otherwise;
* deferred texts go to ``jsonsafe.loads`` itself, whose verdict is final; the values it refuses
  get their JSON path (:func:`~microprep.readers.via.jsonlocate.locate_refusal`), or their line
  when nested too deep to walk.

Example:
    >>> load_json_text('{"a": [1, 2.5]}', file="a.json")
    {'a': [1, 2.5]}
    >>> fast_loads('{"a": NaN}') is _UNSURE
    True
"""

from __future__ import annotations

import json
from typing import Any

from microprep.errors import FormatError
from microprep.readers.jsonsafe import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    Unsure,
    loads,
    unique_pairs,
    unsure_constant,
)
from microprep.readers.via.jsonlocate import (
    check_array_lengths,
    depth_position,
    locate_refusal,
    short_path,
)

#: Numbers at least this large in magnitude send a text to jsonsafe: every integer jsonsafe refuses
#: (more than ``MAX_INT_DIGITS`` digits) and every overflowed float (infinite) is among them.
_HUGE = 10.0**MAX_INT_DIGITS
_CONTAINERS = frozenset({dict, list})
_NUMBERS = frozenset({int, float})
_UNSURE: Any = object()


def _small(values: Any) -> bool:
    """True when no int/float among ``values`` reaches ``_HUGE`` in magnitude."""
    for value in values:
        kind = type(value)
        if (kind is int or kind is float) and not -_HUGE < value < _HUGE:
            return False
    return True


def _plain(value: Any) -> bool:
    """True when nesting is at most ``MAX_DEPTH`` (top level 1) and no number is huge.

    Lists of numbers only are checked with ``min``/``max`` and scalar items are skipped by
    type in C, so long coordinate lists cost little.
    """
    if type(value) not in _CONTAINERS:
        return _small([value])
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        children = node.values() if type(node) is dict else node
        kinds = set(map(type, children))
        if kinds <= _NUMBERS:
            if children and not (-_HUGE < min(children) and max(children) < _HUGE):
                return False
            continue
        if not kinds.isdisjoint(_NUMBERS) and not _small(children):
            return False
        if not kinds.isdisjoint(_CONTAINERS):
            stack.extend((child, depth + 1) for child in children if type(child) in _CONTAINERS)
    return True


def fast_loads(text: str) -> Any:
    """``jsonsafe.loads(text)`` when that would succeed, computed faster; else ``_UNSURE``.

    The text is parsed by the C parser with its default number conversions (the ones jsonsafe
    applies too), refusing duplicate keys and NaN/Infinity in hooks; the result is then walked
    once for nesting deeper than ``MAX_DEPTH`` and for numbers of magnitude ``10**MAX_INT_DIGITS``
    or more (which include every integer jsonsafe refuses and every float that overflowed). Any
    doubt (a refusal, a syntax error, a huge number) returns ``_UNSURE`` so that the caller asks
    jsonsafe itself.
    """
    try:
        value = json.loads(text, object_pairs_hook=unique_pairs, parse_constant=unsure_constant)
    except (ValueError, RecursionError, Unsure):
        return _UNSURE
    return value if _plain(value) else _UNSURE


def load_json_text(
    text: str, *, file: str, line: int | None = None, where: str | None = None
) -> Any:
    """Parse ``text`` as :func:`microprep.readers.jsonsafe.loads` does, refusals located.

    :func:`fast_loads` is tried first; whatever it cannot vouch for goes to
    :func:`~microprep.readers.jsonsafe.loads`, whose verdict (value or error) is final.

    ``line``/``where`` place a CSV cell (its line and column); the JSON path inside ``text`` is
    appended to ``where``. For a whole file, syntax errors keep the parser's line and column, and
    refused values get their JSON path (or, for nesting too deep to walk, their line).

    Raises:
        FormatError: anything :mod:`~microprep.readers.jsonsafe` refuses.
        GeometryError: an array too long for any shape (see
            :func:`~microprep.readers.via.jsonlocate.check_array_lengths`).
    """
    check_array_lengths(text, file=file, line=line)
    value = fast_loads(text)
    if value is not _UNSURE:
        return value
    try:
        return loads(text, file=file)
    except FormatError as exc:
        found = locate_refusal(text) if exc.column is None else None
        at_line, column = exc.line, exc.column
        if found is None and exc.column is None and "nested deeper" in exc.message:
            offset = depth_position(text)
            if offset is not None and line is None:
                at_line = text.count("\n", 0, offset) + 1
                column = offset - text.rfind("\n", 0, offset)
        message, path = found if found is not None else (exc.message, None)
        if line is not None:  # a CSV cell: the file's line, the cell's own line is meaningless
            at_line, column = line, None
        inner = None if path is None else short_path(path)
        place = " ".join(part for part in (where, inner) if part) or None
        raise FormatError(message, file=file, line=at_line, column=column, where=place) from exc
