"""What ``prep augment`` augments, and reading it: tasks (a node or a split's region, one copy
each) and the node data a task starts from.

A task names a node of the source store, its position (which seeds its draws), the copy and
the config; with a ``region`` (from ``--split`` of a split by region), only that box of the node
is read, as a node of its own: objects are clipped to it.

Example:
    >>> from pathlib import Path
    >>> from microprep.augment import AugmentConfig
    >>> tasks = tasks_for(Path("d.zarr"), ["a.png", "b.png"], AugmentConfig(), copies=2, seed=0)
    >>> [(t.node, t.index, t.copy) for t in tasks]
    [('a.png', 0, 0), ('a.png', 0, 1), ('b.png', 1, 0), ('b.png', 1, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from microprep.augment.pipeline import AugmentConfig, Sample
from microprep.crops.instances import SourceTables, clip_layers
from microprep.errors import StoreError
from microprep.splits import Region, Splits
from microprep.store.integrity import open_root
from microprep.store.read import read_root_attrs

__all__ = ["NodeData", "Task", "read_node", "split_parts", "tasks_for"]


@dataclass(frozen=True, slots=True)
class Task:
    """One augmented copy to make: node ``node`` (position ``index``) of ``source``, copy
    ``copy`` (``-1``: the original, unchanged)."""

    source: Path
    node: str
    index: int
    copy: int
    seed: int
    config: AugmentConfig
    #: ``(start, stop)`` of the part of the node to augment (a split's region); None: all of it
    region: tuple[tuple[int, ...], tuple[int, ...]] | None = None


def tasks_for(
    source: Path,
    nodes: Iterable[str | Region],
    config: AugmentConfig,
    *,
    copies: int,
    seed: int,
    include_original: bool = False,
) -> list[Task]:
    """Every :class:`Task` of a run, in output order (node by node, copy by copy).

    ``nodes`` are node names, or regions of nodes (a region that covers its whole node is the
    node); the ``index`` of a task (which seeds its draws) is the position in ``nodes``.
    """
    first = -1 if include_original else 0
    parts: list[tuple[str, tuple[tuple[int, ...], tuple[int, ...]] | None]] = []
    for item in nodes:
        if isinstance(item, Region):
            parts.append((item.node, (tuple(item.start), tuple(item.stop))))
        else:
            parts.append((item, None))
    return [
        Task(Path(source), node, index, copy, int(seed), config, region)
        for index, (node, region) in enumerate(parts)
        for copy in range(first, copies)
    ]


@dataclass(frozen=True, slots=True)
class NodeData:
    """One node of a store, read into memory: the sample, the instance tables, the attrs."""

    node: str
    sample: Sample
    tables: dict[str, NDArray[Any]]
    attrs: dict[str, Any]
    num_classes: int


_TABLES = (
    "instance_label",
    "instance_box",
    "instance_area",
    "instance_occluded",
    "instance_group",
    "instance_track",
)


def read_node(
    source: Path, node: str, region: tuple[tuple[int, ...], tuple[int, ...]] | None = None
) -> NodeData:
    """Read node ``node`` of the finished store ``source`` (zarr directly, no xarray).

    With ``region`` ``(start, stop)``, only that box is read, as if it were the node: objects
    are clipped to it (boxes and areas recomputed, objects without a pixel in it dropped), and
    the name gets the box (``"stack[16:24,0:128,0:128]"``).

    Raises:
        StoreError: the store is not a finished microprep store, the node is unreadable, or
            the region does not fit it.
    """
    root = read_root_attrs(Path(source))
    if node not in root["nodes"]:
        raise StoreError(f"{source}: no node {node!r}")
    try:
        # through the checked store: a missing or damaged chunk is an error naming it
        group: Any = open_root(source, root)[node]
        shape = tuple(int(s) for s in group["labels"].shape)
        box = (
            tuple(slice(0, n) for n in shape)
            if region is None
            else tuple(slice(a, b) for a, b in zip(*region, strict=True))
        )
        fits = len(box) == len(shape) and all(
            0 <= b.start < b.stop <= n for b, n in zip(box, shape, strict=False)
        )
        if not fits:
            raise StoreError(f"{source}: region {region} does not fit node {node!r} {shape}")
        arrays = {key: np.asarray(group[key][...]) for key in _TABLES}
        arrays["labels"] = np.asarray(group["labels"][box])
        arrays["instances"] = np.asarray(group["instances"][(slice(None), *box)])
        image = np.asarray(group["image"][box]) if "image" in group else None
        attrs = dict(group.attrs)
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"{source}: cannot read node {node!r}: {exc}") from exc
    layers = arrays["instances"].astype(np.uint32, copy=False)
    n = int(arrays["instance_label"].shape[0])
    boxes = arrays["instance_box"].astype(np.float64).reshape(n, 2 * len(shape))
    if region is not None and tuple(b.stop - b.start for b in box) != shape:
        layers, boxes = _clip_to_region(arrays, layers, attrs, box)
    sample: Sample = {"labels": arrays["labels"], "instances": layers, "boxes": boxes}
    if image is not None:
        sample["image"] = image
    tables = {key: arrays[key] for key in _TABLES}
    return NodeData(node, sample, tables, attrs, len(root["classes"]))


def _clip_to_region(
    arrays: dict[str, NDArray[Any]],
    layers: NDArray[np.uint32],
    attrs: dict[str, Any],
    box: tuple[slice, ...],
) -> tuple[NDArray[np.uint32], NDArray[np.float64]]:
    """Clip the objects of a node to a region: update ``arrays`` (tables) and ``attrs`` (name,
    frames) in place; return the region's instance layers and boxes."""
    tables = SourceTables(
        arrays["instance_label"].astype(np.int64),
        arrays["instance_area"].astype(np.int64),
        arrays["instance_occluded"].astype(bool),
        arrays["instance_group"].astype(np.int64),
        arrays["instance_track"].astype(np.int64),
    )
    objects, _ = clip_layers(layers, tables, min_visible=0.0, min_area=1)
    arrays["instance_label"] = objects.labels
    arrays["instance_area"] = objects.areas
    arrays["instance_occluded"] = objects.occluded
    arrays["instance_group"] = objects.groups
    arrays["instance_track"] = objects.tracks
    arrays["instance_box"] = objects.boxes
    where = ",".join(f"{b.start}:{b.stop}" for b in box)
    attrs["name"] = f"{attrs.get('name', 'node')}[{where}]"
    if len(box) == 3:
        for key in ("frames", "subsets"):
            if isinstance(attrs.get(key), list):
                attrs[key] = attrs[key][box[0]]
    if not len(objects):
        return np.zeros((1, *objects.shape), np.uint32), objects.boxes
    return objects.layers().astype(np.uint32, copy=False), objects.boxes


def split_parts(
    source: Path, nodes: tuple[str, ...], split: str, splits: Splits | str | Path | None
) -> list[str | Region]:
    """The regions of ``split`` among ``nodes``: a whole node as its name, a part as a Region."""
    from microprep.crops.regions import select_regions

    shapes: dict[str, tuple[int, ...]] = {}
    for name in nodes:
        try:
            labels: Any = zarr.open_array(source / name / "labels", mode="r")
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"{source}: cannot read node {name!r}: {exc}") from exc
        shapes[name] = tuple(int(n) for n in labels.shape)
    regions = select_regions(store=source, shapes=shapes, nodes=nodes, split=split, splits=splits)
    return [
        r.node if tuple(r.start) == (0,) * len(r.start) and tuple(r.stop) == shapes[r.node] else r
        for r in regions
    ]
