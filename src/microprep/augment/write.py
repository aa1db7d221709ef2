"""``prep augment``: augmented copies of a dataset store, written as a store of the same layout.

Every node of the source store gives ``copies`` nodes in ``AUG.zarr``, named after the image
(``"<name>#aug<copy>"``, sanitized like every node name). Copy ``c`` of node ``i`` is drawn with
``sample_rng(seed=seed, index=i, copy=c)``, so each copy depends only on ``(seed, i, c)`` and
the config, not on the order or the process it runs in. Per node, the attribute ``augment``
records ``{"source_node", "index", "copy", "seed"}``; the root's ``options`` record the config,
``seed`` and ``copies``.

Example:
    >>> from microprep.augment import AugmentConfig, parse_noise
    >>> augment_store(Path("dataset.zarr"), Path("aug.zarr"),
    ...               AugmentConfig(noise=parse_noise("poisson")), copies=2, seed=0)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.augment.pipeline import (
    AugmentConfig,
    Augmenter,
    Sample,
    boxes_from_layers,
    sample_rng,
)
from microprep.crops.instances import SourceTables, clip_layers
from microprep.errors import StoreError, UsageError
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.outputs import atomic_output
from microprep.splits import Region, Splits
from microprep.store import ZarrSink
from microprep.store_read import rasters_from_layers, read_root_attrs
from microprep.targets.types import Instances, Targets, class_dtype

logger = logging.getLogger(__name__)

__all__ = [
    "AugmentSummary",
    "NodeData",
    "Task",
    "augment_node",
    "augment_store",
    "read_node",
    "tasks_for",
]


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


@dataclass(slots=True)
class AugmentSummary:
    """What :func:`augment_store` wrote."""

    source: Path
    out: Path
    nodes: int = 0
    copies: int = 0
    names: list[str] = field(default_factory=list)


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
        group: Any = zarr.open_group(Path(source) / node, mode="r", zarr_format=3)
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


def augment_node(
    task: Task, data: NodeData | None = None
) -> tuple[Targets, NDArray[Any] | None, dict[str, Any]]:
    """Augment copy ``task.copy`` of one node; return ``(targets, pixels, attrs)``.

    ``data`` is the node as read by :func:`read_node` (read here when None), so a worker of a
    cluster can run a task on its own. ``attrs`` is the ``augment`` attribute of the new node.

    Raises:
        StoreError: the store cannot be read.
    """
    if data is None:
        data = read_node(task.source, task.node, task.region)
    sample = data.sample
    tables, attrs, num_classes = data.tables, data.attrs, data.num_classes
    n = int(tables["instance_label"].shape[0])
    stored_areas = tables["instance_area"].astype(np.int64)
    if task.copy >= 0:
        rng = sample_rng(seed=task.seed, index=task.index, copy=task.copy)
        sample = Augmenter(task.config)(sample, rng)
    layers = sample["instances"]
    if task.copy < 0:  # the original: boxes and areas as stored
        boxes, areas = sample["boxes"], stored_areas
    else:
        boxes, areas = boxes_from_layers(layers, n)
    where = f"{task.source}: node {task.node!r}"
    rasters = rasters_from_layers(layers, n, where=where)
    shape = tuple(int(s) for s in layers.shape[1:])
    instances = Instances(
        shape=shape,
        rasters=rasters,
        labels=tables["instance_label"].astype(np.int64),
        boxes=boxes,
        areas=areas,
        occluded=tables["instance_occluded"].astype(bool),
        groups=tables["instance_group"].astype(np.int64),
        tracks=tables["instance_track"].astype(np.int64),
    )
    name = str(attrs.get("name", task.node))
    new_name = name if task.copy < 0 else f"{name}#aug{task.copy}"
    subset = attrs.get("subset")
    height, width = shape[-2], shape[-1]
    if len(shape) == 3:
        frames = attrs.get("frames") or [f"{name}:{z}" for z in range(shape[0])]
        subsets = attrs.get("subsets") or [subset] * len(frames)
        images = tuple(
            ImageInfo(str(f), width, height, subset=s)
            for f, s in zip(frames, subsets, strict=False)
        )
        if len(images) != shape[0]:  # a cube symmetry moved z: frames no longer match slices
            images = tuple(
                ImageInfo(f"{new_name}:{z}", width, height, subset=subset) for z in range(shape[0])
            )
    else:
        images = (ImageInfo(new_name, width, height, subset=subset),)
    class_map = np.asarray(sample["labels"]).astype(class_dtype(num_classes), copy=False)
    targets = Targets(new_name, images, class_map, instances, num_classes)
    info: dict[str, Any] = {
        "source_node": task.node,
        "index": task.index,
        "copy": task.copy,
        "seed": task.seed,
    }
    if task.region is not None:
        info["region"] = [list(task.region[0]), list(task.region[1])]
    return targets, sample.get("image"), info


def _in_process(
    tasks: list[Task],
) -> Iterator[tuple[Targets, NDArray[Any] | None, dict[str, Any]]]:
    """Run ``tasks`` here, reading each node once for all its copies."""
    data: NodeData | None = None
    part: tuple[str, Any] | None = None
    for task in tasks:
        if data is None or part != (task.node, task.region):
            data = read_node(task.source, task.node, task.region)
            part = (task.node, task.region)
        yield augment_node(task, data)


def _label_map(attrs: dict[str, Any]) -> LabelMap:
    classes = list(attrs["classes"])[1:]
    colors = list(attrs["colors"])[1:]
    specs = []
    for name, color in zip(classes, colors, strict=True):
        r, g, b = (int(c) for c in color)
        specs.append(LabelSpec(str(name), color=f"#{r:02x}{g:02x}{b:02x}"))
    return LabelMap(tuple(specs))


def augment_store(
    source: Path,
    out: Path,
    config: AugmentConfig,
    *,
    copies: int,
    seed: int,
    include_original: bool = False,
    workers: int | None = None,
    progress: bool = False,
    split: str | None = None,
    splits: Splits | str | Path | None = None,
) -> AugmentSummary:
    """Write ``copies`` augmented copies of every node of the store ``source`` to ``out``.

    Args:
        source: a finished dataset store.
        out: the new store (written atomically; an existing one is replaced when complete).
        config: what to do (noise, geometry).
        copies: copies per node (>= 1).
        seed: the run's seed; copy ``c`` of node ``i`` uses ``SeedSequence([seed, i, c])``.
        include_original: also write each node unchanged (its ``augment.copy`` is -1).
        workers: run on a ``dask.distributed`` LocalCluster of this many worker processes
            (None: in this process). The result is the same either way.
        progress: show a progress bar.
        split: ``"train"``, ``"val"`` or ``"test"``: augment only the regions of that split
            (whole nodes for splits by image or volume; for splits by region, each region as a
            node of its own, objects clipped to it); None: every node.
        splits: the splits file (or :class:`microprep.splits.Splits`) for ``split`` (default:
            the one beside ``source``).

    Raises:
        UsageError: ``copies`` < 1, ``workers`` < 1, or no such split (see ``prep split``).
        StoreError: reading ``source`` or writing ``out`` fails.
    """
    if copies < 1:
        raise UsageError(f"--copies {copies}: must be at least 1")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    source, out = Path(source), Path(out)
    if source.resolve() == out.resolve():
        raise UsageError(f"the output {out} is the source store; choose another path")
    root = read_root_attrs(source)
    nodes = tuple(str(name) for name in root["nodes"])
    parts: tuple[str | Region, ...] = nodes
    if split is not None:
        parts = tuple(_split_parts(source, nodes, split, splits))
    tasks = tasks_for(
        source, parts, config, copies=copies, seed=seed, include_original=include_original
    )
    provenance = {
        "source": str(source),
        "sha256": None,
        "source_format": root.get("source_format"),
        "options": {
            "augment": config.as_dict(),
            "seed": int(seed),
            "copies": int(copies),
            "include_original": include_original,
            "source_store": str(source),
            "source_options": root.get("options", {}),
            "source_export": root.get("source"),
            "source_sha256": root.get("source_sha256"),
            "split": split,
            "regions": None
            if split is None
            else [
                {"node": p.node, "start": list(p.start), "stop": list(p.stop)}
                for p in parts
                if isinstance(p, Region)
            ],
        },
    }
    summary = AugmentSummary(source=source, out=out, nodes=len(parts), copies=copies)
    results: Iterator[tuple[Targets, NDArray[Any] | None, dict[str, Any]]]
    with atomic_output(out) as tmp:
        sink = ZarrSink(tmp, _label_map(root), provenance=provenance)
        if workers is None:
            results = _in_process(tasks)
        else:
            from microprep.augment.scale import run_on_cluster

            results = run_on_cluster(tasks, workers=workers)
        bar = tqdm(
            total=len(tasks), desc="augment", unit="copy", disable=None if progress else True
        )
        try:
            for targets, pixels, info in results:
                sink.add(targets, pixels)
                name = sink.nodes[-1]
                try:
                    zarr.open_group(tmp / name, mode="r+").attrs.update({"augment": info})
                except (OSError, ValueError) as exc:
                    raise StoreError(f"{out}: cannot annotate node {name!r}: {exc}") from exc
                summary.names.append(name)
                bar.update()
        finally:
            bar.close()
        sink.close()
    logger.info("%s: %d augmented nodes from %s", out, len(summary.names), source)
    return summary


def _split_parts(
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
