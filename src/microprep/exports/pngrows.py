"""A grayscale PNG written row by row: for class maps larger than the memory budget.

Pillow encodes a PNG from a whole image only; :class:`PngRows` writes the signature and
``IHDR``, then compresses each band of rows as it comes (filter type 0 per row, zlib at
:data:`~microprep.exports.masks.PNG_COMPRESS_LEVEL` with the RLE strategy) into ``IDAT``
chunks, and ``IEND`` on :meth:`~PngRows.close`. 8-bit (``uint8``) or 16-bit (``uint16``,
big-endian as PNG stores it) grayscale; any PNG reader (Pillow included) decodes it.

Example:
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> png = PngRows(buf, width=3, height=2, dtype=np.uint8)
    >>> png.write(np.array([[0, 1, 2]], np.uint8)); png.write(np.array([[3, 4, 5]], np.uint8))
    >>> png.close()
    >>> np.asarray(Image.open(buf)).tolist()
    [[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

__all__ = ["PngRows"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Compressed bytes gathered before an ``IDAT`` chunk is written.
_IDAT_BYTES = 1 << 20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class PngRows:
    """Writes a ``height`` x ``width`` grayscale PNG to ``out`` (an open binary file)."""

    def __init__(
        self, out: BinaryIO, *, width: int, height: int, dtype: type[np.unsignedinteger]
    ) -> None:
        if np.dtype(dtype) not in (np.dtype(np.uint8), np.dtype(np.uint16)):
            raise ValueError(f"PNG rows are uint8 or uint16, not {np.dtype(dtype)}")
        self.out = out
        self.width, self.height = width, height
        self.dtype = np.dtype(">u2") if np.dtype(dtype) == np.uint16 else np.dtype(np.uint8)
        self.rows = 0
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        self._pending: list[bytes] = []
        self._size = 0
        depth = 16 if self.dtype.itemsize == 2 else 8
        out.write(_SIGNATURE)
        out.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)))

    def write(self, rows: NDArray[np.unsignedinteger]) -> None:
        """Append ``rows`` ``(n, width)``."""
        if rows.ndim != 2 or rows.shape[1] != self.width or self.rows + len(rows) > self.height:
            raise ValueError(f"rows of shape {rows.shape} do not fit a {self.width}-wide PNG")
        raw = np.zeros((len(rows), 1 + self.width * self.dtype.itemsize), dtype=np.uint8)
        raw[:, 1:] = (
            np.ascontiguousarray(rows, dtype=self.dtype).view(np.uint8).reshape(len(rows), -1)
        )
        self._add(self._zip.compress(raw.tobytes()))
        self.rows += len(rows)

    def _add(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= _IDAT_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._size:
            self.out.write(_chunk(b"IDAT", b"".join(self._pending)))
        self._pending, self._size = [], 0

    def close(self) -> None:
        """Finish the PNG (every row must have been written)."""
        if self.rows != self.height:
            raise ValueError(f"{self.rows} of {self.height} PNG rows written")
        self._add(self._zip.flush())
        self._flush()
        self.out.write(_chunk(b"IEND", b""))
