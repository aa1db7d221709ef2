"""The Labelbox NDJSON export (v2): one data row per line, streamed.

The checking pass parses with :func:`microprep.readers.jsonsafe.iter_ndjson` (NaN, duplicate
keys, deep nesting, over-long lines refused); iteration re-reads the lines the checking pass
accepted with the standard parser, after checking that the file's size and modification time
are unchanged. Memory is bounded by one data row.

A data row has ``data_row`` (``external_id``, ``global_key``, ``id``), ``media_attributes``
(``width``, ``height``, ``mime_type``) and ``projects``: ``{project id: {"labels": [{"annotations":
{"objects", "classifications"}}]}}``. Video rows (see :mod:`microprep.readers.labelbox.video`)
have ``frames`` in their annotations.

Example:
    >>> import json, tempfile
    >>> from microprep.readers.fingerprint import file_fingerprint
    >>> from microprep.readers.options import ReadOptions
    >>> p = Path(tempfile.mkdtemp()) / "export.ndjson"
    >>> row = {"data_row": {"id": "d1", "external_id": "a.png"},
    ...        "media_attributes": {"width": 8, "height": 6},
    ...        "projects": {"p1": {"labels": [{"annotations": {"objects": [
    ...            {"name": "pore", "annotation_kind": "ImagePoint",
    ...             "point": {"x": 1, "y": 2}}]}}]}}}
    >>> _ = p.write_text(json.dumps(row) + "\\n")
    >>> ds = read_ndjson(p, emit=print, options=ReadOptions(), fingerprint=file_fingerprint(p))
    >>> [(item.image.name, item.shapes[0].points.tolist()) for item in ds]
    [('a.png', [[1.0, 2.0]])]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Final

from microprep.errors import InputError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.readers import jsonsafe
from microprep.readers.fingerprint import check_unchanged
from microprep.readers.groups import regroup
from microprep.readers.labelbox.checks import Checker, JsonPath, describe
from microprep.readers.labelbox.images import ImageSource, KnownImages, NewImages
from microprep.readers.labelbox.objects import ObjectReader, summary
from microprep.readers.labelbox.video import VideoFrames
from microprep.readers.options import ReadOptions

__all__ = ["read_ndjson"]

logger = logging.getLogger(__name__)

_NAME_KEYS: Final = ("external_id", "global_key", "id")


class _Rows(Checker):
    """NDJSON data rows to images and shapes; one instance per pass."""

    def __init__(self, file: str, reader: ObjectReader, images: ImageSource) -> None:
        super().__init__(file)
        self.reader = reader
        self.images = images
        self.video = VideoFrames(file, reader, images)

    def _labels(self, row: dict[str, Any], line: int) -> list[tuple[dict[str, Any], JsonPath]]:
        """Every label's ``annotations`` with its path, over all projects."""
        out: list[tuple[dict[str, Any], JsonPath]] = []
        projects = self.member(row, "projects", dict, line, ())
        for pid, project in (projects or {}).items():
            path: JsonPath = ("projects", pid)
            if not isinstance(project, dict):
                raise self.format_error(f"expected an object, got {describe(project)}", line, path)
            labels = self.member(project, "labels", list, line, path)
            for li, label in enumerate(labels or ()):
                here = (*path, "labels", li)
                if not isinstance(label, dict):
                    raise self.format_error(
                        f"expected an object, got {describe(label)}", line, here
                    )
                annotations = self.member(label, "annotations", dict, line, here)
                if annotations is not None:
                    out.append((annotations, (*here, "annotations")))
        return out

    def row(self, row: Any, line: int) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        """The images (one, or one per annotated video frame) of one data row."""
        if not isinstance(row, dict):
            raise self.format_error(f"a data row must be an object, got {describe(row)}", line, ())
        data_row = self.member(row, "data_row", dict, line, ())
        if data_row is None:
            raise self.format_error('missing "data_row"', line, ())
        found = self.image_name(data_row, _NAME_KEYS, line, ("data_row",))
        if found is None:
            raise self.format_error(
                "the data row has no external_id, global_key or id", line, ("data_row",)
            )
        name, name_path = found
        row_id = data_row.get("id") if isinstance(data_row.get("id"), str) else None
        labels = self._labels(row, line)
        media = row.get("media_attributes")
        size = self.images.size(media, line, name, ("media_attributes",))
        mime = media.get("mime_type") if isinstance(media, dict) else None
        video = (isinstance(mime, str) and mime.startswith("video/")) or any(
            "frames" in ann for ann, _ in labels
        )
        if video:
            yield from self.video.frames(labels, line, name, row_id, size, name_path)
            return
        info = self.images.image(name, None, size, line, name_path)
        self.reader.new_image()
        shapes: list[Shape] = []
        for ann, path in labels:
            base = self.reader.classifications.read(
                ann.get("classifications"), (*path, "classifications"), line
            )
            objects = self.member(ann, "objects", list, line, path)
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
            yield AnnotatedImage(info, regroup(shapes))
    known.finish()


def read_ndjson(
    path: Path,
    *,
    emit: Callable[[str], None],
    options: ReadOptions,
    fingerprint: tuple[int, int],
) -> AnnotationSet:
    """Read a Labelbox NDJSON export; the checking pass, then a lazily re-reading set.

    Args:
        path: the ``.ndjson`` export.
        emit: called with each warning line.
        options: ``size`` / ``images`` for images without a size in the export, ``masks``.
        fingerprint: ``(size, mtime_ns)`` of the file before reading.

    Returns:
        An AnnotationSet with format ``"labelbox-ndjson"``.

    Raises:
        The errors of :func:`microprep.readers.labelbox.read_labelbox`.
    """
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
    if rows.video.outside_frames:
        warnings.append(
            f'{file}: {rows.video.outside_frames} object(s) of video labels outside "frames" '
            "ignored"
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
