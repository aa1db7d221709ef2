"""Sliding-window crops (2D tiles, 3D sub-volumes) over a dataset store, lazily or on disk.

- :mod:`~microprep.crops.windows`: window arithmetic (``window_starts``, ``window_grid``).
- :mod:`~microprep.crops.index`: :class:`CropIndex`, a lazy index of crops over a store.
- :mod:`~microprep.crops.instances`: clipping objects to a window.
- :mod:`~microprep.crops.write`: :func:`write_crops` to ``CROPS.zarr``.
- :mod:`~microprep.crops.scale`: dask arrays and a dask.distributed cluster.

Example:
    >>> from microprep import open_dataset
    >>> index = CropIndex(open_dataset("d.zarr"), window=256, stride=128)  # doctest: +SKIP
    >>> for sample in index.iter_crops():  # doctest: +SKIP
    ...     sample["image"], sample["labels"], sample["instances"].boxes
"""

from __future__ import annotations

from microprep.crops.index import CropIndex, CropOptions, CropSample
from microprep.crops.instances import clip_instances, clip_layers
from microprep.crops.windows import window_grid, window_starts
from microprep.crops.write import CropSummary, write_crops

__all__ = [
    "CropIndex",
    "CropOptions",
    "CropSample",
    "CropSummary",
    "clip_instances",
    "clip_layers",
    "window_grid",
    "window_starts",
    "write_crops",
]
