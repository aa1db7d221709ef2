"""The VIA 3 project: files, views, attribute declarations and the spatial regions of images.

A VIA 3 project has ``project`` (with ``vid_list``, the view order), ``attribute``, ``file``,
``view`` and ``metadata``. A view of one image file is an image; metadata entries with an empty
``z`` and a non-empty ``xy`` are its regions. Temporal segments, views of several files and
non-image files are skipped with a warning. The ``xy`` lists become Shapes in
:mod:`microprep.readers.via.via3_shapes`.

Example:
    >>> data = {"project": {"vid_list": ["1"]}, "attribute": {},
    ...         "file": {"1": {"fname": "a.png", "type": 2}}, "view": {"1": {"fid_list": ["1"]}},
    ...         "metadata": {"1_a": {"vid": "1", "z": [], "xy": [1, 5, 6], "av": {}}}}
    >>> images, regions, decls = parse_via3(data, "a.json", [])
    >>> [(image.name, image.id) for image in images], [region.shape for region in regions]
    ([('a.png', 1)], [[1, 5, 6]])
"""

from __future__ import annotations

import json
from typing import Any, Final

from microprep.errors import FormatError
from microprep.readers.jsonsafe import json_path, json_text
from microprep.readers.via.regions import AttrDecl, ViaImage, ViaRegion, image_name, json_object

#: VIA 3 attribute types (``_VIA_ATTRIBUTE_TYPE``): 1 text, 2 checkbox, 3 radio, 4 select, 5 image.
_VIA3_KINDS: Final = {1: "text", 2: "checkbox", 3: "radio", 4: "dropdown", 5: "image"}
_VIA3_IMAGE_FILE: Final = 2  # ``_VIA_FILE_TYPE.IMAGE``


def _via3_decls(value: Any, file: str) -> dict[str, AttrDecl]:
    """Region-level attributes of a VIA 3 project (anchors other than ``..._XY0``)."""
    decls: dict[str, AttrDecl] = {}
    for aid, spec in json_object(value, file, ["attribute"], "attribute").items():
        spec = json_object(spec, file, ["attribute", aid], "an attribute")
        anchor = spec.get("anchor_id")
        if isinstance(anchor, str) and anchor.endswith("XY0"):
            continue
        name = spec.get("aname")
        options = json_object(
            spec.get("options", {}), file, ["attribute", aid, "options"], "options"
        )
        kind = spec.get("type")
        decls[aid] = AttrDecl(
            aid,
            name if isinstance(name, str) and name else aid,
            _VIA3_KINDS.get(kind, "text") if type(kind) is int else "text",
            {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in options.items()},
        )
    return decls


def _via3_images(
    data: dict[str, Any], file: str, warnings: list[str]
) -> tuple[list[ViaImage], dict[str, int], set[str]]:
    """Images in view order; view id -> image index; views skipped (several or non-image files)."""
    files = json_object(data["file"], file, ["file"], "file")
    views = json_object(data["view"], file, ["view"], "view")
    project = data.get("project")
    order = project.get("vid_list") if isinstance(project, dict) else None
    if not isinstance(order, list) or not all(isinstance(v, str) for v in order):
        order = list(views)
    images: list[ViaImage] = []
    index: dict[str, int] = {}
    skipped: set[str] = set()
    seen: set[str] = set()
    for vid in dict.fromkeys(order):
        view = json_object(views.get(vid), file, ["view", vid], "a view")
        fids = view.get("fid_list")
        if not isinstance(fids, list) or len(fids) != 1:
            skipped.add(vid)
            continue
        fid = str(fids[0])
        entry = json_object(files.get(fid), file, ["file", fid], "a file entry")
        if entry.get("type", _VIA3_IMAGE_FILE) != _VIA3_IMAGE_FILE:
            skipped.add(vid)
            continue
        name = image_name(entry.get("fname"), file, ["file", fid, "fname"], seen)
        index[vid] = len(images)
        images.append(ViaImage(name, int(fid) if fid.isdigit() and len(fid) < 19 else None))
    if skipped:
        warnings.append(
            f"{file}: {len(skipped)} view(s) skipped (several files, or not an image file)"
        )
    return images, index, skipped


def parse_via3(
    data: dict[str, Any], file: str, warnings: list[str]
) -> tuple[list[ViaImage], list[ViaRegion], dict[str, AttrDecl]]:
    """Images, spatial regions (``z == []``, ``xy`` not empty) and region attributes of VIA 3."""
    images, index, skipped = _via3_images(data, file, warnings)
    decls = _via3_decls(data.get("attribute", {}), file)
    regions: list[ViaRegion] = []
    other = 0
    prefix = ("metadata",)
    for mid, meta in json_object(data["metadata"], file, ["metadata"], "metadata").items():
        meta = json_object(meta, file, ["metadata", mid], "a metadata entry")
        vid, z, xy = meta.get("vid"), meta.get("z", []), meta.get("xy", [])
        if not isinstance(xy, list) or not isinstance(z, list):
            bad = "xy" if not isinstance(xy, list) else "z"
            raise FormatError(
                f"{bad} must be a list", file=file, where=json_path(["metadata", mid, bad])
            )
        if not isinstance(vid, str) or vid not in index:
            if isinstance(vid, str) and (vid in skipped or vid in data["view"]):
                other += 1
                continue
            raise FormatError(
                f"metadata of unknown view {json_text(vid)}",
                file=file,
                where=json_path(["metadata", mid, "vid"]),
            )
        if z or not xy:
            other += 1
            continue
        av = meta.get("av", {})
        if not isinstance(av, dict):
            json_object(av, file, ["metadata", mid, "av"], "av")
        regions.append(ViaRegion(xy, av, index[vid], file, prefix, mid))
    if other:
        warnings.append(
            f"{file}: {other} metadata entries that are not spatial regions of an image "
            "(file attributes, temporal segments, skipped views) were skipped"
        )
    return images, regions, decls
