"""Which image file belongs to which annotated image: folders, archives, subsets, stacks.

Readers give every image the name it has in the export; this module finds its pixels. It sits
below conversion, validation and the prechecks (all three use it) and above nothing but the file
helpers (:mod:`microprep.images`, :mod:`microprep.archive`, :mod:`microprep.paths`).

Where the images are (an :class:`ImageSource`):

* ``--images DIR``: the folder given (:class:`FolderImages`);
* otherwise, for CVAT exports, the layout CVAT writes (:func:`find_images`): the folder
  ``images/`` beside ``annotations.xml``, or the members under ``images/`` of an export archive
  (:class:`ArchiveImages`, read in place, never extracted).

Which file an image is (:func:`image_names`):

* by its name in the export, under the source (``grid 1/a.png``);
* project exports: CVAT writes the images of subset ``S`` under ``images/S/``; an image with a
  subset whose folder exists is looked up there (``Train/img0.jpg``), else by its name;
* stacks (frames of a CVAT-for-video export): frame ``f`` is the ``(f - start_frame) // step``-th
  image file of the source in natural order (``slice_2.png`` before ``slice_10.png``).

Each image also gets a name that is unique in the export (:func:`node_names`, the store's node
names): ``subset/name`` when the images come from two or more subsets (ids and names repeat
across the subsets of a project export), the file name for frames of a stack, else the name
itself.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from microprep.model import AnnotationSet, ImageInfo, LabelMap, AnnotatedImage
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "Train").mkdir()
    >>> Image.new("L", (4, 4)).save(root / "Train" / "a.png")
    >>> images = [ImageInfo("a.png", 4, 4, subset=s) for s in ("Train", "Validation")]
    >>> ds = AnnotationSet.from_items([AnnotatedImage(i, ()) for i in images], labels=LabelMap())
    >>> source = FolderImages(root)  # holds Train/a.png only
    >>> image_names(ds, source), node_names(ds, image_names(ds, source), source)
    (['Train/a.png', 'a.png'], ['Train/a.png', 'Validation/a.png'])
    >>> source.load("Train/a.png", expected=(4, 4)).shape
    (4, 4)
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from numpy.typing import NDArray

from microprep.archive import Archive, is_archive, open_archive
from microprep.errors import ImageFileError, PrepError
from microprep.images import check_size, decode_image, load_image, read_pages
from microprep.model import AnnotationSet, ImageInfo
from microprep.paths import check_relative_name, safe_join

__all__ = [
    "IMAGES_FOLDER",
    "IMAGE_SUFFIXES",
    "ArchiveImages",
    "FolderImages",
    "ImageSource",
    "as_source",
    "find_images",
    "image_files",
    "image_keys",
    "image_names",
    "natural_key",
    "node_names",
]

logger = logging.getLogger(__name__)

#: The folder of the images in CVAT's export layout (beside ``annotations.xml``).
IMAGES_FOLDER = "images"
#: Suffixes of the files counted as images (compared without case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def natural_key(name: str) -> list[object]:
    """Sort key that orders numbers by value: ``slice_2.png`` before ``slice_10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def image_files(folder: Path) -> list[str]:
    """Image files under ``folder`` (relative POSIX names), in natural order (2 before 10)."""
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(names, key=natural_key)


class ImageSource:
    """Where the image files are: a folder or the ``images/`` of an archive.

    ``label`` says which, for summaries and messages. Names are relative POSIX paths (as in the
    export); a name that escapes the source raises
    :class:`~microprep.errors.UnsafeInputError`. Use as a context manager.
    """

    label: str = ""

    def files(self) -> list[str]:
        """Every image file of the source, in natural order."""
        raise NotImplementedError

    def is_file(self, name: str) -> bool:
        """True when the source holds the file ``name``."""
        raise NotImplementedError

    def is_dir(self, name: str) -> bool:
        """True when the source holds a folder ``name`` (never raises)."""
        raise NotImplementedError

    def open(self, name: str) -> BinaryIO:
        """A seekable binary stream of the file ``name`` (headers are read from it)."""
        raise NotImplementedError

    def load(self, name: str, *, expected: tuple[int, int] | None = None) -> NDArray[Any]:
        """The pixels of ``name`` (see :func:`microprep.images.read_image`), its
        ``(width, height)`` checked against ``expected``.

        Raises:
            ImageFileError: missing, unreadable, or not of the expected size.
        """
        raise NotImplementedError

    def where(self, name: str) -> str:
        """How messages name the file ``name``."""
        raise NotImplementedError

    def load_pages(self, name: str, *, expected: tuple[int, int] | None = None) -> NDArray[Any]:
        """Every page of the TIFF slice stack ``name`` as ``(Z, H, W[, C])`` (see
        :func:`microprep.images.read_pages`), each page's ``(width, height)`` checked against
        ``expected``.

        Raises:
            ImageFileError: missing, unreadable, or not of the expected size.
        """
        where = f"image {name!r}"
        if not self.is_file(name):
            raise ImageFileError(
                f"image file not found (looked for {name!r} in {self.label})",
                file=self.where(name),
                where=where,
            )
        with self.open(name) as stream:
            pages = read_pages(stream, file=self.where(name))
        if expected is not None:
            check_size(pages[0], expected, file=self.where(name), where=where)
        return pages

    def close(self) -> None:
        """Release what the source holds open (an archive)."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FolderImages(ImageSource):
    """Image files in a folder (symbolic links out of it are refused, see ``safe_join``)."""

    def __init__(self, root: Path, *, label: str | None = None) -> None:
        self.root = Path(root)
        self.label = label if label is not None else str(self.root)

    def files(self) -> list[str]:
        return image_files(self.root)

    def is_file(self, name: str) -> bool:
        return safe_join(self.root, name).is_file()

    def is_dir(self, name: str) -> bool:
        try:
            return safe_join(self.root, name).is_dir()
        except PrepError:
            return False

    def open(self, name: str) -> BinaryIO:
        return safe_join(self.root, name).open("rb")

    def load(self, name: str, *, expected: tuple[int, int] | None = None) -> NDArray[Any]:
        return load_image(self.root, name, expected=expected)

    def where(self, name: str) -> str:
        return str(self.root / name)


class ArchiveImages(ImageSource):
    """Image files under ``prefix`` (``images/``) of an open, checked archive, read in place."""

    def __init__(self, archive: Archive, prefix: str) -> None:
        self.archive = archive
        self.prefix = prefix
        self.label = archive.label(prefix)

    def _member(self, name: str) -> str:
        return self.prefix + check_relative_name(name).as_posix()

    def files(self) -> list[str]:
        names = [
            n[len(self.prefix) :]
            for n in self.archive.names(self.prefix)
            if Path(n).suffix.lower() in IMAGE_SUFFIXES
        ]
        return sorted(names, key=natural_key)

    def is_file(self, name: str) -> bool:
        return self.archive.is_file(self._member(name))

    def is_dir(self, name: str) -> bool:
        try:
            return self.archive.has_dir(self._member(name).rstrip("/") + "/")
        except PrepError:
            return False

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self.archive.read(self._member(name)))

    def load(self, name: str, *, expected: tuple[int, int] | None = None) -> NDArray[Any]:
        member = self._member(name)
        where = f"image {name!r}"
        if not self.archive.is_file(member):
            raise ImageFileError(
                f"image file not found (looked for {name!r} in {self.label})",
                file=self.archive.label(member),
                where=where,
            )
        try:
            pixels = decode_image(self.archive.read(member), file=self.archive.label(member))
        except ImageFileError as exc:
            raise ImageFileError(exc.message, file=exc.file, where=where) from exc
        if expected is not None:
            check_size(pixels, expected, file=self.archive.label(member), where=where)
        return pixels

    def where(self, name: str) -> str:
        return self.archive.label(self.prefix + name)

    def close(self) -> None:
        self.archive.close()


def as_source(images: Path | ImageSource | None) -> ImageSource | None:
    """An :class:`ImageSource` for a folder (or the source itself, or None)."""
    if images is None or isinstance(images, ImageSource):
        return images
    return FolderImages(Path(images))


def find_images(export: Path) -> ImageSource | None:
    """The images of a CVAT export laid out as CVAT writes it, or None when there are none.

    ``images/`` beside the export file, or the ``images/`` folder of an export archive (beside
    its ``annotations.xml``). The caller closes the source.

    Raises:
        FormatError, UnsafeInputError: the archive is damaged or unsafe.
    """
    export = Path(export)
    if is_archive(export):
        archive = open_archive(export)
        prefix = archive.base + IMAGES_FOLDER + "/"
        if archive.has_dir(prefix):
            return ArchiveImages(archive, prefix)
        archive.close()
        return None
    folder = export.parent / IMAGES_FOLDER
    if folder.is_dir():
        return FolderImages(folder)
    return None


def image_keys(images: Sequence[ImageInfo]) -> list[str]:
    """A name per image, unique within the export: ``subset/name`` when the images come from
    two or more subsets (a CVAT project export numbers and names the images of each subset on
    its own), else the name; the slices of one stack file (images of one name with frame
    numbers, as label stacks give) add their frame, ``name[z]``.

    Example:
        >>> image_keys([ImageInfo("a.png", 4, 4, subset=s) for s in ("Train", "Test")])
        ['Train/a.png', 'Test/a.png']
        >>> image_keys([ImageInfo("a.png", 4, 4, subset="default")])
        ['a.png']
        >>> image_keys([ImageInfo("s.tif", 4, 4, frame=z) for z in (0, 1)])
        ['s.tif[0]', 's.tif[1]']
    """
    keys = _file_keys(images)
    repeated = {key for key, n in Counter(keys).items() if n > 1}
    return [
        f"{key}[{image.frame}]" if key in repeated and image.frame is not None else key
        for key, image in zip(keys, images, strict=True)
    ]


def _file_keys(images: Sequence[ImageInfo]) -> list[str]:
    """``subset/name`` when the images come from two or more subsets, else the name."""
    if len({image.subset for image in images if image.subset}) < 2:
        return [image.name for image in images]
    return [f"{image.subset}/{image.name}" if image.subset else image.name for image in images]


def image_names(annotations: AnnotationSet, source: ImageSource | None) -> list[str]:
    """The file name of every image of ``annotations`` in ``source``, in order.

    See the module docstring: the name in the export; ``subset/name`` when the source has a
    folder for the image's subset (CVAT project exports); frames of a stack take the name of the
    stack's files in natural order. Without a source, the names in the export.

    Raises:
        ImageFileError: a frame of a stack has no file (the source holds too few).
    """
    stack = annotations.stack
    if source is None:
        return [image.name for image in annotations.images]
    if stack is None:
        subsets = {image.subset for image in annotations.images if image.subset}
        layout = {subset: source.is_dir(subset) for subset in subsets}
        if any(layout.values()):
            logger.debug("%s: images per subset for %s", source.label, sorted(layout))
        return [
            f"{image.subset}/{image.name}" if image.subset and layout[image.subset] else image.name
            for image in annotations.images
        ]
    files = source.files()
    names = []
    for image in annotations.images:
        frame = image.frame if image.frame is not None else 0
        index = stack.relative(frame)
        if not 0 <= index < len(files):
            raise ImageFileError(
                f"frame {frame} is image #{index} of the stack, but {source.label} holds "
                f"{len(files)} image files",
                file=annotations.source,
            )
        names.append(files[index])
    return names


def node_names(
    annotations: AnnotationSet, files: list[str], source: ImageSource | None
) -> list[str]:
    """A name per image, unique within the export (see :func:`image_keys`), except that the
    slices of one stack file share its name (they become one node); frames of a stack export
    with a source are named after their files."""
    if annotations.stack is not None and source is not None:
        return list(files)
    return _file_keys(annotations.images)
