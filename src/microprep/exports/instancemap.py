"""One instance-id map per image: what Cellpose, StarDist and OME-Zarr label images hold.

The store keeps overlapping objects whole (on further layers); a single map cannot, so where
objects overlap the later one (the one drawn on top) wins, and the earlier keeps the rest.

Example:
    >>> from microprep.targets.types import Raster
    >>> rasters = (Raster((0, 0), np.ones((2, 2), bool)), Raster((1, 1), np.ones((1, 2), bool)))
    >>> paint(rasters, (2, 3)).tolist()
    [[1, 1, 0], [1, 2, 2]]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microprep.targets.types import Raster, Targets

logger = logging.getLogger(__name__)

__all__ = ["instance_map", "one_piece_per_id", "paint"]


def paint(rasters: Sequence[Raster], shape: tuple[int, ...]) -> NDArray[np.uint32]:
    """Ids ``1..N`` of ``rasters`` painted in order into a ``shape`` uint32 map (0: none)."""
    out = np.zeros(shape, np.uint32)
    for i, raster in enumerate(rasters, start=1):
        raster.paste(out, i)
    return out


def instance_map(targets: Targets) -> NDArray[np.uint32]:
    """The objects of ``targets`` as one uint32 map of ids ``1..N`` (id ``i`` = object ``i``)."""
    return paint(targets.instances.rasters, tuple(targets.instances.shape))


def one_piece_per_id(ids: NDArray[np.unsignedinteger], *, fill_holes: bool) -> NDArray[np.uint32]:
    """``ids`` relabelled ``1..M`` so that each id is one connected piece (8- / 26-connected).

    An object cut in pieces (by an object drawn over it) keeps its largest piece; the rest
    become background. With ``fill_holes`` each object's holes (background pixels it encloses)
    are filled with its id, as StarDist's ``fill_label_holes`` does.

    Example:
        >>> a = np.array([[1, 2, 1], [1, 2, 1]], np.uint32)
        >>> one_piece_per_id(a, fill_holes=False).tolist()
        [[1, 2, 0], [1, 2, 0]]
    """
    out = np.zeros(ids.shape, np.uint32)
    structure = np.ones((3,) * ids.ndim, bool)
    dropped = 0
    new_id = 0
    for index, box in enumerate(ndimage.find_objects(ids), start=1):
        if box is None:
            continue
        mask = ids[box] == index
        pieces, count = ndimage.label(mask, structure=structure)
        if count > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            mask = pieces == int(np.argmax(sizes)) + 1
            dropped += count - 1
        if fill_holes:  # only background is filled: an object inside another stays
            mask = ndimage.binary_fill_holes(mask) & (mask | (ids[box] == 0))
        new_id += 1
        view = out[box]
        view[mask & (view == 0)] = new_id
    if dropped:
        logger.info("dropped %d cut-off piece(s) of objects drawn over by others", dropped)
    return out
