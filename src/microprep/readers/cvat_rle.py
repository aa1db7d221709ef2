"""CVAT's mask RLE (``<mask rle="..." left= top= width= height=>``) decoded into a bool array.

The string holds comma-separated run lengths over the mask's bounding box in row-major order,
starting with a background run. Runs are checked against the box size before anything of that
size is allocated, so a hostile export cannot make the reader allocate more than its box.

Example:
    >>> decode_cvat_rle("1,2,1", width=2, height=2).astype(int).tolist()
    [[0, 1], [1, 0]]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["decode_cvat_rle", "rle_runs", "runs_to_mask"]


def rle_runs(rle: str, width: int, height: int) -> NDArray[np.int64]:
    """The run lengths of a CVAT mask RLE, checked against ``width * height``.

    Raises ValueError for a malformed string, negative runs or a sum other than
    ``width * height``; nothing of size ``width * height`` is allocated before the check.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"mask size {width}x{height} must be positive")
    total = width * height
    text = rle.strip()
    if not text:
        raise ValueError("the RLE is empty")
    try:
        runs = np.array(text.split(","), dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        raise ValueError("the RLE is not a comma-separated list of integers") from exc
    if runs.min() < 0:
        raise ValueError("the RLE has a negative run length")
    if runs.max() > total:
        raise ValueError(f"an RLE run is longer than the whole mask ({width}x{height} = {total})")
    run_sum = int(runs.sum())
    if run_sum != total:
        raise ValueError(
            f"the RLE runs add up to {run_sum} pixels, but the mask is "
            f"{width}x{height} = {total} pixels"
        )
    return runs


def runs_to_mask(runs: NDArray[np.int64], width: int, height: int) -> NDArray[np.bool_]:
    """The ``(height, width)`` mask of checked runs (:func:`rle_runs`)."""
    values = np.zeros(len(runs), dtype=np.bool_)
    values[1::2] = True
    return np.repeat(values, runs).reshape(height, width)


def decode_cvat_rle(rle: str, width: int, height: int) -> NDArray[np.bool_]:
    """Decode a CVAT mask RLE into a ``(height, width)`` bool array.

    ``rle`` is comma-separated run lengths (spaces allowed) over the mask's bounding box in
    row-major order; the first run counts background (False) pixels, then runs alternate, so a
    mask starting with a foreground pixel starts with a 0 run.

    Raises:
        ValueError: malformed string, negative run, sizes not positive, or runs that do not add up
            to ``width * height`` (checked before anything is allocated).

    Example:
        >>> decode_cvat_rle("0,3,1", width=2, height=2).tolist()
        [[True, True], [True, False]]
    """
    return runs_to_mask(rle_runs(rle, width, height), width, height)
