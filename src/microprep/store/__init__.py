"""The dataset store: one zarr (v3) group per image or volume, read through xarray.

Layout (full description in ``docs/store-layout.md``)::

    dataset.zarr/                      root group; attrs["microprep"]: classes, colors,
    │                                  provenance, nodes, format_version, complete
    ├── grid_1_a.png/                  one node per image (group name: sanitized image name)
    │   ├── image      (y, x[, c])     pixels, dtype as in the file (only with images)
    │   ├── labels     (y, x)          class index map, uint8 (uint16 past 255 classes)
    │   ├── instances  (layer, y, x)   uint32 instance ids 1..N, overlaps on further layers
    │   ├── instance_label    (instance)            int64 class index 1..K
    │   ├── instance_box      (instance, box_coord) float64 x_min, y_min, x_max, y_max
    │   ├── instance_area     (instance)            int64 pixel count
    │   ├── instance_occluded (instance)            bool
    │   ├── instance_group    (instance)            int64 (0: none)
    │   └── instance_track    (instance)            int64 (-1: none)
    └── stack/                         a volume: the same with a leading z axis

Write with :class:`ZarrSink` (inside :func:`microprep.outputs.atomic_output`), read with
:func:`open_dataset`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from microprep.model import ImageInfo, LabelMap, LabelSpec
    >>> from microprep.targets.types import Instances, Targets
    >>> lm = LabelMap((LabelSpec("pore"),))
    >>> path = Path(tempfile.mkdtemp()) / "d.zarr"
    >>> with ZarrSink(path, lm, provenance={"source": "a.xml", "sha256": None}) as sink:
    ...     sink.add(Targets("a b.png", (ImageInfo("a b.png", 4, 3),),
    ...                      np.ones((3, 4), np.uint8), Instances.empty((3, 4)), 2), None)
    >>> ds = open_dataset(path)
    >>> ds.nodes, ds["a b.png"]["labels"].dims
    (('a_b.png',), ('y', 'x'))
"""

from __future__ import annotations

from microprep.store.layout import (
    ATTRS_KEY,
    FORMAT_VERSION,
    SCHEMA_NAME,
    node_name,
    validate_attrs,
)
from microprep.store.read import Dataset, open_dataset, read_root_attrs
from microprep.store.write import ZarrSink

__all__ = [
    "ATTRS_KEY",
    "FORMAT_VERSION",
    "SCHEMA_NAME",
    "Dataset",
    "ZarrSink",
    "node_name",
    "open_dataset",
    "read_root_attrs",
    "validate_attrs",
]
