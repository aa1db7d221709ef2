"""Schema failures of the image and shape tables as sentences in the user's terms.

:func:`~microprep.validate.tables.schema_findings` validates the tables with pandera; each
failure (a pandera failure case: the check, the column, the value and the row) becomes one
sentence naming what the row is (the image, or the shape's kind, track, frame and label) and why
it fails, never the name of the check. Every check of ``schemas/images.yaml`` and
``schemas/shapes.yaml`` has its sentence; a check added to a schema later without one still
reads as ``has <column> <value>, which the schema does not allow``.

Example:
    >>> row = {"image": "frame_000010", "order": 4, "label": "fly", "kind": "skeleton",
    ...        "track_id": 3, "x_min": float("nan")}
    >>> schema_message("shapes", "finite_unless_kind(columns=['x_min'], kinds=['tag'])",
    ...                None, None, row, frame=10)
    "skeleton track 3 in frame 10 has no points (label 'fly')"
    >>> schema_message("images", "greater_than(0)", "width", 0, {"name": "a.png"})
    "image 'a.png' has width 0 (it must be more than 0)"
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: Column names in words.
_WORDS = {
    "image": "an image name",
    "name": "a name",
    "order": "file position",
    "label": "a label",
    "kind": "kind",
    "area": "area",
    "n_vertices": "vertex count",
    "z_order": "z_order",
    "occluded": "occluded flag",
    "group": "group id",
    "track_id": "track id",
    "rotation": "rotation (degrees)",
    "width": "width",
    "height": "height",
    "frame": "frame number",
    "subset": "subset",
    "n_shapes": "shape count",
    "file_exists": "file flag",
    "file_width": "image file width",
    "file_height": "image file height",
    "x_min": "x_min",
    "y_min": "y_min",
    "x_max": "x_max",
    "y_max": "y_max",
}
_POINT_KINDS = ("points", "skeleton", "polygon", "polyline")
_ARGS = re.compile(r"^(\w+)\((.*)\)$", re.DOTALL)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pandas NA
    except (TypeError, ValueError):
        return False


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return str(value)


def subject(table: str, row: Mapping[str, Any] | None, *, frame: int | None = None) -> str:
    """What a table row is, e.g. ``"image 'a.png'"``, ``"box #5 in image 'a.png'"`` or
    ``"skeleton track 3 in frame 10"`` (shapes of a video frame name the frame)."""
    if row is None:
        return f"the {table} table"
    if table == "images":
        return f"image {row.get('name')!r}"
    kind = row.get("kind") or "shape"
    track: Any = row.get("track_id")
    where = f"in frame {frame}" if frame is not None else f"in image {row.get('image')!r}"
    if not _missing(track):
        return f"{kind} track {int(track)} {where}"
    order: Any = row.get("order")
    number = "" if _missing(order) else f" #{int(order)}"
    return f"{kind}{number} {where}"


def _finite_reason(row: Mapping[str, Any]) -> str:
    bounds = [row.get(c) for c in ("x_min", "y_min", "x_max", "y_max")]
    if all(_missing(v) for v in bounds):
        if row.get("kind") in _POINT_KINDS:
            return "has no points"
        return "has no extent"
    return "has NaN or infinite coordinates"


def _reversed_reason(row: Mapping[str, Any]) -> str:
    parts = []
    for low, high in (("x_min", "x_max"), ("y_min", "y_max")):
        a: Any = row.get(low)
        b: Any = row.get(high)
        if not _missing(a) and not _missing(b) and b < a:
            parts.append(f"{high} {_number(b)} < {low} {_number(a)}")
    return "has a reversed extent" + (f" ({', '.join(parts)})" if parts else "")


def _column_reason(name: str, args: str, column: str | None, value: Any) -> str:
    what = _WORDS.get(column or "", f"{column}")
    shown = _number(value)
    if name == "str_length":
        return f"has an empty {what.removeprefix('a ').removeprefix('an ')}"
    if name == "greater_than":
        return f"has {what} {shown} (it must be more than {args})"
    if name == "greater_than_or_equal_to":
        bound = args.strip()
        if bound in ("0", "0.0"):
            return f"has a negative {what} ({shown})"
        return f"has {what} {shown} (it must be at least {bound})"
    if name == "less_than":
        return f"has {what} {shown} (it must be less than {args})"
    if name == "less_than_or_equal_to":
        return f"has {what} {shown} (it must be at most {args})"
    if name == "in_range":
        low, _, high = args.partition(",")
        return (
            f"has {what} {shown} (it must be within {_number(float(low))}..{_number(float(high))})"
        )
    if name == "isin":
        allowed = args.strip("[]").replace("'", "")
        return f"has an unknown {what} {value!r} (known: {allowed})"
    if name == "not_nullable":
        return f"has no {what}"
    return f"has {what} {shown}, which the schema does not allow"


def schema_message(
    table: str,
    check: str,
    column: str | None,
    value: Any,
    row: Mapping[str, Any] | None,
    *,
    frame: int | None = None,
) -> str:
    """One failure of the ``table`` schema as a sentence.

    Args:
        table: ``"images"`` or ``"shapes"``.
        check: pandera's name of the failed check, e.g. ``"greater_than(0)"``.
        column: the column checked (None for a whole-row check).
        value: the failing value (the failure case).
        row: the failing row as a mapping of column to value, or None for table-level failures.
        frame: the video frame of the row's image, when it has one.
    """
    match = _ARGS.match(check.strip())
    name, args = (match.group(1), match.group(2)) if match else (check.strip(), "")
    if name == "column_in_dataframe":
        return f"the {table} table has no column {value!r}"
    if name == "column_in_schema":
        return f"the {table} table has a column {value!r} that the schema does not know"
    if name == "dtype":
        return f"the {table} table's column {column!r} holds {value}, not {args.strip(chr(39))}"
    who = subject(table, row, frame=frame)
    label = "" if row is None or table != "shapes" else row.get("label")
    tail = f" (label {label!r})" if label else ""
    if name == "finite_unless_kind" and row is not None:
        reason = _finite_reason(row)
    elif name == "not_less_than" and row is not None:
        reason = _reversed_reason(row)
    else:
        reason = _column_reason(name, args, column, value)
        if column == "label":
            tail = ""
    return f"{who} {reason}{tail}"
