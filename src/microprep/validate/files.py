"""Checks of the export as a whole: labels, image names, image files and content.

=========================== ======== ========================================================
code                        severity meaning
=========================== ======== ========================================================
label-not-in-map            error    a shape's label is not in the label map at all
undeclared-label            warning  a label used by shapes but not declared in the export
unused-label                info     a declared label that no shape uses
duplicate-image-name        error    two images of the export have the same name
identical-shapes            warning  an image carries exactly the shapes of an earlier one
images-without-shapes       info     images with no shape (one finding, counted)
missing-image-file          error    the images (``--images``, or found) have no file for it
image-size-mismatch         error    the export's size differs from the file's
unreadable-image-file       error    the file's header cannot be read
unsafe-image-name           error    the image name escapes the image folder
image-files-mismatch        error    a stack's frames do not match the files of the folder
=========================== ======== ========================================================

Only the image header is read (Pillow's lazy ``Image.open(...).size``, tifffile's first page
tags for TIFF), never the pixels.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.new("L", (6, 4)).save(folder / "a.png")
    >>> read_size(folder / "a.png")
    (6, 4)
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile
from PIL import Image

from microprep.errors import ImageFileError, PrepError
from microprep.imagefiles import ImageSource, image_names
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap
from microprep.validate.report import Finding

logger = logging.getLogger(__name__)

_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Images without shapes named in the ``images-without-shapes`` message.
_NAMES_SHOWN = 5


def read_size(path: Path | BinaryIO) -> tuple[int, int]:
    """``(width, height)`` of an image file (or a seekable stream of one) from its header only.

    Raises:
        OSError: the file cannot be opened or its header is not an image header.
    """
    if isinstance(path, Path):
        with path.open("rb") as fh:
            return read_size(fh)
    head = path.read(4)
    path.seek(0)
    if head in _TIFF_SIGNATURES:
        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                return int(page.imagewidth), int(page.imagelength)
        except (ValueError, IndexError, tifffile.TiffFileError) as exc:
            raise OSError(str(exc)) from exc
    with Image.open(path) as img:
        return int(img.size[0]), int(img.size[1])


def file_names(
    annotations: AnnotationSet, folder: ImageSource
) -> tuple[list[str] | None, list[Finding]]:
    """The file name of every image, as ``prep convert`` maps them (see
    :func:`microprep.imagefiles.image_names`); None and an ``image-files-mismatch`` error when a
    frame has no file (the files are then not checked one by one)."""
    try:
        return image_names(annotations, folder), []
    except ImageFileError as exc:
        return None, [Finding("error", "image-files-mismatch", exc.message)]


def check_file(
    image: ImageInfo, folder: ImageSource, file_name: str, name: str | None = None
) -> tuple[bool | None, int | None, int | None, Finding | None]:
    """Look for the image's file: ``(exists, file_width, file_height, finding or None)``.

    ``name`` names the image in findings (default: its name in the export).
    """
    name = image.name if name is None else name
    try:
        exists = folder.is_file(file_name)
    except PrepError as exc:
        return None, None, None, Finding("error", "unsafe-image-name", str(exc), name)
    if not exists:
        return False, None, None, Finding(
            "error", "missing-image-file", f"no file {file_name!r} in {folder.label}", name,
            details={"file": file_name},
        )  # fmt: skip
    try:
        with folder.open(file_name) as stream:
            width, height = read_size(stream)
    except (OSError, ValueError, PrepError, Image.DecompressionBombError) as exc:
        return True, None, None, Finding(
            "error", "unreadable-image-file", f"cannot read the header of {file_name!r}: {exc}",
            name, details={"file": file_name},
        )  # fmt: skip
    if (width, height) != (image.width, image.height):
        return True, width, height, Finding(
            "error", "image-size-mismatch",
            f"the export says {image.width}x{image.height}, the file {file_name!r} is "
            f"{width}x{height}",
            name,
            details={"export": [image.width, image.height], "file": [width, height]},
        )  # fmt: skip
    return True, width, height, None


def shapes_digest(item: AnnotatedImage) -> str | None:
    """A digest of the image's shapes (label, kind, points rounded to 1e-3 px, rotation, mask
    pixels), in order; None for an image without shapes."""
    if not item.shapes:
        return None
    h = hashlib.blake2b(digest_size=16)
    for s in item.shapes:
        h.update(f"{s.label}\x00{s.kind}\x00{round(s.rotation, 3)}\x00".encode())
        h.update(np.round(s.points, 3).tobytes())
        if s.bitmap is not None:
            h.update(np.packbits(s.bitmap).tobytes())
    return h.hexdigest()


def export_findings(
    names: Sequence[str], digests: Sequence[str | None], n_shapes: Sequence[int], stack: bool
) -> list[Finding]:
    """``duplicate-image-name``, ``identical-shapes`` (not for stacks, whose still frames are
    alike by nature) and ``images-without-shapes``."""
    out: list[Finding] = []
    counts = Counter(names)
    for name, n in counts.items():
        if n > 1:
            out.append(
                Finding(
                    "error", "duplicate-image-name", f"{n} images are named {name!r}", name,
                    details={"count": n},
                )
            )  # fmt: skip
    if not stack:
        first: dict[str, str] = {}
        for name, digest, n in zip(names, digests, n_shapes, strict=True):
            if digest is None:
                continue
            if digest in first and first[digest] != name:
                out.append(
                    Finding(
                        "warning", "identical-shapes",
                        f"carries the same {n} shape(s) as image {first[digest]!r}", name,
                        details={"same_as": first[digest], "shapes": n},
                    )
                )  # fmt: skip
            first.setdefault(digest, name)
    empty = [name for name, n in zip(names, n_shapes, strict=True) if n == 0]
    if empty:
        shown = ", ".join(repr(n) for n in empty[:_NAMES_SHOWN])
        more = f" and {len(empty) - _NAMES_SHOWN} more" if len(empty) > _NAMES_SHOWN else ""
        out.append(
            Finding(
                "info", "images-without-shapes",
                f"{len(empty)} image(s) have no shapes: {shown}{more}",
                details={"count": len(empty), "images": empty[:100]},
            )
        )  # fmt: skip
    return out


def label_findings(labels: LabelMap, used: Counter[str]) -> list[Finding]:
    """Label checks: ``label-not-in-map``, ``undeclared-label``, ``unused-label``.

    Args:
        labels: the export's label map.
        used: shape count per label (skeleton elements included).
    """
    out: list[Finding] = []
    for name, n in sorted(used.items()):
        spec = labels.get(name)
        if spec is None:
            out.append(
                Finding(
                    "error", "label-not-in-map",
                    f"label {name!r} is used by {n} shape(s) but is not in the label map",
                    label=name, details={"shapes": n},
                )
            )  # fmt: skip
        elif not spec.declared:
            out.append(
                Finding(
                    "warning", "undeclared-label",
                    f"label {name!r} is used by {n} shape(s) but not declared in the export",
                    label=name, details={"shapes": n},
                )
            )  # fmt: skip
    for spec in labels.labels:
        if spec.declared and used[spec.name] == 0:
            out.append(
                Finding(
                    "info", "unused-label", f"label {spec.name!r} is declared but never used",
                    label=spec.name,
                )
            )  # fmt: skip
    return out
