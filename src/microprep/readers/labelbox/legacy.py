"""The legacy Labelbox JSON export (v1): a JSON array with one entry per label.

Each entry has ``"ID"`` (the label), ``"DataRow ID"``, ``"External ID"``, ``"Labeled Data"`` (a
URL, never fetched) and ``"Label"``: ``{"objects": [...], "classifications": [...]}``, or the
string ``"Skip"`` or ``{}`` for a label without objects. Objects have ``featureId``, ``title``
(else ``value``) as the class, and one of ``bbox``, ``polygon``, ``line``, ``point``, or only
``instanceURI`` for a mask (see :mod:`microprep.readers.labelbox.objects`).

The document is loaded whole (hardened by :func:`microprep.readers.jsonsafe.load_json`) in each
pass.

Rules:

* Entries with the same ``DataRow ID`` are labels of one image: their objects are merged, in
  file order. Images come in order of first appearance.
* Image name: ``External ID``, else ``Global Key``, else ``DataRow ID``.
* Image size: ``Media Attributes.width/height`` when present, else ``ReadOptions.size``, else the
  header of the file in ``ReadOptions.images``, else UsageError.
* A bare label object (not in an array) is read as an array of one (paths without an index).
* Video rows whose ``"Label"`` is the list of frames (``[{"frameNumber", "objects",
  "classifications"}]``, or ``"Label": {"frames": [...]}``): one image per frame number, named
  ``f"{name}#frame_{n:06d}"``; a ``featureId`` keeps one ``track_id``, ``keyframe: false`` is
  kept. Video labels that only link their frames by URL (``"Label": {"frames": "https://..."}``)
  are skipped, counted in one warning.
* Errors name the file and the JSON path (a JSON document has no useful line per label).

Example:
    >>> import json, tempfile
    >>> from microprep.readers.options import ReadOptions
    >>> p = Path(tempfile.mkdtemp()) / "export.json"
    >>> _ = p.write_text(json.dumps([{"DataRow ID": "d1", "External ID": "a.png", "Label": {
    ...     "objects": [{"title": "pore", "point": {"x": 1, "y": 2.5}}]}}]))
    >>> ds = read_legacy(p, emit=print, options=ReadOptions(size=(8, 8)), fingerprint=None)
    >>> [s.points.tolist() for item in ds for s in item.shapes]
    [[[1.0, 2.5]]]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.readers import jsonsafe
from microprep.readers.fingerprint import check_unchanged
from microprep.readers.groups import regroup
from microprep.readers.labelbox.checks import Checker, JsonPath, describe
from microprep.readers.labelbox.images import ImageSource, KnownImages, NewImages
from microprep.readers.labelbox.objects import LEGACY_KEYS, ObjectReader, summary
from microprep.readers.options import ReadOptions

__all__ = ["read_legacy"]

logger = logging.getLogger(__name__)

_NAME_KEYS = ("External ID", "Global Key", "DataRow ID")


class _Labels(Checker):
    """Legacy entries to images and shapes; one instance per pass."""

    def __init__(self, file: str, reader: ObjectReader, images: ImageSource) -> None:
        super().__init__(file)
        self.reader = reader
        self.images = images
        #: video labels skipped (their frames are only linked by URL)
        self.video = 0
        #: feature id -> track id of video objects, in order of first appearance
        self.tracks: dict[str, int] = {}
        #: the export is one bare label object, not an array (its JSON paths have no index)
        self.bare = False

    def _label(self, entry: dict[str, Any], index: int) -> tuple[str, Any]:
        """What the entry's ``Label`` is: ``("image", label)``, ``("frames", [frame, ...])``,
        ``("skip", None)`` or ``("url", None)`` (video frames linked by URL)."""
        label = entry.get("Label")
        if label is None or (isinstance(label, str) and label.strip().lower() == "skip"):
            return "skip", None
        if isinstance(label, list):
            return "frames", label
        if not isinstance(label, dict):
            raise self.format_error(
                f'expected an object, a list of frames or "Skip", got {describe(label)}',
                None,
                self._at(index, "Label"),
            )
        frames = label.get("frames")
        if isinstance(frames, list):
            return "frames", frames
        if frames is not None:
            self.video += 1
            return "url", None
        return "image", label

    def items(self, data: Any) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        """The images of the whole export, in order of first appearance of their data row.

        A bare label object (not in an array) is read as an array of one.
        """
        self.bare = isinstance(data, dict)
        if self.bare:
            data = [data]
        if not isinstance(data, list):
            raise self.format_error(
                f"expected a JSON array of labels, got {describe(data)}", None, ()
            )
        groups: dict[str | int, list[int]] = {}
        for index, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise self.format_error(
                    f"expected an object, got {describe(entry)}", None, self._at(index)
                )
            row_id = entry.get("DataRow ID")
            key: str | int = row_id if isinstance(row_id, str) and row_id else index
            groups.setdefault(key, []).append(index)
        for key, indices in groups.items():
            labels = [(i, *self._label(data[i], i)) for i in indices]
            kinds = {kind for _, kind, _ in labels}
            if kinds <= {"url"}:
                continue
            first = indices[0]
            found = self.image_name(data[first], _NAME_KEYS, None, self._at(first))
            if found is None:
                raise self.format_error(
                    "the label has no External ID, Global Key or DataRow ID",
                    None,
                    self._at(first),
                )
            name, name_path = found
            media = data[first].get("Media Attributes")
            size = self.images.size(media, None, name, self._at(first, "Media Attributes"))
            row_id = key if isinstance(key, str) else None
            if kinds & {"image", "skip"}:
                info = self.images.image(name, None, size, None, name_path)
                self.reader.new_image()
                shapes: list[Shape] = []
                for i, kind, label in labels:
                    if kind == "image":
                        shapes.extend(self._objects(label, i, info, row_id))
                yield info, shapes
            if "frames" in kinds:
                videos = [(i, label) for i, kind, label in labels if kind == "frames"]
                yield from self._frames(videos, name, size, name_path, row_id)

    def _at(self, index: int, *rest: str | int) -> JsonPath:
        """The JSON path of entry ``index`` (a bare label has no index)."""
        return rest if self.bare else (index, *rest)

    def _objects(
        self, label: dict[str, Any], index: int, info: ImageInfo, row_id: str | None
    ) -> Iterator[Shape]:
        path = self._at(index, "Label")
        base = self.reader.classifications.read(
            label.get("classifications"), (*path, "classifications"), None
        )
        yield from self._shapes(label, path, info, row_id, base)

    def _shapes(
        self,
        label: dict[str, Any],
        path: JsonPath,
        info: ImageInfo,
        row_id: str | None,
        base: dict[str, str],
        frame: int | None = None,
        suffix: str = "",
    ) -> Iterator[Shape]:
        objects = label.get("objects")
        if objects is None:
            return
        if not isinstance(objects, list):
            raise self.format_error(
                f"expected a list, got {describe(objects)}", None, (*path, "objects")
            )
        for j, obj in enumerate(objects):
            fid = obj.get("featureId") if isinstance(obj, dict) else None
            fid = fid if isinstance(fid, str) and fid else None
            video: dict[str, Any] = {}
            if frame is not None:
                keyframe = obj.get("keyframe", True) if isinstance(obj, dict) else True
                video = {
                    "track_id": None
                    if fid is None
                    else self.tracks.setdefault(fid, len(self.tracks) + 1),
                    "frame": frame,
                    "keyframe": keyframe is not False,
                }
            shape = self.reader.read(
                obj,
                (*path, "objects", j),
                None,
                size=(info.width, info.height),
                attrs=base,
                stems=(
                    None if fid is None else fid + suffix,
                    None if row_id is None else row_id + suffix,
                ),
                **video,
            )
            if shape is not None:
                yield shape

    def _frames(
        self,
        videos: list[tuple[int, list[Any]]],
        name: str,
        size: Any,
        name_path: JsonPath,
        row_id: str | None,
    ) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        """One image per annotated frame of a video row (``"Label"`` a list of frames)."""
        by_frame: dict[int, list[tuple[dict[str, Any], JsonPath]]] = {}
        for index, frames in videos:
            for k, frame in enumerate(frames):
                here = self._at(index, "Label", k)
                if not isinstance(frame, dict):
                    raise self.format_error(
                        f"expected a frame object, got {describe(frame)}", None, here
                    )
                number = frame.get("frameNumber")
                if type(number) is not int or not 0 <= number < 10**9:
                    raise self.format_error(
                        f"expected a frame number (a whole number from 0), got {describe(number)}",
                        None,
                        (*here, "frameNumber"),
                    )
                by_frame.setdefault(number, []).append((frame, here))
        for number in sorted(by_frame):
            suffix = f"#frame_{number:06d}"
            info = self.images.image(name + suffix, number, size, None, name_path)
            self.reader.new_image()
            shapes: list[Shape] = []
            for frame, here in by_frame[number]:
                base = self.reader.classifications.read(
                    frame.get("classifications"), (*here, "classifications"), None
                )
                shapes.extend(self._shapes(frame, here, info, row_id, base, number, suffix))
            yield info, shapes


def _iter_labels(
    path: Path,
    fingerprint: tuple[int, int] | None,
    images: tuple[ImageInfo, ...],
    masks: Path | None,
) -> Iterator[AnnotatedImage]:
    """The second pass over a legacy export: the file is loaded again and converted."""
    if fingerprint is not None:
        check_unchanged(path, fingerprint)
    file = str(path)
    known = KnownImages(file, images)
    walker = _Labels(
        file, ObjectReader(file, masks=masks, build=True, checked=True, keys=LEGACY_KEYS), known
    )
    for info, shapes in walker.items(jsonsafe.load_json(path)):
        yield AnnotatedImage(info, regroup(shapes))
    known.finish()


def read_legacy(
    path: Path,
    *,
    emit: Callable[[str], None],
    options: ReadOptions,
    fingerprint: tuple[int, int] | None,
) -> AnnotationSet:
    """Read a legacy Labelbox JSON export; the checking pass, then a lazily re-reading set.

    Args:
        path: the ``.json`` export.
        emit: called with each warning line.
        options: ``size`` / ``images`` (legacy exports rarely hold image sizes), ``masks``.
        fingerprint: ``(size, mtime_ns)`` of the file before reading (None: not checked).

    Returns:
        An AnnotationSet with format ``"labelbox-json"``.

    Raises:
        The errors of :func:`microprep.readers.labelbox.read_labelbox`.
    """
    file = str(path)
    images = NewImages(file, options)
    reader = ObjectReader(file, masks=options.masks, build=False, keys=LEGACY_KEYS)
    walker = _Labels(file, reader, images)
    for _ in walker.items(jsonsafe.load_json(path)):
        pass
    warnings = summary(file, reader, options.masks)
    if walker.video:
        warnings.append(
            f"{file}: {walker.video} video label(s) skipped: the legacy export links their "
            "frames by URL, which is never downloaded; export the project as NDJSON (export v2) "
            "to read them"
        )
    for message in warnings:
        emit(message)
    found = tuple(images.images)
    logger.debug("%s: %d images", path, len(found))
    return AnnotationSet(
        source=path,
        format="labelbox-json",
        labels=LabelMap(tuple(LabelSpec(name=name) for name in reader.classes)),
        images=found,
        load=partial(_iter_labels, path, fingerprint, found, options.masks),
        warnings=tuple(warnings),
    )
