"""CVAT 1.1 shape elements to :class:`~microprep.model.Shape`.

Used by :mod:`microprep.readers.cvat` for the shapes inside ``<image>`` (CVAT for images) and
inside ``<track>`` (CVAT for video). Coordinates stay ``float64`` pixel units exactly as written
(nothing is rounded); rotation stays in degrees. Mask RLE: :mod:`microprep.readers.cvat_rle`
(:func:`decode_cvat_rle` is re-exported here).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from microprep.errors import FormatError, GeometryError
from microprep.model import Shape, ShapeKind
from microprep.readers.cvat_rle import decode_cvat_rle, rle_runs, runs_to_mask
from microprep.readers.names import check_label_name
from microprep.readers.xmlsafe import line_of

__all__ = ["MIN_POINTS", "SHAPE_TAGS", "ShapeReader", "decode_cvat_rle", "skeleton_points"]

logger = logging.getLogger(__name__)

#: Element names that become shapes; other elements (``<cuboid>``, ...) are skipped with a warning.
SHAPE_TAGS: Final[frozenset[str]] = frozenset(
    {"box", "polygon", "polyline", "points", "ellipse", "mask", "tag", "skeleton"}
)

#: Fewest vertices a shape of each vertex kind needs.
MIN_POINTS: Final[dict[str, int]] = {"polygon": 3, "polyline": 2, "points": 1}

_NO_POINTS: Final = np.zeros((0, 2), dtype=np.float64)


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


class ShapeReader:
    """Turns shape elements into Shapes; keeps the skip counters and the labels seen.

    Args:
        file: the export's path, for error messages.
        decode_masks: decode mask RLE into bitmaps (False: check the RLE only).
    """

    def __init__(self, file: str, *, decode_masks: bool) -> None:
        self.file = file
        self.decode_masks = decode_masks
        #: shapes (and skeleton elements) skipped because their label is empty or missing
        self.empty_labels = 0
        #: elements skipped because they are not a supported shape, by element name
        self.unknown: Counter[str] = Counter()
        #: other things skipped, by what they are (e.g. ``"skeleton element(s) <box>"``)
        self.skipped: Counter[str] = Counter()
        #: ``(label, parent)`` -> line of first use, in order of first use
        self.label_uses: dict[tuple[str, str | None], int | None] = {}

    # -- small parsers -----------------------------------------------------------------------

    def _format(self, message: str, elem: etree._Element, where: str) -> FormatError:
        return FormatError(message, file=self.file, line=line_of(elem), where=where)

    def _geometry(self, message: str, elem: etree._Element, where: str) -> GeometryError:
        return GeometryError(message, file=self.file, line=line_of(elem), where=where)

    def _required(self, elem: etree._Element, name: str, where: str) -> str:
        value = elem.get(name)
        if value is None:
            raise self._format(f"missing attribute {name!r}", elem, where)
        return value

    def number(
        self, elem: etree._Element, name: str, where: str, default: float | None = None
    ) -> float:
        """A finite float attribute (FormatError if unparseable, GeometryError if NaN/inf)."""
        raw = elem.get(name)
        if raw is None:
            if default is None:
                raise self._format(f"missing attribute {name!r}", elem, where)
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise self._format(f"{name}={_short(raw)!r} is not a number", elem, where) from exc
        if not math.isfinite(value):
            what = "NaN" if math.isnan(value) else "infinite"
            raise self._geometry(f"{name} is {what}; coordinates must be finite", elem, where)
        return value

    def integer(
        self, elem: etree._Element, name: str, where: str, default: int | None = None
    ) -> int:
        """An integer attribute (FormatError if missing without default or unparseable)."""
        raw = elem.get(name)
        if raw is None:
            if default is None:
                raise self._format(f"missing attribute {name!r}", elem, where)
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise self._format(f"{name}={_short(raw)!r} is not an integer", elem, where) from exc

    def flag(self, elem: etree._Element, name: str, where: str, default: bool = False) -> bool:
        """A ``"0"``/``"1"`` (or ``true``/``false``) attribute; absent means ``default``."""
        raw = elem.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in ("0", "false"):
            return False
        if value in ("1", "true"):
            return True
        raise self._format(f"{name}={_short(raw)!r} is not 0 or 1", elem, where)

    def points(self, elem: etree._Element, where: str, kind: str) -> NDArray[np.float64]:
        """The ``points="x1,y1;x2,y2;..."`` attribute as an ``(N, 2)`` float64 array."""
        raw = self._required(elem, "points", where)
        try:
            flat = np.array(raw.replace(";", ",").split(","), dtype=np.float64)
        except ValueError as exc:
            raise self._format(
                f"points {_short(raw)!r} are not numbers in the form 'x1,y1;x2,y2;...'", elem, where
            ) from exc
        if flat.size % 2:
            raise self._format(
                f"points {_short(raw)!r} have an odd number of coordinates", elem, where
            )
        pts = flat.reshape(-1, 2)
        if not np.isfinite(pts).all():
            what = "NaN" if np.isnan(pts).any() else "an infinite value"
            raise self._geometry(f"points contain {what}", elem, where)
        need = MIN_POINTS.get(kind, 1)
        if len(pts) < need:
            raise self._geometry(
                f"a {kind} needs at least {need} point(s), got {len(pts)}", elem, where
            )
        return pts

    def attributes(self, elem: etree._Element, where: str) -> dict[str, str]:
        """The ``<attribute name="...">value</attribute>`` children as a dict."""
        attrs: dict[str, str] = {}
        for child in elem:
            if child.tag != "attribute":
                continue
            name = child.get("name")
            if not name:
                raise self._format("<attribute> without a name", child, where)
            check_label_name(
                name, file=self.file, what="attribute", line=line_of(child), where=where
            )
            attrs[name] = child.text or ""
        return attrs

    # -- shapes ------------------------------------------------------------------------------

    def use_label(self, label: str, parent: str | None, elem: etree._Element) -> None:
        """Record the first use of ``label`` (``parent``: the skeleton, for element labels)."""
        if (label, parent) not in self.label_uses:
            check_label_name(label, file=self.file, line=line_of(elem), where=f"<{elem.tag}>")
        self.label_uses.setdefault((label, parent), line_of(elem))

    def read(
        self,
        elem: etree._Element,
        *,
        owner: str,
        bounds: tuple[int, int],
        order: int,
        label: str | None = None,
        source: str | None = None,
        group: int | None = None,
        track_id: int | None = None,
        frame: int | None = None,
        keyframe: bool = True,
        extra_elements: Sequence[Shape] | None = None,
    ) -> Shape | None:
        """One shape element as a Shape, or None when it is skipped (counted in the counters).

        Args:
            elem: ``<box>``, ``<polygon>``, ... (an image's child, or a track's child).
            owner: where the element is, for messages, e.g. ``"image 'a.png'"``.
            bounds: ``(width, height)`` of the image, for masks.
            order: the value for ``Shape.order``.
            label, source, group: the track's values (None: read from the element).
            track_id, frame, keyframe: set for track shapes.
            extra_elements: for a ``<skeleton>`` of a track whose elements are nested
                ``<track>`` elements: the visible element points of this frame (None: the
                skeleton must hold its elements as children).

        A skeleton without a visible element (every point ``outside``) is absent: None, counted
        in :attr:`skipped` when it is not a track's.
        """
        tag = elem.tag
        if not isinstance(tag, str) or tag not in SHAPE_TAGS:
            self.unknown[str(tag)] += 1
            return None
        kind: ShapeKind = tag  # type: ignore[assignment]
        if label is None:
            label = elem.get("label") or ""
            if not label:
                self.empty_labels += 1
                return None
            self.use_label(label, None, elem)
        where = f"<{tag} label={label!r}> in {owner}"
        if source is None:
            source = elem.get("source") or "manual"
        if group is None:
            group = self.integer(elem, "group_id", where, 0)
        rotation = 0.0
        bitmap: NDArray[np.bool_] | None = None
        elements: tuple[Shape, ...] = ()
        occluded = self.flag(elem, "occluded", where)
        z_order = self.integer(elem, "z_order", where, 0)
        if kind == "box":
            xtl, ytl = self.number(elem, "xtl", where), self.number(elem, "ytl", where)
            xbr, ybr = self.number(elem, "xbr", where), self.number(elem, "ybr", where)
            if xbr <= xtl:
                raise self._geometry(
                    f"box has zero or negative width (xtl={xtl}, xbr={xbr})", elem, where
                )
            if ybr <= ytl:
                raise self._geometry(
                    f"box has zero or negative height (ytl={ytl}, ybr={ybr})", elem, where
                )
            pts = np.array([[xtl, ytl], [xbr, ybr]], dtype=np.float64)
            rotation = self.number(elem, "rotation", where, 0.0)
        elif kind == "ellipse":
            cx, cy = self.number(elem, "cx", where), self.number(elem, "cy", where)
            rx, ry = self.number(elem, "rx", where), self.number(elem, "ry", where)
            if rx <= 0 or ry <= 0:
                raise self._geometry(
                    f"ellipse radii must be positive (rx={rx}, ry={ry})", elem, where
                )
            pts = np.array([[cx, cy], [rx, ry]], dtype=np.float64)
            rotation = self.number(elem, "rotation", where, 0.0)
        elif kind in ("polygon", "polyline", "points"):
            pts = self.points(elem, where, kind)
        elif kind == "mask":
            pts, bitmap = self._mask(elem, where, bounds)
        elif kind == "tag":
            pts = _NO_POINTS
        else:
            pts, elements = self._skeleton(
                elem,
                where,
                label,
                order=order,
                z_order=z_order,
                source=source,
                group=group,
                track_id=track_id,
                frame=frame,
                keyframe=keyframe,
                extra=extra_elements,
            )
            if not elements:
                if track_id is None:
                    self.skipped["skeleton(s) with every point outside"] += 1
                return None
        return Shape(
            kind=kind,
            label=label,
            points=pts,
            rotation=rotation,
            z_order=z_order,
            occluded=occluded,
            group=group,
            source=source,
            attributes=self.attributes(elem, where),
            order=order,
            track_id=track_id,
            frame=frame,
            keyframe=keyframe,
            bitmap=bitmap,
            elements=elements,
        )

    def _mask(
        self, elem: etree._Element, where: str, bounds: tuple[int, int]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
        left, top = self.integer(elem, "left", where), self.integer(elem, "top", where)
        width, height = self.integer(elem, "width", where), self.integer(elem, "height", where)
        if width <= 0 or height <= 0:
            raise self._geometry(f"mask size {width}x{height} must be positive", elem, where)
        img_w, img_h = bounds
        if left < 0 or top < 0 or left + width > img_w or top + height > img_h:
            raise self._geometry(
                f"mask box left={left} top={top} width={width} height={height} "
                f"does not fit in the {img_w}x{img_h} image",
                elem,
                where,
            )
        try:
            runs = rle_runs(self._required(elem, "rle", where), width, height)
        except ValueError as exc:
            raise self._geometry(f"bad mask RLE: {exc}", elem, where) from exc
        pts = np.array([[left, top], [left + width, top + height]], dtype=np.float64)
        bitmap = runs_to_mask(runs, width, height) if self.decode_masks else None
        return pts, bitmap

    def _skeleton(
        self,
        elem: etree._Element,
        where: str,
        label: str,
        *,
        order: int,
        z_order: int,
        source: str,
        group: int,
        track_id: int | None,
        frame: int | None,
        keyframe: bool,
        extra: Sequence[Shape] | None,
    ) -> tuple[NDArray[np.float64], tuple[Shape, ...]]:
        """The visible ``<points>`` elements of a skeleton (plus ``extra``) and their points.

        An element without a label of its own takes the skeleton's; ``outside`` elements are
        left out; other element kinds are skipped and counted. A skeleton with no element
        child at all (and no ``extra``) is malformed.
        """
        elements: list[Shape] = []
        children = 0
        for child in elem:
            tag = child.tag
            if tag == "attribute":
                continue
            children += 1
            if tag != "points":
                self.skipped[f"skeleton element(s) <{tag}> (a skeleton's elements are points)"] += 1
                continue
            el_label = child.get("label") or label
            if el_label != label:
                self.use_label(el_label, label, child)
            el_where = f"<points label={el_label!r}> of {where}"
            pts = self.points(child, el_where, "points")
            occluded = self.flag(child, "occluded", el_where)
            el_keyframe = self.flag(child, "keyframe", el_where, default=keyframe)
            attrs = self.attributes(child, el_where)
            if self.flag(child, "outside", el_where):
                continue
            elements.append(
                Shape(
                    kind="points",
                    label=el_label,
                    points=pts,
                    z_order=z_order,
                    occluded=occluded,
                    group=group,
                    source=source,
                    attributes=attrs,
                    order=order,
                    track_id=track_id,
                    frame=frame,
                    keyframe=el_keyframe,
                )
            )
        if extra is None and not children:
            raise self._format(
                "skeleton has no elements: CVAT writes each of its points as a <points> child",
                elem,
                where,
            )
        elements.extend(replace(e, order=order, z_order=z_order) for e in extra or ())
        return skeleton_points(elements), tuple(elements)


def skeleton_points(elements: Sequence[Shape]) -> NDArray[np.float64]:
    """The points of a skeleton: its elements' points, in element order."""
    if not elements:
        return _NO_POINTS
    return np.concatenate([e.points for e in elements])
