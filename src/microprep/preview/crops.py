"""Previews of a crops store (``CROPS.zarr``, written by :mod:`microprep.crops.write`).

A crops store has one group per source node holding stacked crops: ``image`` ``(crop, y, x[, c])``
(when the source had pixels), ``labels`` ``(crop, y, x)``, ``instances`` ``(crop, layer, y, x)``,
``origin`` ``(crop, axis)`` and per-object tables with ``instance_crop`` (volumes: a ``z`` axis
before ``y``). The preview of a node is a grid of up to ``max_crops`` evenly spaced crops, each
captioned with its origin in the source; a volume crop shows its middle slice.

Example:
    >>> is_crops_store("crops.zarr")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import StoreError
from microprep.preview.montage import caption, enlarge, grid, with_legend
from microprep.preview.overlay import display_range, render_overlay
from microprep.store.read import rasters_from_layers
from microprep.targets.types import Instances

#: Key of the crops store's root attributes (see :mod:`microprep.crops.write`).
CROPS_ATTRS_KEY = "microprep_crops"
#: Crops shown per node by default.
DEFAULT_CROPS = 16


def crops_attrs(path: str | Path) -> dict[str, Any] | None:
    """The crops store's root attributes, or None when ``path`` is not a crops store."""
    meta = Path(path) / "zarr.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    attrs = attributes.get(CROPS_ATTRS_KEY) if isinstance(attributes, dict) else None
    return attrs if isinstance(attrs, dict) else None


def is_crops_store(path: str | Path) -> bool:
    """True when ``path`` is a crops store (it has the crops root attributes)."""
    return crops_attrs(path) is not None


def _array(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """The array ``name`` of ``group``.

    Raises:
        StoreError: missing, or not an array.
    """
    try:
        found = group[name]
    except KeyError:
        raise StoreError(f"crops node {group.path!r} has no array {name!r}") from None
    if not isinstance(found, zarr.Array):
        raise StoreError(f"crops node {group.path!r}: {name!r} is not an array")
    return found


def _crop_instances(group: zarr.Group, crop: int, layers: NDArray[Any], where: str) -> Instances:
    """The objects of one crop (2D layers ``(L, y, x)``), boxes tight around their pixels."""
    rows = np.flatnonzero(np.asarray(_array(group, "instance_crop")[...]) == crop)
    labels_all = np.asarray(_array(group, "instance_label")[...], np.int64)
    rasters = rasters_from_layers(layers, len(rows), where=where)
    keep = [i for i, r in enumerate(rasters) if r.mask.size]
    boxes = []
    for i in keep:
        (y0, y1), (x0, x1) = rasters[i].bounds()
        boxes.append((float(x0), float(y0), float(x1), float(y1)))
    n = len(keep)
    return Instances(
        shape=tuple(int(s) for s in layers.shape[1:]),
        rasters=tuple(rasters[i] for i in keep),
        labels=labels_all[rows[keep]] if n else np.zeros(0, np.int64),
        boxes=np.array(boxes, np.float64).reshape(n, 4),
        areas=np.array([rasters[i].area for i in keep], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )


def crop_indices(count: int, shown: int) -> list[int]:
    """Up to ``shown`` evenly spaced indices of ``count`` crops, first and last included.

    Example:
        >>> crop_indices(100, 4), crop_indices(3, 16)
        ([0, 33, 66, 99], [0, 1, 2])
    """
    if count <= 0:
        return []
    return sorted({round(float(v)) for v in np.linspace(0, count - 1, min(count, shown))})


def node_crops_picture(
    path: str | Path, node: str, *, max_crops: int = DEFAULT_CROPS
) -> Image.Image:
    """The preview of one node of a crops store: a captioned grid of crops, legend, title."""
    attrs = crops_attrs(path)
    if attrs is None:
        raise StoreError(f"{path} is not a crops store (no '{CROPS_ATTRS_KEY}' root attributes)")
    colors, names = attrs["colors"], attrs["classes"]
    try:
        group = zarr.open_group(str(path), mode="r")[node]
    except (KeyError, OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot read node {node!r}: {exc}") from exc
    if not isinstance(group, zarr.Group):
        raise StoreError(f"{path}: {node!r} is not a group")
    labels_array = _array(group, "labels")
    count = int(labels_array.shape[0])
    volume = len(labels_array.shape) == 4
    chosen = crop_indices(count, max_crops)
    has_image = "image" in group
    origins = np.asarray(_array(group, "origin")[...]) if "origin" in group else None
    where = f"{path}: node {node!r}"
    images: list[NDArray[Any] | None] = []
    for crop in chosen:
        if not has_image:
            images.append(None)
            continue
        pixels = np.asarray(_array(group, "image")[crop])
        images.append(pixels[pixels.shape[0] // 2] if volume else pixels)
    present = [im for im in images if im is not None]
    value_range = (
        display_range(np.stack(present)) if present and present[0].dtype != np.uint8 else None
    )
    pictures, captions = [], []
    for crop, image in zip(chosen, images, strict=True):
        labels = np.asarray(labels_array[crop])
        layers = np.asarray(_array(group, "instances")[crop])
        if volume:
            mid = labels.shape[0] // 2
            labels, layers = labels[mid], layers[:, mid]
        picture = render_overlay(
            image,
            labels,
            _crop_instances(group, crop, layers, where),
            colors=colors,
            names=names,
            value_range=value_range,
        )
        pictures.append(enlarge(picture, min_side=128))
        at = "" if origins is None else " @ " + ",".join(str(int(v)) for v in origins[crop])
        captions.append(f"crop {crop}{at}")
    if not pictures:
        body = Image.new("RGB", (256, 32), (250, 250, 250))
        body = caption(body, "(no crops)")
    else:
        body = grid(pictures, captions=captions, columns=min(len(pictures), 4))
    title = f"{group.attrs.get('name', node)}  ({len(chosen)} of {count} crops"
    title += ", middle slices)" if volume else ")"
    return caption(with_legend(body, colors, names), title)


def crops_nodes(path: str | Path) -> list[str]:
    """The node names of a crops store, in the order written."""
    attrs = crops_attrs(path)
    if attrs is None:
        raise StoreError(f"{path} is not a crops store (no '{CROPS_ATTRS_KEY}' root attributes)")
    if attrs.get("complete") is not True:
        raise StoreError(f"{path} is incomplete (an interrupted write?): write the crops again")
    return [str(n) for n in attrs.get("nodes", [])]


def crops_gallery_source(path: str | Path) -> NDArray[Any] | None:
    """Pixels of the first crop with pixels (a volume crop's middle slice), or None."""
    root = zarr.open_group(str(path), mode="r")
    for node in crops_nodes(path):
        group = root[node]
        if not isinstance(group, zarr.Group) or "image" not in group:
            continue
        pixels = _array(group, "image")
        if pixels.shape[0]:
            image = np.asarray(pixels[0])
            return image[image.shape[0] // 2] if len(_array(group, "labels").shape) == 4 else image
    return None


def iter_crop_pictures(
    path: str | Path, nodes: list[str], *, max_crops: int = DEFAULT_CROPS
) -> Iterator[tuple[str, Image.Image]]:
    """``(node, picture)`` for each of ``nodes`` of a crops store."""
    for node in nodes:
        yield node, node_crops_picture(path, node, max_crops=max_crops)
