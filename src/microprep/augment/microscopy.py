"""The ``microscopy`` recipe: random intensity, noise and blur for training on few images.

Where ``--noise`` applies fixed parameters to every sample, this recipe draws them per sample
(from the sample's generator, so it is seeded like the rest of the augmentation). Each step
happens with its own probability, in this order, on the image only:

==============  ======  ==========================================================
step            chance  draw
==============  ======  ==========================================================
contrast        0.8     gain 0.75..1.33 and gamma 0.7..1.4 (log-uniform), brightness
                        bias -0.1..0.1 of the range (:func:`~microprep.augment.noise.contrast`)
poisson         0.3     dose 8..256 counts at full intensity (log-spaced steps)
gaussian        0.3     sigma 0.01..0.06 of the range
blur            0.2     sigma 0.5..1.5 px
==============  ======  ==========================================================

Noise parameters are drawn from a few fixed steps, so the exact ``uint8`` samplers (one
transition matrix per parameter set, cached) are reused across samples.

Example:
    >>> import numpy as np
    >>> img = np.full((32, 32), 120, np.uint8)
    >>> out = microscopy_noise(img, np.random.default_rng(0), ndim=2)
    >>> out.dtype, out.shape
    (dtype('uint8'), (32, 32))
    >>> np.array_equal(out, microscopy_noise(img, np.random.default_rng(0), ndim=2))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment import noise

__all__ = ["RECIPES", "microscopy_noise"]

#: Recipe names accepted by :class:`~microprep.augment.config.AugmentConfig` ``recipe``.
RECIPES = ("microscopy",)

_DOSES = tuple(float(d) for d in np.geomspace(8, 256, 11).round(1))
_SIGMAS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06)
_BLURS = (0.5, 0.75, 1.0, 1.5)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def microscopy_noise(image: NDArray[Any], rng: np.random.Generator, *, ndim: int) -> NDArray[Any]:
    """One random draw of the recipe (see the module doc) applied to ``image``.

    Args:
        image: ``ndim`` spatial axes first (channels last, if any), any dtype of
            :mod:`microprep.augment.noise`.
        rng: the sample's generator; the same state gives the same result.
        ndim: 2 (images) or 3 (volumes).

    Returns:
        A new image of the same shape and dtype.
    """
    # every draw is made whether or not its step runs, so steps do not shift each other's draws
    u = rng.random(4)
    gain, gamma = _log_uniform(rng, 0.75, 1.33), _log_uniform(rng, 0.7, 1.4)
    bias = float(rng.uniform(-0.1, 0.1))
    dose = _DOSES[int(rng.integers(len(_DOSES)))]
    sigma = _SIGMAS[int(rng.integers(len(_SIGMAS)))]
    blur = _BLURS[int(rng.integers(len(_BLURS)))]
    out = image
    if u[0] < 0.8:
        out = noise.contrast(out, gamma=gamma, gain=gain, bias=bias)
    if u[1] < 0.3:
        out = noise.poisson_noise(out, dose=dose, rng=rng)
    if u[2] < 0.3:
        out = noise.gaussian_noise(out, sigma=sigma, rng=rng)
    if u[3] < 0.2:
        out = noise.gaussian_blur(out, sigma=blur, ndim=ndim)
    return out if out is not image else image.copy()
