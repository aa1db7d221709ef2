"""Build every target of one image or one volume from its shapes.

* **Class map**: shapes are painted in ``(z_order, order)`` order, so a higher z_order wins and,
  at equal z_order, the shape later in the file wins. 0 is background, 1..K the classes in
  label-map order. Tags are not drawn.
* **Objects** (instances): every shape is one object, except that shapes sharing a non-zero group
  id *and* a label form one object (CVAT groups the parts of one object this way), and, in a
  volume, the shapes of one track (over all slices) form one 3D object. Objects keep all their
  pixels, including those hidden under other objects in the class map.
* **Boxes**: ``x_min, y_min, x_max, y_max`` floats (exclusive max) of what is drawn, clipped to
  the image; a box shape gives its own (rotated boxes: their corners' extent).
* Objects with no pixel inside the image are left out of the instances and counted in
  ``Targets.skipped``.
* **Ignore** (labels with role ``ignore``, see :mod:`microprep.classes`): their shapes paint
  ``labels.ignore_index`` (255) by the same ``(z_order, order)`` rule, so a shape above them
  overwrites them and they overwrite shapes below; they are not objects. Labels with role
  ``region`` paint nothing; when the label map has any, every pixel outside all region shapes of
  its image (slice) is set to the ignore value, the whole image when it has none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError
from microprep.model import SPATIAL_KINDS, AnnotatedImage, LabelMap, Shape
from microprep.targets.raster import RasterOptions, drawn_extent, rasterize_shape
from microprep.targets.types import Instances, Raster, Targets, class_dtype

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Part:
    z: int
    shape: Shape
    raster: Raster
    extent: tuple[float, ...]
    value: int


def _class_index(labels: LabelMap, shape: Shape, image: str) -> int:
    spec = labels.get(shape.label)
    if spec is not None and spec.role == "ignore" and labels.ignore_index is not None:
        return labels.ignore_index
    try:
        return labels.index(shape.label)
    except KeyError:
        raise UsageError(
            f"image {image!r}: shape label {shape.label!r} is not a class of the label map"
        ) from None


def _object_key(shape: Shape, z: int, index: int, volume: bool) -> tuple[object, ...]:
    if shape.group:
        return ("group", shape.group, shape.label)
    if volume and shape.track_id is not None:
        return ("track", shape.track_id)
    return ("shape", z, index)


def _union(parts: Sequence[_Part], depth: int) -> Raster:
    """Union of the parts' 2D rasters as one 3D raster (z, top, left)."""
    filled = [p for p in parts if p.raster.mask.size]
    if not filled:
        return Raster((0, 0, 0), np.zeros((0, 0, 0), dtype=bool))
    z0 = min(p.z for p in filled)
    z1 = max(p.z for p in filled) + 1
    t0 = min(p.raster.origin[0] for p in filled)
    l0 = min(p.raster.origin[1] for p in filled)
    t1 = max(p.raster.origin[0] + p.raster.mask.shape[0] for p in filled)
    l1 = max(p.raster.origin[1] + p.raster.mask.shape[1] for p in filled)
    out = np.zeros((z1 - z0, t1 - t0, l1 - l0), dtype=bool)
    for p in filled:
        (t, left), (h, w) = p.raster.origin, p.raster.mask.shape
        out[p.z - z0, t - t0 : t - t0 + h, left - l0 : left - l0 + w] |= p.raster.mask
    return Raster((z0, t0, l0), out)


def _build(
    name: str,
    frames: Sequence[AnnotatedImage],
    labels: LabelMap,
    options: RasterOptions,
    volume: bool,
) -> Targets:
    if not frames:
        raise UsageError(f"{name!r}: no images to build targets from")
    height, width = frames[0].image.height, frames[0].image.width
    for frame in frames:
        if (frame.image.height, frame.image.width) != (height, width):
            raise UsageError(
                f"{name!r}: slice {frame.image.name!r} is {frame.image.width}x"
                f"{frame.image.height}, the first slice {width}x{height}; a volume needs one size"
            )
    depth = len(frames)
    num_classes = labels.num_classes
    ignore = labels.ignore_index
    regions = labels.names_with_role("region")
    dtype = class_dtype(num_classes + (ignore is not None))
    class_map = np.zeros((depth, height, width), dtype=dtype)
    objects: dict[tuple[object, ...], list[_Part]] = {}
    for z, frame in enumerate(frames):
        parts = []
        annotated = np.zeros((height, width), dtype=bool) if regions else None
        for i, shape in enumerate(frame.shapes):
            if shape.kind not in SPATIAL_KINDS:
                continue
            raster = rasterize_shape(shape, height, width, options)
            if annotated is not None and shape.label in regions:
                raster.paste(annotated, True)
                continue
            value = _class_index(labels, shape, frame.image.name)
            part = _Part(z, shape, raster, drawn_extent(shape, options), value)
            parts.append(part)
            if value != ignore:
                objects.setdefault(_object_key(shape, z, i, volume), []).append(part)
        plane = class_map[z]
        for part in sorted(parts, key=lambda p: (p.shape.z_order, p.shape.order)):
            part.raster.paste(plane, part.value)
        if annotated is not None and ignore is not None:
            plane[~annotated] = ignore

    rasters: list[Raster] = []
    rows: list[tuple[int, bool, int, int]] = []
    boxes: list[list[float]] = []
    skipped = 0
    for obj in objects.values():
        if not volume and len(obj) == 1:
            # the common case: one shape, one object; no union needed
            flat = obj[0].raster
            raster = Raster((0, *flat.origin), flat.mask[None])
        else:
            raster = _union(obj, depth)
        if not raster.mask.size or not raster.mask.any():
            skipped += 1
            continue
        first = obj[0].shape
        filled = [p for p in obj if p.raster.mask.size]
        x0 = max(0.0, min(p.extent[0] for p in filled))
        y0 = max(0.0, min(p.extent[1] for p in filled))
        x1 = min(float(width), max(p.extent[2] for p in filled))
        y1 = min(float(height), max(p.extent[3] for p in filled))
        if volume:
            (z0, z1), _, _ = raster.bounds()
            boxes.append([x0, y0, float(z0), x1, y1, float(z1)])
        else:
            boxes.append([x0, y0, x1, y1])
        rasters.append(raster if volume else Raster(raster.origin[1:], raster.mask[0]))
        rows.append(
            (
                labels.index(first.label),
                any(p.shape.occluded for p in obj),
                first.group,
                -1 if first.track_id is None else first.track_id,
            )
        )
    if skipped:
        log.info("%s: %d object(s) have no pixel inside the image and were left out", name, skipped)
    full: tuple[int, ...] = (depth, height, width) if volume else (height, width)
    if rasters:
        table = np.array(rows, dtype=np.int64)
        instances = Instances(
            shape=full,
            rasters=tuple(rasters),
            labels=table[:, 0].copy(),
            boxes=np.array(boxes, dtype=np.float64),
            areas=np.array([r.area for r in rasters], dtype=np.int64),
            occluded=table[:, 1].astype(bool),
            groups=table[:, 2].copy(),
            tracks=table[:, 3].copy(),
        )
    else:
        instances = Instances.empty(full)
    cmap: NDArray[np.unsignedinteger] = class_map if volume else class_map[0]
    images = tuple(frame.image for frame in frames)
    return Targets(name, images, cmap, instances, num_classes, skipped=skipped)


def build_targets(
    item: AnnotatedImage, labels: LabelMap, options: RasterOptions = RasterOptions()
) -> Targets:
    """Class map ``(H, W)``, objects and boxes of one image.

    Example:
        >>> import numpy as np
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> box = Shape(kind="box", label="grain", points=np.array([[1.0, 1.0], [3.0, 2.0]]))
        >>> t = build_targets(
        ...     AnnotatedImage(ImageInfo("a.png", 4, 3), (box,)), LabelMap((LabelSpec("grain"),))
        ... )
        >>> t.class_map.tolist(), t.instances.boxes.tolist()
        ([[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], [[1.0, 1.0, 3.0, 2.0]])
    """
    return _build(item.image.name, [item], labels, options, volume=False)


def build_volume_targets(
    name: str,
    frames: Sequence[AnnotatedImage],
    labels: LabelMap,
    options: RasterOptions = RasterOptions(),
) -> Targets:
    """Class map ``(Z, H, W)`` (z = position of the frame in ``frames``) and 3D objects.

    The shapes of one track become one object spanning the slices where it is drawn; boxes are
    ``x_min, y_min, z_min, x_max, y_max, z_max`` (z in slices, exclusive max).
    """
    return _build(name, frames, labels, options, volume=True)
