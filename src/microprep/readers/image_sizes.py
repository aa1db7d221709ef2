"""Image sizes from the headers of image files, and the largest image side a reader accepts.

Formats whose exports store no image size (VIA, some Labelbox exports) read it from the image
files in ``ReadOptions.images``; only the header is read, never the pixels.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.new("L", (6, 4)).save(folder / "a.png")
    >>> header_size(folder, "a.png")
    (6, 4)
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Final

import tifffile
from PIL import Image

from microprep.errors import ImageFileError
from microprep.paths import safe_join

__all__ = ["MAX_IMAGE_SIDE", "header_size"]

#: Largest image width or height accepted, in pixels.
MAX_IMAGE_SIDE: Final = 65536

_PNG: Final = b"\x89PNG\r\n\x1a\n"
_TIFF: Final = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def header_size(root: Path, name: str, *, png_ihdr: bool = False) -> tuple[int, int]:
    """``(width, height)`` of the image file ``name`` in the folder ``root``, from its header only.

    TIFF sizes are read from the first page's tags, other formats with Pillow (which reads the
    header lazily and checks the chunks before the pixel data). With ``png_ihdr``, a PNG's size
    is taken from its IHDR chunk directly, without opening it in Pillow.

    Raises:
        UnsafeInputError: ``name`` escapes ``root``.
        ImageFileError: the file is missing or its header cannot be read (``where`` names the
            image).
    """
    path = safe_join(root, name)
    where = f"image {name!r}"
    if not path.is_file():
        raise ImageFileError(
            f"image file not found (looked for {name!r} in {root})", file=path, where=where
        )
    try:
        with path.open("rb") as stream:
            head = stream.read(32)
        if png_ihdr and head[:8] == _PNG and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
        elif head[:4] in _TIFF:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                width, height = int(page.imagewidth), int(page.imagelength)
        else:
            with Image.open(path) as img:
                width, height = img.size
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the image size: {type(exc).__name__}: {exc}", file=path, where=where
        ) from exc
    return int(width), int(height)
