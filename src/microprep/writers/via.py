"""VIA 2 project JSON ("Project > Load" in VIA 2.0.x), regions as polygons.

Layout::

    {"_via_settings": {...}, "_via_attributes": {"region": {"class": {"type": "dropdown",
       "options": {"pore": ""}, ...}, "score": {"type": "text", ...}}, "file": {}},
     "_via_data_format_version": "2.0.10", "_via_image_id_list": ["a.png-1"],
     "_via_img_metadata": {"a.png-1": {"filename": "a.png", "size": -1, "file_attributes": {},
       "regions": [{"shape_attributes": {"name": "polygon", "all_points_x": [...],
                                         "all_points_y": [...]},
                    "region_attributes": {"class": "pore", "score": "0.9731"}}]}}}

VIA has no masks and no z-order (later regions are drawn on top; regions come in ascending
``z_order``). With ``--like`` (a VIA 2 project or annotations JSON) the file keeps everything of
the original (settings, attribute declarations, image keys with their file sizes, other images
and their regions) and replaces the regions of each predicted image; the class goes into the
region attribute named by ``--label-attribute``, else the declared region attribute whose
options hold the classes, else ``class``. ``score`` is written only where a region attribute
``score`` is declared (always without ``--like``). Without ``--like`` the file size is -1
(VIA's value for "unknown"). The pieces of an instance written as several polygons (a split
mask, or holes cut out) share a text region attribute ``group_id`` (declared when written),
which microprep's VIA reader turns back into one object.

Example:
    >>> from microprep.writers.shapes import ImageShapes, OutShape
    >>> s = OutShape("polygon", "pore", 1, np.array([[0.0, 0], [2, 0], [2, 1]]), 0)
    >>> data = json.loads(via_json([ImageShapes("a.png", 4, 4, (s,))], classes=("background",
    ...                            "pore")))
    >>> data["_via_img_metadata"]["a.png-1"]["regions"][0]["shape_attributes"]["all_points_x"]
    [0, 2, 2]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Container, Iterable, Sequence
from typing import Any

import numpy as np

from microprep.errors import FormatError
from microprep.readers.groups import GROUP_ATTRIBUTE
from microprep.readers.jsonsafe import load_json
from microprep.writers.groups import split_groups
from microprep.writers.like import Like
from microprep.writers.shapes import ImageShapes, OutShape

__all__ = ["via_json"]

logger = logging.getLogger(__name__)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def _region(shape: OutShape, attribute: str, scored: bool, split: Container[int]) -> dict[str, Any]:
    points = np.asarray(shape.points, np.float64)
    region_attrs = {attribute: shape.label}
    if scored and shape.score is not None:
        region_attrs["score"] = f"{shape.score:.4f}"
    if shape.group in split:
        region_attrs[GROUP_ATTRIBUTE] = str(shape.group)
    return {
        "shape_attributes": {
            "name": "polygon",
            "all_points_x": [_number(v) for v in points[:, 0]],
            "all_points_y": [_number(v) for v in points[:, 1]],
        },
        "region_attributes": region_attrs,
    }


_GROUP_DECL = {"type": "text", "description": "pieces of one object", "default_value": ""}


def _fresh(classes: Sequence[str]) -> dict[str, Any]:
    return {
        "_via_settings": {"project": {"name": "predictions"}},
        "_via_img_metadata": {},
        "_via_attributes": {
            "region": {
                "class": {
                    "type": "dropdown",
                    "description": "",
                    "options": {name: "" for name in classes[1:]},
                    "default_options": {},
                },
                "score": {"type": "text", "description": "", "default_value": ""},
                GROUP_ATTRIBUTE: _GROUP_DECL,
            },
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": [],
    }


def _class_attribute(declared: dict[str, Any], classes: Sequence[str], given: str | None) -> str:
    if given:
        return given
    for name, spec in declared.items():
        options = spec.get("options") if isinstance(spec, dict) else None
        if isinstance(options, dict) and set(classes[1:]) & set(options):
            return str(name)
    return "class"


def via_json(
    images: Iterable[ImageShapes],
    *,
    classes: Sequence[str],
    like: Like | None = None,
    label_attribute: str | None = None,
) -> bytes:
    """The VIA 2 project JSON of ``images`` (module docstring).

    Raises:
        FormatError: ``like`` is not a VIA 2 project or annotations JSON.
    """
    if like is None:
        project = _fresh(classes)
    else:
        loaded = load_json(like.path)
        if not isinstance(loaded, dict):
            raise FormatError("--like: not a VIA 2 project or annotations JSON", file=like.path)
        project = loaded if "_via_img_metadata" in loaded else {"_via_img_metadata": loaded}
    metadata: dict[str, Any] = project["_via_img_metadata"]
    bare = "_via_attributes" not in project  # an annotations JSON: no declarations to add to
    attrs = project.get("_via_attributes")
    declared = attrs.setdefault("region", {}) if isinstance(attrs, dict) else {}
    attribute = _class_attribute(declared, classes, label_attribute)
    scored = like is None or "score" in declared
    by_file = {str(v.get("filename")): k for k, v in metadata.items() if isinstance(v, dict)}
    for image in images:
        split = split_groups(image.shapes)
        if split and not bare and isinstance(declared, dict):
            declared.setdefault(GROUP_ATTRIBUTE, dict(_GROUP_DECL))
        ordered = sorted(image.shapes, key=lambda s: s.z_order)
        regions = [_region(s, attribute, scored, split) for s in ordered]
        name = like.images[image.name].name if like is not None else image.name
        key = by_file.get(name)
        if key is None:
            key = f"{name}-1"
            metadata[key] = {"filename": name, "size": -1, "file_attributes": {}}
            if isinstance(project.get("_via_image_id_list"), list):
                project["_via_image_id_list"].append(key)
        metadata[key]["regions"] = regions
    if bare:
        return json.dumps(metadata, separators=(",", ":")).encode("utf-8")
    return json.dumps(project, separators=(",", ":")).encode("utf-8")
