"""VIA region shapes to :class:`~microprep.model.Shape`, and the parsed form shared by the readers.

The VIA 1.x / 2.x JSON and CSV exports describe a region by a ``shape_attributes`` object
(``{"name": "polygon", "all_points_x": [...], "all_points_y": [...]}``); VIA 3 by an ``xy`` list
(``[shape_id, x1, y1, ...]``). Both become Shapes here; coordinates stay ``float64`` pixel units
exactly as written.

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
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microprep.errors import FormatError, GeometryError, InputError, UsageError
from microprep.model import LabelMap, LabelSpec, Shape, ShapeKind
from microprep.readers.jsonsafe import MAX_COORDINATE, coordinate, json_path

logger = logging.getLogger(__name__)

#: Most vertices one shape may have; longer polygons / polylines are a GeometryError.
MAX_VERTICES: Final = 100_000

#: Fewest vertices a shape of each vertex kind needs.
MIN_POINTS: Final[dict[str, int]] = {"polygon": 3, "polyline": 2, "points": 1}

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

_NUMBER_TYPES: Final = frozenset({int, float})
_CLASS_KINDS: Final = ("dropdown", "radio")
_OPTION_KINDS: Final = ("dropdown", "radio", "image")
_CSV_COLUMNS: Final = {
    "shape_attributes": "region_shape_attributes",
    "region_attributes": "region_attributes",
}


class Place:
    """Where a region is, turned into an error location only when an error is raised.

    JSON regions are ``prefix + [key]`` (for example ``("_via_img_metadata", "a.png12",
    "regions")`` and ``3``); CSV regions are a ``line`` and a column.

    Example:
        >>> Place("a.json", ("a.png12", "regions"), 3).where("shape_attributes", ["cx"])
        '$["a.png12"].regions[3].shape_attributes.cx'
        >>> Place("a.csv", (), None, line=7).where("shape_attributes", ["cx"])
        'column region_shape_attributes $.cx'
    """

    __slots__ = ("file", "key", "line", "prefix")

    def __init__(
        self,
        file: str,
        prefix: tuple[str | int, ...],
        key: str | int | None,
        *,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.prefix = prefix
        self.key = key
        self.line = line

    def where(self, part: str, parts: Sequence[str | int] = ()) -> str:
        """The JSON path (or CSV column and path in the cell) of ``part`` of the region."""
        if self.line is not None:
            column = f"column {_CSV_COLUMNS.get(part, part)}"
            return f"{column} {json_path(parts)}" if parts else column
        base = self.prefix if self.key is None else (*self.prefix, self.key)
        return json_path([*base, part, *parts])

    def error(
        self, kind: type[InputError], message: str, part: str, parts: Sequence[str | int] = ()
    ) -> InputError:
        """An error of class ``kind`` located at ``part`` (and ``parts`` below it)."""
        return kind(message, file=self.file, line=self.line, where=self.where(part, parts))


class ViaRegion(Place):
    """One region before it becomes a Shape; it is its own :class:`Place` for errors.

    ``shape`` is the VIA 2 ``shape_attributes`` dict or the VIA 3 ``xy`` list, ``attrs`` the
    region attributes by key (VIA 2: the attribute name; VIA 3: the attribute id), ``image`` the
    index of its image in the image list.

    Example:
        >>> r = ViaRegion({"name": "point", "cx": 1, "cy": 2}, {}, 0, "a.json", ("a", "regions"), 0)
        >>> r.where("shape_attributes", ["cx"])
        '$.a.regions[0].shape_attributes.cx'
    """

    __slots__ = ("attrs", "image", "shape")

    def __init__(
        self,
        shape: Any,
        attrs: dict[str, Any],
        image: int,
        file: str,
        prefix: tuple[str | int, ...],
        key: str | int | None,
        *,
        line: int | None = None,
    ) -> None:
        self.shape = shape
        self.attrs = attrs
        self.image = image
        self.file = file
        self.prefix = prefix
        self.key = key
        self.line = line


@dataclass(frozen=True, slots=True)
class ViaImage:
    """One image of the export: its name as written, and its VIA 3 file id if any."""

    name: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AttrDecl:
    """A declared region attribute (VIA 2 project ``_via_attributes`` or VIA 3 ``attribute``).

    ``key`` is how regions refer to it (VIA 2: the name; VIA 3: the attribute id), ``kind`` one
    of ``text``, ``checkbox``, ``radio``, ``dropdown``, ``image`` (VIA 3 ``select`` is
    ``dropdown``), ``options`` maps a stored value to its label, in declaration order (VIA 2: the
    option key to itself; VIA 3: the option id to the option text).
    """

    key: str
    name: str
    kind: str
    options: dict[str, str] = field(default_factory=dict)


# -- numbers ------------------------------------------------------------------------------------


def _bad_item(
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


def _in_range(values: Sequence[Any]) -> bool:
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
        raise place.error(FormatError, f"missing number {key!r}", part, [key])
    if type(value) in _NUMBER_TYPES and -MAX_COORDINATE <= value <= MAX_COORDINATE:
        return float(value)
    try:
        return coordinate(value, file=place.file, path=())
    except FormatError as exc:
        raise place.error(FormatError, exc.message, part, [key]) from exc


def _xy_lists(sa: dict[str, Any], place: Place, *, closed: bool) -> NDArray[np.float64]:
    """``all_points_x`` / ``all_points_y`` as an ``(N, 2)`` array, checked.

    ``closed``: drop a last vertex equal to the first (VIA 1.x closes its polygons).
    """
    xs, ys = sa.get("all_points_x"), sa.get("all_points_y")
    if type(xs) is not list or type(ys) is not list:
        key, bad = ("all_points_x", xs) if type(xs) is not list else ("all_points_y", ys)
        got = "missing" if bad is None else f"a {type(bad).__name__}"
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
    if not _in_range(both):
        _bad_item(xs, place, "shape_attributes", ["all_points_x"])
        _bad_item(ys, place, "shape_attributes", ["all_points_y"])
    arr = np.array(both, dtype=np.float64).reshape(2, n).T
    if closed and n > 1 and xs[0] == xs[-1] and ys[0] == ys[-1]:
        arr = arr[:-1]
    return arr


# -- VIA 1.x / 2.x shape_attributes -------------------------------------------------------------

_Geometry = tuple[ShapeKind, NDArray[np.float64], float]


def _positive(value: float, key: str, place: Place, part: str, parts: Sequence[str | int]) -> None:
    if not value > 0:
        raise place.error(GeometryError, f"{key} is {value:g}; it must be > 0", part, parts)


def _few(kind: str, n: int, place: Place, part: str, parts: Sequence[str | int]) -> InputError:
    return place.error(
        GeometryError, f"a {kind} needs at least {MIN_POINTS[kind]} points, got {n}", part, parts
    )


def _polygon(sa: dict[str, Any], place: Place) -> _Geometry:
    points = _xy_lists(sa, place, closed=True)
    if len(points) < 3:
        raise _few("polygon", len(points), place, "shape_attributes", ["all_points_x"])
    return "polygon", points, 0.0


def _polyline(sa: dict[str, Any], place: Place) -> _Geometry:
    points = _xy_lists(sa, place, closed=False)
    if len(points) < 2:
        raise _few("polyline", len(points), place, "shape_attributes", ["all_points_x"])
    return "polyline", points, 0.0


def _rect(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    x, y = number(sa, "x", place, p), number(sa, "y", place, p)
    w, h = number(sa, "width", place, p), number(sa, "height", place, p)
    _positive(w, "width", place, p, ["width"])
    _positive(h, "height", place, p, ["height"])
    return "box", np.array([[x, y], [x + w, y + h]]), 0.0


def _circle(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    cx, cy, r = number(sa, "cx", place, p), number(sa, "cy", place, p), number(sa, "r", place, p)
    _positive(r, "r", place, p, ["r"])
    return "ellipse", np.array([[cx, cy], [r, r]]), 0.0


def _ellipse(sa: dict[str, Any], place: Place) -> _Geometry:
    p = "shape_attributes"
    cx, cy = number(sa, "cx", place, p), number(sa, "cy", place, p)
    rx, ry = number(sa, "rx", place, p), number(sa, "ry", place, p)
    _positive(rx, "rx", place, p, ["rx"])
    _positive(ry, "ry", place, p, ["ry"])
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


# -- VIA 3 xy lists ------------------------------------------------------------------------------

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
        raise place.error(FormatError, f"shape id {str(sid)[:40]!r} is not an integer", "xy", [0])
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
    if not _in_range(values):
        _bad_item(values, place, "xy", [], start=1)
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
        _positive(w, "width", place, "xy", [3])
        _positive(h, "height", place, "xy", [4])
        kind, points = "box", np.array([[x, y], [x + w, y + h]])
    elif sid in (3, 9):
        cx, cy, r = c.tolist() if sid == 3 else _circumcircle(c, place)
        _positive(r, "radius", place, "xy", [3])
        kind, points = "ellipse", np.array([[cx, cy], [r, r]])
    elif sid == 4:
        _positive(float(c[2]), "rx", place, "xy", [3])
        _positive(float(c[3]), "ry", place, "xy", [4])
        kind, points = "ellipse", c.reshape(2, 2)
    else:
        kind = "polygon" if sid == 7 else "polyline"
        points = c.reshape(-1, 2)
        if len(points) < MIN_POINTS[kind]:
            raise _few(kind, len(points), place, "xy", [])
    return Shape(kind=kind, label=label, points=points, attributes=attributes, order=order)


# -- class attribute, labels, attributes --------------------------------------------------------


def _candidates_message(file: str, names: list[str], why: str) -> UsageError:
    listed = ", ".join(repr(n) for n in names) or "none"
    return UsageError(
        f"{file}: {why}; region attributes that could hold the class: {listed}. "
        "Pass --label-attribute NAME (ReadOptions.label_attribute)"
    )


def choose_label_attribute(
    decls: dict[str, AttrDecl] | None,
    regions: list[ViaRegion],
    requested: str | None,
    file: str,
) -> str | None:
    """The key of the region attribute that holds the class (see the module rules).

    Returns None only when there are no regions and nothing is requested or declared.

    Raises:
        UsageError: the requested attribute does not exist or is a checkbox; none or several
            candidates (the message lists them).
    """
    used: dict[str, bool] = {}  # key -> some region holds a non-checkbox value
    for region in regions:
        for name, value in region.attrs.items():
            if not used.get(name):
                used[name] = not isinstance(value, dict | list)
    decls = decls or {}
    names = {d.name: k for k, d in decls.items()}
    if requested is not None:
        known = requested in decls or requested in used
        key = names.get(requested, requested if known else None)
        if key is None:
            if not regions and not decls:
                return requested
            raise _candidates_message(
                file, [*names, *(k for k in used if k not in decls)], f"no attribute {requested!r}"
            )
        if key in decls and decls[key].kind == "checkbox":
            raise UsageError(f"{file}: attribute {requested!r} is a checkbox; it cannot be a class")
        return key
    declared = [k for k, d in decls.items() if d.kind in _CLASS_KINDS]
    if len(declared) == 1:
        return declared[0]
    if len(declared) > 1:
        raise _candidates_message(
            file, [decls[k].name for k in declared], "several dropdown/radio attributes"
        )
    found = [k for k, ok in used.items() if ok and decls.get(k, _TEXT).kind != "checkbox"]
    if len(found) == 1:
        return found[0]
    if not found and not regions:
        return None
    shown = [decls[k].name if k in decls else k for k in found]
    why = "several region attributes" if found else "the regions have no class-like attribute"
    raise _candidates_message(file, shown, why)


_TEXT: Final = AttrDecl("", "", "text")


def _text(value: Any) -> str:
    return value if type(value) is str else json.dumps(value, sort_keys=True)


def _attributes(
    attrs: dict[str, Any], skip: str | None, decls: dict[str, AttrDecl]
) -> dict[str, str]:
    """The region attributes other than the class, as strings (VIA 3: names and option text)."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if key == skip:
            continue
        decl = decls.get(key)
        if decl is None:
            out[key] = _text(value)
        elif decl.options and type(value) is str:
            parts = value.split(",") if decl.kind == "checkbox" else [value]
            out[decl.name] = ",".join(decl.options.get(p, p) for p in parts)
        else:
            out[decl.name] = _text(value)
    return out


class RegionBuilder:
    """Regions to Shapes: labels, attributes, skip counters, the label map."""

    def __init__(
        self, file: str, decls: dict[str, AttrDecl] | None, key: str | None, *, v3: bool
    ) -> None:
        self.file = file
        self.v3 = v3
        self.part = "av" if v3 else "region_attributes"
        self.decls = decls or {}
        self.key = key
        decl = self.decls.get(key) if key is not None else None
        with_options = decl is not None and bool(decl.options) and decl.kind in _OPTION_KINDS
        self.options = decl.options if decl is not None and with_options else None
        self.attr_name = decl.name if decl is not None else key
        self.used: dict[str, Place] = {}
        self.unlabelled = 0
        self.unsupported: Counter[str] = Counter()

    def label(self, region: ViaRegion, part: str) -> str | None:
        """The class of ``region`` (option ids mapped to text); None when missing or empty."""
        value = region.attrs.get(self.key) if self.key is not None else None
        if type(value) is str:
            text = value
        elif value is None:
            return None
        elif type(value) in (int, float):
            text = str(value)
        else:
            raise region.error(
                FormatError,
                f"the class attribute {self.attr_name!r} holds a {type(value).__name__}, "
                "not a class name",
                part,
                [self.key or ""],
            )
        if self.options is not None:
            text = self.options.get(text, text)
        return text if text.strip() else None

    def shapes(self, regions: list[ViaRegion], n_images: int) -> list[list[Shape]]:
        """The Shapes of each image (regions in file order; skipped ones counted)."""
        out: list[list[Shape]] = [[] for _ in range(n_images)]
        part, v3 = self.part, self.v3
        build: Callable[..., Shape | None] = via3_shape if v3 else via2_shape
        order = 0
        for region in regions:
            label = self.label(region, part)
            if label is None:
                self.unlabelled += 1
                continue
            attrs = region.attrs
            extra = _attributes(attrs, self.key, self.decls) if len(attrs) > 1 else {}
            shape = build(region.shape, label, extra, order, region)
            if shape is None:
                name = region.shape[0] if v3 else region.shape.get("name")
                self.unsupported[f"shape id {name}" if v3 else f"shape {name!r}"] += 1
                continue
            if label not in self.used:
                self.used[label] = region
            out[region.image].append(shape)
            order += 1
        return out

    def label_map(self, warnings: list[str]) -> LabelMap:
        """Declared options first, then labels in order of first use (warning if undeclared)."""
        declared = list(dict.fromkeys(self.options.values())) if self.options else []
        labels = [LabelSpec(name) for name in declared]
        for name, place in self.used.items():
            if name in declared:
                continue
            if self.options is not None:
                where = place.where(self.part, [self.key or ""])
                at = f"{self.file}:{place.line}" if place.line is not None else self.file
                warnings.append(
                    f"{at}: {where}: label {name!r} is not an option of the class attribute "
                    f"{self.attr_name!r}; added to the label map"
                )
            labels.append(LabelSpec(name, declared=self.options is None))
        return LabelMap(tuple(labels))

    def skip_warnings(self, warnings: list[str]) -> None:
        """Append one warning per kind of skipped region."""
        if self.unlabelled:
            warnings.append(
                f"{self.file}: {self.unlabelled} region(s) without a value for the class "
                f"attribute {self.attr_name!r} were skipped"
            )
        for what, count in sorted(self.unsupported.items()):
            warnings.append(f"{self.file}: {count} region(s) with unsupported {what} skipped")
