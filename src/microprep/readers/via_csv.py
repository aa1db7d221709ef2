"""The VIA CSV export (VIA 1.x and 2.x), and the JSON-text hardening shared with JSON exports.

**CSV**: one row per region, JSON objects inside cells.

The header is ``filename,file_size,file_attributes,region_count,region_id,
region_shape_attributes,region_attributes`` (VIA 1.x writes a ``#`` before it). Cells are
double-quoted CSV with ``""`` escaping; ``region_shape_attributes`` and ``region_attributes`` hold
JSON objects, parsed with the same hardening as whole JSON files. An image without regions has
one row with ``region_count`` 0 (its shape cell ``{}``): it is still an image of the set.
``file_size`` and ``file_attributes`` are not read.

The rows of one image must be consecutive; an image name that comes back after another image is
a FormatError (a sorted or concatenated file would otherwise duplicate or mix regions).

Errors name the file, the line where the row starts, the column and the JSON path in the cell.

**JSON text** (:func:`load_json_text`, for whole files and for cells) follows the rules of
:mod:`microprep.readers.jsonsafe` (NaN/Infinity, overflowing numbers, integers over
``MAX_INT_DIGITS`` digits, duplicate keys, nesting over ``MAX_DEPTH`` are refused):

* arrays too long for any shape are refused before parsing (:func:`check_array_lengths`);
* :func:`fast_loads` parses with the C parser and default number conversions, then checks the
  result; it returns the value only when ``jsonsafe.loads`` would return the same value, and
  defers otherwise;
* deferred texts go to ``jsonsafe.loads`` itself, whose verdict is final; the values it refuses
  get their JSON path (:func:`locate_refusal`), or their line when nested too deep to walk.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "via.csv"
    >>> _ = p.write_text(
    ...     "filename,file_size,file_attributes,region_count,region_id,"
    ...     "region_shape_attributes,region_attributes\\n"
    ...     'a.png,10,"{}",1,0,"{""name"":""point"",""cx"":1,""cy"":2}","{""c"":""pore""}"\\n'
    ... )
    >>> images, regions = parse_csv(p)
    >>> [image.name for image in images], [region.shape["name"] for region in regions]
    (['a.png'], ['point'])
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Final

from microprep.errors import FormatError, GeometryError, InputError, UnsafeInputError
from microprep.paths import check_relative_name
from microprep.readers.jsonsafe import MAX_DEPTH, MAX_INT_DIGITS, json_path, loads
from microprep.readers.via_shapes import MAX_VERTICES, ViaImage, ViaRegion

logger = logging.getLogger(__name__)

#: The columns of a VIA CSV export, in VIA's order.
CSV_COLUMNS: Final = (
    "filename",
    "file_size",
    "file_attributes",
    "region_count",
    "region_id",
    "region_shape_attributes",
    "region_attributes",
)

#: Longest cell accepted, in characters: room for ``MAX_VERTICES`` vertices written at full
#: float precision.
MAX_CELL_CHARS: Final = 64 * MAX_VERTICES


def is_header(row: list[str]) -> bool:
    """True when ``row`` is the VIA CSV header (a leading ``#`` and spaces allowed)."""
    names = [cell.strip() for cell in row]
    if names:
        names[0] = names[0].lstrip("\ufeff#").strip()
    return names[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)


def _object(text: str, column: str, file: str, line: int) -> dict[str, Any]:
    value = load_json_text(text or "{}", file=file, line=line, where=f"column {column}")
    if not isinstance(value, dict):
        raise FormatError(
            f"expected a JSON object, got {type(value).__name__}",
            file=file,
            line=line,
            where=f"column {column}",
        )
    return value


def _count(text: str, file: str, line: int) -> int:
    try:
        return int(text.strip() or "0")
    except ValueError as exc:
        raise FormatError(
            f"region_count {text[:20]!r} is not an integer",
            file=file,
            line=line,
            where="column region_count",
        ) from exc


class _Rows:
    """Rows of the CSV with the line each one starts on."""

    def __init__(self, stream: Any, file: str) -> None:
        self.reader = csv.reader(stream, strict=True)
        self.file = file

    def __iter__(self) -> _Rows:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        start = self.reader.line_num + 1
        try:
            row = next(self.reader)
        except csv.Error as exc:
            text = str(exc)
            if "field larger than field limit" in text:
                text = (
                    f"a cell is longer than {MAX_CELL_CHARS} characters (at most "
                    f"{MAX_VERTICES} vertices per shape are accepted)"
                )
            raise FormatError(f"invalid CSV: {text}", file=self.file, line=start) from exc
        return start, row


def _parse(stream: Any, file: str) -> tuple[list[ViaImage], list[ViaRegion]]:
    rows = _Rows(stream, file)
    header: list[str] | None = None
    images: list[ViaImage] = []
    regions: list[ViaRegion] = []
    seen: set[str] = set()
    for line, row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is None:
            if not is_header(row):
                raise FormatError(
                    "not a VIA CSV export: the header must be " + ",".join(CSV_COLUMNS),
                    file=file,
                    line=line,
                )
            header = row
            continue
        if len(row) < len(CSV_COLUMNS):
            raise FormatError(
                f"{len(row)} columns, expected {len(CSV_COLUMNS)}", file=file, line=line
            )
        name = row[0]
        if not images or images[-1].name != name:
            try:
                key = str(check_relative_name(name))
            except UnsafeInputError as exc:
                raise UnsafeInputError(
                    exc.message, file=file, line=line, where="column filename"
                ) from exc
            if key in seen:
                raise FormatError(
                    f"rows of image {name!r} are not consecutive (or the image is listed twice)",
                    file=file,
                    line=line,
                    where="column filename",
                )
            seen.add(key)
            images.append(ViaImage(name))
        if _count(row[3], file, line) == 0:
            continue
        shape = _object(row[5], "region_shape_attributes", file, line)
        if not shape:
            continue
        attrs = _object(row[6], "region_attributes", file, line)
        regions.append(ViaRegion(shape, attrs, len(images) - 1, file, (), None, line=line))
    if header is None:
        raise FormatError("empty file: no VIA CSV header", file=file)
    return images, regions


def parse_csv(path: Path) -> tuple[list[ViaImage], list[ViaRegion]]:
    """The images and the regions (not yet Shapes) of a VIA CSV export.

    Args:
        path: the ``.csv`` file (UTF-8, BOM allowed).

    Returns:
        One :class:`~microprep.readers.via_shapes.ViaImage` per image and the regions, both in
        file order (``ViaRegion.image`` indexes the image list).

    Raises:
        FormatError: not UTF-8, not CSV, wrong header or column count, invalid JSON in a cell,
            a cell longer than ``MAX_CELL_CHARS``, rows of one image not consecutive.
        UnsafeInputError: an image name escaping its folder.
        GeometryError: an array too long for any shape.

    The csv module's field size limit is raised to ``MAX_CELL_CHARS`` while the file is read
    (it is process-wide; the previous value is restored).
    """
    file = str(path)
    previous = csv.field_size_limit(MAX_CELL_CHARS)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return _parse(stream, file)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason})", file=path) from exc
    except InputError:
        raise
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    finally:
        csv.field_size_limit(previous)


# -- JSON text: vertex cap before parsing, and locating what the parser refused -----------------

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
        where = f"array {key.group(1)!r}" if key else "array"
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
            return f"duplicate key {node.duplicate!r} in one object", [*path, node.duplicate]
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


# -- a faster path to the same result as jsonsafe.loads ------------------------------------------

#: Numbers at least this large in magnitude send a text to jsonsafe: every integer jsonsafe refuses
#: (more than ``MAX_INT_DIGITS`` digits) and every overflowed float (infinite) is among them.
_HUGE = 10.0**MAX_INT_DIGITS
_CONTAINERS = frozenset({dict, list})
_NUMBERS = frozenset({int, float})
_UNSURE: Any = object()


class _Unsure(Exception):
    """The plain parser met something only jsonsafe may judge."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Unsure
    return out


def _constant(name: str) -> Any:
    raise _Unsure


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
        value = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_constant)
    except (ValueError, RecursionError, _Unsure):
        return _UNSURE
    return value if _plain(value) else _UNSURE


def _short_path(path: list[str | int], keep: int = 12) -> str:
    """``json_path(path)``, its middle elided when it is longer than ``keep`` parts."""
    if len(path) <= keep:
        return json_path(path)
    tail = json_path(path[-2:])[1:]
    return f"{json_path(path[: keep - 2])}...{tail} ({len(path)} levels)"


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
        GeometryError: an array too long for any shape (see :func:`check_array_lengths`).
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
        inner = None if path is None else _short_path(path)
        place = " ".join(part for part in (where, inner) if part) or None
        raise FormatError(message, file=file, line=at_line, column=column, where=place) from exc
