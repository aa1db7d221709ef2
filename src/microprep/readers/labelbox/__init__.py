"""Reader for Labelbox exports: the NDJSON export (v2) and the legacy JSON export (v1).

:func:`read_labelbox` tells the two apart by the file's first character (``{``: NDJSON, one data
row per line; ``[``: a legacy JSON array of labels; a ``{`` followed by ``"DataRow ID"`` or
``"Labeled Data"`` and no ``"data_row"``: one bare legacy label, read as an array of one) and
makes one complete checking pass that raises every error and collects the label map and the
image list; iterating the returned :class:`~microprep.model.AnnotationSet` reads the file again.

* **NDJSON (v2)**, format ``"labelbox-ndjson"``: streamed line by line, so memory is bounded by
  one data row. The checking pass parses with :func:`microprep.readers.jsonsafe.iter_ndjson`
  (NaN, duplicate keys, deep nesting, over-long lines refused); iteration re-reads the lines the
  checking pass accepted with the standard parser, after checking that the file's size and
  modification time are unchanged; see :mod:`microprep.readers.labelbox.ndjson`.
* **Legacy JSON (v1)**, format ``"labelbox-json"``: one JSON document, loaded whole (hardened by
  :func:`microprep.readers.jsonsafe.load_json`) in each pass; see
  :mod:`microprep.readers.labelbox.legacy`.

Rules (docs/labelbox.md has the full list):

* Image name: ``data_row.external_id``, else ``global_key``, else ``id``; a relative path without
  ``..`` (UnsafeInputError otherwise), used once per file.
* Image size: ``media_attributes.width/height`` (integers in ``1..65536``); without them,
  ``ReadOptions.size``, else the header of the file in ``ReadOptions.images``, else UsageError.
* Classes: object names in order of first appearance over the whole file, all ``declared``.
* All labels of all projects of a data row are read (duplicates are kept).
* Video data rows (``annotations.frames``): one image per annotated frame, in frame order,
  named ``f"{name}#frame_{n:06d}"``; a feature id keeps one ``track_id`` (1, 2, ... in order
  of first appearance); ``key_frame_feature_map`` sets ``keyframe``.
* Masks come only from the local folder ``ReadOptions.masks``: ``<feature id>.png``, else
  ``<data row id>.png`` with the object's ``composite_mask.color_rgb``; URLs are never fetched.

Errors name the file, the NDJSON line and the JSON path, e.g. ``export.ndjson:3:
$.projects["p1"].labels[0].annotations.objects[2].polygon[1].x: expected a number, ...``.

Example:
    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "export.ndjson"
    >>> row = {"data_row": {"id": "d1", "external_id": "a.png"},
    ...        "media_attributes": {"width": 8, "height": 6},
    ...        "projects": {"p1": {"labels": [{"annotations": {"objects": [
    ...            {"name": "pore", "annotation_kind": "ImageBoundingBox",
    ...             "bounding_box": {"top": 1, "left": 2, "height": 3, "width": 4.5}}]}}]}}}
    >>> _ = p.write_text(json.dumps(row) + "\\n")
    >>> ds = read_labelbox(p)
    >>> [(item.image.name, item.shapes[0].points.tolist()) for item in ds]
    [('a.png', [[2.0, 1.0], [6.5, 4.0]])]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from microprep.errors import FormatError, InputError
from microprep.model import AnnotationSet
from microprep.readers.fingerprint import file_fingerprint
from microprep.readers.image_sizes import MAX_IMAGE_SIDE
from microprep.readers.labelbox.legacy import read_legacy
from microprep.readers.labelbox.ndjson import read_ndjson
from microprep.readers.options import ReadOptions

__all__ = ["MAX_IMAGE_SIDE", "detect", "read_labelbox"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 4096


def detect(path: Path) -> bool:
    """True when ``path`` looks like a Labelbox export (reads the first 4 KB only).

    NDJSON (v2): the first line is an object with a ``"data_row"`` key. Legacy JSON: an array
    whose first object has ``"DataRow ID"`` or ``"Labeled Data"``, or one such object alone.
    Never raises.

    Example:
        >>> detect(Path("export.ndjson"))  # doctest: +SKIP
        True
    """
    try:
        with open(path, "rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"{"):
        return b'"data_row"' in head or _legacy_marks(head)
    if head.startswith(b"["):
        return b'"DataRow ID"' in head or b'"Labeled Data"' in head
    return False


def _legacy_marks(head: bytes) -> bool:
    """True when ``head`` has the keys of a legacy (v1) label and not those of an NDJSON row."""
    return b'"data_row"' not in head and (b'"DataRow ID"' in head or b'"Labeled Data"' in head)


def _bare_legacy(path: Path) -> bool:
    """True when a file starting with ``{`` is one legacy label object rather than NDJSON."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_SNIFF_BYTES * 16)
    except OSError:
        return False
    return _legacy_marks(head)


def _first_byte(path: Path) -> bytes:
    """The first non-blank byte of the file (after a BOM), or ``b""`` for a blank file."""
    try:
        with path.open("rb") as stream:
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    return b""
                chunk = chunk.removeprefix(b"\xef\xbb\xbf").lstrip()
                if chunk:
                    return chunk[:1]
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=path) from exc


def read_labelbox(
    path: str | Path,
    *,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read a Labelbox NDJSON (v2) or legacy JSON (v1) export into an :class:`AnnotationSet`.

    Args:
        path: the export file (``.ndjson`` or ``.json``).
        on_warning: called with each warning line (default: logged on this module's logger).
        options: ``size`` / ``images`` for images without a size in the export, ``masks`` for
            the local folder of mask PNGs. See the module docstring.

    Returns:
        An AnnotationSet with format ``"labelbox-ndjson"`` or ``"labelbox-json"``; iterating
        it reads the file again (NDJSON: streamed, one data row at a time).

    Raises:
        FormatError: invalid JSON, wrong structure, non-numbers, NaN, over-long lines.
        UnsafeInputError: image names or ids that escape their folder.
        GeometryError: empty boxes, too few points, image sizes out of range.
        ImageFileError: a mask file that cannot be read or has the wrong size.
        UsageError: an image without a size in the export and no size or images folder given.
        InputError: the file cannot be read.

    Example:
        >>> opts = ReadOptions(masks=Path("masks"))
        >>> ds = read_labelbox("export.ndjson", options=opts)  # doctest: +SKIP
        >>> ds.labels.class_names, len(ds)  # doctest: +SKIP
        (('background', 'pore', 'grain'), 120)
    """
    path = Path(path)
    options = options if options is not None else ReadOptions()
    try:
        fingerprint = file_fingerprint(path)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    first = _first_byte(path)
    emit = on_warning if on_warning is not None else logger.warning
    if first == b"[" or (first == b"{" and _bare_legacy(path)):
        return read_legacy(path, emit=emit, options=options, fingerprint=fingerprint)
    if first != b"{":
        what = "the file is empty" if not first else 'the file starts with neither "{" nor "["'
        raise FormatError(
            f"not a Labelbox export: {what} (NDJSON has one data row object per line, "
            "the legacy JSON export is an array)",
            file=path,
        )
    return read_ndjson(path, emit=emit, options=options, fingerprint=fingerprint)
