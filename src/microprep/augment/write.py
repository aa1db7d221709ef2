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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.augment.nodes import NodeData, Task, read_node, split_parts, tasks_for
from microprep.augment.pipeline import (
    AugmentConfig,
    Augmenter,
    boxes_from_layers,
    sample_rng,
)
from microprep.errors import StoreError, UsageError
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.outputs import atomic_output
from microprep.splits import Region, Splits
from microprep.store import ZarrSink
from microprep.store.read import rasters_from_layers, read_root_attrs
from microprep.targets.types import Instances, Targets, class_dtype

logger = logging.getLogger(__name__)

__all__ = ["AugmentSummary", "augment_node", "augment_store"]


@dataclass(slots=True)
class AugmentSummary:
    """What :func:`augment_store` wrote."""

    source: Path
    out: Path
    nodes: int = 0
    copies: int = 0
    names: list[str] = field(default_factory=list)


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
    if attrs.get("ignore_index") is not None:  # the source has pixels that are not annotated
        specs.append(LabelSpec("(not annotated)", role="ignore"))
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
        parts = tuple(split_parts(source, nodes, split, splits))
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
        "class_mapping": root.get("class_mapping"),
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
