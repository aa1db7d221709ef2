"""The parts both Labelbox formats share: objects to Shapes, masks from a folder, image sizes.

Used by :mod:`microprep.readers.labelbox` (NDJSON export, v2, ``snake_case`` keys) and
:mod:`microprep.readers.labelbox_legacy` (legacy JSON export, v1, ``camelCase`` keys). Which keys
hold what is described by an :class:`ObjectKeys`; :data:`V2_KEYS` and :data:`LEGACY_KEYS` are the
two. :class:`ObjectReader` turns objects into shapes; :class:`NewImages` (checking pass) and
:class:`KnownImages` (streaming pass) hand out the images with their sizes.

Geometry (coordinates stay ``float64`` pixel units exactly as written):

* bounding box ``{"top", "left", "height", "width"}`` -> ``box`` ``[[left, top],
  [left + width, top + height]]``; ``width`` and ``height`` must be positive;
* polygon ``[{"x", "y"}, ...]`` (at least 3 points) -> ``polygon``; line (at least 2) ->
  ``polyline``; point ``{"x", "y"}`` -> ``points``;
* segmentation mask -> ``mask``, read from a local folder only (see :meth:`ObjectReader.read`).

Classifications become ``Shape.attributes`` (see :meth:`ObjectReader.attributes`).

Example:
    >>> r = ObjectReader("export.ndjson", masks=None, build=True)
    >>> obj = {"name": "pore", "annotation_kind": "ImagePoint", "point": {"x": 1.5, "y": 2}}
    >>> r.read(obj, ("objects", 0), 1, size=(8, 8), attrs={}, stems=("f1", None)).points.tolist()
    [[1.5, 2.0]]
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import (
    FormatError,
    GeometryError,
    ImageFileError,
    InputError,
    UnsafeInputError,
    UsageError,
)
from microprep.images import read_image
from microprep.model import ImageInfo, Shape, ShapeKind
from microprep.paths import check_relative_name, safe_join
from microprep.readers import jsonsafe
from microprep.readers.jsonsafe import json_path
from microprep.readers.options import ReadOptions

logger = logging.getLogger(__name__)

#: A JSON path as keys and list indices (turned into text only for error messages).
JsonPath = tuple[str | int, ...]

#: Labelbox's ``annotation_kind`` (without its ``Image``/``Video`` prefix) -> shape kind.
KINDS: Final[dict[str, ShapeKind]] = {
    "BoundingBox": "box",
    "Polygon": "polygon",
    "Polyline": "polyline",
    "Point": "points",
    "SegmentationMask": "mask",
}

#: Largest image width or height accepted, in pixels.
MAX_IMAGE_SIDE: Final = 65536

#: Fewest vertices per vertex kind.
MIN_POINTS: Final[dict[str, int]] = {"polygon": 3, "polyline": 2}

_NUMBER_TYPES: Final = frozenset({int, float})
_BOX_KEYS: Final = ("top", "left", "height", "width")
_KIND_NAMES: Final[dict[str, ShapeKind]] = {
    prefix + name: kind for prefix in ("Image", "Video") for name, kind in KINDS.items()
}
_NO_POINTS: Final = np.zeros((0, 2), dtype=np.float64)
_TIFF_SIGNATURES: Final = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True, slots=True)
class ObjectKeys:
    """Where one export format keeps each part of an object.

    ``names``: keys tried in order for the class name. ``geometry``: geometry key -> shape kind,
    used when ``kind`` (the ``annotation_kind`` key) is absent. ``mask``: the key whose presence
    makes a legacy object a mask.
    """

    names: tuple[str, ...]
    feature_id: str
    kind: str | None
    box: str
    geometry: tuple[tuple[str, ShapeKind], ...]


V2_KEYS: Final = ObjectKeys(
    names=("name", "value"),
    feature_id="feature_id",
    kind="annotation_kind",
    box="bounding_box",
    geometry=(
        ("bounding_box", "box"),
        ("polygon", "polygon"),
        ("line", "polyline"),
        ("point", "points"),
        ("mask", "mask"),
        ("composite_mask", "mask"),
    ),
)
LEGACY_KEYS: Final = ObjectKeys(
    names=("title", "value"),
    feature_id="featureId",
    kind=None,
    box="bbox",
    geometry=(
        ("bbox", "box"),
        ("polygon", "polygon"),
        ("line", "polyline"),
        ("point", "points"),
        ("instanceURI", "mask"),
    ),
)


def describe(value: Any) -> str:
    """A short description of a JSON value for messages: its type and start."""
    return f"{type(value).__name__} {str(value)[:40]!r}"


def check_stem(stem: str, *, file: str, line: int | None, path: JsonPath) -> str:
    """``stem`` if it can be a file name in the masks folder, else an UnsafeInputError there."""
    if (
        not stem
        or stem in (".", "..")
        or any(ch in stem for ch in ("/", "\\", "\x00"))
        or len(stem) > 200
    ):
        raise UnsafeInputError(
            f"id {stem[:40]!r} cannot name a mask file (empty, a path or too long)",
            file=file,
            line=line,
            where=json_path(path),
        )
    return stem


class ObjectReader:
    """Turns Labelbox objects into Shapes and keeps the counters and the classes seen.

    Args:
        file: the export's path, for messages.
        masks: the local folder of mask PNGs (None: every mask object is skipped).
        build: build Shapes (False: check everything, return None; the checking pass).
        checked: the input already passed a checking pass (the file is unchanged): the per-vertex
            type and range checks are left out; structure is still checked.
        keys: the format's keys (:data:`V2_KEYS` or :data:`LEGACY_KEYS`).
    """

    def __init__(
        self,
        file: str,
        *,
        masks: Path | None,
        build: bool,
        checked: bool = False,
        keys: ObjectKeys = V2_KEYS,
    ) -> None:
        self.file = file
        self.masks = masks
        self.build = build
        self.checked = checked
        self.keys = keys
        #: class names in order of first appearance
        self.classes: dict[str, None] = {}
        #: the ``Shape.order`` of the next shape kept
        self.order = 0
        self.masks_missing = 0
        self.masks_empty = 0
        self.unnamed = 0
        self.unanswered = 0
        #: objects of kinds that are not shapes (entities, relationships, ...), by kind
        self.unknown: Counter[str] = Counter()
        self._composites: dict[Path, NDArray[Any]] = {}

    # -- messages ----------------------------------------------------------------------------

    def format_error(self, message: str, line: int | None, path: JsonPath) -> FormatError:
        """A FormatError at ``line`` and ``path`` of the export."""
        return FormatError(message, file=self.file, line=line, where=json_path(path))

    def geometry_error(self, message: str, line: int | None, path: JsonPath) -> GeometryError:
        """A GeometryError at ``line`` and ``path`` of the export."""
        return GeometryError(message, file=self.file, line=line, where=json_path(path))

    def new_image(self) -> None:
        """Forget the composite masks read for the previous image."""
        self._composites.clear()

    # -- classifications ---------------------------------------------------------------------

    def attributes(
        self,
        items: Any,
        path: JsonPath,
        line: int | None,
        out: dict[str, str] | None = None,
        prefix: str = "",
    ) -> dict[str, str]:
        """Classifications as ``{name: value}``, added to ``out`` (a new dict when None).

        The value is the radio answer's name, the text answer, or the checklist answers' names
        joined by ``","``. Classifications nested in an answer are added as ``"outer/inner"``.
        Classifications without a usable answer are counted in ``unanswered``.

        Example:
            >>> r = ObjectReader("e.ndjson", masks=None, build=True)
            >>> r.attributes([{"name": "q", "radio_answer": {"name": "yes"}}], ("c",), 1)
            {'q': 'yes'}
        """
        if out is None:
            out = {}
        if items is None:
            return out
        if not isinstance(items, list):
            raise self.format_error(
                f"expected a list of classifications, got {describe(items)}", line, path
            )
        for i, item in enumerate(items):
            here = (*path, i)
            if not isinstance(item, dict):
                raise self.format_error(
                    f"expected a classification object, got {describe(item)}", line, here
                )
            name = self._name(item, ("name", "title", "value"), line, here)
            if name is None:
                self.unanswered += 1
                continue
            key = prefix + name
            value = self._answer(item, key, line, here, out)
            if value is None:
                self.unanswered += 1
            else:
                out[key] = value
        return out

    def _name(
        self, item: dict[str, Any], keys: tuple[str, ...], line: int | None, path: JsonPath
    ) -> str | None:
        for key in keys:
            value = item.get(key)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise self.format_error(
                    f"expected a string, got {describe(value)}", line, (*path, key)
                )
            return value
        return None

    def _answer(
        self, item: dict[str, Any], key: str, line: int | None, path: JsonPath, out: dict[str, str]
    ) -> str | None:
        names = ("name", "title", "value")
        for field in ("radio_answer", "answer"):
            answer = item.get(field)
            if isinstance(answer, str):
                return answer
            if isinstance(answer, dict):
                here = (*path, field)
                nested = answer.get("classifications")
                self.attributes(nested, (*here, "classifications"), line, out, key + "/")
                return self._name(answer, names, line, here)
            if answer is not None:
                raise self.format_error(
                    f"expected an answer object, got {describe(answer)}", line, (*path, field)
                )
        for field in ("checklist_answers", "answers"):
            answers = item.get(field)
            if answers is None:
                continue
            if not isinstance(answers, list):
                raise self.format_error(
                    f"expected a list of answers, got {describe(answers)}", line, (*path, field)
                )
            chosen: list[str] = []
            for j, answer in enumerate(answers):
                here = (*path, field, j)
                if not isinstance(answer, dict):
                    raise self.format_error(
                        f"expected an answer object, got {describe(answer)}", line, here
                    )
                nested = answer.get("classifications")
                self.attributes(nested, (*here, "classifications"), line, out, key + "/")
                name = self._name(answer, names, line, here)
                if name is not None:
                    chosen.append(name)
            return ",".join(chosen)
        text = item.get("text_answer")
        if text is None:
            return None
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise self.format_error(
                f"expected {{'content': text}}, got {describe(text)}", line, (*path, "text_answer")
            )
        return str(text.get("content", ""))

    # -- objects -----------------------------------------------------------------------------

    def kind_of(self, obj: dict[str, Any], line: int | None, path: JsonPath) -> ShapeKind | None:
        """The shape kind of ``obj``, or None (counted) for kinds that are not shapes."""
        keys = self.keys
        if keys.kind is not None and keys.kind in obj:
            raw = obj[keys.kind]
            if not isinstance(raw, str):
                raise self.format_error(
                    f"expected a string, got {describe(raw)}", line, (*path, keys.kind)
                )
            kind = _KIND_NAMES.get(raw)
            if kind is None:
                self.unknown[raw[:60]] += 1
            return kind
        for key, kind in keys.geometry:
            if key in obj:
                return kind
        self.unknown["(no geometry)"] += 1
        return None

    def read(
        self,
        obj: Any,
        path: JsonPath,
        line: int | None,
        *,
        size: tuple[int, int],
        attrs: Mapping[str, str],
        stems: tuple[str | None, str | None],
        track_id: int | None = None,
        frame: int | None = None,
        keyframe: bool = True,
    ) -> Shape | None:
        """One object as a Shape; None when it is skipped (counted) or when not building.

        Args:
            obj: the object from the export.
            path: its JSON path; line: its NDJSON line (None for legacy JSON).
            size: ``(width, height)`` of its image, for masks.
            attrs: the label's (and frame's) classifications; the object's own win.
            stems: file name stems (without ``.png``) of its per-object mask (from its feature id)
                and of its image's composite mask (from the data row id), or None.
            track_id, frame, keyframe: set for objects of video frames.

        Masks: ``<masks>/<per-object stem>.png`` (nonzero pixels are the object), else, for an
        object with a ``composite_mask`` colour, ``<masks>/<composite stem>.png`` (pixels of
        exactly that RGB colour); else the object is skipped and counted in ``masks_missing``.
        URLs in the export are never used.
        """
        if not isinstance(obj, dict):
            raise self.format_error(f"expected an object, got {describe(obj)}", line, path)
        label = obj.get(self.keys.names[0])
        if type(label) is not str or not label:
            label = self._name(obj, self.keys.names, line, path)
            if label is None:
                self.unnamed += 1
                return None
        kind = self.kind_of(obj, line, path)
        if kind is None:
            return None
        self.classes.setdefault(label, None)
        bitmap: NDArray[np.bool_] | None = None
        if kind == "box":
            pts = self._box(obj.get(self.keys.box), line, (*path, self.keys.box))
        elif kind == "points":
            pts = self._point(obj.get("point"), line, (*path, "point"))
        elif kind == "mask":
            found = self._mask(obj, path, line, size, stems)
            if found is None:
                return None
            pts, bitmap = found
        else:
            key = "polygon" if kind == "polygon" else "line"
            pts = self.vertices(obj.get(key), line, (*path, key), MIN_POINTS[kind], kind)
        own = obj.get("classifications")
        if own:
            own = self.attributes(own, (*path, "classifications"), line, dict(attrs))
        elif own is not None and own != []:
            raise self.format_error(
                f"expected a list of classifications, got {describe(own)}",
                line,
                (*path, "classifications"),
            )
        if not self.build:
            return None
        order = self.order
        self.order += 1
        return Shape(
            kind=kind,
            label=label,
            points=pts,
            attributes=own or dict(attrs),
            order=order,
            track_id=track_id,
            frame=frame,
            keyframe=keyframe,
            bitmap=bitmap,
        )

    # -- geometry ----------------------------------------------------------------------------

    def _box(self, box: Any, line: int | None, path: JsonPath) -> NDArray[np.float64]:
        if not isinstance(box, dict):
            raise self.format_error(
                f"expected an object with top, left, height, width, got {describe(box)}",
                line,
                path,
            )
        values: list[float] = []
        for key in _BOX_KEYS:
            if key not in box:
                raise self.format_error(f"missing {key!r}", line, path)
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

    def _point(self, point: Any, line: int | None, path: JsonPath) -> NDArray[np.float64]:
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
                    raise self.format_error(f"missing {key!r}", line, here)
                xy.append(
                    jsonsafe.coordinate(point[key], file=self.file, path=(*here, key), line=line)
                )
            out.append((xy[0], xy[1]))
        return np.array(out, dtype=np.float64).reshape(-1, 2)

    # -- masks -------------------------------------------------------------------------------

    def _color(
        self, obj: dict[str, Any], line: int | None, path: JsonPath
    ) -> tuple[int, ...] | None:
        composite = obj.get("composite_mask")
        if composite is None:
            return None
        here = (*path, "composite_mask")
        if not isinstance(composite, dict):
            raise self.format_error(f"expected an object, got {describe(composite)}", line, here)
        rgb = composite.get("color_rgb")
        if (
            not isinstance(rgb, list)
            or len(rgb) != 3
            or not all(type(v) is int and 0 <= v <= 255 for v in rgb)
        ):
            raise self.format_error(
                f"color_rgb must be [r, g, b] with integers 0..255, got {describe(rgb)}",
                line,
                (*here, "color_rgb"),
            )
        return tuple(rgb)

    def _mask(
        self,
        obj: dict[str, Any],
        path: JsonPath,
        line: int | None,
        size: tuple[int, int],
        stems: tuple[str | None, str | None],
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None] | None:
        color = self._color(obj, line, path)
        own, composite = stems
        if own is not None:
            check_stem(own, file=self.file, line=line, path=(*path, self.keys.feature_id))
        if color is not None and composite is not None:
            check_stem(composite, file=self.file, line=line, path=(*path, "composite_mask"))
        pixels: NDArray[np.bool_] | None = None
        if self.masks is not None:
            file = None if own is None else self._mask_file(self.masks, own, line, path)
            if file is not None and file.is_file():
                pixels = _nonzero(self._load(file, size, line, path))
            elif color is not None and composite is not None:
                file = self._mask_file(self.masks, composite, line, path)
                if file.is_file():
                    cached = self._composites.get(file)
                    if cached is None:
                        cached = self._composites[file] = self._load(file, size, line, path)
                    pixels = _of_color(cached, color)
        if pixels is None:
            self.masks_missing += 1
            return None
        rows = np.flatnonzero(pixels.any(axis=1))
        if rows.size == 0:
            self.masks_empty += 1
            return None
        cols = np.flatnonzero(pixels.any(axis=0))
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        left, right = int(cols[0]), int(cols[-1]) + 1
        pts = np.array([[left, top], [right, bottom]], dtype=np.float64)
        if not self.build:
            return pts, None
        return pts, np.ascontiguousarray(pixels[top:bottom, left:right])

    def _mask_file(self, root: Path, stem: str, line: int | None, path: JsonPath) -> Path:
        """``root / (stem + ".png")``, refused when it resolves outside ``root`` (a link)."""
        try:
            return safe_join(root, stem + ".png")
        except UnsafeInputError as exc:
            raise UnsafeInputError(
                exc.message, file=self.file, line=line, where=json_path(path)
            ) from exc

    def _load(
        self, file: Path, size: tuple[int, int], line: int | None, path: JsonPath
    ) -> NDArray[Any]:
        try:
            pixels = read_image(file)
        except ImageFileError as exc:
            raise ImageFileError(
                f"mask file {str(file)!r}: {exc.message}",
                file=self.file,
                line=line,
                where=json_path(path),
            ) from exc
        width, height = size
        if pixels.shape[:2] != (height, width):
            raise ImageFileError(
                f"mask file {str(file)!r} is {pixels.shape[1]}x{pixels.shape[0]} pixels "
                f"(width x height) but the image is {width}x{height}",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        logger.debug("mask %s read for %s", file, json_path(path))
        return pixels


def _nonzero(pixels: NDArray[Any]) -> NDArray[np.bool_]:
    """Nonzero pixels (any colour channel; alpha ignored) of a per-object mask."""
    if pixels.ndim == 2:
        return np.asarray(pixels != 0)
    return np.asarray((pixels[..., :3] != 0).any(axis=-1))


def _of_color(pixels: NDArray[Any], color: tuple[int, ...]) -> NDArray[np.bool_]:
    """Pixels of exactly ``color`` (RGB) in a composite mask; gray files match gray colours."""
    r, g, b = color
    if pixels.ndim == 2:
        if r == g == b:
            return np.asarray(pixels == r)
        return np.zeros(pixels.shape, dtype=np.bool_)
    return np.asarray((pixels[..., 0] == r) & (pixels[..., 1] == g) & (pixels[..., 2] == b))


# -- images ------------------------------------------------------------------------------------


def image_side(value: Any, key: str, *, file: str, line: int | None, path: JsonPath) -> int:
    """An image side from the export: an integer in ``1..MAX_IMAGE_SIDE``.

    Raises FormatError when missing or not an integer, GeometryError when out of range.
    """
    where = json_path((*path, key))
    if value is None:
        raise FormatError(f"missing {key!r}", file=file, line=line, where=json_path(path))
    if type(value) is not int:
        raise FormatError(
            f"image {key} must be an integer, got {describe(value)}",
            file=file,
            line=line,
            where=where,
        )
    if not 1 <= value <= MAX_IMAGE_SIDE:
        raise GeometryError(
            f"image {key} {value} is outside 1..{MAX_IMAGE_SIDE}", file=file, line=line, where=where
        )
    return value


def header_size(root: Path, name: str) -> tuple[int, int]:
    """``(width, height)`` of the image ``name`` in the folder ``root``, from its header only.

    Raises:
        UnsafeInputError: ``name`` escapes ``root``.
        ImageFileError: the file is missing or its header cannot be read.
    """
    path = safe_join(root, name)
    if not path.is_file():
        raise ImageFileError(f"image file not found (looked for {name!r} in {root})", file=path)
    try:
        with path.open("rb") as stream:
            head = stream.read(4)
        if head in _TIFF_SIGNATURES:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                if not isinstance(page, tifffile.TiffPage):
                    raise ValueError("the first TIFF page cannot be read")
                return int(page.imagewidth), int(page.imagelength)
        with Image.open(path) as img:
            width, height = img.size
            return int(width), int(height)
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the image size: {type(exc).__name__}: {exc}", file=path
        ) from exc


def file_fingerprint(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of ``path``: the streaming pass checks the file did not change."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def check_unchanged(path: Path, fingerprint: tuple[int, int]) -> None:
    """Raise InputError when the file's size or modification time differ from ``fingerprint``."""
    try:
        same = file_fingerprint(path) == fingerprint
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    if not same:
        raise InputError("the file changed since it was read; read it again", file=path)


class ImageSource(Protocol):
    """Where a pass gets its images: :class:`NewImages` (checking) or :class:`KnownImages`."""

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> Any:
        """The image size for the media attributes ``media`` (None when already known)."""

    def image(
        self, name: str, frame: int | None, size: Any, line: int | None, path: JsonPath
    ) -> ImageInfo:
        """The ImageInfo of the next image, called ``name``."""

    def finish(self) -> None:
        """Called after the last image."""


class NewImages:
    """The checking pass's images: sizes (export, else options), names checked for reuse.

    Args:
        file: the export's path, for messages.
        options: the reader options (``size``, ``images``) used when the export has no size.
    """

    def __init__(self, file: str, options: ReadOptions) -> None:
        self.file = file
        self.options = options
        self.images: list[ImageInfo] = []
        self._seen: dict[str, str] = {}

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> tuple[int, int]:
        """``(width, height)`` from the media attributes at ``path``, else from the options."""
        if media is not None and not isinstance(media, dict):
            raise FormatError(
                f"expected an object, got {describe(media)}",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        if media and (media.get("width") is not None or media.get("height") is not None):
            width = image_side(media.get("width"), "width", file=self.file, line=line, path=path)
            height = image_side(media.get("height"), "height", file=self.file, line=line, path=path)
            return width, height
        return self._fallback(line, name)

    def _fallback(self, line: int | None, name: str) -> tuple[int, int]:
        place = self.file if line is None else f"{self.file}:{line}"
        if self.options.size is not None:
            width, height = self.options.size
            if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
                raise UsageError(f"image size {width}x{height} is outside 1..{MAX_IMAGE_SIDE}")
            return int(width), int(height)
        if self.options.images is not None:
            try:
                width, height = header_size(self.options.images, name)
            except ImageFileError as exc:
                raise ImageFileError(
                    f"{exc.message} ({exc.file})",
                    file=self.file,
                    line=line,
                    where=f"image {name!r}",
                ) from exc
            width = image_side(width, "width", file=self.file, line=line, path=())
            height = image_side(height, "height", file=self.file, line=line, path=())
            return width, height
        raise UsageError(
            f"{place}: image {name!r} has no size in the export (media attributes); give the "
            "image size (ReadOptions.size, --size) or the images folder (ReadOptions.images, "
            "--images) to read it from the files"
        )

    def image(
        self, name: str, frame: int | None, size: tuple[int, int], line: int | None, path: JsonPath
    ) -> ImageInfo:
        """A new image; its name (normalised) must not have been used before."""
        key = str(check_relative_name(name))
        place = "" if line is None else f"line {line}, "
        if key in self._seen:
            raise FormatError(
                f"image name {name!r} is used twice (first at {self._seen[key]})",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        self._seen[key] = place + json_path(path)
        info = ImageInfo(name, size[0], size[1], frame=frame)
        self.images.append(info)
        return info

    def finish(self) -> None:
        """Nothing to check at the end of the checking pass."""


class KnownImages:
    """The images of the checking pass, handed out again in order by the streaming pass."""

    def __init__(self, file: str, images: tuple[ImageInfo, ...]) -> None:
        self.file = file
        self._images = iter(images)

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> None:
        """Sizes are known from the checking pass."""
        return None

    def image(
        self, name: str, frame: int | None, size: object, line: int | None, path: JsonPath
    ) -> ImageInfo:
        """The next image of the checking pass; it must be ``name`` (else the file changed)."""
        info = next(self._images, None)
        if info is None or info.name != name or info.frame != frame:
            raise self._changed(line)
        return info

    def finish(self) -> None:
        """Every image of the checking pass must have come again."""
        if next(self._images, None) is not None:
            raise self._changed(None)

    def _changed(self, line: int | None) -> InputError:
        return InputError(
            "the file changed since it was read; read it again", file=self.file, line=line
        )


def summary(file: str, reader: ObjectReader, masks: Path | None) -> list[str]:
    """The warning lines for what ``reader`` skipped during the checking pass."""
    out: list[str] = []
    if reader.masks_missing:
        if masks is None:
            why = "no masks folder was given (ReadOptions.masks, --masks)"
        else:
            why = f"no <feature id>.png, nor <data row id>.png for composite masks, in {masks}"
        out.append(
            f"{file}: {reader.masks_missing} mask object(s) skipped: {why}; "
            "mask URLs in the export are never downloaded"
        )
    if reader.masks_empty:
        out.append(f"{file}: {reader.masks_empty} mask object(s) skipped: the mask is empty")
    if reader.unnamed:
        out.append(f"{file}: {reader.unnamed} object(s) without a name (class) skipped")
    for kind, count in sorted(reader.unknown.items()):
        out.append(f"{file}: {count} object(s) of kind {kind!r} skipped (not a supported shape)")
    if reader.unanswered:
        out.append(
            f"{file}: {reader.unanswered} classification(s) without a name or answer ignored"
        )
    return out
