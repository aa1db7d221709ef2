"""Hardened JSON and NDJSON loading for the JSON-based readers (VIA, Labelbox).

Refused, each with a :class:`~microprep.errors.FormatError` naming the file, the line (and
column) and, where it is known, the JSON path:

* ``NaN``, ``Infinity``, ``-Infinity`` and numbers that overflow a float (``1e400``);
* integers longer than :data:`MAX_INT_DIGITS` digits;
* duplicate keys in one object (the second would silently win);
* nesting deeper than :data:`MAX_DEPTH`;
* NDJSON lines longer than :data:`MAX_LINE_BYTES` (checked before a line is parsed, so a
  single huge line cannot exhaust memory).

Example:
    >>> json_path(["_via_img_metadata", "a.png123", "regions", 0])
    '$._via_img_metadata["a.png123"].regions[0]'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microprep.errors import FormatError

MAX_DEPTH = 64
MAX_INT_DIGITS = 30
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Largest absolute coordinate accepted, in pixels (far beyond any real image).
MAX_COORDINATE = 1e7

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Sequence[str | int]) -> str:
    """A JSONPath-like string for ``parts`` (keys and list indices)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, with its article, for messages.

    Example:
        >>> json_type({"a": 1}), json_type([1]), json_type(True), json_type(None)
        ('an object', 'an array', 'a boolean', 'null')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def json_text(value: Any, limit: int = 40) -> str:
    """``value`` written as compact JSON for a message, cut to about ``limit`` characters.

    Example:
        >>> json_text({"answer": 1}), json_text(True), json_text("pore")
        ('{"answer": 1}', 'true', '"pore"')
        >>> json_text("x" * 60, limit=10)
        '"xxxxxxxx…'
    """
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: Any) -> str:
    """A JSON value's type and text for messages, e.g. ``an object {"answer": 1}``.

    Example:
        >>> describe([1, 2]), describe(False)
        ('an array [1, 2]', 'a boolean false')
    """
    kind = json_type(value)
    return kind if value is None else f"{kind} {json_text(value)}"


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number (NaN and Infinity are refused)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise _Refused(f"integer with {len(digits)} digits is out of range")
    return int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {json.dumps(key)} in one object")
        out[key] = value
    return out


#: Byte map for :func:`_numbers_plain`: digits and "." become "d", "E" becomes "e", a letter
#: "d" becomes "x"; signs are deleted. Then a run of 31 "d" is a number with more than
#: ``MAX_INT_DIGITS`` digits, and "deddd" an exponent of three digits or more.
_NUMBER_MAP = bytes(
    ord("d") if chr(c) in "0123456789." else ord("e") if c == ord("E") else
    ord("x") if c == ord("d") else c
    for c in range(256)
)  # fmt: skip
_LONG_RUN = b"d" * (MAX_INT_DIGITS + 1)
_FAST_BLOCK = 1 << 22
_UNSURE: Any = object()


class Unsure(Exception):
    """The fast path met something only the checked parse may judge."""


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An ``object_pairs_hook``: the object as a dict, :class:`Unsure` on a duplicate key."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise Unsure
    return out


def unsure_constant(name: str) -> Any:
    """A ``parse_constant`` hook: :class:`Unsure` on NaN and Infinity."""
    raise Unsure


def _numbers_plain(data: bytes) -> bool:
    """True when no number in ``data`` can be one the checked parse refuses: no run of more than
    ``MAX_INT_DIGITS`` digits and no exponent of three digits or more (strings may only make
    this say False more often, never True wrongly)."""
    mapped = data.translate(_NUMBER_MAP, b"+-")
    return _LONG_RUN not in mapped and b"deddd" not in mapped


def _max_depth(data: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings in valid JSON ``data`` (top level 1),
    counted with numpy in blocks (escaped backslashes and quotes are dropped first)."""
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    deepest, depth, inside = 0, 0, 0
    for start in range(0, len(data), _FAST_BLOCK):
        block = np.frombuffer(data, np.uint8, count=min(_FAST_BLOCK, len(data) - start),
                              offset=start)  # fmt: skip
        quotes = np.cumsum(block == ord('"'), dtype=np.int64) + inside
        outside = (quotes & 1) == 0
        step = ((block == ord("[")) | (block == ord("{"))).astype(np.int64)
        step -= (block == ord("]")) | (block == ord("}"))
        levels = np.cumsum(step * outside) + depth
        if len(levels):
            deepest = max(deepest, int(levels.max()))
            depth, inside = int(levels[-1]), int(quotes[-1])
    return deepest


def fast_loads(text: str) -> Any:
    """``loads(text)`` when that would succeed, computed faster; else ``_UNSURE``.

    The C parser runs with its own number conversions (the same as the checked ones for every
    number :func:`_numbers_plain` lets through), refusing duplicate keys and NaN/Infinity in
    hooks; nesting is measured on the text (:func:`_max_depth`) instead of walking the result.
    Any doubt returns ``_UNSURE`` so that the caller runs the checked parse.
    """
    data = text.encode("utf-8")
    if not _numbers_plain(data):
        return _UNSURE
    containers = data.count(b"[") + data.count(b"{")  # more than the deepest nesting
    if containers > MAX_DEPTH and _max_depth(data) > MAX_DEPTH:
        return _UNSURE
    try:
        return json.loads(text, object_pairs_hook=unique_pairs, parse_constant=unsure_constant)
    except (ValueError, RecursionError, Unsure):
        return _UNSURE


def loads(text: str, *, file: str | Path, line: int | None = None) -> Any:
    """Parse ``text`` with every refusal above.

    ``line`` is the line ``text`` starts on (NDJSON); errors then report it (syntax errors the
    exact line within ``text``). Texts :func:`fast_loads` can vouch for take its faster path.
    """
    value = fast_loads(text)
    if value is not _UNSURE:
        return value
    first = line or 1
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid JSON: {exc.msg}", file=file, line=exc.lineno + first - 1, column=exc.colno
        ) from exc
    except _Refused as exc:
        raise FormatError(str(exc), file=file, line=line) from exc
    except RecursionError as exc:
        raise FormatError(
            f"JSON nested deeper than {MAX_DEPTH} levels", file=file, line=line
        ) from exc
    except ValueError as exc:
        raise FormatError(f"invalid JSON: {exc}", file=file, line=line) from exc
    if _max_depth(text.encode("utf-8")) > MAX_DEPTH:
        raise FormatError(f"JSON nested deeper than {MAX_DEPTH} levels", file=file, line=line)
    return value


def load_json(path: Path) -> Any:
    """Load a whole JSON file (UTF-8, BOM allowed) with the hardening of this module."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason})", file=path) from exc
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", file=path) from exc
    return loads(text, file=path)


def iter_ndjson(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line of an NDJSON file, streamed."""
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise FormatError(
                    f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB",
                    file=path,
                    line=number,
                )
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(f"not UTF-8 text ({exc.reason})", file=path, line=number) from exc
            if text.strip():
                yield number, loads(text, file=path, line=number)


def coordinate(
    value: Any, *, file: str | Path, path: Sequence[str | int], line: int | None = None
) -> float:
    """``value`` as a finite float within ±:data:`MAX_COORDINATE`, else a FormatError there."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(
            f"expected a number, got {describe(value)}",
            file=file,
            line=line,
            where=json_path(path),
        )
    out = float(value)
    if not math.isfinite(out) or abs(out) > MAX_COORDINATE:
        raise FormatError(
            f"coordinate {json_text(value)} is out of range (|x| <= {MAX_COORDINATE:g} px)",
            file=file,
            line=line,
            where=json_path(path),
        )
    return out
