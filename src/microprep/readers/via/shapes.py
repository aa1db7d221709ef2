"""VIA 1.x / 2.x ``shape_attributes`` to :class:`~microprep.model.Shape`, and the coordinate checks.

The VIA 1.x / 2.x JSON and CSV exports describe a region by a ``shape_attributes`` object
(``{"name": "polygon", "all_points_x": [...], "all_points_y": [...]}``); VIA 3 by an ``xy`` list
(see :mod:`microprep.readers.via.via3_shapes`, which uses the checks of this module).
Coordinates stay ``float64`` pixel units exactly as written.

Number checks are vectorised: a list of coordinates is accepted at once when every item is an
``int`` or ``float`` (never ``bool``) within ``±MAX_COORDINATE``; only when that fails is the list
walked item by item to name the offending one. NaN and infinities never get this far: the JSON
parser refuses them.

Example:
    >>> place = Place("a.json", ("a.png1", "regions"), 0)
    >>> rect = {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4}
    >>> s = via2_shape(rect, "pore", {}, 0, place)
    >>> s.kind, s.points.tolist()
    ('box', [[1.0, 2.0], [4.0, 6.0]])
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microprep.errors import FormatError, GeometryError, InputError
from microprep.model import Shape, ShapeKind
from microprep.readers.jsonsafe import MAX_COORDINATE, coordinate, json_type
from microprep.readers.via.regions import MAX_VERTICES, Place

#: Fewest vertices a shape of each vertex kind needs.
MIN_POINTS: Final[dict[str, int]] = {"polygon": 3, "polyline": 2, "points": 1}

_NUMBER_TYPES: Final = frozenset({int, float})


# -- numbers ------------------------------------------------------------------------------------


def bad_item(
    values: Sequence[Any],
    place: Place,
    part: str,
    parts: Sequence[str | int],
    start: int = 0,
) -> None:
    """Raise the error of the first item of ``values`` that is not an acceptable coordinate.

    ``start`` is the index of ``values[0]`` in the list the error names.
    """
    for i, value in enumerate(values, start=start):
        try:
            coordinate(value, file=place.file, path=())
        except FormatError as exc:
            raise place.error(FormatError, exc.message, part, [*parts, i]) from exc


def in_range(values: Sequence[Any]) -> bool:
    """True when every item is an int/float (not bool) within ±MAX_COORDINATE."""
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        return False
    return not values or (-MAX_COORDINATE <= min(values) and max(values) <= MAX_COORDINATE)


def number(
    mapping: dict[str, Any],
    key: str,
    place: Place,
    part: str,
    default: float | None = None,
) -> float:
    """``mapping[key]`` as a checked coordinate (FormatError naming ``part.key`` otherwise)."""
    value = mapping.get(key)
    if value is None:
        if default is not None and key not in mapping:
            return default
        raise place.error(FormatError, f"missing number {json.dumps(key)}", part, [key])
    if type(value) in _NUMBER_TYPES and -MAX_COORDINATE <= value <= MAX_COORDINATE:
        return float(value)
    try:
        return coordinate(value, file=place.file, path=())
    except FormatError as exc:
        raise place.error(FormatError, exc.message, part, [key]) from exc


def check_positive(
    value: float, key: str, place: Place, part: str, parts: Sequence[str | int]
) -> None:
    """A GeometryError naming ``key`` unless ``value > 0``."""
    if not value > 0:
        raise place.error(GeometryError, f"{key} is {value:g}; it must be > 0", part, parts)


def too_few(kind: str, n: int, place: Place, part: str, parts: Sequence[str | int]) -> InputError:
    """The GeometryError for a ``kind`` with ``n`` vertices, fewer than ``MIN_POINTS[kind]``."""
    return place.error(
        GeometryError, f"a {kind} needs at least {MIN_POINTS[kind]} points, got {n}", part, parts
    )


def _xy_lists(sa: dict[str, Any], place: Place, *, closed: bool) -> NDArray[np.float64]:
    """``all_points_x`` / ``all_points_y`` as an ``(N, 2)`` array, checked.

    ``closed``: drop a last vertex equal to the first (VIA 1.x closes its polygons).
    """
    xs, ys = sa.get("all_points_x"), sa.get("all_points_y")
    if type(xs) is not list or type(ys) is not list:
        key, bad = ("all_points_x", xs) if type(xs) is not list else ("all_points_y", ys)
        got = "missing" if bad is None else json_type(bad)
        raise place.error(
            FormatError, f"{key} must be a list of numbers ({got})", "shape_attributes", [key]
        )
    n = len(xs)
    if n != len(ys):
        raise place.error(
            GeometryError,
            f"all_points_x has {n} values but all_points_y has {len(ys)}",
            "shape_attributes",
            ["all_points_y"],
        )
    if n > MAX_VERTICES:
        raise place.error(
            GeometryError,
            f"{n} vertices; at most {MAX_VERTICES} per shape are accepted (MAX_VERTICES)",
            "shape_attributes",
            ["all_points_x"],
        )
    both = xs + ys
    if not in_range(both):
        bad_item(xs, place, "shape_attributes", ["all_points_x"])
        bad_item(ys, place, "shape_attributes", ["all_points_y"])
    arr = np.array(both, dtype=np.float64).reshape(2, n).T
    if closed and n > 1 and xs[0] == xs[-1] and ys[0] == ys[-1]:
        arr = arr[:-1]
    return arr


# -- VIA 1.x / 2.x shape_attributes -------------------------------------------------------------

_Geometry = tuple[ShapeKind, NDArray[np.float64], float]


def _polygon(sa: dict[str, Any], place: Place) -> _Geometry:
    points = _xy_lists(sa, place, closed=True)
    if len(points) < 3:
        raise too_few("polygon", len(points), place, "shape_attributes", ["all_points_x"])
    return "polygon", points, 0.0


def _polyline(sa: dict[str, Any], place: Place) -> _Geometry:
    points = _xy_lists(sa, place, closed=False)
    if len(points) < 2:
        raise too_few("polyline", len(points), place, "shape_attributes", ["all_points_x"])
    return "polyline", points, 0.0


def _rect(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    x, y = number(sa, "x", place, p), number(sa, "y", place, p)
    w, h = number(sa, "width", place, p), number(sa, "height", place, p)
    check_positive(w, "width", place, p, ["width"])
    check_positive(h, "height", place, p, ["height"])
    return "box", np.array([[x, y], [x + w, y + h]]), 0.0


def _circle(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    cx, cy, r = number(sa, "cx", place, p), number(sa, "cy", place, p), number(sa, "r", place, p)
    check_positive(r, "r", place, p, ["r"])
    return "ellipse", np.array([[cx, cy], [r, r]]), 0.0


def _ellipse(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    cx, cy = number(sa, "cx", place, p), number(sa, "cy", place, p)
    rx, ry = number(sa, "rx", place, p), number(sa, "ry", place, p)
    check_positive(rx, "rx", place, p, ["rx"])
    check_positive(ry, "ry", place, p, ["ry"])
    # theta: radians, the angle of canvas ctx.ellipse(), clockwise on screen like ``rotation``
    theta = number(sa, "theta", place, p, default=0.0)
    return "ellipse", np.array([[cx, cy], [rx, ry]]), math.degrees(theta)


def _point(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    cx, cy = number(sa, "cx", place, p), number(sa, "cy", place, p)
    return "points", np.array([[cx, cy]]), 0.0


#: VIA 1.x / 2.x shape names that become Shapes; other names are skipped with a warning.
VIA2_SHAPES: Final[dict[str, Callable[[dict[str, Any], Place], _Geometry]]] = {
    "rect": _rect,
    "circle": _circle,
    "ellipse": _ellipse,
    "polygon": _polygon,
    "polyline": _polyline,
    "point": _point,
}


def via2_shape(
    sa: dict[str, Any], label: str, attributes: dict[str, str], order: int, place: Place
) -> Shape | None:
    """A VIA 1.x / 2.x ``shape_attributes`` object as a Shape; None for an unsupported name.

    Args:
        sa: the ``shape_attributes`` dict (its ``name`` picks the kind).
        label: the class of the region.
        attributes: the other region attributes, as strings.
        order: ``Shape.order``.
        place: where the region is, for errors.

    Returns:
        The Shape (``rect`` -> box, ``circle`` -> ellipse with equal radii, ``ellipse`` ->
        ellipse rotated by ``degrees(theta)``, ``polygon`` / ``polyline`` -> vertices, a closing
        vertex equal to the first dropped from polygons, ``point`` -> one point).

    Raises:
        FormatError: missing or non-numeric fields, coordinates beyond ``MAX_COORDINATE``.
        GeometryError: non-positive sizes or radii, x/y lists of different lengths, too few or
            too many vertices.
    """
    name = sa.get("name")
    build = VIA2_SHAPES.get(name) if isinstance(name, str) else None
    if build is None:
        return None
    kind, points, rotation = build(sa, place)
    return Shape(
        kind=kind,
        label=label,
        points=points,
        rotation=rotation,
        attributes=attributes,
        order=order,
    )
