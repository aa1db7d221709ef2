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
            raise _Refused(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def _too_deep(value: Any) -> bool:
    """True when containers nest deeper than :data:`MAX_DEPTH` (level by level, no recursion)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
    return False


def loads(text: str, *, file: str | Path, line: int | None = None) -> Any:
    """Parse ``text`` with every refusal above.

    ``line`` is the line ``text`` starts on (NDJSON); errors then report it (syntax errors the
    exact line within ``text``).
    """
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
    if _too_deep(value):
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
            f"expected a number, got {type(value).__name__} {str(value)[:40]!r}",
            file=file,
            line=line,
            where=json_path(path),
        )
    out = float(value)
    if not math.isfinite(out) or abs(out) > MAX_COORDINATE:
        raise FormatError(
            f"coordinate {value!r} is out of range (|x| <= {MAX_COORDINATE:g} px)",
            file=file,
            line=line,
            where=json_path(path),
        )
    return out
