"""The ``ome-zarr`` export: one OME-Zarr image (NGFF 0.5, zarr v3) per image or volume.

Layout of the output folder (see ``docs/ome-zarr.md``)::

    OUT/zarr.json                   plain zarr group; attrs["microprep"]: classes, images
    OUT/classes.txt                 one class name a line, "background" first
    OUT/<node>.ome.zarr/            one OME-Zarr image; attrs["ome"]: version, multiscales
        0/ 1/ ...                   the pyramid: (c,) [z,] y, x; each level halves y and x
        labels/zarr.json            attrs["ome"]["labels"] = ["classes", "instances"]
        labels/classes/0/ ...       class index map, image-label colours and class names
        labels/instances/0/ ...     instance ids (uint32; where objects overlap, the later wins)
        labels/predicted/0/ ...     predicted class map (prediction stores only)

``<node>`` is the image name made safe as the store's node names are
(:func:`microprep.store.node_name`), with its last extension removed. Levels are added until
the smallest of ``y`` and ``x`` is under :data:`MIN_LEVEL_SIDE`; ``z`` is never downsampled
(stacks are usually anisotropic). Image levels are 2x2 means, label levels every second pixel
(labels must not be averaged). Arrays are chunked (and sharded) like the dataset store.

Axes carry a unit when the pixel size is known (``provenance["pixel_size"]``: ``--pixel-size``,
see :func:`parse_pixel_size`, or the TIFF metadata, see :mod:`microprep.pixelsize`); the scale
of level ``k`` is ``pixel_size * 2**k`` along ``y`` and ``x``, with the translation that keeps
pixel centres in place; ``z`` takes the slice distance when the metadata gives one.

Example:
    >>> parse_pixel_size("0.5nm"), parse_pixel_size("2 um")
    ((0.5, 'nanometer'), (2.0, 'micrometer'))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import MemoryStore

from microprep.errors import UsageError
from microprep.exports.instancemap import instance_map
from microprep.exports.masks import write_classes
from microprep.model import LabelMap
from microprep.pixelsize import UNITS, PixelSize
from microprep.store.layout import COMPRESSORS, node_name, spatial_chunking
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_LEVEL_SIDE",
    "NGFF_VERSION",
    "OmeZarrSink",
    "image_metadata",
    "parse_pixel_size",
    "pyramid_shapes",
]

#: The OME-NGFF version written.
NGFF_VERSION = "0.5"
#: Pyramid levels are added until the smallest side (y or x) is under this many pixels.
MIN_LEVEL_SIDE = 256

_UNITS = UNITS
_PIXEL_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9.]+)\s*$")


def parse_pixel_size(text: str) -> tuple[float, str]:
    """``"0.5nm"`` to ``(0.5, "nanometer")``: a positive number and a length unit.

    Units: pm, nm, um (µm), mm, cm, m, A (angstrom), or their NGFF names (``nanometer``...).

    Raises:
        UsageError: not a positive number followed by a known unit.

    Example:
        >>> parse_pixel_size("1.2e-3 mm")
        (0.0012, 'millimeter')
    """
    match = _PIXEL_SIZE.match(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None or float(match.group(1)) <= 0:
        raise UsageError(
            f"pixel size {text!r}: expected a positive number and a unit, e.g. 0.5nm "
            f"(units: {', '.join(sorted(k for k in _UNITS if k.isascii() and len(k) <= 2))})"
        )
    return float(match.group(1)), unit


def pyramid_shapes(spatial: Sequence[int]) -> list[tuple[int, ...]]:
    """Spatial shapes of the levels: halve ``y`` and ``x`` until the smaller is under 256.

    Example:
        >>> pyramid_shapes((2048, 600))
        [(2048, 600), (1024, 300), (512, 150)]
        >>> pyramid_shapes((3, 100, 100))
        [(3, 100, 100)]
    """
    shapes = [tuple(int(n) for n in spatial)]
    while min(shapes[-1][-2:]) >= MIN_LEVEL_SIDE:
        *lead, y, x = shapes[-1]
        shapes.append((*lead, y // 2, x // 2))
    return shapes


def image_metadata(
    name: str,
    *,
    spatial_ndim: int,
    channels: bool,
    levels: int,
    pixel_size: PixelSize | None,
) -> dict[str, Any]:
    """The ``multiscales`` entry of one image (or label image) of ``levels`` levels.

    Example:
        >>> m = image_metadata("a", spatial_ndim=2, channels=False, levels=2, pixel_size=None)
        >>> [a["name"] for a in m["axes"]], m["datasets"][1]["coordinateTransformations"][0]
        (['y', 'x'], {'type': 'scale', 'scale': [2.0, 2.0]})
    """
    size, unit = (pixel_size[0], pixel_size[1]) if pixel_size is not None else (1.0, None)
    z_size = pixel_size[2] if pixel_size is not None and len(pixel_size) > 2 else None
    axes: list[dict[str, str]] = [{"name": "c", "type": "channel"}] if channels else []
    for axis in ("z", "y", "x")[3 - spatial_ndim :]:
        entry = {"name": axis, "type": "space"}
        if unit is not None:
            entry["unit"] = unit
        axes.append(entry)
    datasets = []
    for level in range(levels):
        factor = 2.0**level
        scale = [1.0] * channels + [z_size or size] * (spatial_ndim - 2) + [size * factor] * 2
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if level:
            shift = (factor - 1) / 2 * size
            transforms.append(
                {
                    "type": "translation",
                    "translation": [0.0] * (channels + spatial_ndim - 2) + [shift] * 2,
                }
            )
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    return {"name": name, "axes": axes, "datasets": datasets}


def _down_image(arr: NDArray[Any]) -> NDArray[Any]:
    """2x2 mean over the last two axes (odd edges dropped), in the input dtype."""
    y, x = arr.shape[-2] // 2 * 2, arr.shape[-1] // 2 * 2
    a = arr[..., :y, :x]
    acc = a[..., 0::2, 0::2].astype(np.float32)
    acc += a[..., 1::2, 0::2]
    acc += a[..., 0::2, 1::2]
    acc += a[..., 1::2, 1::2]
    acc *= 0.25
    if arr.dtype.kind in "biu":
        np.rint(acc, out=acc)
    return acc.astype(arr.dtype)


def _down_labels(arr: NDArray[Any]) -> NDArray[Any]:
    """Every second pixel along the last two axes (odd edges dropped)."""
    y, x = arr.shape[-2] // 2, arr.shape[-1] // 2
    return np.ascontiguousarray(arr[..., 0 : 2 * y : 2, 0 : 2 * x : 2])


def _persist(staged: Mapping[str, Any], folder: Path) -> None:
    """Write the keys of a zarr memory store as files under ``folder`` (metadata last)."""
    keys = sorted(staged, key=lambda k: (k.endswith("zarr.json"), k.count("/") * -1, k))
    for key in keys:
        path = folder.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(staged[key].to_bytes())


class OmeZarrSink:
    """One OME-Zarr image per :class:`Targets`, with the class map and instances as labels.

    Args:
        root: the existing (empty) output folder.
        labels: the label map (class names and colours go into ``image-label``).
        provenance: facts about the run; ``pixel_size`` (``(size, unit)``, see
            :func:`parse_pixel_size`) gives the axes a unit and a scale.

    Needs the pixels (``prep convert --images``): an OME-Zarr label image belongs to an image.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> t = Targets("a.png", (ImageInfo("a.png", 4, 3),), np.ones((3, 4), np.uint8),
        ...             Instances.empty((3, 4)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = OmeZarrSink(Path(d), lm, provenance={})
        ...     sink.add(t, np.zeros((3, 4), np.uint8))
        ...     sink.close()
        ...     sorted(p.name for p in (Path(d) / "a.ome.zarr/labels").iterdir())
        ['classes', 'instances', 'zarr.json']
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        size = provenance.get("pixel_size")
        self.pixel_size: PixelSize | None = (
            (float(size[0]), str(size[1]), *(size[2:3] or [None])) if size is not None else None
        )
        self.images: list[str] = []
        self._taken: set[str] = set()
        self.root.mkdir(parents=True, exist_ok=True)
        write_classes(self.root, labels)

    def add(
        self,
        targets: Targets,
        pixels: NDArray[np.generic] | None,
        *,
        predicted: NDArray[np.unsignedinteger] | None = None,
    ) -> None:
        """Write the OME-Zarr image of ``targets`` with ``pixels`` and its label images.

        ``predicted`` (a class map of the same shape) adds ``labels/predicted``.

        Raises:
            UsageError: no pixels (the export was converted without images).
        """
        if pixels is None:
            raise UsageError(
                f"{targets.name!r}: the ome-zarr output needs the image pixels "
                "(give --images, or export from a store that holds images)"
            )
        cmap = np.asarray(targets.class_map)
        spatial = cmap.shape
        pixels = np.asarray(pixels)
        if pixels.shape[: cmap.ndim] != spatial or pixels.ndim > cmap.ndim + 1:
            raise ValueError(f"{targets.name!r}: pixels {pixels.shape} do not fit {spatial}")
        channels = pixels.ndim == cmap.ndim + 1
        image = np.moveaxis(pixels, -1, 0) if channels else pixels
        stem = str(PurePosixPath(targets.name).with_suffix("")) or targets.name
        name = node_name(stem, self._taken) + ".ome.zarr"
        shapes = pyramid_shapes(spatial)
        staged: dict[str, Any] = {}
        meta = image_metadata(
            targets.name,
            spatial_ndim=cmap.ndim,
            channels=channels,
            levels=len(shapes),
            pixel_size=self.pixel_size,
        )
        group = zarr.create_group(
            store=MemoryStore(staged),
            zarr_format=3,
            attributes={"ome": {"version": NGFF_VERSION, "multiscales": [meta]}},
        )
        self._levels(group, image, len(shapes), _down_image, lead=int(channels))
        label_names = ["classes", "instances"] + (["predicted"] if predicted is not None else [])
        labels_group = group.create_group(
            "labels", attributes={"ome": {"version": NGFF_VERSION, "labels": label_names}}
        )
        class_label = self._class_label()
        arrays: dict[str, tuple[NDArray[Any], dict[str, Any]]] = {
            "classes": (cmap, class_label),
            "instances": (instance_map(targets), self._instance_label(targets)),
        }
        if predicted is not None:
            arrays["predicted"] = (np.asarray(predicted), class_label)
        for label_name, (data, image_label) in arrays.items():
            if data.shape != spatial:
                raise ValueError(f"{targets.name!r}: {label_name} {data.shape} != {spatial}")
            label_meta = image_metadata(
                label_name,
                spatial_ndim=cmap.ndim,
                channels=False,
                levels=len(shapes),
                pixel_size=self.pixel_size,
            )
            sub = labels_group.create_group(
                label_name,
                attributes={
                    "ome": {
                        "version": NGFF_VERSION,
                        "multiscales": [label_meta],
                        "image-label": image_label,
                    }
                },
            )
            self._levels(sub, data, len(shapes), _down_labels, lead=0)
        _persist(staged, self.root / name)
        self.images.append(name)
        logger.debug("%s: wrote %s (%d levels)", self.root, name, len(shapes))

    def _levels(
        self, group: zarr.Group, data: NDArray[Any], levels: int, down: Any, *, lead: int
    ) -> None:
        level_data = data
        for level in range(levels):
            if level:
                level_data = down(level_data)
            chunks, shards = spatial_chunking(tuple(level_data.shape[lead:]))
            group.create_array(
                str(level),
                data=np.ascontiguousarray(level_data),
                chunks=(*level_data.shape[:lead], *chunks),
                shards=None if shards is None else (*level_data.shape[:lead], *shards),
                compressors=COMPRESSORS,
                fill_value=0,
                dimension_names=(["c"] if lead else []) + list("zyx"[3 - data.ndim + lead :]),
                config={"write_empty_chunks": True},
            )

    def _class_label(self) -> dict[str, Any]:
        names = self.labels.class_names
        colors = self.labels.colors()
        values = list(range(len(names)))
        entries = [(i, names[i], colors[i], 0 if i == 0 else 255) for i in values]
        if self.labels.ignore_index is not None:
            entries.append((self.labels.ignore_index, "ignore", (128, 128, 128), 128))
        return {
            "colors": [
                {"label-value": v, "rgba": [*map(int, rgb), alpha]} for v, _, rgb, alpha in entries
            ],
            "properties": [{"label-value": v, "class": name} for v, name, _, _ in entries],
            "source": {"image": "../../"},
        }

    def _instance_label(self, targets: Targets) -> dict[str, Any]:
        names = self.labels.class_names
        labels = targets.instances.labels
        return {
            "properties": [
                {"label-value": i, "class": names[int(c)] if 0 <= c < len(names) else str(c)}
                for i, c in enumerate(labels.tolist(), start=1)
            ],
            "source": {"image": "../../"},
        }

    def close(self) -> None:
        """Write the root group listing the images."""
        zarr.create_group(
            store=str(self.root),
            zarr_format=3,
            overwrite=False,
            attributes={
                "microprep": {
                    "kind": "ome-zarr",
                    "classes": list(self.labels.class_names),
                    "images": list(self.images),
                }
            },
        )
