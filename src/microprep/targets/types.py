"""The target containers: what rasterization produces and what stores and exporters consume.

Arrays are in pixel (or voxel) units with the image's own axes: ``(H, W)`` for images,
``(Z, H, W)`` for volumes (``Z`` = slices / frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microprep.model import ImageInfo


@dataclass(frozen=True, slots=True, eq=False)
class Raster:
    """A bool mask cropped to the bounding box of its covered pixels.

    ``origin`` is the index of ``mask[0, 0]`` (``(top, left)``) or ``mask[0, 0, 0]``
    (``(z, top, left)``) in the full array. An empty raster has a zero-sized mask.

    Example:
        >>> r = Raster((1, 2), np.ones((2, 3), dtype=bool))
        >>> r.area, int(r.dense((4, 6)).sum())
        (6, 6)
    """

    origin: tuple[int, ...]
    mask: NDArray[np.bool_]

    @property
    def area(self) -> int:
        """Number of covered pixels (voxels)."""
        return int(np.count_nonzero(self.mask))

    def slices(self) -> tuple[slice, ...]:
        """Slices of the full array that the mask covers."""
        return tuple(slice(o, o + n) for o, n in zip(self.origin, self.mask.shape, strict=True))

    def paste(self, out: NDArray[np.generic], value: int | bool) -> None:
        """Set ``out[pixels of this raster] = value`` in place."""
        if self.mask.size:
            out[self.slices()][self.mask] = value

    def dense(self, shape: tuple[int, ...]) -> NDArray[np.bool_]:
        """The full-size bool mask of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        self.paste(out, True)
        return out

    def bounds(self) -> tuple[tuple[int, int], ...]:
        """Per axis ``(first, last + 1)`` of the covered pixels (tight), e.g. rows then cols."""
        out = []
        for axis in range(self.mask.ndim):
            other = tuple(a for a in range(self.mask.ndim) if a != axis)
            hit = np.flatnonzero(self.mask.any(axis=other))
            o = self.origin[axis]
            out.append((o + int(hit[0]), o + int(hit[-1]) + 1) if hit.size else (o, o))
        return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class Instances:
    """Every object of one image or volume, kept whole (overlaps are not resolved).

    Per object ``i``: ``rasters[i]`` its mask, ``labels[i]`` its class index (1..K, int64),
    ``boxes[i]`` its box as float64 ``x_min, y_min, x_max, y_max`` (exclusive max, clipped to the
    image) or, for volumes, ``x_min, y_min, z_min, x_max, y_max, z_max``; ``areas[i]`` its pixel
    (voxel) count; ``occluded[i]``; ``groups[i]`` the export's group id (0: none);
    ``tracks[i]`` the track id (-1: none). ``shape`` is the full array shape.
    """

    shape: tuple[int, ...]
    rasters: tuple[Raster, ...]
    labels: NDArray[np.int64]
    boxes: NDArray[np.float64]
    areas: NDArray[np.int64]
    occluded: NDArray[np.bool_]
    groups: NDArray[np.int64]
    tracks: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.rasters)

    @staticmethod
    def empty(shape: tuple[int, ...]) -> Instances:
        """No objects."""
        return Instances(
            shape=shape,
            rasters=(),
            labels=np.zeros(0, np.int64),
            boxes=np.zeros((0, 2 * len(shape)), np.float64),
            areas=np.zeros(0, np.int64),
            occluded=np.zeros(0, bool),
            groups=np.zeros(0, np.int64),
            tracks=np.full(0, -1, np.int64),
        )

    def dense(self) -> NDArray[np.bool_]:
        """All masks as one ``(N, *shape)`` bool array (can be large: prefer ``rasters``)."""
        out = np.zeros((len(self), *self.shape), dtype=bool)
        for i, raster in enumerate(self.rasters):
            raster.paste(out[i], True)
        return out

    def layers(self) -> NDArray[np.uint32]:
        """A lossless, compact layout: ``(L, *shape)`` uint32 maps of instance ids ``1..N``.

        Objects are placed greedily, in order, into the first layer where they overlap nothing
        already placed, so ``L`` is 1 when no objects overlap and every pixel of every object
        appears in exactly one layer. ``0`` means no object. Always at least one layer.
        """
        layers: list[NDArray[np.uint32]] = [np.zeros(self.shape, np.uint32)]
        for i, raster in enumerate(self.rasters, start=1):
            if not raster.mask.size:
                continue
            sl = raster.slices()
            for layer in layers:
                if not np.any(layer[sl][raster.mask]):
                    break
            else:
                layer = np.zeros(self.shape, np.uint32)
                layers.append(layer)
            raster.paste(layer, i)
        return np.stack(layers)


@dataclass(frozen=True, slots=True, eq=False)
class Targets:
    """Every target of one image (``images`` has one entry) or one volume (one per slice).

    ``name`` is the image name, or the volume's name. ``class_map`` is ``(H, W)`` or
    ``(Z, H, W)``, uint8 (uint16 past 255 classes): 0 background, 1..K the classes.
    ``num_classes`` counts background (K + 1). ``skipped`` counts objects left out of
    ``instances`` because no pixel of theirs lies inside the image.
    """

    name: str
    images: tuple[ImageInfo, ...]
    class_map: NDArray[np.unsignedinteger]
    instances: Instances
    num_classes: int
    skipped: int = 0

    def one_hot(self) -> NDArray[np.uint8]:
        """``(C, H, W)`` (or ``(C, Z, H, W)``) uint8, ``C = num_classes``; 1 per pixel."""
        return one_hot(self.class_map, self.num_classes)


def one_hot(class_map: NDArray[np.unsignedinteger], num_classes: int) -> NDArray[np.uint8]:
    """One-hot encode a class-index map into ``(C, *class_map.shape)`` uint8.

    Example:
        >>> one_hot(np.array([[0, 2]], np.uint8), 3)[:, 0, 1].tolist()
        [0, 0, 1]
    """
    classes = np.arange(num_classes, dtype=class_map.dtype).reshape(-1, *([1] * class_map.ndim))
    out: NDArray[np.uint8] = (class_map[None] == classes).astype(np.uint8)
    return out


def class_dtype(num_classes: int) -> type[np.unsignedinteger]:
    """uint8 up to 256 class values (background included), uint16 beyond."""
    return np.uint8 if num_classes <= 256 else np.uint16
