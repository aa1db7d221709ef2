"""The geometry steps of :class:`~microprep.augment.pipeline.Augmenter`, 2D and 3D.

Geometry moves the image and every target together: the image bilinear / linear, labels and
instance layers nearest. Areas warped in from outside the image get the range's low end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment import fields, geometry2d, geometry3d
from microprep.augment.config import AugmentConfig
from microprep.augment.sample import Sample

__all__: list[str] = []

Array = NDArray[Any]


def _floor_filled(warp: Callable[[Array], Array], image: Array) -> Array:
    """``warp(image)`` with the area from outside the image at the range's low end.

    Warps fill with 0, which is the low end of unsigned integer ranges; a float image (range
    ``[min, max]``) is warped as ``image - min``, so the fill is ``min`` and the range holds.
    """
    if image.dtype.kind != "f" or image.size == 0:
        return warp(np.ascontiguousarray(image))
    low = image.dtype.type(np.min(image))
    moved = warp(np.ascontiguousarray(image - low))
    moved += low
    return moved


def _draw_d4(geometry: tuple[str, ...], rng: np.random.Generator, *, square: bool = True) -> int:
    """A :func:`~microprep.augment.geometry2d.d4` element for ``flip`` / ``rot90`` (0: none).

    ``square=False`` (a sample whose shape must not change, and whose two axes differ) draws
    only the elements that keep the axes in place: no quarter turn, so half turns and flips.
    """
    if "flip" in geometry and "rot90" in geometry:
        return int(rng.integers(8)) if square else int(rng.choice([0, 2, 4, 6]))
    if "flip" in geometry:
        return int(rng.choice([0, 4, 6, 2]))  # identity, left-right, up-down, both
    if "rot90" in geometry:
        return int(rng.integers(4)) if square else 2 * int(rng.integers(2))
    return 0


def _draw_cube(geometry: tuple[str, ...], rng: np.random.Generator, shape: tuple[int, ...]) -> int:
    """A :func:`~microprep.augment.geometry3d.cube_symmetry` element for ``flip`` / ``rot90``;
    ``shape`` given: only the elements whose axis permutation keeps that shape (a 16x64x64
    window never turns z into y)."""
    if "flip" in geometry and "rot90" in geometry:
        candidates = list(range(48))
    elif "flip" in geometry:
        candidates = list(range(8))
    else:
        candidates = [8 * p for p in range(6)]
    if shape:
        kept = [k for k in candidates if geometry3d.permuted_shape(shape, k) == shape]
        if len(kept) < len(candidates):
            return kept[int(rng.integers(len(kept)))]
    return candidates[int(rng.integers(len(candidates)))]


class _GeometrySteps:
    """The 2D and 3D geometry of :class:`~microprep.augment.pipeline.Augmenter`."""

    config: AugmentConfig
    keep_shape: bool

    def _draw_angle_zoom(self, rng: np.random.Generator) -> tuple[float, float]:
        """Rotation angle (degrees; 0 without "rotate") and zoom (log-uniform; 1 without "zoom")."""
        geo = self.config.geometry
        angle = float(rng.uniform(*self.config.rotate_range)) if "rotate" in geo else 0.0
        zoom = 1.0
        if "zoom" in geo:
            lo, hi = self.config.zoom_range
            zoom = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return angle, zoom

    # -- 2D
    def _fixed_shape(self, out: Sample, ndim: int) -> tuple[int, ...]:
        """The spatial shape the sample must keep (Dataset windows), or () when it may change."""
        return self._shape(out, ndim) if self.keep_shape else ()

    def _geometry_2d(self, out: Sample, rng: np.random.Generator) -> None:
        geo = self.config.geometry
        fixed = self._fixed_shape(out, 2)
        k = _draw_d4(geo, rng, square=not fixed or fixed[0] == fixed[1])
        angle, zoom = self._draw_angle_zoom(rng)
        if angle != 0.0 or zoom != 1.0:
            # the symmetry, rotation and zoom as one warp: each array is resampled once
            h, w = self._shape(out, 2)
            symmetry, (h2, w2) = geometry2d.d4_matrix((h, w), k)
            turn = np.vstack(
                [geometry2d.affine_matrix((h2, w2), angle=angle, zoom=zoom), [0, 0, 1]]
            )
            matrix = (turn @ symmetry)[:2]
            if "image" in out:
                out["image"] = _floor_filled(
                    lambda img: geometry2d.warp_image(img, matrix, (h2, w2)), out["image"]
                )
            planes, restore = self._planes(out)
            restore(geometry2d.warp_labels(planes, matrix, (h2, w2)))
        elif k:
            if "image" in out:
                out["image"] = geometry2d.d4(out["image"], k)
            if "labels" in out:
                out["labels"] = geometry2d.d4(out["labels"], k)
            if "instances" in out:
                out["instances"] = geometry2d.d4(out["instances"], k, axes=(1, 2))
        if "field" in geo:
            shape = self._shape(out, 2)
            disp = fields.random_field(
                (shape[0], shape[1]),
                alpha=self.config.field_alpha,
                grid=self.config.field_grid,
                rng=rng,
            )
            if "image" in out:
                out["image"] = _floor_filled(
                    lambda img: fields.remap_image(img, disp), out["image"]
                )
            planes, restore = self._planes(out)
            restore(fields.remap_labels(planes, disp))

    @staticmethod
    def _shape(out: Sample, ndim: int) -> tuple[int, ...]:
        if "labels" in out:
            return tuple(out["labels"].shape)
        if "instances" in out:
            return tuple(out["instances"].shape[1:])
        return tuple(out["image"].shape[:ndim])

    @staticmethod
    def _planes(out: Sample) -> tuple[list[Array], Callable[[list[Array]], None]]:
        planes: list[Array] = []
        if "labels" in out:
            planes.append(np.ascontiguousarray(out["labels"]))
        if "instances" in out:
            planes.extend(np.ascontiguousarray(layer) for layer in out["instances"])

        def restore(moved: list[Array]) -> None:
            rest = list(moved)
            if "labels" in out:
                out["labels"] = rest.pop(0)
            if "instances" in out:
                out["instances"] = np.stack(rest).astype(np.uint32, copy=False)

        return planes, restore

    # -- 3D
    def _geometry_3d(self, out: Sample, rng: np.random.Generator) -> None:
        geo = self.config.geometry
        if ("flip" in geo or "rot90" in geo) and self.config.cube:
            k = _draw_cube(geo, rng, self._fixed_shape(out, 3))
            if k:
                if "image" in out:
                    out["image"] = geometry3d.cube_symmetry(out["image"], k)
                if "labels" in out:
                    out["labels"] = geometry3d.cube_symmetry(out["labels"], k)
                if "instances" in out:
                    out["instances"] = geometry3d.cube_symmetry(out["instances"], k, first_axis=1)
        elif "flip" in geo or "rot90" in geo:
            # z stays the z axis: a symmetry of the y-x square, and a z flip
            fixed = self._fixed_shape(out, 3)
            k = _draw_d4(geo, rng, square=not fixed or fixed[1] == fixed[2])
            flip_z = "flip" in geo and bool(rng.integers(2))
            for key, first in (("image", 0), ("labels", 0), ("instances", 1)):
                if key in out:
                    arr = geometry2d.d4(out[key], k, axes=(first + 1, first + 2))  # type: ignore[literal-required]
                    out[key] = np.flip(arr, axis=first) if flip_z else arr  # type: ignore[literal-required]
        angle, zoom = self._draw_angle_zoom(rng)
        if angle != 0.0 or zoom != 1.0:
            shape = self._shape(out, 3)
            matrix, offset = geometry3d.rotation_zoom_3d(
                (shape[0], shape[1], shape[2]), angles=(angle, 0.0, 0.0), zoom=zoom
            )
            if "image" in out:
                out["image"] = _floor_filled(
                    lambda img: geometry3d.transform_volume(img, matrix, offset, nearest=False),
                    out["image"],
                )
            if "labels" in out:
                out["labels"] = geometry3d.transform_volume(
                    np.ascontiguousarray(out["labels"]), matrix, offset, nearest=True
                )
            if "instances" in out:
                out["instances"] = np.stack(
                    [
                        geometry3d.transform_volume(
                            np.ascontiguousarray(layer), matrix, offset, nearest=True
                        )
                        for layer in out["instances"]
                    ]
                ).astype(np.uint32, copy=False)
        if "field" in geo:
            z, h, w = self._shape(out, 3)
            disp = fields.random_field_3d(
                (z, h, w), alpha=self.config.field_alpha, grid=self.config.field_grid, rng=rng
            )
            if "image" in out:
                out["image"] = _floor_filled(
                    lambda img: fields.remap_volume(img, disp, nearest=False), out["image"]
                )
            if "labels" in out:
                out["labels"] = fields.remap_volume(out["labels"], disp, nearest=True)
            if "instances" in out:
                out["instances"] = np.stack(
                    [fields.remap_volume(layer, disp, nearest=True) for layer in out["instances"]]
                ).astype(np.uint32, copy=False)
