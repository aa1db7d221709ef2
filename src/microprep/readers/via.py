"""Reader for VGG Image Annotator (VIA) exports: VIA 1.x, 2.x (JSON, project, CSV) and 3.x.

Formats (``AnnotationSet.format``):

* ``via2-json``: VIA 2 "Export annotations (as json)", ``{"a.png12345": {"filename", "size",
  "regions": [...], "file_attributes"}}`` (keys are file name + file size in bytes).
* ``via2-project``: a saved VIA 2 project, the same under ``_via_img_metadata`` plus the attribute
  declarations ``_via_attributes``.
* ``via1-json``: VIA 1.x JSON, ``regions`` an object ``{"0": {...}, "1": {...}}``.
* ``via-csv``: the CSV export of VIA 1.x / 2.x (see :mod:`microprep.readers.via_csv`).
* ``via3-json``: a VIA 3 project (``project``, ``attribute``, ``file``, ``view``, ``metadata``).

Rules:

* **Class.** VIA has no class: it is the region attribute named by
  ``ReadOptions.label_attribute`` (VIA 3: the attribute's ``aname`` or id). Without it, the one
  dropdown / radio region attribute is used (VIA 2 projects and VIA 3 declare types); when none
  is declared, or the export declares nothing (annotations JSON, CSV), the one region attribute
  present in the regions (checkbox values excluded) is used. Otherwise a UsageError lists the
  candidates. A checkbox attribute is never a class.
* **Label names.** VIA 2 stores a dropdown/radio value as the option key the user typed: that key
  is the label. VIA 3 stores option ids (``"0"``): they are mapped to the option text. Text
  attributes give their text.
* **Label map.** With declared options (VIA 2 project, VIA 3), the labels are the options in
  declaration order; values not among them are appended with ``declared=False`` and a warning.
  Without declared options, labels come in order of first use with ``declared=True`` (there is no
  declaration to contradict).
* A region without a value (or an empty one) for the class attribute is skipped; all are counted
  in one warning. Unsupported shapes are skipped with one warning per shape name / id; VIA 3
  metadata that are not spatial regions of an image (``z`` not empty, ``xy`` empty: temporal
  segments), views of several files and non-image files are skipped with a warning.
* The other region attributes become ``Shape.attributes``, as strings (non-strings JSON-encoded;
  VIA 3 keyed by ``aname``, option ids mapped to their text). File attributes are not read.
* **Image sizes.** VIA stores none (its ``size`` is the file size in bytes). They come from
  ``ReadOptions.size`` (one size for every image) or from the headers of the image files in
  ``ReadOptions.images``; without either, a UsageError.
* Geometry: see :mod:`microprep.readers.via_shapes` (``theta`` is radians, clockwise on screen:
  ``rotation = degrees(theta)``; closed polygons lose their repeated last vertex; at most
  ``MAX_VERTICES`` vertices per shape). A region outside its image is read as it is.
* Image names must be relative paths without ``..`` and unique. ``Shape.order`` numbers the
  shapes kept over the whole file, in file order; ``z_order`` is 0.

A VIA file is one JSON document, so the set is built in memory. JSON hardening (the rules of
:mod:`microprep.readers.jsonsafe`, a vertex cap checked before parsing) is in
:mod:`microprep.readers.via_csv`. Python's cyclic garbage collector is paused while the file is
parsed and its shapes built (the parsed tree holds no cycles; collections over millions of new
objects would only add time) and restored afterwards.

Errors are :class:`~microprep.errors.InputError` subclasses naming the file and the JSON path
(``$._via_img_metadata["a.png12"].regions[3].shape_attributes.all_points_x[2]``) or, for CSV,
the line and column. Warnings go to ``on_warning`` (default: this module's logger) and into
``AnnotationSet.warnings``.

Example:
    >>> from pathlib import Path
    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "via.json"
    >>> region = {"shape_attributes": {"name": "circle", "cx": 5, "cy": 6, "r": 2},
    ...           "region_attributes": {"type": "bubble"}}
    >>> _ = p.write_text(json.dumps({"a.png9": {"filename": "a.png", "size": 9,
    ...                                         "regions": [region], "file_attributes": {}}}))
    >>> ds = read_via(p, options=ReadOptions(size=(16, 16)))
    >>> [(s.kind, s.label, s.points.tolist()) for item in ds for s in item.shapes]
    [('ellipse', 'bubble', [[5.0, 6.0], [2.0, 2.0]])]
"""

from __future__ import annotations

import gc
import json
import logging
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import tifffile
from PIL import Image

from microprep.errors import FormatError, ImageFileError, UnsafeInputError, UsageError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo
from microprep.paths import check_relative_name, safe_join
from microprep.readers.jsonsafe import json_path
from microprep.readers.options import ReadOptions
from microprep.readers.via_csv import is_header, load_json_text, parse_csv
from microprep.readers.via_shapes import (
    MAX_VERTICES,
    AttrDecl,
    RegionBuilder,
    ViaImage,
    ViaRegion,
    choose_label_attribute,
)

__all__ = ["MAX_VERTICES", "detect", "read_via"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 65536
_VIA2_KINDS: Final = ("text", "checkbox", "radio", "dropdown", "image")
#: VIA 3 attribute types (``_VIA_ATTRIBUTE_TYPE``): 1 text, 2 checkbox, 3 radio, 4 select, 5 image.
_VIA3_KINDS: Final = {1: "text", 2: "checkbox", 3: "radio", 4: "dropdown", 5: "image"}
_VIA3_IMAGE_FILE: Final = 2  # ``_VIA_FILE_TYPE.IMAGE``
_ANNOTATIONS_RE = re.compile(r'^\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\{')
_VIA3_RE = re.compile(r'"project"\s*:\s*\{')
_PNG = b"\x89PNG\r\n\x1a\n"
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def detect(path: Path) -> bool:
    """True when ``path`` looks like a VIA export (reads the first 64 KB only; never raises).

    JSON: a VIA 2 project (``_via_img_metadata``), a VIA 3 project (``project`` with
    ``vid_list``), or an object of objects with ``filename`` and ``regions`` /
    ``file_attributes`` (VIA 1.x / 2.x annotations). CSV: the VIA CSV header.
    """
    try:
        with open(path, "rb") as stream:
            head = (
                stream.read(_SNIFF_BYTES).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
            )
    except (OSError, ValueError):
        return False
    if not head.startswith("{"):
        return is_header(head.split("\n", 1)[0].rstrip("\r").split(","))
    if '"_via_img_metadata"' in head or '"_via_settings"' in head:
        return True
    if _VIA3_RE.search(head) and any(
        mark in head for mark in ('"vid_list"', "__VIA_PROJECT_ID__", "VGG Image Annotator")
    ):
        return True
    return (
        bool(_ANNOTATIONS_RE.match(head))
        and '"filename"' in head
        and (any(mark in head for mark in ('"regions"', '"file_attributes"', '"base64_img_data"')))
    )


# -- VIA 1.x / 2.x JSON --------------------------------------------------------------------------


def _object(value: Any, file: str, path: list[str | int], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(
            f"{what} must be a JSON object, got {type(value).__name__}",
            file=file,
            where=json_path(path),
        )
    return value


def _image_name(name: Any, file: str, path: list[str | int], seen: set[str]) -> str:
    """A checked, unique image name (``path`` is where it is written)."""
    if not isinstance(name, str) or not name:
        raise FormatError("missing or empty file name", file=file, where=json_path(path))
    try:
        key = str(check_relative_name(name))
    except UnsafeInputError as exc:
        raise UnsafeInputError(exc.message, file=file, where=json_path(path)) from exc
    if key in seen:
        raise FormatError(f"image {name!r} is listed twice", file=file, where=json_path(path))
    seen.add(key)
    return name


def _via2_images(
    meta: dict[str, Any], prefix: tuple[str, ...], file: str
) -> tuple[list[ViaImage], list[ViaRegion], bool]:
    """Images and regions of a VIA 1.x / 2.x image table; True when it is VIA 1.x."""
    images: list[ViaImage] = []
    regions: list[ViaRegion] = []
    seen: set[str] = set()
    v1 = False
    for key, entry in meta.items():
        path: list[str | int] = [*prefix, key]
        entry = _object(entry, file, path, "an image entry")
        images.append(ViaImage(_image_name(entry.get("filename"), file, [*path, "filename"], seen)))
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
                region = _object(region, file, rpath, "a region")
                shape_path = [*rpath, "shape_attributes"]
                _object(region.get("shape_attributes"), file, shape_path, "shape_attributes")
                attrs = _object(attrs, file, [*rpath, "region_attributes"], "region_attributes")
            regions.append(ViaRegion(shape, attrs, index, file, region_prefix, rkey))
    return images, regions, v1


def _via2_decls(value: Any, file: str) -> dict[str, AttrDecl] | None:
    """Region attribute declarations of a VIA 2 project (``_via_attributes.region``)."""
    if value is None:
        return None
    region = _object(value, file, ["_via_attributes"], "_via_attributes").get("region", {})
    region = _object(region, file, ["_via_attributes", "region"], "_via_attributes.region")
    decls: dict[str, AttrDecl] = {}
    for name, spec in region.items():
        path: list[str | int] = ["_via_attributes", "region", name]
        spec = _object(spec, file, path, "an attribute declaration")
        kind = spec.get("type", "text")
        options = _object(spec.get("options", {}), file, [*path, "options"], "options")
        decls[name] = AttrDecl(
            name, name, kind if kind in _VIA2_KINDS else "text", {k: k for k in options}
        )
    return decls


# -- VIA 3 ---------------------------------------------------------------------------------------


def _via3_decls(value: Any, file: str) -> dict[str, AttrDecl]:
    """Region-level attributes of a VIA 3 project (anchors other than ``..._XY0``)."""
    decls: dict[str, AttrDecl] = {}
    for aid, spec in _object(value, file, ["attribute"], "attribute").items():
        spec = _object(spec, file, ["attribute", aid], "an attribute")
        anchor = spec.get("anchor_id")
        if isinstance(anchor, str) and anchor.endswith("XY0"):
            continue
        name = spec.get("aname")
        options = _object(spec.get("options", {}), file, ["attribute", aid, "options"], "options")
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
    files = _object(data["file"], file, ["file"], "file")
    views = _object(data["view"], file, ["view"], "view")
    project = data.get("project")
    order = project.get("vid_list") if isinstance(project, dict) else None
    if not isinstance(order, list) or not all(isinstance(v, str) for v in order):
        order = list(views)
    images: list[ViaImage] = []
    index: dict[str, int] = {}
    skipped: set[str] = set()
    seen: set[str] = set()
    for vid in dict.fromkeys(order):
        view = _object(views.get(vid), file, ["view", vid], "a view")
        fids = view.get("fid_list")
        if not isinstance(fids, list) or len(fids) != 1:
            skipped.add(vid)
            continue
        fid = str(fids[0])
        entry = _object(files.get(fid), file, ["file", fid], "a file entry")
        if entry.get("type", _VIA3_IMAGE_FILE) != _VIA3_IMAGE_FILE:
            skipped.add(vid)
            continue
        name = _image_name(entry.get("fname"), file, ["file", fid, "fname"], seen)
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
    for mid, meta in _object(data["metadata"], file, ["metadata"], "metadata").items():
        meta = _object(meta, file, ["metadata", mid], "a metadata entry")
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
                f"metadata of unknown view {str(vid)[:40]!r}",
                file=file,
                where=json_path(["metadata", mid, "vid"]),
            )
        if z or not xy:
            other += 1
            continue
        av = meta.get("av", {})
        if not isinstance(av, dict):
            _object(av, file, ["metadata", mid, "av"], "av")
        regions.append(ViaRegion(xy, av, index[vid], file, prefix, mid))
    if other:
        warnings.append(
            f"{file}: {other} metadata entries that are not spatial regions of an image "
            "(temporal segments, skipped views) were skipped"
        )
    return images, regions, decls


# -- image sizes ---------------------------------------------------------------------------------


def image_size(root: Path, name: str) -> tuple[int, int]:
    """``(width, height)`` of the image file ``name`` in ``root``, from its header only.

    PNG sizes are read from the IHDR chunk, TIFF sizes from the first page's tags, other formats
    with Pillow (which reads the header lazily).

    Raises:
        UnsafeInputError: ``name`` escapes ``root``.
        ImageFileError: the file is missing or unreadable.
    """
    path = safe_join(root, name)
    where = f"image {name!r}"
    if not path.is_file():
        raise ImageFileError(
            f"image file not found (looked for {name!r} in {root})", file=path, where=where
        )
    try:
        with path.open("rb") as stream:
            head = stream.read(32)
        if head[:8] == _PNG and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
        elif head[:4] in _TIFF:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                width, height = int(page.imagewidth), int(page.imagelength)
        else:
            with Image.open(path) as img:
                width, height = img.size
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the image size: {type(exc).__name__}: {exc}", file=path, where=where
        ) from exc
    if width <= 0 or height <= 0:
        raise ImageFileError(f"image size {width}x{height} is empty", file=path, where=where)
    return int(width), int(height)


def _sizes(images: list[ViaImage], options: ReadOptions) -> list[tuple[int, int]]:
    if not images:
        return []
    if options.size is not None:
        width, height = options.size
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise UsageError(f"image size {width}x{height} must be two positive integers")
        return [(width, height)] * len(images)
    if options.images is not None:
        root = Path(options.images)
        if not root.is_dir():
            raise UsageError(f"images folder {root} does not exist")
        return [image_size(root, image.name) for image in images]
    raise UsageError("VIA exports store no image size: pass --images DIR or --size WxH")


# -- reading -------------------------------------------------------------------------------------


def _parse(
    path: Path, file: str, warnings: list[str]
) -> tuple[str, list[ViaImage], list[ViaRegion], dict[str, AttrDecl] | None]:
    """Format name, images, regions and declarations of any VIA variant."""
    try:
        with path.open("rb") as stream:
            first = stream.read(4096).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")[:1]
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    if first == "[":
        raise FormatError("a JSON array: not a VIA export (VIA JSON is an object)", file=path)
    if first != "{":
        images, regions = parse_csv(path)
        return "via-csv", images, regions, None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason})", file=path) from exc
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    data = _object(load_json_text(text, file=file), file, [], "a VIA export")
    del text
    if "metadata" in data and "file" in data and "view" in data:
        images, regions, decls = parse_via3(data, file, warnings)
        return "via3-json", images, regions, decls
    if "_via_img_metadata" in data:
        meta = _object(data["_via_img_metadata"], file, ["_via_img_metadata"], "_via_img_metadata")
        images, regions, v1 = _via2_images(meta, ("_via_img_metadata",), file)
        return "via2-project", images, regions, _via2_decls(data.get("_via_attributes"), file)
    images, regions, v1 = _via2_images(data, (), file)
    return ("via1-json" if v1 else "via2-json"), images, regions, None


def read_via(
    path: str | Path,
    *,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read a VIA export (1.x / 2.x JSON, 2.x project, CSV, 3.x project) into an AnnotationSet.

    Args:
        path: the export file (``.json`` or ``.csv``; the variant is recognised by content).
        on_warning: called with each warning line (default: logged on this module's logger).
        options: ``size`` or ``images`` (image sizes; one is needed when the export lists an
            image) and ``label_attribute`` (the class attribute; see the module rules).

    Returns:
        An in-memory AnnotationSet (format ``via2-json``, ``via2-project``, ``via1-json``,
        ``via-csv`` or ``via3-json``), images in file order.

    Raises:
        FormatError: malformed JSON / CSV, wrong structure, refused numbers.
        UnsafeInputError: image names escaping their folder.
        GeometryError: unusable shapes (see :mod:`microprep.readers.via_shapes`).
        ImageFileError: an image file is missing or unreadable (with ``options.images``).
        UsageError: no image size source, or the class attribute cannot be chosen.
    """
    path = Path(path)
    file = str(path)
    options = options or ReadOptions()
    warnings: list[str] = []
    collecting = gc.isenabled()
    gc.disable()  # millions of fresh acyclic objects: collections would only cost time
    try:
        fmt, images, regions, decls = _parse(path, file, warnings)
        key = choose_label_attribute(decls, regions, options.label_attribute, file)
        sizes = _sizes(images, options)
        builder = RegionBuilder(file, decls, key, v3=fmt == "via3-json")
        shapes = builder.shapes(regions, len(images))
        del regions
        labels = builder.label_map(warnings)
        builder.skip_warnings(warnings)
    finally:
        if collecting:
            gc.enable()
    emit = on_warning if on_warning is not None else logger.warning
    for message in warnings:
        emit(message)
    items = (
        AnnotatedImage(ImageInfo(image.name, w, h, id=image.id), tuple(image_shapes))
        for image, (w, h), image_shapes in zip(images, sizes, shapes, strict=True)
    )
    logger.debug("%s: %s, %d images, %d shapes", file, fmt, len(images), sum(map(len, shapes)))
    return AnnotationSet.from_items(
        items, labels=labels, source=path, format=fmt, warnings=warnings
    )
