"""Write preview PNGs of a dataset (or augmented, or crops) store into a folder, atomically.

One PNG per node (``<node>.png``, named by :func:`microprep.paths.picture_name`: the overlay
with a legend strip; volumes: a montage of a few evenly spaced slices) and, when asked,
``gallery.png`` (the augmentation gallery of the first node with pixels). The folder is built
in a temporary folder and swapped into place (:func:`microprep.outputs.atomic_output`), so it
is either the earlier complete set or the new one.

Volumes are read slice by slice: only the shown slices of ``image``, ``labels`` and
``instances`` are loaded, so memory stays bounded by a few slices.

Example:
    >>> summary = write_previews("dataset.zarr", "previews")  # doctest: +SKIP
    >>> summary.files[:2]  # doctest: +SKIP
    ['grid_1_mg_01.png', 'grid_1_mg_02.png']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from PIL import Image
from tqdm import tqdm

from microprep.outputs import atomic_output
from microprep.paths import picture_name
from microprep.preview.crops import (
    crops_gallery_source,
    crops_nodes,
    is_crops_store,
    node_crops_picture,
)
from microprep.preview.gallery import PreviewError, augmentation_gallery
from microprep.preview.montage import (
    DEFAULT_SLICES,
    caption,
    enlarge,
    grid,
    slice_indices,
    with_legend,
)
from microprep.preview.overlay import display_range, render_overlay
from microprep.store.read import Dataset, open_dataset, rasters_from_layers
from microprep.targets.types import Instances

logger = logging.getLogger(__name__)

#: Pictures with a longer side than this (px) are scaled down before saving.
MAX_SIDE = 4096
#: Name of the gallery file.
GALLERY_NAME = "gallery.png"


@dataclass(slots=True)
class PreviewSummary:
    """What :func:`write_previews` wrote: the folder, the PNG names, nodes shown / in total."""

    out: Path
    files: list[str] = field(default_factory=list)
    shown: int = 0
    total: int = 0


def _values(node: xr.Dataset, name: str, index: Any = ()) -> NDArray[Any] | None:
    if name not in node:
        return None
    return np.asarray(node[name][index].values)


def _instances_of_slice(node: xr.Dataset, z: int | None, where: str) -> Instances:
    """The objects of one image node, or of slice ``z`` of a volume node, as 2D objects."""
    n = int(node.sizes.get("instance", 0))
    layers = np.asarray(node["instances"].values if z is None else node["instances"][:, z].values)
    rasters = rasters_from_layers(layers, n, where=where)
    keep = [i for i, r in enumerate(rasters) if r.mask.size]
    boxes = []
    for i in keep:
        (y0, y1), (x0, x1) = rasters[i].bounds()
        boxes.append((float(x0), float(y0), float(x1), float(y1)))
    index = np.array(keep, np.int64)

    def column(name: str, dtype: Any, fill: int) -> NDArray[Any]:
        if name in node and n:
            return np.asarray(node[name].values, dtype)[index]
        return np.full(len(keep), fill, dtype)

    return Instances(
        shape=tuple(int(s) for s in layers.shape[1:]),
        rasters=tuple(rasters[i] for i in keep),
        labels=column("instance_label", np.int64, 0),
        boxes=np.array(boxes, np.float64).reshape(len(keep), 4),
        areas=np.array([rasters[i].area for i in keep], np.int64),
        occluded=column("instance_occluded", np.bool_, 0),
        groups=column("instance_group", np.int64, 0),
        tracks=column("instance_track", np.int64, -1),
    )


def node_picture(dataset: Dataset, key: str | int, *, slices: int = DEFAULT_SLICES) -> Image.Image:
    """The preview of one node: its overlay (or slice montage) with a legend strip and title.

    Args:
        dataset: an open store.
        key: the node (position, group name or image name).
        slices: slices shown for a volume.
    """
    name = dataset.node_name(key)
    node = dataset[name]
    colors, names = dataset.colors, dataset.classes
    where = f"{dataset.path}: node {name!r}"
    title = str(node.attrs.get("name", name))
    if "z" in node.sizes:
        depth = int(node.sizes["z"])
        image_all = node.get("image")
        value_range = None
        if image_all is not None and image_all.dtype != np.uint8:
            # one display range for all shown slices, from those slices
            shown = np.stack(
                [np.asarray(image_all[z].values) for z in slice_indices(depth, slices)]
            )
            value_range = display_range(shown)
        pictures, captions = [], []
        for z in slice_indices(depth, slices):
            picture = render_overlay(
                _values(node, "image", z),
                _values(node, "labels", z),
                _instances_of_slice(node, z, where),
                colors=colors,
                names=names,
                value_range=value_range,
            )
            pictures.append(enlarge(picture))
            captions.append(f"z = {z} / {depth}")
        body = grid(pictures, captions=captions, columns=min(len(pictures), 4))
        title += f"  (volume, {depth} slices)"
    else:
        body = enlarge(
            render_overlay(
                _values(node, "image"),
                _values(node, "labels"),
                _instances_of_slice(node, None, where),
                colors=colors,
                names=names,
            )
        )
    if "image" not in node:
        title += "  (no pixels in the store)"
    return caption(with_legend(body, colors, names), title)


def gallery_source(dataset: Dataset) -> NDArray[Any]:
    """Pixels for the gallery: the first node with pixels (a volume's middle slice).

    Raises:
        PreviewError: no node has pixels (the store was converted without ``--images``).
    """
    for name in dataset.nodes:
        node = dataset[name]
        if "image" not in node:
            continue
        image = node["image"]
        if "z" in image.dims:
            return np.asarray(image[int(node.sizes["z"]) // 2].values)
        return np.asarray(image.values)
    raise PreviewError(
        f"{dataset.path}: no node has pixels, so there is nothing to augment; convert the "
        "export again with --images"
    )


def _save(picture: Image.Image, path: Path) -> None:
    if max(picture.size) > MAX_SIDE:
        scale = MAX_SIDE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    picture.save(path, format="PNG", optimize=False)


def _write_gallery(
    image: NDArray[Any] | None, folder: Path, seed: int, summary: PreviewSummary
) -> None:
    if image is not None:
        _save(augmentation_gallery(image, seed=seed), folder / GALLERY_NAME)
        summary.files.append(GALLERY_NAME)


def write_previews(
    source: str | Path,
    out: str | Path,
    *,
    max_nodes: int | None = None,
    gallery: bool = False,
    slices: int = DEFAULT_SLICES,
    seed: int = 0,
    progress: bool = False,
) -> PreviewSummary:
    """Write ``<node>.png`` per node (and ``gallery.png``) of the store ``source`` into ``out``.

    Args:
        source: a dataset store (``DATASET.zarr``, also an augmented store ``AUG.zarr``, which
            has the same layout) or a crops store (``CROPS.zarr``: one grid of crops per node,
            see :mod:`microprep.preview.crops`).
        out: the folder to (re)create; replaced only when every PNG is written.
        max_nodes: preview only the first ``max_nodes`` nodes (None: all).
        gallery: also write the augmentation gallery (needs ``microprep.augment``).
        slices: slices per volume montage.
        seed: seed of the gallery's noise.
        progress: show a progress bar.

    Raises:
        StoreError: the store cannot be opened, or ``out`` cannot be written.
        PreviewError: the gallery cannot be made.
        UsageError: bad ``max_nodes`` or ``slices``.
    """
    from microprep.errors import UsageError

    if max_nodes is not None and max_nodes < 1:
        raise UsageError(f"--max must be 1 or more, got {max_nodes}")
    if slices < 1:
        raise UsageError(f"--slices must be 1 or more, got {slices}")
    out = Path(out)
    taken = {GALLERY_NAME}  # picture file names taken
    if is_crops_store(source):
        nodes = crops_nodes(source)
        chosen = nodes if max_nodes is None else nodes[:max_nodes]
        summary = PreviewSummary(out=out, shown=len(chosen), total=len(nodes))
        gallery_image = crops_gallery_source(source) if gallery else None
        if gallery and gallery_image is None:
            raise PreviewError(f"{source}: no crop has pixels, so there is nothing to augment")
        with atomic_output(out) as tmp:
            for name in tqdm(
                chosen, desc="previews", unit="node", disable=None if progress else True
            ):
                filename = picture_name(name, taken)
                _save(node_crops_picture(source, name), tmp / filename)
                summary.files.append(filename)
            _write_gallery(gallery_image, tmp, seed, summary)
        logger.info("wrote %d previews to %s", len(summary.files), out)
        return summary
    with open_dataset(source) as dataset:
        nodes = list(dataset.nodes)
        chosen = nodes if max_nodes is None else nodes[:max_nodes]
        summary = PreviewSummary(out=out, shown=len(chosen), total=len(nodes))
        gallery_image = gallery_source(dataset) if gallery else None
        with atomic_output(out) as tmp:
            for name in tqdm(
                chosen, desc="previews", unit="node", disable=None if progress else True
            ):
                filename = picture_name(name, taken)
                _save(node_picture(dataset, name, slices=slices), tmp / filename)
                summary.files.append(filename)
            _write_gallery(gallery_image, tmp, seed, summary)
    logger.info("wrote %d previews to %s", len(summary.files), out)
    return summary
