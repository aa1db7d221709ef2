"""The targets of one large image, built band by band of rows within a memory budget.

:func:`build_banded` gives a :class:`BandedTargets`: the per-object tables (labels, boxes,
areas, flags) of the whole image, and :meth:`BandedTargets.bands`, which builds the class map,
the object masks and the instance layers of one band of rows at a time. Put together, the bands
equal what :func:`~microprep.targets.build.build_targets` builds whole, pixel for pixel (the same
painting order, ignore and region rules; the same objects, ids and greedy layers): a first pass
over the bands measures each object (its pixels, which objects overlap it), a second one, each
time :meth:`~BandedTargets.bands` is iterated, draws them.

Memory: one band's class map, object masks and layers, and the shapes' scanline temporaries;
the sinks write each band before the next is drawn (see :mod:`microprep.memory`).

Example:
    >>> import numpy as np
    >>> from microprep.model import ImageInfo, LabelSpec, Shape
    >>> box = Shape(kind="box", label="grain", points=np.array([[1.0, 1.0], [3.0, 3.0]]))
    >>> item = AnnotatedImage(ImageInfo("a.png", 4, 4), (box,))
    >>> banded = build_banded(item, LabelMap((LabelSpec("grain"),)), band_rows=2)
    >>> [band.class_map.tolist() for band in banded.bands()]
    [[[0, 0, 0, 0], [0, 1, 1, 0]], [[0, 1, 1, 0], [0, 0, 0, 0]]]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.model import SPATIAL_KINDS, AnnotatedImage, ImageInfo, LabelMap, Shape
from microprep.targets.build import _class_index, _object_key
from microprep.targets.raster import RasterOptions, drawn_extent, rasterize_shape
from microprep.targets.types import Instances, Raster, class_dtype

log = logging.getLogger(__name__)

__all__ = ["Band", "BandedTargets", "build_banded"]


@dataclass(frozen=True, slots=True, eq=False)
class Band:
    """Rows ``top .. top + len(class_map)`` of an image.

    ``class_map`` ``(rows, W)``; ``rasters[i]`` object ``i``'s mask in these rows (origin in
    image coordinates; zero-sized where it has none); ``layers`` ``(L, rows, W)`` uint32, the
    rows of :meth:`~microprep.targets.types.Instances.layers`.
    """

    top: int
    class_map: NDArray[np.unsignedinteger]
    rasters: tuple[Raster, ...]
    layers: NDArray[np.uint32]


@dataclass(slots=True)
class _Shape:
    index: int
    shape: Shape
    value: int
    region: bool
    extent: tuple[float, ...]
    drawn: bool = False  # some band has a non-empty window of it


@dataclass(frozen=True, slots=True, eq=False)
class BandedTargets:
    """Every target of one image, its pixel arrays built band by band.

    ``instances`` holds the tables of the objects with pixels (its ``rasters`` are zero-sized
    placeholders: the masks come with each :class:`Band`); ``layer_of[i]`` is object ``i``'s
    layer, ``num_layers`` the layers' count; ``band_rows`` the rows of each band (the last may
    be shorter).
    """

    name: str
    images: tuple[ImageInfo, ...]
    shape: tuple[int, int]
    num_classes: int
    instances: Instances
    skipped: int
    layer_of: NDArray[np.int64]
    num_layers: int
    band_rows: int
    dtype: type[np.unsignedinteger]
    _labels: LabelMap
    _options: RasterOptions
    _shapes: tuple[_Shape, ...]
    _objects: tuple[tuple[int, ...], ...]

    def windows(self) -> Iterator[tuple[int, int]]:
        """``(first, stop)`` of each band."""
        height = self.shape[0]
        for top in range(0, height, self.band_rows):
            yield top, min(height, top + self.band_rows)

    def bands(self) -> Iterator[Band]:
        """The bands, top to bottom, each built when asked for."""
        width = self.shape[1]
        ignore = self._labels.ignore_index
        has_regions = any(s.region for s in self._shapes)
        for rows in self.windows():
            top, stop = rows
            rasters = {
                s.index: _draw(s.shape, self.shape, self._options, rows) for s in self._shapes
            }
            plane = np.zeros((stop - top, width), dtype=self.dtype)
            annotated = np.zeros(plane.shape, dtype=bool) if has_regions else None
            painted = [s for s in self._shapes if not s.region]
            for s in sorted(painted, key=lambda s: (s.shape.z_order, s.shape.order)):
                _paste(rasters[s.index], plane, top, s.value)
            if annotated is not None:
                for s in self._shapes:
                    if s.region:
                        _paste(rasters[s.index], annotated, top, True)
                if ignore is not None:
                    plane[~annotated] = ignore
            masks = tuple(_union([rasters[i] for i in parts], rows) for parts in self._objects)
            layers = np.zeros((self.num_layers, stop - top, width), dtype=np.uint32)
            for k, mask in enumerate(masks):
                _paste(mask, layers[int(self.layer_of[k])], top, k + 1)
            yield Band(top, plane, masks, layers)


def _draw(
    shape: Shape, size: tuple[int, int], options: RasterOptions, rows: tuple[int, int]
) -> Raster:
    return rasterize_shape(shape, size[0], size[1], options, rows=rows)


def _paste(raster: Raster, out: NDArray[np.generic], top: int, value: int | bool) -> None:
    """``raster.paste`` into the band ``out`` whose first row is image row ``top``."""
    if raster.mask.size:
        Raster((raster.origin[0] - top, raster.origin[1]), raster.mask).paste(out, value)


def _union(parts: list[Raster], rows: tuple[int, int]) -> Raster:
    """The union of the rasters (in ``rows``), cropped to their windows' extent."""
    filled = [r for r in parts if r.mask.size]
    if len(filled) <= 1:
        return filled[0] if filled else Raster((rows[0], 0), np.zeros((0, 0), dtype=bool))
    t0 = min(r.origin[0] for r in filled)
    l0 = min(r.origin[1] for r in filled)
    t1 = max(r.origin[0] + r.mask.shape[0] for r in filled)
    l1 = max(r.origin[1] + r.mask.shape[1] for r in filled)
    out = np.zeros((t1 - t0, l1 - l0), dtype=bool)
    for r in filled:
        (t, left), (h, w) = r.origin, r.mask.shape
        out[t - t0 : t - t0 + h, left - l0 : left - l0 + w] |= r.mask
    return Raster((t0, l0), out)


def _overlap(a: Raster, b: Raster) -> bool:
    """Whether two 2D rasters share a pixel."""
    if not (a.mask.size and b.mask.size):
        return False
    t0, l0 = max(a.origin[0], b.origin[0]), max(a.origin[1], b.origin[1])
    t1 = min(a.origin[0] + a.mask.shape[0], b.origin[0] + b.mask.shape[0])
    l1 = min(a.origin[1] + a.mask.shape[1], b.origin[1] + b.mask.shape[1])
    if t1 <= t0 or l1 <= l0:
        return False
    ma = a.mask[t0 - a.origin[0] : t1 - a.origin[0], l0 - a.origin[1] : l1 - a.origin[1]]
    mb = b.mask[t0 - b.origin[0] : t1 - b.origin[0], l0 - b.origin[1] : l1 - b.origin[1]]
    return bool(np.any(ma & mb))


def _layers(order: list[int], pairs: set[tuple[int, int]]) -> list[int]:
    """Greedy layers of the objects ``order`` (the first layer holding none they overlap), as
    :meth:`~microprep.targets.types.Instances.layers` places them."""
    members: list[list[int]] = []
    out = []
    for i in order:
        for k, layer in enumerate(members):
            if not any((min(i, j), max(i, j)) in pairs for j in layer):
                layer.append(i)
                out.append(k)
                break
        else:
            members.append([i])
            out.append(len(members) - 1)
    return out


def build_banded(
    item: AnnotatedImage,
    labels: LabelMap,
    options: RasterOptions = RasterOptions(),
    *,
    band_rows: int,
) -> BandedTargets:
    """The targets of one 2D image, to be drawn in bands of ``band_rows`` rows.

    Measures every object over the bands first (pixels, overlaps); raises what
    :func:`~microprep.targets.build.build_targets` raises (a label outside the label map).
    """
    if band_rows < 1:
        raise ValueError(f"band_rows must be at least 1, not {band_rows}")
    height, width = item.image.height, item.image.width
    ignore = labels.ignore_index
    regions = labels.names_with_role("region")
    shapes: list[_Shape] = []
    objects: dict[tuple[object, ...], list[int]] = {}
    for i, shape in enumerate(item.shapes):
        if shape.kind not in SPATIAL_KINDS:
            continue
        region = shape.label in regions
        value = 0 if region else _class_index(labels, shape, item.image.name)
        shapes.append(_Shape(i, shape, value, region, drawn_extent(shape, options)))
        if not region and value != ignore:
            objects.setdefault(_object_key(shape, 0, i, False), []).append(i)
    by_index = {s.index: s for s in shapes}
    groups = list(objects.values())
    # candidate overlapping objects: their drawn extents intersect
    extents = np.array(
        [
            [
                min(by_index[i].extent[0] for i in g),
                min(by_index[i].extent[1] for i in g),
                max(by_index[i].extent[2] for i in g),
                max(by_index[i].extent[3] for i in g),
            ]
            for g in groups
        ]
    ).reshape(-1, 4)
    boxes_geom = shapely.box(extents[:, 0], extents[:, 1], extents[:, 2], extents[:, 3])
    left, right = np.asarray(shapely.STRtree(boxes_geom).query(boxes_geom, predicate="intersects"))
    candidates = [(int(a), int(b)) for a, b in zip(left, right, strict=True) if a < b]
    areas = np.zeros(len(groups), dtype=np.int64)
    pairs: set[tuple[int, int]] = set()
    size = (height, width)
    banded_rows = band_rows
    for top in range(0, height, banded_rows):
        rows = (top, min(height, top + banded_rows))
        drawn = {i: _draw(by_index[i].shape, size, options, rows) for g in groups for i in g}
        for i, raster in drawn.items():
            by_index[i].drawn |= raster.mask.size > 0
        masks = [_union([drawn[i] for i in g], rows) for g in groups]
        areas += [m.area for m in masks]
        pairs.update(p for p in candidates if p not in pairs and _overlap(masks[p[0]], masks[p[1]]))
    keep = [k for k in range(len(groups)) if areas[k] > 0]
    skipped = len(groups) - len(keep)
    if skipped:
        log.info(
            "%s: %d object(s) have no pixel inside the image and were left out",
            item.image.name,
            skipped,
        )
    rows_table: list[tuple[int, bool, int, int]] = []
    boxes: list[list[float]] = []
    for k in keep:
        parts = [by_index[i] for i in groups[k]]
        filled = [p for p in parts if p.drawn]
        first = parts[0].shape
        boxes.append(
            [
                max(0.0, min(p.extent[0] for p in filled)),
                max(0.0, min(p.extent[1] for p in filled)),
                min(float(width), max(p.extent[2] for p in filled)),
                min(float(height), max(p.extent[3] for p in filled)),
            ]
        )
        rows_table.append(
            (
                labels.index(first.label),
                any(p.shape.occluded for p in parts),
                first.group,
                -1 if first.track_id is None else first.track_id,
            )
        )
    empty = Raster((0, 0), np.zeros((0, 0), dtype=bool))
    if keep:
        table = np.array(rows_table, dtype=np.int64)
        instances = Instances(
            shape=size,
            rasters=tuple(empty for _ in keep),
            labels=table[:, 0].copy(),
            boxes=np.array(boxes, dtype=np.float64),
            areas=areas[keep],
            occluded=table[:, 1].astype(bool),
            groups=table[:, 2].copy(),
            tracks=table[:, 3].copy(),
        )
    else:
        instances = Instances.empty(size)
    renumber = {k: n for n, k in enumerate(keep)}
    kept_pairs = {(renumber[a], renumber[b]) for a, b in pairs if a in renumber and b in renumber}
    layer_of = np.array(_layers(list(range(len(keep))), kept_pairs), dtype=np.int64)
    return BandedTargets(
        name=item.image.name,
        images=(item.image,),
        shape=size,
        num_classes=labels.num_classes,
        instances=instances,
        skipped=skipped,
        layer_of=layer_of,
        num_layers=int(layer_of.max()) + 1 if len(layer_of) else 1,
        band_rows=band_rows,
        dtype=class_dtype(labels.num_classes + (ignore is not None)),
        _labels=labels,
        _options=options,
        _shapes=tuple(shapes),
        _objects=tuple(tuple(groups[k]) for k in keep),
    )
