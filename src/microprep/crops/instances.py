"""Clipping instance objects to a crop window: boxes and areas recomputed, small parts dropped.

Objects arrive as instance layers ``(L, *window)`` uint32 (the store's layout, cut to the
window): id ``i + 1`` on the pixels of source object ``i``. An object is kept when its pixels
inside the window number at least ``min_area`` and at least ``min_visible`` of its full area
(from the store's ``instance_area`` table).

Example:
    >>> import numpy as np
    >>> layers = np.zeros((1, 4, 4), np.uint32)
    >>> layers[0, :2, :2] = 1          # object 0: 4 of its 8 pixels are in the window
    >>> layers[0, 3, 3] = 2            # object 1: 1 of its 10 pixels
    >>> tables = SourceTables.empty(2)
    >>> tables = tables._replace(areas=np.array([8, 10]))
    >>> objs, ids = clip_layers(layers, tables, min_visible=0.25, min_area=1)
    >>> ids.tolist(), objs.boxes.tolist(), objs.areas.tolist()
    ([0], [[0.0, 0.0, 2.0, 2.0]], [4])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError
from microprep.store.read import rasters_from_layers
from microprep.targets.types import Instances


class SourceTables(NamedTuple):
    """The per-object tables of one source node (length N each; see the store layout)."""

    labels: NDArray[np.int64]
    areas: NDArray[np.int64]
    occluded: NDArray[np.bool_]
    groups: NDArray[np.int64]
    tracks: NDArray[np.int64]

    @staticmethod
    def empty(n: int = 0) -> SourceTables:
        """Tables for ``n`` objects of class 1 and area 1 (for tests and examples)."""
        return SourceTables(
            np.ones(n, np.int64),
            np.ones(n, np.int64),
            np.zeros(n, bool),
            np.zeros(n, np.int64),
            np.full(n, -1, np.int64),
        )

    @staticmethod
    def from_node(node: Any) -> SourceTables:
        """Read the tables of an ``xarray.Dataset`` node of the store."""
        return SourceTables(
            np.asarray(node["instance_label"].values, np.int64),
            np.asarray(node["instance_area"].values, np.int64),
            np.asarray(node["instance_occluded"].values, np.bool_),
            np.asarray(node["instance_group"].values, np.int64),
            np.asarray(node["instance_track"].values, np.int64),
        )

    @staticmethod
    def from_instances(instances: Instances) -> SourceTables:
        """The tables of an :class:`Instances` object."""
        return SourceTables(
            instances.labels,
            instances.areas,
            instances.occluded,
            instances.groups,
            instances.tracks,
        )


def check_thresholds(min_visible: float, min_area: int) -> None:
    """Raise UsageError for a ``min_visible`` outside [0, 1] or a negative ``min_area``."""
    if not 0.0 <= float(min_visible) <= 1.0:
        raise UsageError(f"min-visible must be a fraction in [0, 1], got {min_visible!r}")
    if int(min_area) < 0:
        raise UsageError(f"min-area must be >= 0 pixels, got {min_area!r}")


def boxes_from_rasters(instances_rasters: Any, ndim: int) -> NDArray[np.float64]:
    """Tight boxes ``(N, 2 * ndim)`` float64, ``x_min, y_min[, z_min], x_max, ...``."""
    out = np.zeros((len(instances_rasters), 2 * ndim), np.float64)
    for i, raster in enumerate(instances_rasters):
        bounds = raster.bounds()[::-1]  # axes (z, y, x) -> x, y, z
        out[i, :ndim] = [b[0] for b in bounds]
        out[i, ndim:] = [b[1] for b in bounds]
    return out


def clip_layers(
    layers: NDArray[np.uint32],
    tables: SourceTables,
    *,
    min_visible: float = 0.25,
    min_area: int = 1,
) -> tuple[Instances, NDArray[np.int64]]:
    """The objects inside one window, clipped to it.

    Args:
        layers: ``(L, *window)`` uint32 instance ids of the source, cut to the window (pixels
            outside the source image are 0).
        tables: the source node's per-object tables (full areas in pixels / voxels).
        min_visible: drop objects with less than this fraction of their full area inside.
        min_area: drop objects with fewer pixels inside.

    Returns:
        ``(instances, ids)``: the kept objects (shape = the window; boxes in window pixel
        units, exclusive max; areas the clipped pixel counts) and their 0-based source indices.
    """
    check_thresholds(min_visible, min_area)
    n = len(tables.areas)
    shape = tuple(int(s) for s in layers.shape[1:])
    counts = np.bincount(layers.reshape(-1), minlength=n + 1)[: n + 1].astype(np.int64)
    counts[0] = 0
    full = np.maximum(tables.areas, 1)
    visible = counts[1:] / full
    keep = (counts[1:] > 0) & (counts[1:] >= min_area) & (visible >= min_visible)
    ids = np.flatnonzero(keep).astype(np.int64)
    if not ids.size:
        return Instances.empty(shape), ids
    lookup = np.zeros(n + 1, np.uint32)
    lookup[ids + 1] = np.arange(1, ids.size + 1, dtype=np.uint32)
    remapped = lookup[layers]
    rasters = rasters_from_layers(remapped, int(ids.size), where="crop")
    return (
        Instances(
            shape=shape,
            rasters=rasters,
            labels=tables.labels[ids],
            boxes=boxes_from_rasters(rasters, len(shape)),
            areas=counts[ids + 1],
            occluded=tables.occluded[ids],
            groups=tables.groups[ids],
            tracks=tables.tracks[ids],
        ),
        ids,
    )


def clip_instances(
    instances: Instances,
    origin: tuple[int, ...],
    window: tuple[int, ...],
    *,
    min_visible: float = 0.25,
    min_area: int = 1,
) -> tuple[Instances, NDArray[np.int64]]:
    """:func:`clip_layers` for an in-memory :class:`Instances` and a window at ``origin``."""
    layers = instances.layers()
    cut = np.zeros((len(layers), *window), np.uint32)
    src = tuple(
        slice(max(o, 0), min(o + w, n))
        for o, w, n in zip(origin, window, instances.shape, strict=True)
    )
    dst = tuple(slice(s.start - o, s.stop - o) for s, o in zip(src, origin, strict=True))
    if all(s.stop > s.start for s in src):
        cut[(slice(None), *dst)] = layers[(slice(None), *src)]
    return clip_layers(
        cut, SourceTables.from_instances(instances), min_visible=min_visible, min_area=min_area
    )
