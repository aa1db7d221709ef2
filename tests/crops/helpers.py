"""Tiny stores built in code for the crop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Raster, Targets


def instances_from_masks(masks: list[NDArray[np.bool_]], labels: list[int]) -> Instances:
    """Instances from full-size bool masks (tight rasters, boxes, areas)."""
    shape = masks[0].shape if masks else (0, 0)
    rasters, boxes = [], []
    for mask in masks:
        hit = np.nonzero(mask)
        lo = [int(h.min()) for h in hit]
        hi = [int(h.max()) + 1 for h in hit]
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        rasters.append(Raster(tuple(lo), mask[sl].copy()))
        boxes.append([*lo[::-1], *hi[::-1]])
    n = len(masks)
    return Instances(
        shape=tuple(shape),
        rasters=tuple(rasters),
        labels=np.asarray(labels, np.int64),
        boxes=np.asarray(boxes, np.float64).reshape(n, 2 * len(shape)),
        areas=np.asarray([int(m.sum()) for m in masks], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )


def make_store(
    path: Path,
    nodes: dict[str, tuple[NDArray[np.uint8], list[NDArray[np.bool_]], list[int]]],
    *,
    pixels: bool = True,
) -> Path:
    """A store with one node per entry ``name: (class_map, object masks, object labels)``."""
    lm = LabelMap((LabelSpec("a"), LabelSpec("b")))
    with ZarrSink(path, lm, provenance={"source": "x.xml", "sha256": None}) as sink:
        for name, (class_map, masks, labels) in nodes.items():
            shape = class_map.shape
            objects = instances_from_masks(masks, labels) if masks else Instances.empty(shape)
            frames = 1 if class_map.ndim == 2 else shape[0]
            infos = tuple(
                ImageInfo(f"{name}-{k}" if frames > 1 else name, shape[-1], shape[-2])
                for k in range(frames)
            )
            image = (np.arange(class_map.size) % 251).astype(np.uint8).reshape(shape)
            sink.add(Targets(name, infos, class_map, objects, 3), image if pixels else None)
    return path


def disk(shape: tuple[int, ...], centre: tuple[float, ...], radius: float) -> NDArray[np.bool_]:
    """A bool disk (ball) mask."""
    grid = np.indices(shape).astype(float)
    d = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return np.asarray(d <= radius**2)
