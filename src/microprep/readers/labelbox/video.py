"""Video data rows of the NDJSON export: one image per annotated frame.

A video label keeps its objects by frame (``annotations.frames``: ``{"<n>": {"objects",
"classifications"}}``). Each annotated frame becomes an image named ``f"{name}#frame_{n:06d}"``,
in frame order, with the shapes of every label of the data row in that frame. A feature id keeps
one ``track_id`` (1, 2, ... in order of first appearance over the file);
``key_frame_feature_map`` sets ``keyframe``. Objects of video labels outside ``frames`` are
counted, not read.

Example:
    >>> from microprep.readers.labelbox.images import NewImages
    >>> from microprep.readers.labelbox.objects import ObjectReader
    >>> from microprep.readers.options import ReadOptions
    >>> reader = ObjectReader("e.ndjson", masks=None, build=True)
    >>> video = VideoFrames("e.ndjson", reader, NewImages("e.ndjson", ReadOptions()))
    >>> obj = {"name": "cell", "annotation_kind": "VideoPoint", "point": {"x": 1, "y": 2}}
    >>> labels = [({"frames": {"3": {"objects": {"f1": obj}}}}, ("projects", "p", "labels", 0))]
    >>> [(info.name, shapes[0].track_id) for info, shapes in
    ...  video.frames(labels, 1, "v.mp4", None, (8, 8), ("data_row", "id"))]
    [('v.mp4#frame_000003', 1)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from microprep.model import ImageInfo, Shape
from microprep.readers.jsonsafe import json_text
from microprep.readers.labelbox.checks import Checker, JsonPath, describe
from microprep.readers.labelbox.images import ImageSource
from microprep.readers.labelbox.objects import ObjectReader

_FRAME_KEY: Final = re.compile(r"[0-9]{1,9}")


class VideoFrames(Checker):
    """The frames of video data rows to images and shapes; one instance per pass."""

    def __init__(self, file: str, reader: ObjectReader, images: ImageSource) -> None:
        super().__init__(file)
        self.reader = reader
        self.images = images
        #: feature id -> track id, in order of first appearance
        self.tracks: dict[str, int] = {}
        #: objects of video labels that are outside ``frames`` (not read)
        self.outside_frames = 0

    def frames(
        self,
        labels: list[tuple[dict[str, Any], JsonPath]],
        line: int,
        name: str,
        row_id: str | None,
        size: Any,
        name_path: JsonPath,
    ) -> Iterator[tuple[ImageInfo, list[Shape]]]:
        """The images (one per annotated frame) of a video data row with these labels."""
        by_frame: dict[int, list[tuple[int, str, dict[str, Any]]]] = {}
        per_label: list[tuple[dict[str, str], dict[str, Any], JsonPath]] = []
        for li, (ann, path) in enumerate(labels):
            base = self.reader.classifications.read(
                ann.get("classifications"), (*path, "classifications"), line
            )
            keyframes = self.member(ann, "key_frame_feature_map", dict, line, path)
            per_label.append((base, keyframes or {}, path))
            self.outside_frames += len(self.member(ann, "objects", list, line, path) or ())
            frames = self.member(ann, "frames", dict, line, path)
            for key, frame in (frames or {}).items():
                here = (*path, "frames", key)
                if not _FRAME_KEY.fullmatch(key):
                    raise self.format_error(
                        f"frame key {json_text(key)} is not a frame number", line, here
                    )
                if not isinstance(frame, dict):
                    raise self.format_error(
                        f"expected an object, got {describe(frame)}", line, here
                    )
                by_frame.setdefault(int(key), []).append((li, key, frame))
        for number in sorted(by_frame):
            suffix = f"#frame_{number:06d}"
            info = self.images.image(name + suffix, number, size, line, name_path)
            self.reader.new_image()
            shapes: list[Shape] = []
            for li, key, frame in by_frame[number]:
                base, keyframes, path = per_label[li]
                here = (*path, "frames", key)
                attrs = self.reader.classifications.read(
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
            raise self.format_error(f"expected an object, got {describe(objects)}", line, here)

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
        raise self.format_error(
            f"expected a list or an object of frames, got {describe(entry)}",
            line,
            (*path, "key_frame_feature_map", fid or ""),
        )
