"""What the training-set exports (nnU-Net, Cellpose, StarDist) share: case names and splits.

A case is one image or volume. Its name is the image name made safe as the store's node names
are (:func:`microprep.store.node_name`), without its last extension and with dots turned into
``_`` (trainers cut names at the first dot). Its split is, in this order: the one given in
``provenance["splits"]`` (image name -> ``train`` / ``val`` / ``test``, as ``prep export``
reads it from the store's splits file), else the export's own subset when it is one of
``train``/``training``, ``val``/``validation``, ``test``/``testing`` (any case), else None.

Example:
    >>> taken: set[str] = set()
    >>> case_name("grid 1/a.b.tif", taken), case_name("grid_1/a_b.png", taken)
    ('grid_1_a_b', 'grid_1_a_b-2')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError
from microprep.store.layout import node_name
from microprep.targets.types import Targets

__all__ = ["case_name", "case_split", "need_pixels"]

_SUBSETS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "valid": "val",
    "test": "test",
    "testing": "test",
}


def case_name(name: str, taken: set[str]) -> str:
    """A unique, file-safe case name for image ``name`` (``taken`` is updated)."""
    stem = str(PurePosixPath(name).with_suffix("")) if PurePosixPath(name).suffix else name
    return node_name(stem.replace(".", "_"), taken)


def case_split(targets: Targets, provenance: Mapping[str, Any]) -> str | None:
    """``"train"``, ``"val"``, ``"test"`` or None (not split) for ``targets``.

    Example:
        >>> from microprep.model import ImageInfo
        >>> from microprep.targets.types import Instances
        >>> t = Targets("a.png", (ImageInfo("a.png", 1, 1, subset="Validation"),),
        ...             np.zeros((1, 1), np.uint8), Instances.empty((1, 1)), 2)
        >>> case_split(t, {}), case_split(t, {"splits": {"a.png": "test"}})
        ('val', 'test')
    """
    splits = provenance.get("splits") or {}
    if targets.name in splits:
        return str(splits[targets.name])
    subsets = {(image.subset or "").lower() for image in targets.images}
    if len(subsets) == 1:
        return _SUBSETS.get(subsets.pop())
    return None


def need_pixels(kind: str, targets: Targets, pixels: NDArray[np.generic] | None) -> NDArray[Any]:
    """``pixels`` as an array; UsageError when the export has none (no ``--images``)."""
    if pixels is None:
        raise UsageError(
            f"{targets.name!r}: the {kind} output needs the image pixels "
            "(give --images, or export from a store that holds images)"
        )
    return np.asarray(pixels)
