"""Reader for Labelbox exports: the NDJSON export (v2) and the legacy JSON export (v1).

:func:`read_labelbox` tells the two apart by the file's first character (``{``: NDJSON, one data
row per line; ``[``: a legacy JSON array of labels) and makes one complete checking pass that
raises every error and collects the label map and the image list; iterating the returned
:class:`~microprep.model.AnnotationSet` reads the file again.

* **NDJSON (v2)**, format ``"labelbox-ndjson"``: streamed line by line, so memory is bounded by
  one data row. The checking pass parses with :func:`microprep.readers.jsonsafe.iter_ndjson`
  (NaN, duplicate keys, deep nesting, over-long lines refused); iteration re-reads the lines the
  checking pass accepted with the standard parser, after checking that the file's size and
  modification time are unchanged.
* **Legacy JSON (v1)**, format ``"labelbox-json"``: one JSON document, loaded whole (hardened by
  :func:`microprep.readers.jsonsafe.load_json`) in each pass; see
  :mod:`microprep.readers.labelbox_legacy`.

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

import json
import logging
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Final

from microprep.errors import FormatError, InputError, UnsafeInputError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.paths import check_relative_name
from microprep.readers import jsonsafe
from microprep.readers.jsonsafe import json_path
from microprep.readers.labelbox_legacy import read_legacy
from microprep.readers.labelbox_objects import (
    MAX_IMAGE_SIDE,
    ImageSource,
    JsonPath,
    KnownImages,
    NewImages,
    ObjectReader,
    check_unchanged,
    describe,
    file_fingerprint,
    summary,
)
from microprep.readers.options import ReadOptions

__all__ = ["MAX_IMAGE_SIDE", "detect", "read_labelbox"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 4096
_FRAME_KEY: Final = re.compile(r"[0-9]{1,9}")
_NAME_KEYS: Final = ("external_id", "global_key", "id")


def detect(path: Path) -> bool:
    """True when ``path`` looks like a Labelbox export (reads the first 4 KB only).

    NDJSON (v2): the first line is an object with a ``"data_row"`` key. Legacy JSON: an array
    whose first object has ``"DataRow ID"`` or ``"Labeled Data"``. Never raises.

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
        return b'"data_row"' in head
    if head.startswith(b"["):
        return b'"DataRow ID"' in head or b'"Labeled Data"' in head
    return False


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


class _Rows:
    """NDJSON data rows to images and shapes; one instance per pass."""

    def __init__(self, file: str, reader: ObjectReader, images: ImageSource) -> None:
        self.file = file
        self.reader = reader
        self.images = images
        #: feature id -> track id, in order of first appearance
        self.tracks: dict[str, int] = {}
        #: objects of video labels that are outside ``frames`` (not read)
        self.outside_frames = 0

    def _error(self, message: str, line: int, path: JsonPath) -> FormatError:
        return FormatError(message, file=self.file, line=line, where=json_path(path))

    def _get(self, parent: dict[str, Any], key: str, kind: type, line: int, path: JsonPath) -> Any:
        """``parent[key]`` when it is a ``kind`` (or None when absent / null), else an error."""
        value = parent.get(key)
        if value is None or isinstance(value, kind):
            return value
        what = "an object" if kind is dict else "a list"
        raise self._error(f"expected {what}, got {describe(value)}", line, (*path, key))

    def _name(self, data_row: dict[str, Any], line: int) -> tuple[str, JsonPath]:
        for key in _NAME_KEYS:
            value = data_row.get(key)
            if value is None or value == "":
                continue
            path = ("data_row", key)
            if not isinstance(value, str):
                raise self._error(f"expected a string, got {describe(value)}", line, path)
            try:
                check_relative_name(value)
            except UnsafeInputError as exc:
                raise UnsafeInputError(
                    exc.message, file=self.file, line=line, where=json_path(path)
                ) from exc
            return value, path
        raise self._error("the data row has no external_id, global_key or id", line, ("data_row",))

    def _labels(self, row: dict[str, Any], line: int) -> list[tuple[dict[str, Any], JsonPath]]:
        """Every label's ``annotations`` with its path, over all projects."""
        out: list[tuple[dict[str, Any], JsonPath]] = []
        projects = self._get(row, "projects", dict, line, ())
        for pid, project in (projects or {}).items():
            path: JsonPath = ("projects", pid)
            if not isinstance(project, dict):
                raise self._error(f"expected an object, got {describe(project)}", line, path)
            labels = self._get(project, "labels", list, line, path)
            for li, label in enumerate(labels or ()):
                here = (*path, "labels", li)
                if not isinstance(label, dict):
                    raise self._error(f"expected an object, got {describe(label)}", line, here)
                annotations = self._get(label, "annotations", dict, line, here)
                if annotations is not None:
                    out.append((annotations, (*here, "annotations")))
        return out

    def row(self, row: Any, line: int) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        """The images (one, or one per annotated video frame) of one data row."""
        if not isinstance(row, dict):
            raise self._error(f"a data row must be an object, got {describe(row)}", line, ())
        data_row = self._get(row, "data_row", dict, line, ())
        if data_row is None:
            raise self._error("missing 'data_row'", line, ())
        name, name_path = self._name(data_row, line)
        row_id = data_row.get("id") if isinstance(data_row.get("id"), str) else None
        labels = self._labels(row, line)
        media = row.get("media_attributes")
        size = self.images.size(media, line, name, ("media_attributes",))
        mime = media.get("mime_type") if isinstance(media, dict) else None
        video = (isinstance(mime, str) and mime.startswith("video/")) or any(
            "frames" in ann for ann, _ in labels
        )
        if video:
            yield from self._video(labels, line, name, row_id, size, name_path)
            return
        info = self.images.image(name, None, size, line, name_path)
        self.reader.new_image()
        shapes: list[Shape] = []
        for ann, path in labels:
            base = self.reader.attributes(
                ann.get("classifications"), (*path, "classifications"), line
            )
            objects = self._get(ann, "objects", list, line, path)
            here = (*path, "objects")
            for oi, obj in enumerate(objects or ()):
                fid = obj.get("feature_id") if isinstance(obj, dict) else None
                shape = self.reader.read(
                    obj,
                    (*here, oi),
                    line,
                    size=(info.width, info.height),
                    attrs=base,
                    stems=(fid if isinstance(fid, str) else None, row_id),
                )
                if shape is not None:
                    shapes.append(shape)
        yield info, shapes

    def _video(
        self,
        labels: list[tuple[dict[str, Any], JsonPath]],
        line: int,
        name: str,
        row_id: str | None,
        size: Any,
        name_path: JsonPath,
    ) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        by_frame: dict[int, list[tuple[int, str, dict[str, Any]]]] = {}
        per_label: list[tuple[dict[str, str], dict[str, Any], JsonPath]] = []
        for li, (ann, path) in enumerate(labels):
            base = self.reader.attributes(
                ann.get("classifications"), (*path, "classifications"), line
            )
            keyframes = self._get(ann, "key_frame_feature_map", dict, line, path)
            per_label.append((base, keyframes or {}, path))
            self.outside_frames += len(self._get(ann, "objects", list, line, path) or ())
            frames = self._get(ann, "frames", dict, line, path)
            for key, frame in (frames or {}).items():
                here = (*path, "frames", key)
                if not _FRAME_KEY.fullmatch(key):
                    raise self._error(f"frame key {key[:40]!r} is not a frame number", line, here)
                if not isinstance(frame, dict):
                    raise self._error(f"expected an object, got {describe(frame)}", line, here)
                by_frame.setdefault(int(key), []).append((li, key, frame))
        for number in sorted(by_frame):
            suffix = f"#frame_{number:06d}"
            info = self.images.image(name + suffix, number, size, line, name_path)
            self.reader.new_image()
            shapes: list[Shape] = []
            for li, key, frame in by_frame[number]:
                base, keyframes, path = per_label[li]
                here = (*path, "frames", key)
                attrs = self.reader.attributes(
                    frame.get("classifications"), (*here, "classifications"), line, dict(base)
                )
                for fid, obj, obj_path in self._frame_objects(frame, line, here):
                    track = (
                        None if fid is None else self.tracks.setdefault(fid, len(self.tracks) + 1)
                    )
                    shape = self.reader.read(
                        obj,
                        obj_path,
                        line,
                        size=(info.width, info.height),
                        attrs=attrs,
                        stems=(
                            None if fid is None else fid + suffix,
                            None if row_id is None else row_id + suffix,
                        ),
                        track_id=track,
                        frame=number,
                        keyframe=self._keyframe(keyframes, fid, number, line, path),
                    )
                    if shape is not None:
                        shapes.append(shape)
            yield info, shapes

    def _frame_objects(
        self, frame: dict[str, Any], line: int, path: JsonPath
    ) -> Iterator[tuple[str | None, Any, JsonPath]]:
        """``(feature id, object, path)`` of a frame's objects (a dict by feature id, or a list)."""
        objects = frame.get("objects")
        here = (*path, "objects")
        if isinstance(objects, dict):
            for fid, obj in objects.items():
                yield fid, obj, (*here, fid)
        elif isinstance(objects, list):
            for i, obj in enumerate(objects):
                fid = obj.get("feature_id") if isinstance(obj, dict) else None
                yield (fid if isinstance(fid, str) else None), obj, (*here, i)
        elif objects is not None:
            raise self._error(f"expected an object, got {describe(objects)}", line, here)

    def _keyframe(
        self, keyframes: dict[str, Any], fid: str | None, number: int, line: int, path: JsonPath
    ) -> bool:
        """False when ``key_frame_feature_map`` lists the feature without this frame."""
        entry = None if fid is None else keyframes.get(fid)
        if entry is None:
            return True
        if isinstance(entry, dict):
            return str(number) in entry
        if isinstance(entry, list):
            return number in entry or str(number) in entry
        raise self._error(
            f"expected a list or an object of frames, got {describe(entry)}",
            line,
            (*path, "key_frame_feature_map", fid or ""),
        )


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of the lines the checking pass accepted (standard parser)."""
    with path.open("rb") as stream:
        number = 0
        while True:
            raw = stream.readline(jsonsafe.MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                value = json.loads(text) if text.strip() else None
            except (ValueError, RecursionError) as exc:
                raise InputError(
                    "the file changed since it was read; read it again", file=path, line=number
                ) from exc
            if value is not None:
                yield number, value


def _iter_rows(
    path: Path, fingerprint: tuple[int, int], images: tuple[ImageInfo, ...], masks: Path | None
) -> Iterator[AnnotatedImage]:
    """The streaming pass over an NDJSON export: one AnnotatedImage per image."""
    check_unchanged(path, fingerprint)
    file = str(path)
    known = KnownImages(file, images)
    rows = _Rows(file, ObjectReader(file, masks=masks, build=True, checked=True), known)
    for line, row in _lines(path):
        for info, shapes in rows.row(row, line):
            yield AnnotatedImage(info, tuple(shapes))
    known.finish()


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
    if first == b"[":
        return read_legacy(path, emit=emit, options=options, fingerprint=fingerprint)
    if first != b"{":
        what = "the file is empty" if not first else "the file starts with neither '{' nor '['"
        raise FormatError(
            f"not a Labelbox export: {what} (NDJSON has one data row object per line, "
            "the legacy JSON export is an array)",
            file=path,
        )
    file = str(path)
    images = NewImages(file, options)
    reader = ObjectReader(file, masks=options.masks, build=False)
    rows = _Rows(file, reader, images)
    count = 0
    for line, row in jsonsafe.iter_ndjson(path):
        for _ in rows.row(row, line):
            pass
        count += 1
    warnings = summary(file, reader, options.masks)
    if rows.outside_frames:
        warnings.append(
            f"{file}: {rows.outside_frames} object(s) of video labels outside 'frames' ignored"
        )
    for message in warnings:
        emit(message)
    logger.debug("%s: %d data rows, %d images", path, count, len(images.images))
    labels = LabelMap(tuple(LabelSpec(name=name) for name in reader.classes))
    found = tuple(images.images)
    return AnnotationSet(
        source=path,
        format="labelbox-ndjson",
        labels=labels,
        images=found,
        load=partial(_iter_rows, path, fingerprint, found, options.masks),
        warnings=tuple(warnings),
    )
