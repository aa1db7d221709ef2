"""The augmentation pipeline: :class:`AugmentConfig`, :class:`Augmenter` and ``--noise`` specs.

One sample is a :class:`Sample` dict. The :class:`Augmenter` first applies the geometry to the
image and every target together, then the noise kinds, in the given order, to the image only;
boxes and areas are recomputed from the moved instance layers. Every draw comes from the
generator passed in; :func:`sample_rng` gives the per-sample generator used by ``prep
augment``, so a run is reproducible, also across DataLoader workers.

Example:
    >>> import numpy as np
    >>> config = AugmentConfig(noise=parse_noise("poisson:dose=50,blur:sigma=1"),
    ...                        geometry=("flip", "rot90", "rotate"))
    >>> sample = {"image": np.full((32, 32), 100, np.uint8),
    ...           "labels": np.zeros((32, 32), np.uint8)}
    >>> out = Augmenter(config)(sample, sample_rng(seed=0, index=0, copy=0))
    >>> out["image"].dtype, out["labels"].shape
    (dtype('uint8'), (32, 32))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microprep.augment import fields, geometry2d, geometry3d, noise
from microprep.errors import UsageError

__all__ = [
    "DEFAULTS",
    "GEOMETRY_KINDS",
    "AugmentConfig",
    "Augmenter",
    "NoiseSpec",
    "Sample",
    "apply_noise",
    "boxes_from_layers",
    "parse_geometry",
    "parse_noise",
    "sample_rng",
]

Array = NDArray[Any]


class Sample(TypedDict, total=False):
    """One sample. ``image`` ``(H, W[, C])`` / ``(Z, H, W[, C])``; ``labels`` ``(H, W)`` /
    ``(Z, H, W)`` class indices; ``instances`` ``(L, *spatial)`` uint32 instance-id layers
    (id ``i + 1`` for instance ``i``); ``boxes`` ``(N, 4)`` float64 ``x_min, y_min, x_max,
    y_max`` (volumes ``(N, 6)``), exclusive max; ``areas`` ``(N,)`` int64 pixel counts.
    ``boxes`` and ``areas`` are recomputed by the augmenter; an instance moved entirely out of
    the image keeps its row, with area 0 and box all zeros."""

    image: Array
    labels: Array
    instances: NDArray[np.uint32]
    boxes: NDArray[np.float64]
    areas: NDArray[np.int64]


#: Default parameters of every noise kind (units in :mod:`microprep.augment.noise`).
DEFAULTS: dict[str, dict[str, float]] = {
    "gaussian": {"sigma": 0.05},
    "poisson": {"dose": 50.0},
    "salt_and_pepper": {"amount": 0.01, "salt_ratio": 0.5},
    "jitter": {"max_shift": 1.5},
    "background": {"strength": 0.3, "scale": 128.0},
    "contrast": {"gamma": 0.8, "gain": 1.1, "bias": 0.0},
    "blur": {"sigma": 1.0},
}

_ALIASES = {
    "salt-and-pepper": "salt_and_pepper",
    "saltpepper": "salt_and_pepper",
    "sp": "salt_and_pepper",
    "shot": "poisson",
    "gauss": "gaussian",
    "scanline": "jitter",
    "illumination": "background",
    "gamma": "contrast",
}

#: Geometry kinds: ``flip`` and ``rot90`` (together: all 8 square / 48 cube symmetries),
#: ``rotate`` (any angle), ``zoom`` (float factor), ``field`` (smooth displacement field).
GEOMETRY_KINDS = ("flip", "rot90", "rotate", "zoom", "field")

#: Kinds that are pointwise and fuse into one draw for uint8 images.
_FUSABLE = ("gaussian", "poisson", "salt_and_pepper")


@dataclass(frozen=True, slots=True)
class NoiseSpec:
    """One noise kind and its parameters (defaults filled in from :data:`DEFAULTS`)."""

    kind: str
    params: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, for attributes."""
        return {"kind": self.kind, **dict(self.params)}


def _spec(kind: str, given: Mapping[str, float]) -> NoiseSpec:
    name = _ALIASES.get(kind.strip().lower().replace(" ", "_"), kind.strip().lower())
    if name not in DEFAULTS:
        raise UsageError(f"unknown noise kind {kind!r}; choose from {', '.join(DEFAULTS)}")
    unknown = sorted(set(given) - set(DEFAULTS[name]))
    if unknown:
        raise UsageError(
            f"noise {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(DEFAULTS[name])}"
        )
    spec = NoiseSpec(name, {**DEFAULTS[name], **{k: float(v) for k, v in given.items()}})
    # check the values now (cheaply, on a tiny float image), not halfway through a run
    _call(spec, np.zeros((4, 4), np.float32), np.random.default_rng(0), 2)
    return spec


def parse_noise(text: str) -> tuple[NoiseSpec, ...]:
    """Parse a ``--noise`` value: ``kind[:p=v[,p=v...]]`` items separated by commas.

    An item with ``=`` but no ``:`` continues the previous kind's parameters, so
    ``"contrast:gamma=0.7,gain=1.2,poisson:dose=20"`` is two kinds.

    Raises:
        UsageError: an unknown kind or parameter, or a value that is not a number.

    Example:
        >>> [(s.kind, dict(s.params)) for s in parse_noise("poisson:dose=20,blur")]
        [('poisson', {'dose': 20.0}), ('blur', {'sigma': 1.0})]
    """
    items: list[tuple[str, dict[str, float]]] = []
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        if ":" in token:
            kind, _, rest = token.partition(":")
            items.append((kind, {}))
            token = rest.strip()
            if not token:
                continue
        elif "=" not in token:
            items.append((token, {}))
            continue
        if not items:
            raise UsageError(f"--noise {text!r}: parameter {token!r} comes before any kind")
        key, eq, value = token.partition("=")
        if not eq:
            raise UsageError(f"--noise {text!r}: expected name=value, got {token!r}")
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--noise {text!r}: {key.strip()}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise UsageError(f"--noise {text!r}: {key.strip()}={value!r} is not finite")
        items[-1][1][key.strip()] = number
    return tuple(_spec(kind, params) for kind, params in items)


def parse_geometry(text: str) -> tuple[str, ...]:
    """Parse ``--geometry``: a comma list of :data:`GEOMETRY_KINDS`.

    Example:
        >>> parse_geometry("flip, rotate")
        ('flip', 'rotate')
    """
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in GEOMETRY_KINDS]
    if unknown:
        raise UsageError(
            f"unknown geometry {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(GEOMETRY_KINDS)}"
        )
    return kinds


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """What to do to each sample.

    Attributes:
        noise: noise kinds in order (image only), see :func:`parse_noise`.
        geometry: subset of :data:`GEOMETRY_KINDS`, applied to image and targets together.
        rotate_range: rotation angle range in degrees (uniform).
        zoom_range: zoom factor range (log-uniform; > 1 enlarges).
        field_alpha: largest displacement of the ``field`` geometry in pixels.
        field_grid: node spacing of the ``field`` geometry in pixels.
        cube: volumes only: ``flip`` + ``rot90`` draw from the 48 symmetries of the cube
            (axes permuted, for isotropic voxels); False keeps z in place (quarter turns in
            the y-x plane, flips of any axis: 16 symmetries), for anisotropic stacks.
    """

    noise: tuple[NoiseSpec, ...] = ()
    geometry: tuple[str, ...] = ()
    rotate_range: tuple[float, float] = (-180.0, 180.0)
    zoom_range: tuple[float, float] = (0.8, 1.25)
    field_alpha: float = 4.0
    field_grid: float = 64.0
    cube: bool = True

    def __post_init__(self) -> None:
        parse_geometry(",".join(self.geometry))
        lo, hi = self.zoom_range
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise UsageError(f"zoom range {self.zoom_range}: need 0 < low <= high")
        if not self.rotate_range[0] <= self.rotate_range[1]:
            raise UsageError(f"rotate range {self.rotate_range}: need low <= high")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, for attributes."""
        return {
            "noise": [s.as_dict() for s in self.noise],
            "geometry": list(self.geometry),
            "rotate_range": list(self.rotate_range),
            "zoom_range": list(self.zoom_range),
            "field_alpha": self.field_alpha,
            "field_grid": self.field_grid,
            "cube": self.cube,
        }


def sample_rng(*, seed: int, index: int, copy: int) -> np.random.Generator:
    """The generator of sample ``index``, copy ``copy``: ``default_rng(SeedSequence([seed,
    index, copy]))``. Independent of the process it runs in (reproducible across workers).

    Example:
        >>> int(sample_rng(seed=1, index=2, copy=0).integers(100)) == int(
        ...     sample_rng(seed=1, index=2, copy=0).integers(100))
        True
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(copy)]))


# --------------------------------------------------------------------------- noise


@lru_cache(maxsize=32)
def _fused_sampler(
    specs: tuple[tuple[str, tuple[tuple[str, float], ...]], ...],
) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    matrix = np.eye(256)
    for kind, params in specs:
        matrix = matrix @ noise.transition_matrix(kind, **dict(params))
    return noise.build_sampler(matrix)


def _call(spec: NoiseSpec, image: Array, rng: np.random.Generator, ndim: int) -> Array:
    p = dict(spec.params)
    if spec.kind == "gaussian":
        return noise.gaussian_noise(image, sigma=p["sigma"], rng=rng)
    if spec.kind == "poisson":
        return noise.poisson_noise(image, dose=p["dose"], rng=rng)
    if spec.kind == "salt_and_pepper":
        return noise.salt_and_pepper(image, amount=p["amount"], salt_ratio=p["salt_ratio"], rng=rng)
    if spec.kind == "jitter":
        return noise.scanline_jitter(image, max_shift=p["max_shift"], rng=rng, ndim=ndim)
    if spec.kind == "background":
        return noise.background(image, strength=p["strength"], scale=p["scale"], rng=rng, ndim=ndim)
    if spec.kind == "contrast":
        return noise.contrast(image, gamma=p["gamma"], gain=p["gain"], bias=p["bias"])
    if spec.kind == "blur":
        return noise.gaussian_blur(image, sigma=p["sigma"], ndim=ndim)
    raise UsageError(f"unknown noise kind {spec.kind!r}")


def apply_noise(
    image: Array, specs: Sequence[NoiseSpec], rng: np.random.Generator, *, ndim: int = 2
) -> Array:
    """Apply noise ``specs`` in order to ``image`` (``ndim`` spatial axes first).

    For single-channel uint8 images, consecutive gaussian / poisson / salt-and-pepper kinds are
    drawn in one go from the product of their transition matrices: the exact distribution of
    applying them one after the other.

    Example:
        >>> out = apply_noise(np.full((8, 8), 50, np.uint8), parse_noise("gaussian,poisson"),
        ...                   np.random.default_rng(0))
        >>> out.dtype
        dtype('uint8')
    """
    fusable = image.dtype == np.uint8 and (image.ndim == ndim or image.shape[-1] == 1)
    i = 0
    while i < len(specs):
        spec = specs[i]
        if fusable and spec.kind in _FUSABLE:
            j = i
            while j < len(specs) and specs[j].kind in _FUSABLE:
                j += 1
            if j - i > 1:
                key = tuple(
                    (s.kind, tuple(sorted((k, float(v)) for k, v in s.params.items())))
                    for s in specs[i:j]
                )
                image = noise.draw_levels(image, _fused_sampler(key), rng)
                i = j
                continue
        image = _call(spec, image, rng, ndim)
        i += 1
    return image


# --------------------------------------------------------------------------- boxes


def boxes_from_layers(
    layers: NDArray[np.uint32], n: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``(boxes, areas)`` of instances ``1..n`` in ``(L, *spatial)`` id layers.

    Boxes are ``x_min, y_min[, z_min], x_max, y_max[, z_max]`` float64, exclusive max; an
    instance without pixels gets a box of zeros and area 0.

    Example:
        >>> layers = np.zeros((1, 4, 5), np.uint32); layers[0, 1:3, 2:5] = 1
        >>> b, a = boxes_from_layers(layers, 1)
        >>> b.tolist(), a.tolist()
        ([[2.0, 1.0, 5.0, 3.0]], [6])
    """
    ndim = layers.ndim - 1
    boxes = np.zeros((n, 2 * ndim), np.float64)
    areas = np.zeros(n, np.int64)
    if n == 0:
        return boxes, areas
    lo = np.full((n, ndim), np.iinfo(np.int64).max, np.int64)
    hi = np.full((n, ndim), -1, np.int64)
    for layer in layers:
        found = ndimage.find_objects(layer, max_label=n)
        for i, sl in enumerate(found):
            if sl is None:
                continue
            areas[i] += int(np.count_nonzero(layer[sl] == i + 1))
            for axis, s in enumerate(sl):
                lo[i, axis] = min(lo[i, axis], s.start)
                hi[i, axis] = max(hi[i, axis], s.stop)
    present = areas > 0
    # axes are (z,) y, x; boxes list x first
    order = list(range(ndim))[::-1]
    boxes[present, :ndim] = lo[present][:, order]
    boxes[present, ndim:] = hi[present][:, order]
    return boxes, areas


# --------------------------------------------------------------------------- augmenter


def _spatial_ndim(sample: Sample) -> int:
    if "labels" in sample:
        return int(np.ndim(sample["labels"]))
    if "instances" in sample:
        return int(np.ndim(sample["instances"])) - 1
    image = sample.get("image")
    if image is None:
        return 2
    if image.ndim == 2:
        return 2
    if image.ndim == 3:
        return 2 if image.shape[-1] in (1, 3, 4) else 3
    return 3


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


def _draw_d4(geometry: tuple[str, ...], rng: np.random.Generator) -> int:
    """A :func:`~microprep.augment.geometry2d.d4` element for ``flip`` / ``rot90`` (0: none)."""
    if "flip" in geometry and "rot90" in geometry:
        return int(rng.integers(8))
    if "flip" in geometry:
        return int(rng.choice([0, 4, 6, 2]))  # identity, left-right, up-down, both
    if "rot90" in geometry:
        return int(rng.integers(4))
    return 0


class Augmenter:
    """``Augmenter(config)(sample, rng) -> sample``: one augmented copy of ``sample``.

    Geometry first (image bilinear / linear, labels and instances nearest, together), then the
    noise kinds on the image. The input sample is not modified (an array that nothing changed
    may be returned as is, sharing memory with the input). Deterministic given ``rng``.

    2D: ``flip`` and ``rot90`` draw a symmetry of the square (flip: one of the 4 flips /
    identity-flip pairs; both: any of the 8); ``rotate`` an angle from
    ``config.rotate_range``, ``zoom`` a factor from ``config.zoom_range`` (log-uniform), both
    as one warp; ``field`` a smooth displacement field. 3D: ``flip`` flips axes, ``rot90``
    permutes them (both: any of the 48 cube symmetries); ``rotate`` turns about z (in-plane),
    ``zoom`` scales all axes; ``field`` is a smooth 3D displacement field.

    Example:
        >>> aug = Augmenter(AugmentConfig(geometry=("flip",)))
        >>> lab = np.arange(4, dtype=np.uint8).reshape(2, 2)
        >>> sorted(aug({"labels": lab}, np.random.default_rng(0))["labels"].ravel().tolist())
        [0, 1, 2, 3]
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out: Sample = {}
        for key in ("image", "labels", "instances"):
            if key in sample:
                out[key] = np.asarray(sample[key])
        ndim = _spatial_ndim(out)
        if ndim not in (2, 3):
            raise UsageError(f"samples must have 2 or 3 spatial axes, not {ndim}")
        if ndim == 2:
            self._geometry_2d(out, rng)
        else:
            self._geometry_3d(out, rng)
        if "image" in out and self.config.noise:
            out["image"] = apply_noise(out["image"], self.config.noise, rng, ndim=ndim)
        if "instances" in out:
            layers = out["instances"]
            n = (
                int(np.asarray(sample["boxes"]).shape[0])
                if "boxes" in sample
                else int(layers.max(initial=0))
            )
            out["boxes"], out["areas"] = boxes_from_layers(layers, n)
        for key in ("image", "labels", "instances"):
            if key in out:
                out[key] = np.ascontiguousarray(out[key])  # type: ignore[literal-required]
        return out

    # -- 2D
    def _geometry_2d(self, out: Sample, rng: np.random.Generator) -> None:
        geo = self.config.geometry
        k = _draw_d4(geo, rng)
        angle = float(rng.uniform(*self.config.rotate_range)) if "rotate" in geo else 0.0
        zoom = 1.0
        if "zoom" in geo:
            lo, hi = self.config.zoom_range
            zoom = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
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
            if "flip" in geo and "rot90" in geo:
                k = int(rng.integers(48))
            elif "flip" in geo:
                k = int(rng.integers(8))
            else:
                k = 8 * int(rng.integers(6))
            if k:
                if "image" in out:
                    out["image"] = geometry3d.cube_symmetry(out["image"], k)
                if "labels" in out:
                    out["labels"] = geometry3d.cube_symmetry(out["labels"], k)
                if "instances" in out:
                    out["instances"] = geometry3d.cube_symmetry(out["instances"], k, first_axis=1)
        elif "flip" in geo or "rot90" in geo:
            # z stays the z axis: a symmetry of the y-x square, and a z flip
            k = _draw_d4(geo, rng)
            flip_z = "flip" in geo and bool(rng.integers(2))
            for key, first in (("image", 0), ("labels", 0), ("instances", 1)):
                if key in out:
                    arr = geometry2d.d4(out[key], k, axes=(first + 1, first + 2))  # type: ignore[literal-required]
                    out[key] = np.flip(arr, axis=first) if flip_z else arr  # type: ignore[literal-required]
        angle = float(rng.uniform(*self.config.rotate_range)) if "rotate" in geo else 0.0
        zoom = 1.0
        if "zoom" in geo:
            lo, hi = self.config.zoom_range
            zoom = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
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
