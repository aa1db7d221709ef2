"""Reader for folders of label images: class-index maps or instance-id maps, one per image.

``prep convert LABELS --images IMAGES`` pairs every label file (PNG or TIFF, one channel) under
``LABELS`` with the image of the same relative name under ``IMAGES``: ``a.png`` is the label of
``a.tif``, and so are ``a_masks.tif``, ``a_mask.png``, ``a_label.png``, ``a_labels.png`` (Cellpose,
StarDist and other tools' habits); ``ReadOptions.label_suffix`` (``--label-suffix``) fixes the
one suffix. Rules (docs/label-folders.md):

* **Kind.** ``class``: pixel value ``v`` is class ``v`` (0 background). ``instance``: each non-zero
  value is one object. ``ReadOptions.label_kind`` says which; left out, the folder is ``class``
  when class names are known (``--classes``, or a ``classes.txt`` in the folder or beside it,
  as ``prep convert --to masks`` writes), ``instance`` when ``--instance-class`` is given, and
  otherwise an error asking for ``--label-kind``.
* **Classes.** ``class`` folders: class ``v`` is the ``v``-th name of the class list, else
  ``class_v``; a value past the list is an error naming the file. ``instance`` folders: every
  object gets ``ReadOptions.instance_class`` (default ``object``).
* **Shapes.** Every connected region of one class (8-connected), or every instance, becomes a
  ``mask`` shape whose bitmap is cropped to its box, so everything downstream (class maps,
  instances, exports, checks) works unchanged.
* **Stacks.** A multi-page TIFF label file of ``Z`` pages labels a TIFF stack of as many pages
  (else an error naming both): it gives ``Z`` images of that name with ``frame`` ``0..Z-1``
  (``prep convert`` makes them one ``(Z, H, W)`` node). Each instance id, or each 26-connected
  region of one class, is one 3D object: its slices are ``mask`` shapes sharing a ``track_id``.
* Images without a label file are left out with one warning; label files without an image are
  an error.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "img").mkdir(); (root / "lab").mkdir()
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "img" / "a.png")
    >>> lab = np.zeros((4, 4), np.uint8); lab[1:3, 1:3] = 2
    >>> Image.fromarray(lab).save(root / "lab" / "a_masks.png")
    >>> opts = ReadOptions(images=root / "img", classes=("grain", "pore"))
    >>> ds = read_label_folder(root / "lab", options=opts)
    >>> [(s.kind, s.label, s.points.tolist()) for item in ds for s in item.shapes]
    [('mask', 'pore', [[1.0, 1.0], [3.0, 3.0]])]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from microprep.classes import BACKGROUND
from microprep.errors import ImageFileError, InputError, UsageError
from microprep.imagefiles import image_files
from microprep.images import page_count, read_image, read_pages
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.readers.options import ReadOptions

__all__ = ["LABEL_SUFFIXES", "detect", "read_label_folder"]

logger = logging.getLogger(__name__)

#: Suffixes tried, in order, when ``--label-suffix`` is not given.
LABEL_SUFFIXES = ("", "_masks", "_mask", "_labels", "_label")
_LABEL_EXTENSIONS = (".png", ".tif", ".tiff")
_CLASSES_FILE = "classes.txt"


def detect(path: Path) -> bool:
    """True when ``path`` is a folder holding at least one PNG or TIFF (never raises)."""
    try:
        return path.is_dir() and any(
            p.suffix.lower() in _LABEL_EXTENSIONS for p in path.rglob("*") if p.is_file()
        )
    except OSError:
        return False


def _key(name: str, suffixes: tuple[str, ...]) -> list[str]:
    """The image keys (relative name without extension) a label file name may stand for."""
    path = PurePosixPath(name)
    stem = path.with_suffix("").as_posix()
    return [stem[: len(stem) - len(s)] for s in suffixes if s == "" or stem.endswith(s)]


def _classes_beside(folder: Path) -> tuple[str, ...] | None:
    from microprep.classes import read_classes_file

    for candidate in (folder / _CLASSES_FILE, folder.parent / _CLASSES_FILE):
        if candidate.is_file():
            return read_classes_file(candidate)
    return None


def _read_labels(path: Path) -> NDArray[Any]:
    """One label image as a 2D integer array (palette PNGs give their indices), or a multi-page
    TIFF as a ``(Z, H, W)`` stack of them."""
    if path.suffix.lower() in (".tif", ".tiff"):
        if page_count(path, file=path) > 1:
            arr = read_pages(path, file=path)
            if arr.ndim != 3:
                raise ImageFileError(
                    f"a label stack has one channel; its pages have shape {arr.shape[1:]}",
                    file=path,
                )
        else:
            arr = read_image(path)
    else:
        try:
            with Image.open(path) as img:
                arr = np.array(img) if img.mode == "P" else read_image(path)
        except ImageFileError:
            raise
        except Exception as exc:
            raise ImageFileError(f"cannot read the image: {exc}", file=path) from exc
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and path.suffix.lower() not in (".tif", ".tiff")):
        raise ImageFileError(
            f"a label image has one channel; this one has shape {arr.shape}", file=path
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise ImageFileError(f"label values must be integers, not {arr.dtype}", file=path)
    if arr.size and int(arr.min()) < 0:
        raise ImageFileError(f"negative label value {int(arr.min())}", file=path)
    return arr


Box = tuple[slice, ...]


def _regions(labels: NDArray[Any], instance: bool) -> Iterator[tuple[int, Box, NDArray[Any]]]:
    """``(value, box, bitmap)`` per instance, or per connected region of each class (8-connected
    in 2D, 26-connected in a stack); ``box`` holds a slice per axis, ``bitmap`` its pixels."""
    if instance:
        slices = ndimage.find_objects(labels)
        for value, box in enumerate(slices, start=1):
            if box is not None:
                yield value, box, labels[box] == value
        return
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for value in np.unique(labels):
        if value == 0:
            continue
        parts, _ = ndimage.label(labels == value, structure=structure)
        for k, box in enumerate(ndimage.find_objects(parts), start=1):
            if box is not None:
                yield int(value), box, parts[box] == k


def _mask_shape(name: str, top: int, left: int, bitmap: NDArray[Any], **extra: Any) -> Shape | None:
    """A ``mask`` shape of ``bitmap`` at ``(top, left)``, cropped to its pixels (None if empty)."""
    rows = np.flatnonzero(bitmap.any(axis=1))
    cols = np.flatnonzero(bitmap.any(axis=0))
    if not rows.size:
        return None
    bitmap = bitmap[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    top, left = top + int(rows[0]), left + int(cols[0])
    h, w = bitmap.shape
    points = np.array([[left, top], [left + w, top + h]], dtype=np.float64)
    return Shape(kind="mask", label=name, points=points, bitmap=bitmap, **extra)


def _check_pages(label: Path, image: Path, depth: int) -> None:
    """A label stack's image must be a stack of as many pages."""
    pages = page_count(image, file=image)
    if pages != depth:
        raise ImageFileError(
            f"a label stack of {depth} slices, but its image {image} has {pages} page(s)",
            file=label,
        )


def _pairs(
    folder: Path, images: Path, suffix: str | None, class_suffix: str | None = None
) -> tuple[list[tuple[str, str]], int]:
    """``(image name, label name)`` pairs in image order, and the count of unlabelled images
    (class maps of ``class_suffix`` are not label files)."""
    names = image_files(images)
    by_key = {PurePosixPath(n).with_suffix("").as_posix(): n for n in names}
    suffixes = (suffix,) if suffix is not None else LABEL_SUFFIXES
    found: dict[str, str] = {}
    for label in image_files(folder):
        path = PurePosixPath(label)
        if path.suffix.lower() not in _LABEL_EXTENSIONS:
            continue
        if class_suffix and path.with_suffix("").as_posix().endswith(class_suffix):
            continue
        keys = [k for k in _key(label, suffixes) if k in by_key]
        if not keys:
            raise InputError(
                f"no image in {images} for this label file (tried the suffixes "
                f"{', '.join(repr(s) for s in suffixes)}; see --label-suffix)",
                file=folder / label,
            )
        image = by_key[keys[0]]
        if image in found:
            raise InputError(
                f"two label files for the image {image!r}: {found[image]!r} and {label!r}",
                file=folder / label,
            )
        found[image] = label
    pairs = [(name, found[name]) for name in names if name in found]
    return pairs, len(names) - len(pairs)


def _class_map_of(folder: Path, image: str, suffix: str, shape: tuple[int, ...]) -> NDArray[Any]:
    """The class-index image beside an instance image (``<image stem><suffix>.png|.tif``)."""
    stem = PurePosixPath(image).with_suffix("").as_posix() + suffix
    for extension in _LABEL_EXTENSIONS:
        candidate = folder / (stem + extension)
        if candidate.is_file():
            classes = _read_labels(candidate)
            if classes.shape != shape:
                raise ImageFileError(
                    f"class map of shape {classes.shape}, its instance image has {shape}",
                    file=candidate,
                )
            return classes
    raise InputError(
        f"no class map {stem}.png (or .tif) beside the instance image of {image!r} "
        "(see --class-suffix)",
        file=folder,
    )


def _majority(classes: NDArray[Any], box: Box, bitmap: NDArray[Any]) -> int:
    """The most frequent non-zero class under ``bitmap`` (0 when all its pixels are 0)."""
    values = classes[box][bitmap]
    values = values[values > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def read_label_folder(
    path: str | Path,
    *,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read a folder of label images (see the module rules) into an AnnotationSet (format
    ``label-folder``), images in natural order of their names.

    Raises:
        UsageError: no ``images`` folder, an unknown ``label_kind``, or a kind that cannot be
            told (see the rules).
        InputError: a label file without an image, two for one image.
        ImageFileError: unreadable label files, colour or float ones, negative values, a class
            value past the class names, a label stack whose image has another page count.
    """
    path = Path(path)
    options = options or ReadOptions()
    if options.images is None:
        raise UsageError(f"{path}: a folder of label images needs --images (the image files)")
    kind = options.label_kind
    if kind not in (None, "class", "instance"):
        raise UsageError(f"--label-kind must be class or instance, not {kind!r}")
    names = options.classes if options.classes is not None else _classes_beside(path)
    if kind is None and options.class_suffix is not None:
        kind = "instance"
    if kind is None:
        if names is not None:
            kind = "class"
        elif options.instance_class is not None:
            kind = "instance"
        else:
            raise UsageError(
                f"{path}: say --label-kind class or instance (or give --classes for class maps, "
                "--instance-class for instance maps)"
            )
    instance = kind == "instance"
    class_suffix = options.class_suffix if instance else None
    if options.class_suffix is not None and not instance:
        raise UsageError(
            "--class-suffix gives the classes of instance images: --label-kind instance"
        )
    pairs, unlabelled = _pairs(path, options.images, options.label_suffix, class_suffix)
    warnings: list[str] = []
    if unlabelled:
        warnings.append(f"{unlabelled} image(s) in {options.images} have no label file: left out")
    for line in warnings:
        (on_warning or logger.warning)(line)
    items: list[AnnotatedImage] = []
    top_value = 0
    order = 0
    tracks = 0  # track ids of the 3D objects of label stacks, unique over the folder
    for image, label in pairs:
        file = path / label
        labels = _read_labels(file)
        stack = labels.ndim == 3
        if stack:
            _check_pages(file, options.images / image, labels.shape[0])
        height, width = labels.shape[-2:]
        classes_of = (
            None if class_suffix is None else _class_map_of(path, image, class_suffix, labels.shape)
        )
        slices: list[list[Shape]] = [[] for _ in range(labels.shape[0] if stack else 1)]
        for value, box, bitmap in _regions(labels, instance):
            cls = value if not instance else 0
            if classes_of is not None:
                cls = _majority(classes_of, box, bitmap)
                if cls == 0 and options.instance_class is None:
                    raise ImageFileError(
                        f"instance {value} lies on class 0 (background) of its class map only "
                        "(--instance-class names a class for such instances)",
                        file=file,
                    )
            if cls and names is not None and cls > len(names):
                raise ImageFileError(
                    f"class value {cls} but only {len(names)} class names are given", file=file
                )
            top_value = max(top_value, cls)
            name = (
                (options.instance_class or "object")
                if cls == 0
                else (names[cls - 1] if names is not None else f"class_{cls}")
            )
            if not stack:
                shape = _mask_shape(name, box[0].start, box[1].start, bitmap)
                slices[0] += [] if shape is None else [replace(shape, order=order)]
                order += 1
                continue
            tracks += 1
            for dz in range(bitmap.shape[0]):
                z = box[0].start + dz
                extra = {"frame": z, "track_id": tracks}
                part = _mask_shape(name, box[1].start, box[2].start, bitmap[dz], **extra)
                if part is not None:
                    slices[z].append(part)
        if not stack:
            items.append(
                AnnotatedImage(ImageInfo(image, int(width), int(height)), tuple(slices[0]))
            )
            continue
        for z, shapes in enumerate(slices):
            numbered = tuple(replace(s, order=order + k) for k, s in enumerate(shapes))
            order += len(shapes)
            info = ImageInfo(image, int(width), int(height), frame=z)
            items.append(AnnotatedImage(info, numbered))
    if instance and class_suffix is None:
        classes: tuple[str, ...] = (options.instance_class or "object",)
    elif names is not None:
        classes = tuple(n for n in names if n != BACKGROUND)
    else:
        classes = tuple(f"class_{v}" for v in range(1, top_value + 1))
    fallback = options.instance_class
    if (
        class_suffix is not None
        and fallback not in (None, *classes)
        and any(s.label == fallback for item in items for s in item.shapes)
    ):
        classes = (*classes, str(fallback))
    labelmap = LabelMap(tuple(LabelSpec(name) for name in classes))
    return AnnotationSet.from_items(
        items, labels=labelmap, source=path, format="label-folder", warnings=warnings
    )
