"""The tracks of CVAT for video 1.1 exports, grouped into frames.

A track's shapes are spread over the file, so a video export is materialized: every visible
shape is held, grouped by absolute frame number. Frame numbers are checked against the task's
frames ``start_frame + k * step`` (``step`` from ``frame_filter="step=K"``), bounded by
``<size>`` or ``stop_frame`` when the export gives them. Frames become
:class:`~microprep.model.ImageInfo` named ``frame_000042`` (six digits, absolute frame number)
with the ``<original_size>`` of the task.

Example:
    >>> from lxml import etree
    >>> from microprep.readers.cvat_meta import CvatMeta
    >>> from microprep.readers.cvat_shapes import ShapeReader
    >>> meta = CvatMeta(start_frame=2, step=2, size=3, original_size=(64, 32))
    >>> video = VideoFrames(meta, ShapeReader("a.xml", decode_masks=True), elem=None)
    >>> video.track(etree.fromstring(
    ...     '<track id="0" label="fibre"><points frame="4" outside="0" points="1.5,2"/></track>'
    ... ))
    >>> [(item.image.name, len(item.shapes)) for item in video.items()]
    [('frame_000002', 0), ('frame_000004', 1), ('frame_000006', 0)]
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from typing import Final

from lxml import etree

from microprep.errors import FormatError
from microprep.model import AnnotatedImage, ImageInfo, Shape, StackInfo
from microprep.readers.cvat_meta import CvatMeta
from microprep.readers.cvat_shapes import SHAPE_TAGS, ShapeReader, skeleton_points
from microprep.readers.xmlsafe import line_of

logger = logging.getLogger(__name__)

#: Most frames a video export may declare or use.
MAX_FRAMES: Final = 1_000_000


class VideoFrames:
    """Collects ``<track>`` and top-level ``<tag>`` elements into frames.

    Args:
        meta: the export's ``<meta>``; it must give ``<original_size>``.
        reader: the shape reader (its counters and label uses are shared with the caller).
        elem: the first video element, for the error message when ``<original_size>`` is missing.
    """

    def __init__(self, meta: CvatMeta, reader: ShapeReader, *, elem: etree._Element | None) -> None:
        self.reader = reader
        self.file = reader.file
        if meta.original_size is None:
            raise FormatError(
                "a CVAT for video export needs <original_size> in <meta><task>",
                file=self.file,
                line=None if elem is None else line_of(elem),
                where=None if elem is None else f"<{elem.tag}>",
            )
        self.frame_size = meta.original_size
        self.start, self.step, self.stop = meta.start_frame, meta.step, meta.stop_frame
        self.order = 0
        self.tracks: set[int] = set()
        self.by_frame: defaultdict[int, list[Shape]] = defaultdict(list)
        self.max_seen: int | None = None
        count: int | None = None
        if meta.size is not None:
            if meta.size < 0:
                raise FormatError(f"<size> {meta.size} is negative", file=self.file)
            count = meta.size
        elif meta.stop_frame is not None:
            if meta.stop_frame < self.start:
                raise FormatError(
                    f"stop_frame {meta.stop_frame} < start_frame {self.start}", file=self.file
                )
            count = (meta.stop_frame - self.start) // self.step + 1
        if count is not None and count > MAX_FRAMES:
            raise FormatError(f"{count} frames is more than {MAX_FRAMES}", file=self.file)
        self.last_frame = None if count is None else self.start + (count - 1) * self.step

    def _error(self, message: str, elem: etree._Element, where: str) -> FormatError:
        return FormatError(message, file=self.file, line=line_of(elem), where=where)

    def frame(self, elem: etree._Element, where: str, *, visible: bool = True) -> int:
        """The ``frame`` attribute, checked against the task's frames when ``visible``."""
        frame = self.reader.integer(elem, "frame", where)
        if not visible:
            return frame
        start, step, last = self.start, self.step, self.last_frame
        if frame < start or (last is not None and frame > last):
            span = f"{start}..{'' if last is None else last}"
            raise self._error(f"frame {frame} is outside the task's frames {span}", elem, where)
        if (frame - start) % step:
            raise self._error(
                f"frame {frame} is not on the task's frame grid (start_frame {start}, step {step})",
                elem,
                where,
            )
        if (frame - start) // step >= MAX_FRAMES:
            raise self._error(f"frame {frame} is beyond {MAX_FRAMES} frames", elem, where)
        self.max_seen = frame if self.max_seen is None else max(self.max_seen, frame)
        return frame

    def track(self, elem: etree._Element) -> None:
        """Add the visible shapes of one ``<track>`` to their frames."""
        reader = self.reader
        track_id = reader.integer(elem, "id", "<track>")
        where = f"<track id={track_id}>"
        if track_id in self.tracks:
            raise self._error(f"track id {track_id} is used twice", elem, where)
        self.tracks.add(track_id)
        label = elem.get("label") or ""
        if label:
            reader.use_label(label, None, elem)
        source = elem.get("source") or "manual"
        group = reader.integer(elem, "group_id", where, 0)
        frames: set[int] = set()
        nested = [child for child in elem if child.tag == "track"]
        extra = self.element_tracks(nested, track_id, label, source, group) if nested else None
        for child in elem:
            if child.tag not in SHAPE_TAGS:
                if child.tag not in ("attribute", "track"):
                    reader.unknown[str(child.tag)] += 1
                continue
            child_where = f"<{child.tag}> in track {track_id}"
            outside = reader.flag(child, "outside", child_where)
            frame = self.frame(child, child_where, visible=not outside)
            if frame in frames:
                raise self._error(
                    f"track {track_id} has two shapes on frame {frame}", child, child_where
                )
            frames.add(frame)
            keyframe = reader.flag(child, "keyframe", child_where, default=True)
            if not label:
                reader.empty_labels += 0 if outside else 1
                continue
            shape = reader.read(
                child,
                owner=f"track {track_id} at frame {frame}",
                bounds=self.frame_size,
                order=self.order,
                label=label,
                source=source,
                group=group,
                track_id=track_id,
                frame=frame,
                keyframe=keyframe,
                extra_elements=None if extra is None else extra.pop(frame, []),
            )
            if shape is not None and not outside:
                self.by_frame[frame].append(shape)
                self.order += 1
        if label and extra:
            # element points on frames without a <skeleton> of the track: a skeleton each
            for frame in sorted(extra):
                elements = extra[frame]
                self.by_frame[frame].append(
                    Shape(
                        kind="skeleton",
                        label=label,
                        points=skeleton_points(elements),
                        z_order=elements[0].z_order,
                        group=group,
                        source=source,
                        order=self.order,
                        track_id=track_id,
                        frame=frame,
                        keyframe=any(e.keyframe for e in elements),
                        elements=tuple(replace(e, order=self.order) for e in elements),
                    )
                )
                self.order += 1

    def element_tracks(
        self, nested: list[etree._Element], track_id: int, label: str, source: str, group: int
    ) -> dict[int, list[Shape]]:
        """The visible points of a skeleton track's element tracks (nested ``<track>``), by frame.

        Each nested track is one element: its label (the skeleton's when it has none) and one
        ``<points>`` per frame with its own ``outside``, ``occluded`` and ``keyframe``. Other
        element kinds are skipped and counted.
        """
        reader = self.reader
        by_frame: defaultdict[int, list[Shape]] = defaultdict(list)
        for track in nested:
            el_label = track.get("label") or label
            if label and el_label != label:
                reader.use_label(el_label, label, track)
            seen: set[int] = set()
            for child in track:
                tag = child.tag
                if tag == "attribute":
                    continue
                if tag != "points":
                    reader.skipped[
                        f"skeleton element(s) <{tag}> (a skeleton's elements are points)"
                    ] += 1
                    continue
                where = f"<points label={el_label!r}> in element track of track {track_id}"
                outside = reader.flag(child, "outside", where)
                frame = self.frame(child, where, visible=not outside)
                if frame in seen:
                    raise self._error(
                        f"element {el_label!r} of track {track_id} has two points on frame {frame}",
                        child,
                        where,
                    )
                seen.add(frame)
                where = f"<points label={el_label!r}> of track {track_id} at frame {frame}"
                pts = reader.points(child, where, "points")
                occluded = reader.flag(child, "occluded", where)
                keyframe = reader.flag(child, "keyframe", where, default=True)
                attrs = reader.attributes(child, where)
                if outside:
                    continue
                by_frame[frame].append(
                    Shape(
                        kind="points",
                        label=el_label,
                        points=pts,
                        z_order=reader.integer(child, "z_order", where, 0),
                        occluded=occluded,
                        group=group,
                        source=source,
                        attributes=attrs,
                        track_id=track_id,
                        frame=frame,
                        keyframe=keyframe,
                    )
                )
        return dict(by_frame)

    def tag(self, elem: etree._Element) -> None:
        """Add a top-level ``<tag frame=...>`` to its frame."""
        frame = self.frame(elem, "<tag>")
        shape = self.reader.read(
            elem, owner=f"frame {frame}", bounds=self.frame_size, order=self.order, frame=frame
        )
        if shape is not None:
            self.by_frame[frame].append(shape)
            self.order += 1

    def stack(self) -> StackInfo:
        """The frame numbering; ``stop_frame`` is the last frame when the export omits it."""
        frames = self.frame_numbers()
        stop = self.stop if self.stop is not None else (frames[-1] if frames else None)
        return StackInfo(start_frame=self.start, stop_frame=stop, step=self.step)

    def frame_numbers(self) -> range:
        """The absolute frame numbers of the images, in order."""
        last = self.last_frame if self.last_frame is not None else self.max_seen
        if last is None:
            return range(0)
        return range(self.start, last + 1, self.step)

    def items(self) -> tuple[AnnotatedImage, ...]:
        """One AnnotatedImage per frame, shapes in file order."""
        width, height = self.frame_size
        return tuple(
            AnnotatedImage(
                ImageInfo(f"frame_{frame:06d}", width, height, frame=frame),
                tuple(self.by_frame.get(frame, ())),
            )
            for frame in self.frame_numbers()
        )
