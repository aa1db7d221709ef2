"""Tiny stores built in code for the dataset tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Raster, Targets

#: Class names of the test stores (K = 2, so 3 classes with background).
CLASSES = ("background", "a", "b")


def instances_from_masks(
    masks: list[NDArray[np.bool_]], labels: list[int], shape: tuple[int, ...]
) -> Instances:
    """Instances from full-size bool masks (tight rasters, boxes, areas)."""
    if not masks:
        return Instances.empty(shape)
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
        shape=shape,
        rasters=tuple(rasters),
        labels=np.asarray(labels, np.int64),
        boxes=np.asarray(boxes, np.float64).reshape(n, 2 * len(shape)),
        areas=np.asarray([int(m.sum()) for m in masks], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )


def make_store(path: Path, nodes: dict[str, dict[str, Any]], *, ignore: bool = False) -> Path:
    """A store with one node per entry ``name: {"labels": class map, "image": pixels or None,
    "masks": [bool masks], "classes": [class per mask]}``; ``ignore``: with an ignore label,
    so the store has ``ignore_index`` 255 (write 255 in the class maps where not annotated)."""
    specs = (LabelSpec("a"), LabelSpec("b"))
    lm = LabelMap((*specs, LabelSpec("unsure", role="ignore")) if ignore else specs)
    with ZarrSink(path, lm, provenance={"source": "x.xml", "sha256": None}) as sink:
        for name, node in nodes.items():
            class_map = np.asarray(node["labels"], np.uint8)
            shape = class_map.shape
            objects = instances_from_masks(node.get("masks", []), node.get("classes", []), shape)
            frames = 1 if class_map.ndim == 2 else shape[0]
            infos = tuple(
                ImageInfo(f"{name}-{k}" if frames > 1 else name, shape[-1], shape[-2])
                for k in range(frames)
            )
            sink.add(Targets(name, infos, class_map, objects, 3), node.get("image"))
    return path


def disk(shape: tuple[int, ...], centre: tuple[float, ...], radius: float) -> NDArray[np.bool_]:
    """A bool disk (ball) mask."""
    grid = np.indices(shape).astype(float)
    d = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return np.asarray(d <= radius**2)


def ramp(shape: tuple[int, ...], dtype: Any = np.uint8) -> NDArray[Any]:
    """Pixels that differ everywhere: the flat index, modulo 251 for uint8."""
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if np.dtype(dtype) == np.uint8:
        values %= 251
    return values.astype(dtype)


def store_2d(path: Path, *, rgb: bool = False) -> Path:
    """Two images: ``a.png`` 40 x 50 with two disks (classes 1 and 2), ``b.png`` 20 x 24
    without objects."""
    shape = (40, 50)
    labels = np.zeros(shape, np.uint8)
    one, two = disk(shape, (12, 14), 6), disk(shape, (28, 36), 7)
    labels[one], labels[two] = 1, 2
    image = ramp(shape)
    if rgb:
        image = np.stack([image, 255 - image, image // 2], axis=-1)
    small = ramp((20, 24))
    if rgb:
        small = np.stack([small] * 3, axis=-1)
    return make_store(
        path,
        {
            "a.png": {"labels": labels, "image": image, "masks": [one, two], "classes": [1, 2]},
            "b.png": {"labels": np.zeros((20, 24), np.uint8), "image": small},
        },
    )


def store_3d(path: Path) -> Path:
    """One volume 12 x 20 x 24 (uint16 pixels) with one ball of class 1."""
    shape = (12, 20, 24)
    labels = np.zeros(shape, np.uint8)
    ball = disk(shape, (6, 10, 12), 4)
    labels[ball] = 1
    image = ramp(shape, np.uint16)
    return make_store(
        path, {"vol": {"labels": labels, "image": image, "masks": [ball], "classes": [1]}}
    )
