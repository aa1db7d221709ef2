"""Labelbox geometry: bounding boxes, points and vertex lists as ``float64`` pixel arrays.

* bounding box ``{"top", "left", "height", "width"}`` -> ``[[left, top], [left + width,
  top + height]]``; ``width`` and ``height`` must be positive;
* polygon / line ``[{"x", "y"}, ...]`` -> an ``(N, 2)`` array of at least the points the kind
  needs; point ``{"x", "y"}`` -> a ``(1, 2)`` array.

Coordinates stay exactly as written; each is a number within ``±MAX_COORDINATE``.

Example:
    >>> g = Geometry("e.ndjson", build=True)
    >>> g.box({"top": 1, "left": 2, "height": 3, "width": 4.5}, 1, ("bounding_box",)).tolist()
    [[2.0, 1.0], [6.5, 4.0]]
"""

from __future__ import annotations

import json
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microprep.errors import GeometryError
from microprep.readers import jsonsafe
from microprep.readers.jsonsafe import json_path
from microprep.readers.labelbox.checks import Checker, JsonPath, describe

_NUMBER_TYPES: Final = frozenset({int, float})
_BOX_KEYS: Final = ("top", "left", "height", "width")
_NO_POINTS: Final = np.zeros((0, 2), dtype=np.float64)


class Geometry(Checker):
    """Checks geometry and, when ``build``, returns its points (else empty arrays for vertices).

    ``checked``: the input already passed a checking pass (the file is unchanged): the
    per-vertex type and range checks are left out; structure is still checked.
    """

    def __init__(self, file: str, *, build: bool, checked: bool = False) -> None:
        super().__init__(file)
        self.build = build
        self.checked = checked

    def geometry_error(self, message: str, line: int | None, path: JsonPath) -> GeometryError:
        """A GeometryError at ``line`` and ``path`` of the export."""
        return GeometryError(message, file=self.file, line=line, where=json_path(path))

    def box(self, box: Any, line: int | None, path: JsonPath) -> NDArray[np.float64]:
        """A bounding box object as ``[[left, top], [right, bottom]]``."""
        if not isinstance(box, dict):
            raise self.format_error(
                f"expected an object with top, left, height, width, got {describe(box)}",
                line,
                path,
            )
        values: list[float] = []
        for key in _BOX_KEYS:
            if key not in box:
                raise self.format_error(f"missing {json.dumps(key)}", line, path)
            values.append(
                jsonsafe.coordinate(box[key], file=self.file, path=(*path, key), line=line)
            )
        top, left, height, width = values
        if width <= 0 or height <= 0:
            raise self.geometry_error(
                f"bounding box width and height must be positive (width={width}, height={height})",
                line,
                path,
            )
        return np.array([[left, top], [left + width, top + height]], dtype=np.float64)

    def point(self, point: Any, line: int | None, path: JsonPath) -> NDArray[np.float64]:
        """A point object ``{"x", "y"}`` as a ``(1, 2)`` array."""
        if not isinstance(point, dict):
            raise self.format_error(
                f"expected an object with x and y, got {describe(point)}", line, path
            )
        return self.vertices([point], line, path, 1, "point", single=True)

    def vertices(
        self,
        value: Any,
        line: int | None,
        path: JsonPath,
        need: int,
        kind: str,
        *,
        single: bool = False,
    ) -> NDArray[np.float64]:
        """``[{"x", "y"}, ...]`` as an ``(N, 2)`` float64 array of at least ``need`` points.

        Checked in bulk; only when that fails are the points walked one by one to name the bad
        one in the error (``single``: ``value`` wraps one point at ``path`` itself).
        """
        if not isinstance(value, list):
            raise self.format_error(
                f"expected a list of {{x, y}} points, got {describe(value)}", line, path
            )
        limit = jsonsafe.MAX_COORDINATE
        try:
            xs = [p["x"] for p in value]
            ys = [p["y"] for p in value]
            ok = self.checked or (
                {*map(type, xs), *map(type, ys)} <= _NUMBER_TYPES
                and (
                    not xs
                    or (
                        -limit <= min(xs)
                        and max(xs) <= limit
                        and -limit <= min(ys)
                        and max(ys) <= limit
                    )
                )
            )
        except (KeyError, TypeError, IndexError):
            ok = False
        if ok:
            count = len(xs)
            arr = np.array((xs, ys), dtype=np.float64).T if self.build and xs else _NO_POINTS
        else:
            arr = self._walk(value, line, path, single)
            count = len(arr)
        if count < need:
            raise self.geometry_error(
                f"a {kind} needs at least {need} points, got {count}", line, path
            )
        return arr

    def _walk(
        self, value: list[Any], line: int | None, path: JsonPath, single: bool
    ) -> NDArray[np.float64]:
        out: list[tuple[float, float]] = []
        for i, point in enumerate(value):
            here = path if single else (*path, i)
            if not isinstance(point, dict):
                raise self.format_error(
                    f"expected an object with x and y, got {describe(point)}", line, here
                )
            xy: list[float] = []
            for key in ("x", "y"):
                if key not in point:
                    raise self.format_error(f"missing {json.dumps(key)}", line, here)
                xy.append(
                    jsonsafe.coordinate(point[key], file=self.file, path=(*here, key), line=line)
                )
            out.append((xy[0], xy[1]))
        return np.array(out, dtype=np.float64).reshape(-1, 2)
