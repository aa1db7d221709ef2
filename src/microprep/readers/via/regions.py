"""The parsed form of a VIA export, shared by its variants: images, regions, declarations.

Every variant (VIA 1.x / 2.x JSON and CSV, VIA 3) is parsed into :class:`ViaImage` and
:class:`ViaRegion` lists (and, where the export declares them, :class:`AttrDecl`) before any
region becomes a Shape. A region is its own :class:`Place`: errors about it name the file and
the JSON path (or the CSV line and column) only when they are raised.

Example:
    >>> place = Place("a.json", ("a.png1", "regions"), 0)
    >>> place.where("shape_attributes", ["x"])
    '$["a.png1"].regions[0].shape_attributes.x'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from microprep.errors import FormatError, InputError
from microprep.readers.jsonsafe import json_path, json_text, json_type
from microprep.readers.names import check_image_name

#: Most vertices one shape may have; longer polygons / polylines are a GeometryError.
MAX_VERTICES: Final = 100_000

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
        # the Place fields are set here rather than by Place.__init__: one call less per region
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


def json_object(value: Any, file: str, path: list[str | int], what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else a FormatError at ``path`` naming ``what``."""
    if not isinstance(value, dict):
        raise FormatError(
            f"{what} must be a JSON object, got {json_type(value)}",
            file=file,
            where=json_path(path),
        )
    return value


def image_name(name: Any, file: str, path: list[str | int], seen: set[str]) -> str:
    """A checked image name, not in ``seen`` (added to it); ``path`` is where it is written."""
    if not isinstance(name, str) or not name:
        raise FormatError("missing or empty file name", file=file, where=json_path(path))
    key = check_image_name(name, file=file, path=path)
    if key in seen:
        raise FormatError(
            f"image {json_text(name, 80)} is listed twice", file=file, where=json_path(path)
        )
    seen.add(key)
    return name
