"""Train / validation / test splits of a dataset store, made before cropping.

A split assigns *regions* of the store's nodes to ``train``, ``val`` and ``test``. A
:class:`Region` is a box of one node in its own pixel (voxel) index space: ``start`` and
``stop`` per spatial axis, ``(y, x)`` for images and ``(z, y, x)`` for volumes, ``stop``
exclusive. Splitting happens on sources (or on disjoint blocks of one source), never on crops,
so no validation window can be an overlapping or augmented copy of a training window.

``by``:

* ``"image"`` / ``"volume"``: every node is one unit and goes whole into one split (the two
  names are the same rule; use the one that reads right for the store).
* ``"region"``: every node is cut along one axis into one contiguous block per split (``z`` for
  volumes, ``y`` for images unless ``region_axis`` names another axis), with ``gap`` pixels left
  out between neighbouring blocks so that windows near a border cannot straddle two splits. The
  order of the blocks along the axis is drawn per node from the seed.

**Rounding rule.** For ``n`` units (nodes, or pixels along the cut axis after the gaps) the
validation share is ``round(n * val)`` and the test share ``round(n * test)`` (half to even), each
raised to 1 when its fraction is above 0; train gets the rest and must get at least 1. When the
units are too few for that, :class:`SplitError` says how many are needed.

Splits are written next to the store (``DATASET.zarr.splits.json``), never into it: the store is
not changed after conversion. The file is described by ``schemas/splits.schema.json``.

Example:
    >>> s = split_shapes({"a": (4, 4), "b": (4, 4), "c": (4, 4)}, val=0.3, test=0.3, seed=1)
    >>> sorted(len(s[name]) for name in SPLIT_NAMES)
    [1, 1, 1]
    >>> check_disjoint(s)
"""

from __future__ import annotations

from microprep.splits.assign import make_splits, node_shapes, split_shapes
from microprep.splits.io import (
    FORMAT_VERSION as FORMAT_VERSION,
)
from microprep.splits.io import (
    SCHEMA_NAME as SCHEMA_NAME,
)
from microprep.splits.io import (
    default_splits_path,
    load_splits,
    save_splits,
    splits_from_json,
    splits_to_json,
)
from microprep.splits.regions import (
    BY_CHOICES,
    SPLIT_NAMES,
    Region,
    SplitError,
    Splits,
    check_against,
    check_disjoint,
    summarize,
)
from microprep.splits.regions import By as By

__all__ = [
    "BY_CHOICES",
    "SPLIT_NAMES",
    "Region",
    "SplitError",
    "Splits",
    "check_against",
    "check_disjoint",
    "default_splits_path",
    "load_splits",
    "make_splits",
    "node_shapes",
    "save_splits",
    "split_shapes",
    "splits_from_json",
    "splits_to_json",
    "summarize",
]
