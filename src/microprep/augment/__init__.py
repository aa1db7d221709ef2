"""Augmentation: noise on the image only, geometry on the image and every target together.

* :mod:`.noise`: pure numpy noise functions (``rng`` argument, keyword-only parameters);
* :mod:`.geometry2d`, :mod:`.geometry3d`, :mod:`.fields`: flips / quarter turns / rotation /
  zoom / displacement fields for images and volumes;
* :mod:`.pipeline`: :class:`AugmentConfig`, :class:`Augmenter`, ``--noise`` parsing;
* :mod:`.nodes`: what ``prep augment`` augments (tasks: nodes or a split's regions) and
  reading it; :mod:`.write`: ``prep augment`` (AUG.zarr); :mod:`.scale`: dask and LocalCluster.

:data:`NOISE_KINDS` maps each noise kind to a callable ``(image, rng) -> image`` with the
documented default parameters (:data:`DEFAULTS`), for previews that show one variant per kind.

Example:
    >>> import numpy as np
    >>> img = np.full((16, 16), 120, np.uint8)
    >>> sorted(NOISE_KINDS)
    ['background', 'blur', 'contrast', 'gaussian', 'jitter', 'poisson', 'salt_and_pepper']
    >>> NOISE_KINDS["poisson"](img, np.random.default_rng(0)).dtype
    dtype('uint8')
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment.pipeline import (
    DEFAULTS,
    AugmentConfig,
    Augmenter,
    NoiseSpec,
    Sample,
    apply_noise,
    parse_geometry,
    parse_noise,
    sample_rng,
)

__all__ = [
    "DEFAULTS",
    "NOISE_KINDS",
    "AugmentConfig",
    "Augmenter",
    "NoiseSpec",
    "Sample",
    "apply_noise",
    "parse_geometry",
    "parse_noise",
    "sample_rng",
]


def _kind(name: str, image: NDArray[Any], rng: np.random.Generator) -> NDArray[Any]:
    ndim = 3 if image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)) else 2
    return apply_noise(image, (NoiseSpec(name, dict(DEFAULTS[name])),), rng, ndim=ndim)


#: Noise kind -> ``(image, rng) -> image`` with the defaults of :data:`DEFAULTS`:
#: gaussian sigma 0.05 (of the range); poisson dose 50 counts at full intensity;
#: salt_and_pepper amount 0.01, salt_ratio 0.5; jitter max_shift 1.5 px; background
#: strength 0.3, scale 128 px; contrast gamma 0.8, gain 1.1, bias 0; blur sigma 1 px.
NOISE_KINDS: dict[str, Callable[[NDArray[Any], np.random.Generator], NDArray[Any]]] = {
    name: partial(_kind, name) for name in DEFAULTS
}
