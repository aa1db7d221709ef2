"""Reader for CVAT XML 1.1 exports: "CVAT for images" (task, job and project) and "CVAT for video".

:func:`read_cvat` makes one complete streaming pass over the file that checks everything
(XML safety, structure, every number and shape) and collects the label map and the image list.
Every error is raised in that pass, so an :class:`~microprep.model.AnnotationSet` returned is
known to be good. Coordinates are ``float64`` pixel units exactly as written; rotations are
degrees; mask shapes get a ``(height, width)`` bool ``bitmap`` over their ``left/top/width/height``
box.

* **CVAT for images** (``<image>`` elements): iterating the set re-reads the file, streaming, and
  yields one :class:`~microprep.model.AnnotatedImage` per ``<image>`` in file order, so memory is
  bounded by one image's shapes. The file must not change in between (checked by size and mtime).
* **CVAT for video** (``<track>`` elements): a frame's shapes are spread over the whole file, so
  they are held in memory. There is one image per frame of the task, from ``start_frame`` in
  steps of ``frame_filter``'s ``step=K``: ``size`` frames when ``<size>`` is given, else up to
  ``stop_frame``, else up to the last frame used. Frame numbers stay absolute
  (``ImageInfo.frame``, ``Shape.frame``); frame images are named ``frame_000042`` (six digits, the
  absolute frame number) and sized by ``<original_size>``. Shapes with ``outside="1"`` are absent
  from their frame; interpolated (``keyframe="0"``) shapes are kept with ``keyframe=False``.
  Top-level ``<tag frame=...>`` elements become tags of their frame.

Rules:

* A shape with an empty or missing ``label`` is skipped; all of them are counted in one warning
  (``"N shape(s) with an empty label were skipped"``). A skeleton element without a label takes
  the skeleton's (see :mod:`microprep.readers.cvat_shapes`).
* A label used by shapes but not declared in ``<meta>`` is appended to the label map with
  ``declared=False`` and type ``any``, with a warning naming the file and line of first use.
* ``<cuboid>`` and other unsupported shape elements are skipped, one warning per element name.
* A file with both ``<image>`` and ``<track>`` (or top-level ``<tag>``) elements is a "mixed
  export" and is refused with :class:`~microprep.errors.FormatError`.
* ``Shape.order`` numbers the shapes kept, over the whole file, in file order.
* Image sides must be integers in ``1..MAX_IMAGE_SIDE``; masks must lie inside their image.
  Image names must be relative paths without ``..``; names and ids unique within a subset
  (project exports number and name the images of each subset, or task, on their own);
  subset names are plain folder names.
* Zip archives (CVAT's export downloads) are read in place: the member ``annotations.xml`` is
  streamed from the archive, which is checked first (see :mod:`microprep.archive`); errors name
  ``ARCHIVE:annotations.xml``.
* Boxes need ``xbr > xtl`` and ``ybr > ytl`` (never flipped), ellipses positive radii, polygons
  3 points, polylines 2; NaN or infinite numbers are a GeometryError, unparseable ones a
  FormatError.
* Video: visible shapes must sit on the task's frame grid (``start_frame + k * step``) and in its
  range; track ids are unique and a track has at most one shape per frame.
* XML safety (DOCTYPE, entities, XInclude, depth, size limits): see
  :mod:`microprep.readers.xmlsafe`.

Warnings go to ``on_warning`` (or the module logger when it is None) and into
``AnnotationSet.warnings``. Errors are :class:`~microprep.errors.InputError` subclasses naming the
file, line and element, e.g. ``a.xml:41: <polygon label='pore'> in image 'g 1.png': points
contain NaN``.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "annotations.xml"
    >>> _ = p.write_text(
    ...     '<annotations><version>1.1</version>'
    ...     '<image id="0" name="a.png" width="8" height="8">'
    ...     '<box label="pore" xtl="1" ytl="2" xbr="3.5" ybr="4"/></image></annotations>'
    ... )
    >>> ds = read_cvat(p, on_warning=lambda message: None)
    >>> [(item.image.name, item.shapes[0].points.tolist()) for item in ds]
    [('a.png', [[1.0, 2.0], [3.5, 4.0]])]
    >>> ds.labels.get("pore").declared
    False
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from lxml import etree

from microprep.archive import ANNOTATIONS_MEMBER, is_archive, open_archive
from microprep.errors import FormatError, InputError, UnsafeInputError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.paths import check_relative_name
from microprep.readers.cvat_meta import CvatMeta, parse_meta, parse_side
from microprep.readers.cvat_rle import decode_cvat_rle
from microprep.readers.cvat_shapes import ShapeReader
from microprep.readers.cvat_video import MAX_FRAMES, VideoFrames
from microprep.readers.fingerprint import check_unchanged, file_fingerprint
from microprep.readers.image_sizes import MAX_IMAGE_SIDE
from microprep.readers.names import check_image_name
from microprep.readers.options import ReadOptions
from microprep.readers.xmlsafe import iter_root_children, line_of, sniff_root

__all__ = ["MAX_FRAMES", "MAX_IMAGE_SIDE", "decode_cvat_rle", "detect", "read_cvat"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 4096
_VERSION_RE = re.compile(r"<version>\s*1\.1\s*</version>")
_META_RE = re.compile(r"<meta[\s/>]")


@dataclass(frozen=True, slots=True)
class _XmlSource:
    """Where the XML is: ``file`` names it in errors; ``opener`` opens an archive's member."""

    file: str
    opener: Callable[[], BinaryIO] | None = None


def _xml_source(path: Path) -> _XmlSource:
    """The annotations of ``path``: the file itself, or the ``annotations.xml`` of a zip archive.

    Raises:
        FormatError, UnsafeInputError: the archive is damaged or unsafe (see
            :func:`microprep.archive.open_archive`), or holds no ``annotations.xml``.
    """
    if not is_archive(path):
        return _XmlSource(str(path))
    with open_archive(path) as archive:
        member = archive.annotations
        if member is None:
            shown = ", ".join(repr(n) for n in archive.names()[:5]) or "nothing"
            raise FormatError(
                f"no {ANNOTATIONS_MEMBER} in the archive (a CVAT export holds it at the top; "
                f"the archive holds {shown}{' ...' if len(archive.names()) > 5 else ''})",
                file=path,
                where=f"member {ANNOTATIONS_MEMBER!r}",
            )
        label = archive.label(member)

    def opener() -> BinaryIO:
        with open_archive(path) as again:
            return again.open(member)

    return _XmlSource(label, opener)


def detect(path: Path) -> bool:
    """True when ``path`` looks like a CVAT XML 1.1 export (reads the first 4 KB only).

    The root element must be ``<annotations>`` with ``<version>1.1</version>`` or a ``<meta>``
    child; for a zip archive, that of its ``annotations.xml``. Never raises: unreadable or
    non-CVAT files give False.
    """
    try:
        if is_archive(path):
            opener = _xml_source(path).opener
            if opener is None:
                return False
            with opener() as stream:
                head = stream.read(_SNIFF_BYTES)
        else:
            with open(path, "rb") as stream:
                head = stream.read(_SNIFF_BYTES)
    except (OSError, ValueError, InputError):
        return False
    root, rest = sniff_root(head)
    return root == "annotations" and bool(_VERSION_RE.search(rest) or _META_RE.search(rest))


def _read_image(
    elem: etree._Element, reader: ShapeReader, order: int
) -> tuple[ImageInfo, list[Shape], int]:
    """One ``<image>``: its ImageInfo, its shapes, and the next shape order."""
    file, line = reader.file, line_of(elem)
    name = elem.get("name") or ""
    if not name:
        raise FormatError("<image> without a name", file=file, line=line, where="<image>")
    where = f"<image> {name!r}"
    check_image_name(name, file=file, line=line, where=where)
    raw_id = elem.get("id")
    image_id = None if raw_id is None else reader.integer(elem, "id", where)
    width = parse_side(elem.get("width"), "image width", file=file, line=line, where=where)
    height = parse_side(elem.get("height"), "image height", file=file, line=line, where=where)
    subset = elem.get("subset") or None
    if subset is not None and (
        subset in (".", "..") or "/" in subset or "\\" in subset or "\x00" in subset
    ):
        raise UnsafeInputError(
            f"subset name {subset[:80]!r} is not a plain folder name", file=file, line=line,
            where=where,
        )  # fmt: skip
    info = ImageInfo(name, width, height, id=image_id, subset=subset)
    shapes: list[Shape] = []
    owner = f"image {name!r}"
    for child in elem:
        shape = reader.read(child, owner=owner, bounds=(width, height), order=order)
        if shape is not None:
            shapes.append(shape)
            order += 1
    return info, shapes, order


def _iter_images(
    path: Path, fingerprint: tuple[int, int], xml: _XmlSource
) -> Iterator[AnnotatedImage]:
    """Second, streaming pass over a CVAT-for-images file: one AnnotatedImage per <image>."""
    check_unchanged(path, fingerprint)
    reader = ShapeReader(xml.file, decode_masks=True)
    order = 0
    for elem in iter_root_children(xml.file, root_tag="annotations", opener=xml.opener):
        if elem.tag == "image":
            info, shapes, order = _read_image(elem, reader, order)
            yield AnnotatedImage(info, tuple(shapes))


def _iter_items(items: tuple[AnnotatedImage, ...]) -> Iterator[AnnotatedImage]:
    return iter(items)


class _FirstPass:
    """The checking pass: label map, images (or frames), warnings."""

    def __init__(self, path: Path, xml: _XmlSource) -> None:
        self.path = path
        self.xml = xml
        self.file = xml.file
        self.reader = ShapeReader(self.file, decode_masks=False)
        self.meta = CvatMeta()
        self.warnings: list[str] = []
        self.order = 0
        self.unknown_top: Counter[str] = Counter()
        self.images: list[ImageInfo] = []
        self.ids: set[tuple[str | None, int]] = set()
        self.names: set[tuple[str | None, str]] = set()
        self.video: VideoFrames | None = None

    def run(self) -> None:
        for elem in iter_root_children(self.file, root_tag="annotations", opener=self.xml.opener):
            tag = elem.tag
            if tag == "version":
                version = (elem.text or "").strip()
                if version != "1.1":
                    self.warnings.append(
                        f"{self.file}:{line_of(elem)}: CVAT format version {version[:20]!r} "
                        "is not 1.1; reading it as 1.1"
                    )
            elif tag == "meta":
                self.meta = parse_meta(elem, self.file)
            elif tag == "image":
                if self.video is not None:
                    raise self._mixed(elem)
                self._image(elem)
            elif tag in ("track", "tag"):
                if self.images:
                    raise self._mixed(elem)
                if self.video is None:
                    self.start_video(elem)
                video = cast(VideoFrames, self.video)
                if tag == "track":
                    video.track(elem)
                else:
                    video.tag(elem)
            else:
                self.unknown_top[str(tag)] += 1

    def start_video(self, elem: etree._Element | None) -> None:
        self.reader.decode_masks = True
        self.video = VideoFrames(self.meta, self.reader, elem=elem)

    def _mixed(self, elem: etree._Element) -> FormatError:
        return FormatError(
            "mixed export: <image> elements (CVAT for images) together with <track>/<tag> "
            "elements (CVAT for video); export the task in one of the two formats",
            file=self.file,
            line=line_of(elem),
            where=f"<{elem.tag}>",
        )

    def _image(self, elem: etree._Element) -> None:
        info, _, self.order = _read_image(elem, self.reader, self.order)
        where = f"<image> {info.name!r}"
        # Project exports number and name the images of each subset (task) on their own.
        group = info.subset or elem.get("task_id") or None
        within = (
            f" in subset {info.subset!r}" if info.subset else f" in task {group}" if group else ""
        )
        if info.id is not None:
            if (group, info.id) in self.ids:
                raise FormatError(
                    f"image id {info.id} is used twice{within}",
                    file=self.file,
                    line=line_of(elem),
                    where=where,
                )
            self.ids.add((group, info.id))
        key = (group, str(check_relative_name(info.name)))
        if key in self.names:
            raise FormatError(
                f"image name {info.name!r} is used twice{within}",
                file=self.file,
                line=line_of(elem),
                where=where,
            )
        self.names.add(key)
        self.images.append(info)

    def label_map(self) -> LabelMap:
        """Declared labels, then undeclared ones in order of first use (with a warning each)."""
        labels = list(self.meta.labels)
        declared = {(label.name, label.parent) for label in labels}
        for (name, parent), line in self.reader.label_uses.items():
            if (name, parent) in declared:
                continue
            what = f"label {name!r}" if parent is None else f"element label {name!r} of {parent!r}"
            self.warnings.append(
                f"{self.file}:{line}: {what} is not declared in <meta>; "
                "added to the label map (type 'any')"
            )
            labels.append(LabelSpec(name=name, parent=parent, declared=False))
        return LabelMap(tuple(labels))

    def skip_warnings(self) -> None:
        if self.reader.empty_labels:
            self.warnings.append(
                f"{self.file}: {self.reader.empty_labels} shape(s) with an empty label were skipped"
            )
        for kind, count in sorted(self.reader.unknown.items()):
            self.warnings.append(
                f"{self.file}: {count} <{kind}> element(s) skipped (not a supported shape)"
            )
        for what, count in sorted(self.reader.skipped.items()):
            self.warnings.append(f"{self.file}: {count} {what} skipped")
        for tag, count in sorted(self.unknown_top.items()):
            self.warnings.append(f"{self.file}: {count} unknown <{tag}> element(s) ignored")


def read_cvat(
    path: str | Path,
    *,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read a CVAT XML 1.1 export (images or video) into an :class:`AnnotationSet`.

    ``options`` is accepted for a uniform reader signature; CVAT exports carry everything
    (image sizes, labels), so none of it is used.

    Args:
        path: the ``annotations.xml`` file, or a zip archive holding it (a CVAT export).
        on_warning: called with each warning line (default: logged on this module's logger).

    Returns:
        An AnnotationSet with format ``"cvat-images"`` (streams the file on each iteration) or
        ``"cvat-video"`` (frames in frame order, ``stack`` set). See the module docstring.

    Raises:
        FormatError: malformed XML, wrong structure, unparseable numbers, mixed export.
        UnsafeInputError: DOCTYPE/entities, XInclude, image names escaping their folder.
        GeometryError: NaN/infinite coordinates, reversed boxes, bad RLE, bad image sizes.
        InputError: the file cannot be read.
    """
    path = Path(path)
    try:
        fingerprint = file_fingerprint(path)
    except OSError:
        fingerprint = (-1, -1)  # the first pass reports why the file cannot be read
    xml = _xml_source(path)
    first = _FirstPass(path, xml)
    first.run()
    meta = first.meta
    if (
        first.video is None
        and not first.images
        and meta.mode == "interpolation"
        and meta.original_size is not None
    ):
        first.start_video(None)
    labels = first.label_map()
    first.skip_warnings()
    warnings = tuple(first.warnings)
    emit = on_warning if on_warning is not None else logger.warning
    for message in warnings:
        emit(message)
    if first.video is not None:
        items = first.video.items()
        return AnnotationSet(
            source=path,
            format="cvat-video",
            labels=labels,
            images=tuple(item.image for item in items),
            load=partial(_iter_items, items),
            warnings=warnings,
            stack=first.video.stack(),
        )
    return AnnotationSet(
        source=path,
        format="cvat-images",
        labels=labels,
        images=tuple(first.images),
        load=partial(_iter_images, path, fingerprint, xml),
        warnings=warnings,
    )
