"""The VIA 1.x / 2.x JSON exports: the image table and a project's attribute declarations.

An annotations export is ``{"a.png12345": {"filename", "size", "regions", "file_attributes"}}``
(VIA 1.x: ``regions`` an object ``{"0": {...}}``); a saved VIA 2 project has the same table under
``_via_img_metadata`` and declares its attributes in ``_via_attributes``.

Example:
    >>> table = {"a.png9": {"filename": "a.png", "regions": [
    ...     {"shape_attributes": {"name": "point", "cx": 1, "cy": 2}, "region_attributes": {}}]}}
    >>> images, regions, v1 = via2_images(table, (), "a.json")
    >>> [image.name for image in images], len(regions), v1
    (['a.png'], 1, False)
"""

from __future__ import annotations

from typing import Any, Final

from microprep.errors import FormatError
from microprep.readers.jsonsafe import json_path
from microprep.readers.via.regions import AttrDecl, ViaImage, ViaRegion, image_name, json_object

_VIA2_KINDS: Final = ("text", "checkbox", "radio", "dropdown", "image")


def via2_images(
    meta: dict[str, Any], prefix: tuple[str, ...], file: str
) -> tuple[list[ViaImage], list[ViaRegion], bool]:
    """Images and regions of a VIA 1.x / 2.x image table; True when it is VIA 1.x."""
    images: list[ViaImage] = []
    regions: list[ViaRegion] = []
    seen: set[str] = set()
    v1 = False
    for key, entry in meta.items():
        path: list[str | int] = [*prefix, key]
        entry = json_object(entry, file, path, "an image entry")
        images.append(ViaImage(image_name(entry.get("filename"), file, [*path, "filename"], seen)))
        v1 = v1 or "fileref" in entry or "base64_img_data" in entry
        raw = entry.get("regions", [])
        if isinstance(raw, dict):
            v1, items = True, list(raw.items())
        elif isinstance(raw, list):
            items = list(enumerate(raw))
        else:
            raise FormatError(
                "regions must be a list (VIA 2) or an object (VIA 1.x)",
                file=file,
                where=json_path([*path, "regions"]),
            )
        region_prefix = (*prefix, key, "regions")
        index = len(images) - 1
        for rkey, region in items:
            shape = region.get("shape_attributes") if type(region) is dict else None
            attrs = region.get("region_attributes", {}) if type(shape) is dict else None
            if type(attrs) is not dict:
                rpath = [*region_prefix, rkey]
                region = json_object(region, file, rpath, "a region")
                shape_path = [*rpath, "shape_attributes"]
                json_object(region.get("shape_attributes"), file, shape_path, "shape_attributes")
                attrs = json_object(attrs, file, [*rpath, "region_attributes"], "region_attributes")
            regions.append(ViaRegion(shape, attrs, index, file, region_prefix, rkey))
    return images, regions, v1


def via2_decls(value: Any, file: str) -> dict[str, AttrDecl] | None:
    """Region attribute declarations of a VIA 2 project (``_via_attributes.region``)."""
    if value is None:
        return None
    region = json_object(value, file, ["_via_attributes"], "_via_attributes").get("region", {})
    region = json_object(region, file, ["_via_attributes", "region"], "_via_attributes.region")
    decls: dict[str, AttrDecl] = {}
    for name, spec in region.items():
        path: list[str | int] = ["_via_attributes", "region", name]
        spec = json_object(spec, file, path, "an attribute declaration")
        kind = spec.get("type", "text")
        options = json_object(spec.get("options", {}), file, [*path, "options"], "options")
        decls[name] = AttrDecl(
            name, name, kind if kind in _VIA2_KINDS else "text", {k: k for k in options}
        )
    return decls
