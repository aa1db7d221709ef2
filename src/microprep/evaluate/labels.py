"""The class maps of one side of an evaluation: a prediction store, a dataset store, a folder.

:func:`open_labels` lists the class maps of a source as :class:`LabelItem` records (read on
demand); :func:`match_key` is the name they are matched by.

Example:
    >>> match_key("grid 1/a.png") == match_key("grid 1/a.tif")
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from microprep.errors import InputError, StoreError
from microprep.predict.inputs import is_dataset_store, iter_inputs
from microprep.predict.write import PREDICTION_KEY, read_prediction_attrs

__all__ = ["LabelItem", "LabelSource", "match_key", "open_labels"]


def match_key(name: str) -> str:
    """The name images are matched by: ``/`` separators, the last extension removed.

    Example:
        >>> match_key("grid 1/a.b.png"), match_key("stack"), match_key("d\\\\x.tif")
        ('grid 1/a.b', 'stack', 'd/x')
    """
    path = PurePosixPath(name.replace("\\", "/"))
    return path.with_suffix("").as_posix() if path.suffix else path.as_posix()


@dataclass(frozen=True, slots=True)
class LabelItem:
    """One class map of a source: its name, where it is, and how to get it.

    ``get()`` returns an array-like ``(H, W)`` / ``(Z, H, W)`` of class indices that supports
    slicing (a zarr or dask array, or numpy); ``node`` is the store group name (stores only).
    """

    name: str
    where: str
    get: Callable[[], Any]
    node: str | None = None

    @property
    def key(self) -> str:
        """The matching key (:func:`match_key` of the name)."""
        return match_key(self.name)


@dataclass(frozen=True, slots=True)
class LabelSource:
    """The class maps of one side: ``kind`` (``prediction``, ``dataset`` or ``folder``),
    class names when known, the items in order, and the class-map value of pixels that are not
    annotated (a dataset store's ``ignore_index``; None when it has none)."""

    path: Path
    kind: str
    classes: list[str] | None
    items: list[LabelItem]
    ignore_index: int | None = None


def _store_array(value: Any) -> Callable[[], Any]:
    def get() -> Any:
        return value

    return get


def _folder_array(record: Any, where: str) -> Callable[[], Any]:
    def get() -> NDArray[Any]:
        array = np.asarray(record.image)
        if array.dtype.kind not in "biu" or array.ndim != record.ndim:
            raise InputError(
                f"not a class-index image: shape {array.shape}, dtype {array.dtype} (expected "
                f"{record.ndim}D, one channel, integer class indices)",
                file=where,
            )
        return array

    return get


def open_labels(path: str | Path, *, role: str) -> LabelSource:
    """The class maps of a prediction store, a dataset store or a folder (see module docs).

    Args:
        path: the store or folder.
        role: ``"prediction"`` or ``"ground truth"``, for messages.

    Raises:
        StoreError: a store that cannot be opened. An instance prediction store gives the
            class maps of its objects.
        InputError: a missing path, a file, or a folder without label images.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"the {role} does not exist", file=path)
    if not path.is_dir():
        raise InputError(
            f"the {role} must be a prediction store, a dataset store or a folder of "
            "class-index images",
            file=path,
        )
    if _has_prediction_attrs(path):
        attrs = read_prediction_attrs(path)
        # an instance prediction also stores its objects' class map (the higher score on top):
        # scored as class maps, its per-class IoU is the merged IoU of the objects
        if attrs.get("kind") not in ("semantic", "instances"):
            raise StoreError(
                f"{path} holds a {attrs.get('kind')!r} prediction, not class maps or instances"
            )
        root: Any = zarr.open_group(str(path), mode="r")
        items = [
            LabelItem(
                str(root[node].attrs.get("name", node)),
                f"{path}: node {node!r}",
                _store_array(root[node]["labels"]),
                node,
            )
            for node in attrs["nodes"]
        ]
        return LabelSource(path, "prediction", list(attrs["classes"]), items)
    if is_dataset_store(path):
        from microprep.store.read import open_dataset

        dataset = open_dataset(path)
        items = []
        for node in dataset.nodes:
            data = dataset[node]
            name = str(data.attrs.get("name", node))
            items.append(
                LabelItem(name, f"{path}: node {node!r}", _store_array(data["labels"].data), node)
            )
        ignore = dataset.attrs.get("ignore_index")
        return LabelSource(path, "dataset", list(dataset.classes), items, ignore)
    items = [
        LabelItem(r.name, r.source, _folder_array(r, r.source))
        for r in iter_inputs(path)
        if not r.name.lower().endswith((".jpg", ".jpeg"))
    ]
    if not items:
        raise InputError(f"the {role} folder holds no PNG or TIFF class-index images", file=path)
    return LabelSource(path, "folder", None, items)


def _has_prediction_attrs(path: Path) -> bool:
    meta = path / "zarr.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    attributes = data.get("attributes") if isinstance(data, dict) else None
    return isinstance(attributes, dict) and PREDICTION_KEY in attributes
