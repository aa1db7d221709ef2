"""Reading an instance prediction store back (the layout of
:mod:`microprep.predict.instances_write`): one :class:`InstancePrediction` per input.

Example:
    >>> for name, prediction in read_instance_predictions("pred.zarr"):  # doctest: +SKIP
    ...     print(name, len(prediction.scores))
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import LocalStore

from microprep.errors import StoreError
from microprep.predict.instances import InstancePrediction
from microprep.predict.write import read_prediction_attrs
from microprep.store.read import rasters_from_layers


def read_instance_predictions(path: str | Path) -> Iterator[tuple[str, InstancePrediction]]:
    """``(image name, prediction)`` per input of an instance prediction store, in store order.

    Masks are rebuilt from the id map, so an object keeps only its pixels not covered by a
    higher-scored object (objects hidden completely come back with empty masks and are left
    out). Scores and labels are the stored ones; boxes are recomputed from the visible pixels.

    Raises:
        StoreError: not a complete prediction store, or not of kind ``"instances"``.
    """
    path = Path(path)
    attrs = read_prediction_attrs(path)
    if attrs.get("kind") != "instances":
        raise StoreError(
            f"{path} holds {attrs.get('kind')!r} predictions, not instance predictions"
        )
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r", zarr_format=3)
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path}: cannot open the prediction store: {exc}") from exc
    for group in attrs["nodes"]:
        try:
            node = root[group]
            if not isinstance(node, zarr.Group):
                raise KeyError(f"{group!r} is not a group")
            id_map = _read(node, "instances")
            labels = _read(node, "instance_label").astype(np.int64)
            scores = _read(node, "instance_score").astype(np.float32)
            name = str(node.attrs.get("name", group))
        except (KeyError, OSError, ValueError) as exc:
            raise StoreError(f"{path}: group {group!r} is damaged: {exc}") from exc
        rasters = rasters_from_layers(id_map[None], labels.size, where=f"{path}: {group}")
        keep = [i for i, r in enumerate(rasters) if r.mask.size]
        yield (
            name,
            InstancePrediction.from_rasters(
                (int(id_map.shape[0]), int(id_map.shape[1])),
                [rasters[i] for i in keep],
                labels=labels[keep],
                scores=scores[keep],
            ),
        )


def _read(node: zarr.Group, key: str) -> NDArray[Any]:
    array = node[key]
    if not isinstance(array, zarr.Array):
        raise KeyError(f"{key!r} is not an array")
    return np.asarray(array[...])
