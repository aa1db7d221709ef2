"""Augmentation settings: :class:`AugmentConfig`, ``--noise`` / ``--geometry`` parsing, seeds.

Noise specs are checked when parsed (each kind is run once on a tiny image), not halfway through
a run. :func:`sample_rng` gives the per-sample generator used by ``prep augment``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment import noise
from microprep.errors import UsageError

__all__ = [
    "DEFAULTS",
    "GEOMETRY_KINDS",
    "AugmentConfig",
    "NoiseSpec",
    "parse_geometry",
    "parse_noise",
    "sample_rng",
]

Array = NDArray[Any]


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
        recipe: ``"microscopy"``: after ``noise``, random contrast, gamma, brightness, Poisson
            noise at a random dose, Gaussian noise and blur drawn per sample
            (:mod:`microprep.augment.microscopy`); None: nothing more.
    """

    noise: tuple[NoiseSpec, ...] = ()
    geometry: tuple[str, ...] = ()
    rotate_range: tuple[float, float] = (-180.0, 180.0)
    zoom_range: tuple[float, float] = (0.8, 1.25)
    field_alpha: float = 4.0
    field_grid: float = 64.0
    cube: bool = True
    recipe: str | None = None

    def __post_init__(self) -> None:
        parse_geometry(",".join(self.geometry))
        if self.recipe not in (None, "microscopy"):
            raise UsageError(f"unknown augmentation recipe {self.recipe!r}; choose microscopy")
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
            **({"recipe": self.recipe} if self.recipe else {}),
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
