"""Writing crops to disk: ``CROPS.zarr``, one group per source node with stacked crops.

Layout (see ``docs/crops.md``)::

    crops.zarr/                         root attrs["microprep_crops"]: source store, its sha256,
    │                                   window, stride, edge, pad, filters, classes, nodes
    └── grid_1_a.png/                   one group per source node (attrs: source_node, window)
        ├── image      (crop, y, x[, c])        pixels (only when the source has them)
        ├── labels     (crop, y, x)             class index map
        ├── instances  (crop, layer, y, x)      uint32 ids 1..k of the crop's own objects
        ├── origin     (crop, axis)             int64 window origin in the source node (y, x)
        ├── valid      (crop, axis)             int64 extent inside the source (rest padded)
        ├── instance_crop   (instance,)         int64 crop index of each object
        ├── instance_source (instance,)         int64 object index in the source node
        └── instance_label, instance_box, instance_area, instance_occluded, instance_group,
            instance_track: as in the dataset store, boxes and areas of the clipped objects

Volumes have a ``z`` axis before ``y``. The object ``j`` of crop ``c`` (in table order among the
rows with ``instance_crop == c``) has id ``j + 1`` in ``instances[c]``.

Example:
    >>> from microprep import open_dataset
    >>> from microprep.crops.index import CropIndex
    >>> index = CropIndex(open_dataset("d.zarr"), window=256, stride=128)  # doctest: +SKIP
    >>> write_crops(index, "crops.zarr").crops  # doctest: +SKIP
    42
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.storage import LocalStore

from microprep.crops.index import CropIndex, CropSample
from microprep.errors import StoreError
from microprep.outputs import atomic_output

#: Key of the crops object in the root attributes.
CROPS_ATTRS_KEY = "microprep_crops"
CROPS_FORMAT_VERSION = 1
#: Crops per shard file (and per write batch, when they fit in :data:`BATCH_BYTES`).
SHARD_CROPS = 64
BATCH_BYTES = 64 << 20
_COMPRESSORS = (ZstdCodec(level=1),)
_TABLES = ("label", "area", "occluded", "group", "track")


@dataclass
class CropSummary:
    """What :func:`write_crops` wrote: crop and object counts per node."""

    path: Path
    crops: int = 0
    objects: int = 0
    per_node: dict[str, int] = field(default_factory=dict)


def store_sha256(path: Path) -> str:
    """Hex SHA-256 of a store's root ``zarr.json`` (its consolidated metadata and attributes)."""
    return hashlib.sha256((Path(path) / "zarr.json").read_bytes()).hexdigest()


def _array(group: Any, name: str, shape: tuple[int, ...], dtype: Any, dims: list[str]) -> Any:
    stacked = len(shape) > 1 and name in ("image", "labels", "instances")
    chunks = (1, *shape[1:]) if stacked else tuple(max(1, s) for s in shape)
    shards = None
    if chunks[0] == 1 and shape[0] > SHARD_CROPS:
        shards = (SHARD_CROPS, *chunks[1:])
    return group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=tuple(max(1, c) for c in chunks),
        shards=shards,
        compressors=_COMPRESSORS,
        dimension_names=dims,
        fill_value=0,
    )


def _write_node(
    root: Any, index: CropIndex, name: str, samples: Iterator[CropSample], progress: Any
) -> int:
    """Write one node's crops; returns the object count."""
    window, shape = index.windows[name], index.shapes[name]
    spatial = ["z", "y", "x"][-len(window) :]
    src = index.group[name]
    n = len(index.origins[name])
    group = root.create_group(
        name,
        attributes={
            "source_node": name,
            "name": str(index.dataset[name].attrs.get("name", name)),
            "window": list(window),
            "source_shape": list(shape),
            "regions": [[list(r.start), list(r.stop)] for r in index.regions[name]],
            "crops": n,
        },
    )
    arrays: dict[str, Any] = {}
    if "image" in src:
        img = src["image"]
        extra = list(img.shape[len(shape) :])
        dims = ["crop", *spatial, *(["c"] if extra else [])]
        arrays["image"] = _array(group, "image", (n, *window, *extra), img.dtype, dims)
    arrays["labels"] = _array(
        group, "labels", (n, *window), src["labels"].dtype, ["crop", *spatial]
    )
    layers = _array(group, "instances", (n, 1, *window), np.uint32, ["crop", "layer", *spatial])
    origin = np.zeros((n, len(window)), np.int64)
    valid = np.zeros((n, len(window)), np.int64)
    tables: dict[str, list[Any]] = {k: [] for k in (*_TABLES, "box", "crop", "source")}
    crop_bytes = max(1, int(np.prod(window)) * 8)
    batch = max(1, min(SHARD_CROPS, BATCH_BYTES // crop_bytes))
    pending: list[CropSample] = []
    count = 0

    def flush() -> None:
        nonlocal layers
        if not pending:
            return
        lo = count - len(pending)
        if "image" in arrays:
            arrays["image"][lo:count] = np.stack([np.asarray(p["image"]) for p in pending])
        arrays["labels"][lo:count] = np.stack([p["labels"] for p in pending])
        stacks = [p["instances"].layers() for p in pending]
        depth = max(len(s) for s in stacks)
        if depth > layers.shape[1]:
            layers.resize((n, depth, *window))
        block = np.zeros((len(pending), layers.shape[1], *window), np.uint32)
        for k, s in enumerate(stacks):
            block[k, : len(s)] = s
        layers[lo:count] = block
        pending.clear()

    for sample in samples:
        k = count
        origin[k], valid[k] = sample["origin"], sample["valid"]
        objs = sample["instances"]
        tables["label"].append(objs.labels)
        tables["area"].append(objs.areas)
        tables["occluded"].append(objs.occluded)
        tables["group"].append(objs.groups)
        tables["track"].append(objs.tracks)
        tables["box"].append(objs.boxes.reshape(-1, 2 * len(window)))
        tables["crop"].append(np.full(len(objs), k, np.int64))
        tables["source"].append(sample["instance_ids"])
        pending.append(sample)
        count += 1
        if len(pending) >= batch:
            flush()
        progress.update(1)
    flush()
    if count != n:
        raise StoreError(f"node {name!r}: expected {n} crops, got {count}")
    for key, value in (("origin", origin), ("valid", valid)):
        _array(group, key, value.shape, np.int64, ["crop", "axis"])[...] = value
    dtypes = {"label": np.int64, "area": np.int64, "occluded": bool, "group": np.int64}
    dtypes |= {"track": np.int64, "crop": np.int64, "source": np.int64}
    total = 0
    for key, dtype in dtypes.items():
        values = np.concatenate([np.zeros(0, dtype), *tables[key]]).astype(dtype)
        total = len(values)
        _array(group, f"instance_{key}", values.shape, dtype, ["instance"])[...] = values
    boxes = np.concatenate([np.zeros((0, 2 * len(window))), *tables["box"]])
    arr = _array(group, "instance_box", boxes.shape, np.float64, ["instance", "box_coord"])
    arr[...] = boxes
    return total


SampleSource = Callable[[CropIndex, str], Iterator[CropSample]]


def node_samples(index: CropIndex, name: str) -> Iterator[CropSample]:
    """The crops of node ``name`` in index order, read in-process (chunk-aware)."""
    k = index.nodes.index(name)
    start = sum(len(index.origins[n]) for n in index.nodes[:k])
    return index.iter_crops(start=start, stop=start + len(index.origins[name]))


def write_crops(
    index: CropIndex,
    out: str | Path,
    *,
    progress: bool = False,
    samples: SampleSource = node_samples,
    extra_attrs: dict[str, Any] | None = None,
) -> CropSummary:
    """Write every crop of ``index`` to the crops store ``out`` (atomically, under a lock).

    Args:
        index: the crop index (its options are recorded in the root attributes).
        out: the crops store folder (``crops.zarr``).
        progress: show a progress bar.
        samples: where crops come from (default: read in-process; see
            :mod:`microprep.crops.scale` for a dask cluster).
        extra_attrs: further keys for the ``options`` attribute (e.g. ``workers``).
    """
    from tqdm import tqdm

    out = Path(out)
    ds = index.dataset
    opts = index.options
    summary = CropSummary(out)
    attrs: dict[str, Any] = {
        "format_version": CROPS_FORMAT_VERSION,
        "source_store": str(Path(ds.path).resolve()),
        "source_store_sha256": store_sha256(ds.path),
        "source": ds.attrs.get("source"),
        "source_sha256": ds.attrs.get("source_sha256"),
        "classes": list(ds.classes),
        "colors": [list(c) for c in ds.colors],
        "ignore_index": ds.attrs.get("ignore_index"),
        "window": list(np.atleast_1d(opts.window).tolist()),
        "stride": None if opts.stride is None else list(np.atleast_1d(opts.stride).tolist()),
        "edge": opts.edge,
        "pad": opts.pad,
        "options": {
            "min_visible": opts.min_visible,
            "min_area": opts.min_area,
            "min_foreground": opts.min_foreground,
            **(extra_attrs or {}),
        },
        "split": index.split,
        "splits_file": None if index.splits_file is None else str(index.splits_file.resolve()),
        "splits_sha256": None
        if index.splits_file is None
        else hashlib.sha256(index.splits_file.read_bytes()).hexdigest(),
        "nodes": list(index.nodes),
        "complete": False,
    }
    with atomic_output(out) as tmp:
        root = zarr.create_group(
            store=LocalStore(tmp), zarr_format=3, attributes={CROPS_ATTRS_KEY: attrs}
        )
        with tqdm(total=len(index), unit="crop", disable=None if progress else True) as bar:
            for name in index.nodes:
                objects = _write_node(root, index, name, samples(index, name), bar)
                summary.per_node[name] = len(index.origins[name])
                summary.objects += objects
        summary.crops = len(index)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
            consolidated = zarr.consolidate_metadata(root.store)
        consolidated.attrs.update({CROPS_ATTRS_KEY: {**attrs, "complete": True}})
    return summary
