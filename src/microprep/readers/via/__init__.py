"""Reader for VGG Image Annotator (VIA) exports: VIA 1.x, 2.x (JSON, project, CSV) and 3.x.

Formats (``AnnotationSet.format``):

* ``via2-json``: VIA 2 "Export annotations (as json)", ``{"a.png12345": {"filename", "size",
  "regions": [...], "file_attributes"}}`` (keys are file name + file size in bytes).
* ``via2-project``: a saved VIA 2 project, the same under ``_via_img_metadata`` plus the attribute
  declarations ``_via_attributes``.
* ``via1-json``: VIA 1.x JSON, ``regions`` an object ``{"0": {...}, "1": {...}}``.
* ``via-csv``: the CSV export of VIA 1.x / 2.x (see :mod:`microprep.readers.via.csv_export`).
* ``via3-json``: a VIA 3 project (``project``, ``attribute``, ``file``, ``view``, ``metadata``).

Rules:

* **Class.** VIA has no class: it is the region attribute named by
  ``ReadOptions.label_attribute`` (VIA 3: the attribute's ``aname`` or id). Without it, the one
  dropdown / radio region attribute is used (VIA 2 projects and VIA 3 declare types); when none
  is declared, or the export declares nothing (annotations JSON, CSV), the one region attribute
  holding a non-empty text in some region is used. Several candidates are a UsageError listing
  them. A checkbox attribute is never a class. When no attribute can hold a class (regions
  without attributes, as most VIA projects are), every region gets the class
  ``ReadOptions.label``, else ``"object"`` with a warning.
* A region without a value (or an empty one) for the class attribute gets ``ReadOptions.label``
  when it is given; otherwise it is skipped, all counted in one warning.
* **Label names.** VIA 2 stores a dropdown/radio value as the option key the user typed: that key
  is the label. VIA 3 stores option ids (``"0"``): they are mapped to the option text. Text
  attributes give their text.
* **Label map.** With declared options (VIA 2 project, VIA 3), the labels are the options in
  declaration order; values not among them are appended with ``declared=False`` and a warning.
  Without declared options, labels come in order of first use with ``declared=True`` (there is no
  declaration to contradict).
* Unsupported shapes are skipped with one warning per shape name / id; VIA 3
  metadata that are not spatial regions of an image (``z`` not empty, ``xy`` empty: temporal
  segments), views of several files and non-image files are skipped with a warning.
* The other region attributes become ``Shape.attributes``, as strings (checkbox objects as
  their ticked options joined by ``","``, other non-strings JSON-encoded;
  VIA 3 keyed by ``aname``, option ids mapped to their text). File attributes are not read.
* **Image sizes.** VIA stores none (its ``size`` is the file size in bytes). They come from
  ``ReadOptions.size`` (one size for every image) or from the headers of the image files in
  ``ReadOptions.images``; without either, a UsageError.
* Geometry: see :mod:`microprep.readers.via.shapes` and :mod:`microprep.readers.via.via3_shapes`
  (``theta`` is radians, clockwise on screen: ``rotation = degrees(theta)``; closed polygons lose
  their repeated last vertex; at most ``MAX_VERTICES`` vertices per shape). A region outside its
  image is read as it is.
* Image names must be relative paths without ``..`` and unique. ``Shape.order`` numbers the
  shapes kept over the whole file, in file order; ``z_order`` is 0.

A VIA file is one JSON document, so the set is built in memory. JSON hardening (the rules of
:mod:`microprep.readers.jsonsafe`, a vertex cap checked before parsing) is in
:mod:`microprep.readers.via.jsonfast`. Python's cyclic garbage collector is paused while the file
is parsed and its shapes built (the parsed tree holds no cycles; collections over millions of new
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
import logging
import re
from collections.abc import Callable
from pathlib import Path

from microprep.errors import FormatError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo
from microprep.readers.groups import regroup
from microprep.readers.options import ReadOptions
from microprep.readers.via.csv_export import is_header, parse_csv
from microprep.readers.via.jsonfast import load_json_text
from microprep.readers.via.labels import RegionBuilder, choose_label_attribute
from microprep.readers.via.regions import MAX_VERTICES, AttrDecl, ViaImage, ViaRegion, json_object
from microprep.readers.via.sizes import image_sizes
from microprep.readers.via.via2 import via2_decls, via2_images
from microprep.readers.via.via3 import parse_via3

__all__ = ["MAX_VERTICES", "detect", "read_via"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 65536
_ANNOTATIONS_RE = re.compile(r'^\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\{')
_VIA3_RE = re.compile(r'"project"\s*:\s*\{')


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
    data = json_object(load_json_text(text, file=file), file, [], "a VIA export")
    del text
    if "metadata" in data and "file" in data and "view" in data:
        images, regions, decls = parse_via3(data, file, warnings)
        return "via3-json", images, regions, decls
    if "_via_img_metadata" in data:
        meta = json_object(
            data["_via_img_metadata"], file, ["_via_img_metadata"], "_via_img_metadata"
        )
        images, regions, v1 = via2_images(meta, ("_via_img_metadata",), file)
        return "via2-project", images, regions, via2_decls(data.get("_via_attributes"), file)
    images, regions, v1 = via2_images(data, (), file)
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
        GeometryError: unusable shapes (see :mod:`microprep.readers.via.shapes`).
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
        sizes = image_sizes(images, options)
        builder = RegionBuilder(file, decls, key, v3=fmt == "via3-json", fallback=options.label)
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
        AnnotatedImage(ImageInfo(image.name, w, h, id=image.id), regroup(image_shapes))
        for image, (w, h), image_shapes in zip(images, sizes, shapes, strict=True)
    )
    logger.debug("%s: %s, %d images, %d shapes", file, fmt, len(images), sum(map(len, shapes)))
    return AnnotationSet.from_items(
        items, labels=labels, source=path, format=fmt, warnings=warnings
    )
