"""Labelbox objects to :class:`~microprep.model.Shape`, for both export formats.

Used by :mod:`microprep.readers.labelbox.ndjson` (NDJSON export, v2, ``snake_case`` keys) and
:mod:`microprep.readers.labelbox.legacy` (legacy JSON export, v1, ``camelCase`` keys). Which keys
hold what is described by an :class:`ObjectKeys`; :data:`V2_KEYS` and :data:`LEGACY_KEYS` are the
two. :class:`ObjectReader` turns objects into shapes and keeps the classes seen and the counts of
what it skipped (:func:`summary` turns those into warnings).

Shapes (coordinates stay ``float64`` pixel units exactly as written):

* bounding box -> ``box``, polygon -> ``polygon``, line -> ``polyline``, point -> ``points``
  (see :mod:`microprep.readers.labelbox.geometry`);
* segmentation mask -> ``mask``, read from a local folder only (see
  :mod:`microprep.readers.labelbox.masks`).

Classifications become ``Shape.attributes`` (see :mod:`microprep.readers.labelbox.classifications`).

Example:
    >>> r = ObjectReader("export.ndjson", masks=None, build=True)
    >>> obj = {"name": "pore", "annotation_kind": "ImagePoint", "point": {"x": 1.5, "y": 2}}
    >>> r.read(obj, ("objects", 0), 1, size=(8, 8), attrs={}, stems=("f1", None)).points.tolist()
    [[1.5, 2.0]]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microprep.model import Shape, ShapeKind
from microprep.readers.jsonsafe import json_text
from microprep.readers.labelbox.checks import Checker, JsonPath, describe
from microprep.readers.labelbox.classifications import Classifications
from microprep.readers.labelbox.geometry import Geometry
from microprep.readers.labelbox.masks import MaskReader
from microprep.readers.names import check_label_name

#: Labelbox's ``annotation_kind`` (without its ``Image``/``Video`` prefix) -> shape kind.
KINDS: Final[dict[str, ShapeKind]] = {
    "BoundingBox": "box",
    "Polygon": "polygon",
    "Polyline": "polyline",
    "Point": "points",
    "SegmentationMask": "mask",
}

#: Fewest vertices per vertex kind.
MIN_POINTS: Final[dict[str, int]] = {"polygon": 3, "polyline": 2}

_KIND_NAMES: Final[dict[str, ShapeKind]] = {
    prefix + name: kind for prefix in ("Image", "Video") for name, kind in KINDS.items()
}


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


class ObjectReader(Checker):
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
        super().__init__(file)
        self.build = build
        self.keys = keys
        self.geometry = Geometry(file, build=build, checked=checked)
        self.classifications = Classifications(file)
        self.mask_reader = MaskReader(file, masks=masks, build=build, feature_id=keys.feature_id)
        #: class names in order of first appearance
        self.classes: dict[str, None] = {}
        #: the ``Shape.order`` of the next shape kept
        self.order = 0
        self.unnamed = 0
        #: objects of kinds that are not shapes (entities, relationships, ...), by kind
        self.unknown: Counter[str] = Counter()

    def new_image(self) -> None:
        """Forget the composite masks read for the previous image."""
        self.mask_reader.new_image()

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
        exactly that RGB colour); else the object is skipped and counted (``mask_reader.missing``).
        URLs in the export are never used.
        """
        if not isinstance(obj, dict):
            raise self.format_error(f"expected an object, got {describe(obj)}", line, path)
        label = obj.get(self.keys.names[0])
        label_path: JsonPath = (*path, self.keys.names[0])
        if type(label) is not str or not label:
            found = self.first_string(obj, self.keys.names, line, path)
            if found is None:
                self.unnamed += 1
                return None
            label, label_path = found
        if label not in self.classes:
            check_label_name(label, file=self.file, line=line, path=label_path)
        kind = self.kind_of(obj, line, path)
        if kind is None:
            return None
        self.classes.setdefault(label, None)
        bitmap: NDArray[np.bool_] | None = None
        if kind == "box":
            pts = self.geometry.box(obj.get(self.keys.box), line, (*path, self.keys.box))
        elif kind == "points":
            pts = self.geometry.point(obj.get("point"), line, (*path, "point"))
        elif kind == "mask":
            found_mask = self.mask_reader.read(obj, path, line, size, stems)
            if found_mask is None:
                return None
            pts, bitmap = found_mask
        else:
            key = "polygon" if kind == "polygon" else "line"
            pts = self.geometry.vertices(obj.get(key), line, (*path, key), MIN_POINTS[kind], kind)
        own = obj.get("classifications")
        if own:
            own = self.classifications.read(own, (*path, "classifications"), line, dict(attrs))
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


def summary(file: str, reader: ObjectReader, masks: Path | None) -> list[str]:
    """The warning lines for what ``reader`` skipped during the checking pass."""
    out: list[str] = []
    missing, empty = reader.mask_reader.missing, reader.mask_reader.empty
    if missing:
        if masks is None:
            why = "no masks folder was given (--masks DIR)"
        else:
            why = f"no <feature id>.png, nor <data row id>.png for composite masks, in {masks}"
        out.append(
            f"{file}: {missing} mask object(s) skipped: {why}; "
            "mask URLs in the export are never downloaded"
        )
    if empty:
        out.append(f"{file}: {empty} mask object(s) skipped: the mask is empty")
    if reader.unnamed:
        out.append(f"{file}: {reader.unnamed} object(s) without a name (class) skipped")
    for kind, count in sorted(reader.unknown.items()):
        out.append(
            f"{file}: {count} object(s) of kind {json_text(kind)} skipped (not a supported shape)"
        )
    unanswered = reader.classifications.unanswered
    if unanswered:
        out.append(
            f"{file}: {unanswered} classification(s) or answer(s) without a name or a readable "
            f"answer ignored (first at {reader.classifications.first_unanswered})"
        )
    return out
