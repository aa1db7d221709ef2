"""Image sizes for VIA exports, which store none (VIA's ``size`` is the file size in bytes).

They come from ``ReadOptions.size`` (one size for every image) or from the headers of the image
files in ``ReadOptions.images`` (see :mod:`microprep.readers.image_sizes`); without either, a
UsageError.

Example:
    >>> from microprep.readers.via.regions import ViaImage
    >>> image_sizes([ViaImage("a.png"), ViaImage("b.png")], ReadOptions(size=(16, 8)))
    [(16, 8), (16, 8)]
"""

from __future__ import annotations

from pathlib import Path

from microprep.errors import ImageFileError, UsageError
from microprep.paths import safe_join
from microprep.readers.image_sizes import header_size
from microprep.readers.jsonsafe import json_text
from microprep.readers.options import ReadOptions
from microprep.readers.via.regions import ViaImage


def image_size(root: Path, name: str) -> tuple[int, int]:
    """``(width, height)`` of the image file ``name`` in ``root``, from its header only.

    PNG sizes are read from the IHDR chunk, TIFF sizes from the first page's tags, other formats
    with Pillow (which reads the header lazily).

    Raises:
        UnsafeInputError: ``name`` escapes ``root``.
        ImageFileError: the file is missing or unreadable, or its size is empty.
    """
    width, height = header_size(root, name, png_ihdr=True)
    if width <= 0 or height <= 0:
        raise ImageFileError(
            f"image size {width}x{height} is empty",
            file=safe_join(root, name),
            where=f"image {json_text(name, 80)}",
        )
    return width, height


def image_sizes(images: list[ViaImage], options: ReadOptions) -> list[tuple[int, int]]:
    """``(width, height)`` of each image, from ``options.size`` or ``options.images``.

    Raises:
        UsageError: neither is given (and there are images), the size is not two positive
            integers, or the images folder does not exist.
        UnsafeInputError, ImageFileError: as :func:`image_size`.
    """
    if not images:
        return []
    if options.size is not None:
        width, height = options.size
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise UsageError(f"image size {width}x{height} must be two positive integers")
        return [(width, height)] * len(images)
    if options.images is not None:
        root = Path(options.images)
        if not root.is_dir():
            raise UsageError(f"images folder {root} does not exist")
        return [image_size(root, image.name) for image in images]
    raise UsageError("VIA exports store no image size: pass --images DIR or --size WxH")
