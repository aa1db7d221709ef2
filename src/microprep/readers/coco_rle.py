"""COCO run-length encoding: decoding compressed (string) and uncompressed (list) ``counts``.

COCO RLE counts alternate runs of 0 and 1 over the image flattened column by column (Fortran
order), starting with a (possibly empty) run of 0. The compressed form packs them in a string,
5 bits a character (offset 48), each count after the second stored as the difference to the
count two before, as ``pycocotools`` writes it (``maskApi.c``: ``rleToString``). Decoding is
done here, checked, instead of in pycocotools' C code, which does not check what it reads.

Example:
    >>> string_counts("52203")
    [5, 2, 2, 2, 5]
    >>> top, left, bitmap = crop_mask([1, 2, 3, 2], height=4, width=2)
    >>> (top, left), bitmap.astype(int).tolist()
    ((1, 0), [[1, 0], [1, 1], [0, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["RleError", "crop_mask", "string_counts"]


class RleError(ValueError):
    """The counts are not a valid RLE of the image (the message says why)."""


def string_counts(text: str) -> list[int]:
    """The counts of a compressed COCO RLE string.

    Raises:
        RleError: a character outside the RLE alphabet, a truncated count, a negative count.
    """
    counts: list[int] = []
    pos, size = 0, len(text)
    while pos < size:
        value, shift, more = 0, 0, True
        while more:
            if pos >= size:
                raise RleError("RLE string ends inside a count")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise RleError(f"character {text[pos]!r} at {pos} is not an RLE character")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise RleError(f"count {len(counts)} is negative ({value})")
        counts.append(value)
    return counts


def crop_mask(
    counts: Sequence[int], *, height: int, width: int
) -> tuple[int, int, NDArray[np.bool_]]:
    """``(top, left, bitmap)``: the 1-pixels of RLE ``counts`` in a ``height x width`` image,
    cropped to their bounding box (an empty ``(0, 0)`` bitmap when there is none).

    Raises:
        RleError: the counts do not add up to ``height * width``, or one is negative.
    """
    runs = np.asarray(counts, dtype=np.int64)
    if runs.size and int(runs.min()) < 0:
        raise RleError("a count is negative")
    total = int(runs.sum())
    if total != height * width:
        raise RleError(f"the counts add up to {total}, not height x width = {height * width}")
    ends = np.cumsum(runs)
    starts = ends - runs
    ones_start, ones_len = starts[1::2], runs[1::2]
    keep = ones_len > 0
    ones_start, ones_len = ones_start[keep], ones_len[keep]
    if ones_len.size == 0:
        return 0, 0, np.zeros((0, 0), dtype=bool)
    n = int(ones_len.sum())
    offsets = np.cumsum(ones_len) - ones_len
    index = np.arange(n, dtype=np.int64) + np.repeat(ones_start - offsets, ones_len)
    cols, rows = np.divmod(index, height)
    top, left = int(rows.min()), int(cols.min())
    bitmap = np.zeros((int(rows.max()) - top + 1, int(cols.max()) - left + 1), dtype=bool)
    bitmap[rows - top, cols - left] = True
    return top, left, bitmap
