"""VIA 3 ``xy`` lists (``[shape_id, x1, y1, ...]``) to :class:`~microprep.model.Shape`.

Coordinates are checked as in :mod:`microprep.readers.via.shapes` and stay ``float64`` pixel
units exactly as written.

Example:
    >>> place = Place("a.json", ("metadata",), "1_a")
    >>> s = via3_shape([2, 1, 2, 3, 4], "pore", {}, 0, place)
    >>> s.kind, s.points.tolist()
    ('box', [[1.0, 2.0], [4.0, 6.0]])
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microprep.errors import FormatError, GeometryError
from microprep.model import Shape, ShapeKind
from microprep.readers.jsonsafe import describe
from microprep.readers.via.regions import MAX_VERTICES, Place
from microprep.readers.via.shapes import MIN_POINTS, bad_item, check_positive, in_range, too_few

#: VIA 3 shape ids (``_VIA_RSHAPE`` in VIA's source).
VIA3_SHAPES: Final[dict[int, str]] = {
    1: "POINT",
    2: "RECTANGLE",
    3: "CIRCLE",
    4: "ELLIPSE",
    5: "LINE",
    6: "POLYLINE",
    7: "POLYGON",
    8: "EXTREME_RECTANGLE",
    9: "EXTREME_CIRCLE",
}

#: Exact coordinate counts (after the shape id) of the fixed-size VIA 3 shapes.
_VIA3_COUNTS: Final = {1: 2, 2: 4, 3: 3, 4: 4, 5: 4, 8: 8, 9: 6}


def _circumcircle(c: NDArray[np.float64], place: Place) -> tuple[float, float, float]:
    (ax, ay), (bx, by), (qx, qy) = c.reshape(3, 2).tolist()
    d = 2.0 * (ax * (by - qy) + bx * (qy - ay) + qx * (ay - by))
    if d == 0.0:
        raise place.error(
            GeometryError, "the 3 points of an extreme circle are collinear", "xy", []
        )
    a2, b2, q2 = ax * ax + ay * ay, bx * bx + by * by, qx * qx + qy * qy
    ux = (a2 * (by - qy) + b2 * (qy - ay) + q2 * (ay - by)) / d
    uy = (a2 * (qx - bx) + b2 * (ax - qx) + q2 * (bx - ax)) / d
    return ux, uy, math.hypot(ax - ux, ay - uy)


def via3_shape(
    xy: list[Any], label: str, attributes: dict[str, str], order: int, place: Place
) -> Shape | None:
    """A VIA 3 ``xy`` list (``[shape_id, coordinates...]``) as a Shape; None for unknown ids.

    ``LINE`` is a 2-point polyline, ``EXTREME_RECTANGLE`` (4 boundary points) the box around
    them, ``EXTREME_CIRCLE`` (3 points on the circle) the circle through them. VIA 3 ellipses
    have no rotation.

    Raises:
        FormatError: a non-integer shape id, non-numeric or out-of-range coordinates.
        GeometryError: a wrong number of coordinates, non-positive sizes, too few or too many
            vertices, collinear extreme-circle points.
    """
    sid = xy[0]
    if type(sid) is float and sid.is_integer():
        sid = int(sid)
    if type(sid) is not int:
        raise place.error(
            FormatError, f"the shape id must be an integer, got {describe(sid)}", "xy", [0]
        )
    if sid not in VIA3_SHAPES:
        return None
    name = VIA3_SHAPES[sid]
    values = xy[1:]
    n = len(values)
    if n > 2 * MAX_VERTICES:
        raise place.error(
            GeometryError,
            f"{n // 2} vertices; at most {MAX_VERTICES} per shape are accepted",
            "xy",
            [],
        )
    expected = _VIA3_COUNTS.get(sid)
    if (expected is not None and n != expected) or (n % 2 and sid != 3):
        want = f"{expected}" if expected is not None else "an even number of"
        raise place.error(
            GeometryError, f"{name} needs {want} coordinates after the shape id, got {n}", "xy", []
        )
    if not in_range(values):
        bad_item(values, place, "xy", [], start=1)
    c = np.array(values, dtype=np.float64)
    kind: ShapeKind
    if sid == 1:
        kind, points = "points", c.reshape(1, 2)
    elif sid in (2, 8):
        if sid == 8:
            p = c.reshape(4, 2)
            lo, hi = p.min(axis=0), p.max(axis=0)
            w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
            x, y = float(lo[0]), float(lo[1])
        else:
            x, y, w, h = c.tolist()
        check_positive(w, "width", place, "xy", [3])
        check_positive(h, "height", place, "xy", [4])
        kind, points = "box", np.array([[x, y], [x + w, y + h]])
    elif sid in (3, 9):
        cx, cy, r = c.tolist() if sid == 3 else _circumcircle(c, place)
        check_positive(r, "radius", place, "xy", [3])
        kind, points = "ellipse", np.array([[cx, cy], [r, r]])
    elif sid == 4:
        check_positive(float(c[2]), "rx", place, "xy", [3])
        check_positive(float(c[3]), "ry", place, "xy", [4])
        kind, points = "ellipse", c.reshape(2, 2)
    else:
        kind = "polygon" if sid == 7 else "polyline"
        points = c.reshape(-1, 2)
        if len(points) < MIN_POINTS[kind]:
            raise too_few(kind, len(points), place, "xy", [])
    return Shape(kind=kind, label=label, points=points, attributes=attributes, order=order)
