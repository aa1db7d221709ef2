"""The VIA CSV export (VIA 1.x and 2.x): one row per region, JSON objects inside cells.

The header is ``filename,file_size,file_attributes,region_count,region_id,
region_shape_attributes,region_attributes`` (VIA 1.x writes a ``#`` before it). Cells are
double-quoted CSV with ``""`` escaping; ``region_shape_attributes`` and ``region_attributes`` hold
JSON objects, parsed with the same hardening as whole JSON files
(:func:`~microprep.readers.via.jsonfast.load_json_text`). An image without regions has one row
with ``region_count`` 0 (its shape cell ``{}``): it is still an image of the set.
``file_size`` and ``file_attributes`` are not read.

The rows of one image must be consecutive; an image name that comes back after another image is
a FormatError (a sorted or concatenated file would otherwise duplicate or mix regions).

Errors name the file, the line where the row starts, the column and the JSON path in the cell.

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
from pathlib import Path
from typing import Any, Final

from microprep.errors import FormatError, InputError
from microprep.readers.jsonsafe import json_text, json_type
from microprep.readers.names import check_image_name
from microprep.readers.via.jsonfast import load_json_text
from microprep.readers.via.regions import MAX_VERTICES, ViaImage, ViaRegion

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
            f"expected a JSON object, got {json_type(value)}",
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
            f"region_count {json_text(text, 20)} is not an integer",
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
            key = check_image_name(name, file=file, line=line, where="column filename")
            if key in seen:
                raise FormatError(
                    f"rows of image {json_text(name, 80)} are not consecutive "
                    "(or the image is listed twice)",
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
        One :class:`~microprep.readers.via.regions.ViaImage` per image and the regions, both in
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
