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

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment import noise
from microprep.augment.config import (
    DEFAULTS,
    GEOMETRY_KINDS,
    AugmentConfig,
    NoiseSpec,
    _call,
    parse_geometry,
    parse_noise,
    sample_rng,
)
from microprep.augment.geometry_steps import _GeometrySteps
from microprep.augment.microscopy import microscopy_noise
from microprep.augment.sample import Sample, boxes_from_layers
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

#: Kinds that are pointwise and fuse into one draw for uint8 images.
_FUSABLE = ("gaussian", "poisson", "salt_and_pepper")


# --------------------------------------------------------------------------- noise


@lru_cache(maxsize=32)
def _fused_sampler(
    specs: tuple[tuple[str, tuple[tuple[str, float], ...]], ...],
) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    matrix = np.eye(256)
    for kind, params in specs:
        matrix = matrix @ noise.transition_matrix(kind, **dict(params))
    return noise.build_sampler(matrix)


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


class Augmenter(_GeometrySteps):
    """``Augmenter(config)(sample, rng) -> sample``: one augmented copy of ``sample``.

    Geometry first (image bilinear / linear, labels and instances nearest, together), then the
    noise kinds and the ``config.recipe`` draws on the image. The input sample is not
    modified (an array that nothing changed may be returned as is, sharing memory with the
    input). Deterministic given ``rng``.

    2D: ``flip`` and ``rot90`` draw a symmetry of the square (flip: one of the 4 flips /
    identity-flip pairs; both: any of the 8); ``rotate`` an angle from
    ``config.rotate_range``, ``zoom`` a factor from ``config.zoom_range`` (log-uniform), both
    as one warp; ``field`` a smooth displacement field. 3D: ``flip`` flips axes, ``rot90``
    permutes them (both: any of the 48 cube symmetries); ``rotate`` turns about z (in-plane),
    ``zoom`` scales all axes; ``field`` is a smooth 3D displacement field.

    ``keep_shape=True`` (the Datasets' windows) draws only the symmetries that keep the
    sample's shape: a non-square 2D window gets flips and half turns, an anisotropic 3D
    window only the axis permutations that map it onto itself (for ``16x64x64``: y and x may
    swap, z stays). A square or cubic window gets every symmetry, drawn as without the flag.

    Example:
        >>> aug = Augmenter(AugmentConfig(geometry=("flip",)))
        >>> lab = np.arange(4, dtype=np.uint8).reshape(2, 2)
        >>> sorted(aug({"labels": lab}, np.random.default_rng(0))["labels"].ravel().tolist())
        [0, 1, 2, 3]
    """

    def __init__(self, config: AugmentConfig, *, keep_shape: bool = False) -> None:
        self.config = config
        self.keep_shape = keep_shape

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
        if "image" in out and self.config.recipe == "microscopy":
            out["image"] = microscopy_noise(out["image"], rng, ndim=ndim)
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
