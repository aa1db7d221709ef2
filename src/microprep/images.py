"""Reading image files into numpy arrays, with their dtype kept.

What comes back (``H`` rows, ``W`` columns, pixel units):

* grayscale: ``(H, W)``; colour: ``(H, W, C)`` with ``C`` = 3 (RGB) or 4 (RGBA).
* the file's sample type: ``uint8`` for 8-bit files, ``uint16`` for 16-bit PNG and TIFF,
  ``float32`` / ``int32`` / ... for TIFFs that hold them. Nothing is rescaled.

Formats and conversions:

* TIFF (recognised by its signature, whatever the suffix) is read with :mod:`tifffile`: the first
  page only (a multi-page TIFF gives its first image; :func:`read_pages` reads every page of a
  slice stack), any sample type. Planar RGB
  (``(C, H, W)`` on disk) is returned channel-last.
* Everything else (PNG, JPEG, BMP, GIF, ...) is read with Pillow, first frame only:

  ============== =============================================================================
  Pillow mode    returned as
  ============== =============================================================================
  ``L``          ``(H, W)`` uint8
  ``I;16*``      ``(H, W)`` uint16 (16-bit grayscale PNG; big-endian variants made native)
  ``I``          ``(H, W)`` uint16 for PNG (a PNG holds at most 16 bits), int32 otherwise
  ``F``          ``(H, W)`` float32
  ``1``          ``(H, W)`` uint8, 0 and 255
  ``LA``         ``(H, W)`` uint8: the alpha channel is dropped
  ``P``, ``PA``  ``(H, W)`` uint8 when every palette entry is gray; otherwise ``(H, W, 3)``
                 RGB, or ``(H, W, 4)`` RGBA when the palette has transparency (or ``PA``)
  ``RGB``        ``(H, W, 3)`` uint8
  ``RGBA``       ``(H, W, 4)`` uint8
  others         (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ...) converted to ``(H, W, 3)`` RGB
  ============== =============================================================================

* 16-bit colour PNGs (RGB, RGBA, gray + alpha) are refused: Pillow would silently reduce them to
  8 bits per channel. Save such images as 16-bit TIFF instead.
* EXIF orientation tags are not applied: pixels come back in file order, as annotation tools
  that do not rotate images show them.
* Pillow's decompression-bomb limit applies to Pillow formats; TIFF has no such limit.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((4, 6), np.uint16)).save(folder / "a.png")
    >>> img = load_image(folder, "a.png", expected=(6, 4))
    >>> img.shape, img.dtype
    ((4, 6), dtype('uint16'))
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import ImageFileError
from microprep.paths import safe_join

logger = logging.getLogger(__name__)

_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour types that Pillow reads at 8 bits per channel even when the file holds 16.
_PNG_COLOUR_TYPES = {2: "RGB", 4: "gray + alpha", 6: "RGBA"}


def read_image(path: Path) -> NDArray[Any]:
    """Read one image file into ``(H, W)`` or ``(H, W, C)``, keeping its sample dtype.

    Args:
        path: the image file (TIFF, PNG, JPEG or any other format Pillow reads).

    Returns:
        The pixels, rows first; see the module docstring for dtypes and mode conversions.

    Raises:
        ImageFileError: the file is missing, unreadable, or in a layout that cannot be
            returned without losing data (16-bit colour PNG, TIFF pages with extra dimensions).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.tif"
        >>> tifffile.imwrite(p, np.ones((3, 5), np.float32))
        >>> read_image(p).dtype
        dtype('float32')
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
    except FileNotFoundError as exc:
        raise ImageFileError("file not found", file=path) from exc
    except OSError as exc:
        raise ImageFileError(f"cannot open the file: {exc.strerror or exc}", file=path) from exc
    if head[:4] in _TIFF_SIGNATURES:
        return _read_tiff(path, path)
    return _read_pillow(path, head, path)


def decode_image(data: bytes, *, file: str | Path) -> NDArray[Any]:
    """Decode an image file held in memory (a member of an archive), as :func:`read_image` does.

    ``file`` names the image in errors.

    Raises:
        ImageFileError: the bytes are not an image that can be returned without losing data.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buffer = io.BytesIO()
        >>> Image.new("L", (6, 4)).save(buffer, format="PNG")
        >>> decode_image(buffer.getvalue(), file="a.zip:images/a.png").shape
        (4, 6)
    """
    stream = io.BytesIO(data)
    if data[:4] in _TIFF_SIGNATURES:
        return _read_tiff(stream, file)
    return _read_pillow(stream, data[:32], file)


def load_image(root: Path, name: str, *, expected: tuple[int, int] | None = None) -> NDArray[Any]:
    """Read the image called ``name`` (as in the export) from the folder ``root``.

    Args:
        root: the images folder.
        name: the image name from the export, possibly with folders (``"grid 1/a b.png"``).
        expected: ``(width, height)`` in pixels from the export; checked against the file.

    Returns:
        The pixels as :func:`read_image` returns them.

    Raises:
        UnsafeInputError: ``name`` escapes ``root`` (absolute path, ``..``, outside symlink).
        ImageFileError: the file is missing or unreadable, or its size differs from
            ``expected``.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (6, 4)).save(folder / "c.png")
        >>> load_image(folder, "c.png", expected=(6, 4)).shape
        (4, 6, 3)
    """
    path = safe_join(Path(root), name)
    where = f"image {name!r}"
    if not path.exists():
        raise ImageFileError(
            f"image file not found (looked for {name!r} in {root})", file=path, where=where
        )
    try:
        pixels = read_image(path)
    except ImageFileError as exc:
        raise ImageFileError(exc.message, file=path, where=where) from exc
    if expected is not None:
        check_size(pixels, expected, file=path, where=where)
    return pixels


def check_size(
    pixels: NDArray[Any], expected: tuple[int, int], *, file: str | Path, where: str
) -> None:
    """Raise ImageFileError (naming ``file`` and ``where``) when the pixels' ``(width, height)``
    is not ``expected``."""
    width, height = int(pixels.shape[1]), int(pixels.shape[0])
    if (width, height) != (int(expected[0]), int(expected[1])):
        raise ImageFileError(
            f"the file is {width}x{height} pixels (width x height) but the annotations "
            f"say {expected[0]}x{expected[1]}; is it the right image?",
            file=file,
            where=where,
        )


def page_count(source: Path | BinaryIO, *, file: str | Path) -> int:
    """The number of pages of a TIFF (a slice stack has one per slice); 1 for other formats.

    Raises:
        ImageFileError: a TIFF that cannot be read.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "s.tif"
        >>> tifffile.imwrite(p, np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
        >>> page_count(p, file=p)
        3
    """
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return page_count(fh, file=file)
    head = source.read(4)
    source.seek(0)
    if head not in _TIFF_SIGNATURES:
        return 1
    try:
        with tifffile.TiffFile(source) as tif:
            return len(tif.pages)
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the TIFF: {type(exc).__name__}: {exc}", file=file
        ) from exc


def read_pages(source: Path | BinaryIO, *, file: str | Path) -> NDArray[Any]:
    """Every page of a TIFF slice stack as ``(Z, H, W)`` or ``(Z, H, W, C)`` (each page as
    :func:`read_image` reads the first); another format gives its image as one slice.

    Raises:
        ImageFileError: unreadable, or pages of different shapes or sample types.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "s.tif"
        >>> tifffile.imwrite(p, np.zeros((3, 4, 5), np.uint16), photometric="minisblack")
        >>> read_pages(p, file=p).shape
        (3, 4, 5)
    """
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return read_pages(fh, file=file)
    head = source.read(32)
    source.seek(0)
    if head[:4] not in _TIFF_SIGNATURES:
        return _read_pillow(source, head, file)[np.newaxis]
    try:
        with tifffile.TiffFile(source) as tif:
            planes = [_page_array(page, file, k) for k, page in enumerate(tif.pages)]
    except ImageFileError:
        raise
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the TIFF: {type(exc).__name__}: {exc}", file=file
        ) from exc
    if not planes:
        raise ImageFileError("the TIFF holds no image", file=file)
    odd = next((k for k, a in enumerate(planes) if a.shape != planes[0].shape), None)
    if odd is None:
        odd = next((k for k, a in enumerate(planes) if a.dtype != planes[0].dtype), None)
    if odd is not None:
        raise ImageFileError(
            f"page {odd} is {planes[odd].shape} {planes[odd].dtype}, page 0 "
            f"{planes[0].shape} {planes[0].dtype}: not a slice stack",
            file=file,
        )
    return np.stack(planes)


def _page_array(page: Any, path: str | Path, index: int = 0) -> NDArray[Any]:
    """One TIFF page, channel-last (``index`` names it in errors)."""
    arr = np.asarray(page.asarray())
    samples = int(getattr(page, "samplesperpixel", 1))
    planar_separate = int(getattr(page, "planarconfig", 1)) == 2
    if samples > 1 and planar_separate and arr.ndim == 3 and arr.shape[0] == samples:
        arr = np.moveaxis(arr, 0, -1)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != samples):
        which = "the first TIFF page" if index == 0 else f"TIFF page {index}"
        raise ImageFileError(f"{which} has shape {arr.shape}, not (H, W) or (H, W, C)", file=path)
    return np.ascontiguousarray(arr)


def _read_tiff(source: Path | BinaryIO, path: str | Path) -> NDArray[Any]:
    """First page of a TIFF, channel-last, any sample type (``path`` names it in errors)."""
    try:
        with tifffile.TiffFile(source) as tif:
            if not tif.pages:
                raise ImageFileError("the TIFF holds no image", file=path)
            if len(tif.pages) > 1:
                logger.debug("%s: %d pages, reading the first", path, len(tif.pages))
            return _page_array(tif.pages[0], path)
    except ImageFileError:
        raise
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the TIFF: {type(exc).__name__}: {exc}", file=path
        ) from exc


def _read_pillow(source: Path | BinaryIO, head: bytes, path: str | Path) -> NDArray[Any]:
    """First frame of a Pillow-readable file, converted as the module docstring says."""
    if head[:8] == _PNG_SIGNATURE and len(head) >= 26:
        bit_depth, colour_type = head[24], head[25]
        if bit_depth == 16 and colour_type in _PNG_COLOUR_TYPES:
            raise ImageFileError(
                f"16-bit {_PNG_COLOUR_TYPES[colour_type]} PNG: it cannot be read without "
                "reducing it to 8 bits per channel; save it as a 16-bit TIFF instead",
                file=path,
            )
    try:
        with Image.open(source) as img:
            img.load()
            return _pillow_to_array(img)
    except Image.DecompressionBombError as exc:
        raise ImageFileError(
            f"{exc}; save very large images as TIFF, which has no such limit", file=path
        ) from exc
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the image: {type(exc).__name__}: {exc}", file=path
        ) from exc


def _pillow_to_array(img: Image.Image) -> NDArray[Any]:
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        arr = np.asarray(img)
        return arr.astype(np.uint16) if img.format == "PNG" else arr.astype(np.int32)
    if mode in ("L", "F", "RGB", "RGBA"):
        return np.array(img)
    if mode in ("1", "LA"):
        return np.array(img.convert("L"))
    if mode in ("P", "PA"):
        return np.array(img.convert(_palette_target(img)))
    return np.array(img.convert("RGB"))


def _palette_target(img: Image.Image) -> str:
    """``L`` for a gray palette without transparency, else ``RGBA`` or ``RGB``."""
    if img.mode == "PA" or "transparency" in img.info:
        return "RGBA"
    palette = img.getpalette() or []
    rgb = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    gray = bool(rgb.size) and bool(
        np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2])
    )
    return "L" if gray else "RGB"
