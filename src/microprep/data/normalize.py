"""Image normalisation for training and prediction: one documented rule, float32 out.

Two rules (``normalization=`` of the datasets):

* ``"percentile"`` (default): per source node (one image or one volume), the 0.5th and 99.5th
  percentiles of its pixel values map to 0 and 1; values are then clipped to ``[-1, 2]``, so
  outliers stay bounded but keep some of their contrast. The percentiles are taken over a
  strided subsample of the whole node (every ``s``-th pixel along each spatial axis, all
  channels, ``s`` the smallest stride that keeps at most :data:`MAX_VALUES` values; NaN and
  infinite values ignored), so they are deterministic and cheap, and the same for every crop of
  the node. All channels share one scale (colours keep their balance). A constant image (upper
  percentile equal to the lower one) gets ``hi = lo + 1``: it maps to 0.
* ``"dtype"``: integer images are divided by their dtype's maximum (``uint8`` by 255,
  ``uint16`` by 65535), float images are used as they are; no clipping.

:class:`ImageScale` holds the result (``lo``, ``hi``, ``clip``); :func:`image_scale` computes
it for a whole image or volume (numpy, zarr or dask: anything sliceable) and
:func:`apply_scale` applies it, so prediction code normalises whole images exactly as the
training crops were. :func:`channels_first` turns ``(*spatial[, c])`` into ``(C, *spatial)``.

Example:
    >>> import numpy as np
    >>> img = np.arange(200, dtype=np.uint16).reshape(10, 20)
    >>> scale = image_scale(img, "percentile")
    >>> round(scale.lo, 3), round(scale.hi, 3)
    (0.995, 198.005)
    >>> out = apply_scale(img, scale)
    >>> out.dtype, float(out.min()) < 0.0, float(out.max()) > 1.0
    (dtype('float32'), True, True)
    >>> apply_scale(np.array([0, 255], np.uint8), image_scale(np.zeros(1, np.uint8), "dtype"))
    array([0., 1.], dtype=float32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = [
    "CLIP",
    "MAX_VALUES",
    "NORMALIZATIONS",
    "PERCENTILES",
    "ImageScale",
    "apply_scale",
    "channels_first",
    "image_scale",
    "spatial_ndim",
]

#: The normalisation rules.
NORMALIZATIONS: tuple[str, ...] = ("percentile", "dtype")
#: The percentiles that map to 0 and 1 under ``"percentile"``.
PERCENTILES: tuple[float, float] = (0.5, 99.5)
#: The output range of ``"percentile"`` (in units of the ``lo..hi`` span).
CLIP: tuple[float, float] = (-1.0, 2.0)
#: At most this many values are read to estimate the percentiles of one node.
MAX_VALUES = 1_000_000


@dataclass(frozen=True, slots=True)
class ImageScale:
    """``out = (x - lo) / (hi - lo)``, then clipped to ``clip`` (None: no clipping).

    ``lo`` and ``hi`` are in the image's own units (grey levels); ``hi > lo``.

    Example:
        >>> ImageScale(10.0, 20.0).as_dict()
        {'lo': 10.0, 'hi': 20.0, 'clip': None}
    """

    lo: float
    hi: float
    clip: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise UsageError(f"image scale needs finite lo < hi, got lo={self.lo}, hi={self.hi}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (to store next to a trained model)."""
        return {
            "lo": self.lo,
            "hi": self.hi,
            "clip": None if self.clip is None else list(self.clip),
        }


def spatial_ndim(shape: tuple[int, ...]) -> int:
    """Spatial axes of an image shape: 2 for ``(H, W)`` / ``(H, W, C)`` with C in 1, 3, 4,
    3 for ``(Z, H, W)`` / ``(Z, H, W, C)``. Pass ``ndim`` explicitly where this guess is
    ambiguous (a 3- or 4-slice volume without channels).

    Example:
        >>> spatial_ndim((64, 64, 3)), spatial_ndim((8, 64, 64)), spatial_ndim((8, 64, 64, 3))
        (2, 3, 3)
    """
    if len(shape) == 3:
        return 2 if shape[-1] in (1, 3, 4) else 3
    return min(len(shape), 3)


def _subsample(array: Any, ndim: int, max_values: int) -> NDArray[Any]:
    """Every ``s``-th pixel along each spatial axis (channels whole), at most ``max_values``."""
    shape = tuple(int(n) for n in array.shape)
    spatial, channels = shape[:ndim], int(np.prod(shape[ndim:], dtype=np.int64))
    limit = max(1, max_values // max(1, channels))
    total = int(np.prod(spatial, dtype=np.int64))
    step = max(1, math.ceil((total / limit) ** (1.0 / max(1, ndim))) - 1)
    while int(np.prod([-(-n // step) for n in spatial], dtype=np.int64)) > limit:
        step += 1
    sel = tuple(slice(None, None, step) for _ in spatial)
    return np.asarray(array[sel])


def image_scale(
    array: Any,
    rule: str = "percentile",
    *,
    ndim: int | None = None,
    max_values: int = MAX_VALUES,
) -> ImageScale:
    """The scale of a whole image or volume under ``rule`` (see the module docstring).

    Args:
        array: pixels ``(*spatial[, c])`` of any numeric dtype; numpy, zarr or dask (only the
            strided subsample is read).
        rule: ``"percentile"`` or ``"dtype"``.
        ndim: number of spatial axes (default: :func:`spatial_ndim` of the shape).
        max_values: most values read for the percentiles.

    Raises:
        UsageError: an unknown rule, or an image without a single finite value.

    Example:
        >>> image_scale(np.zeros((4, 4), np.uint16), "dtype")
        ImageScale(lo=0.0, hi=65535.0, clip=None)
    """
    dtype = np.dtype(array.dtype)
    if rule == "dtype":
        if dtype.kind == "b":
            return ImageScale(0.0, 1.0)
        if dtype.kind in "iu":
            return ImageScale(0.0, float(np.iinfo(dtype).max))
        return ImageScale(0.0, 1.0)
    if rule != "percentile":
        raise UsageError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {rule!r}")
    nd = spatial_ndim(tuple(array.shape)) if ndim is None else ndim
    values = _subsample(array, nd, max_values).reshape(-1)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size == 0:
        raise UsageError("cannot normalise an image without a single finite pixel value")
    lo, hi = (float(v) for v in np.percentile(values.astype(np.float64), PERCENTILES))
    if not hi > lo:
        hi = lo + 1.0
    return ImageScale(lo, hi, CLIP)


def apply_scale(array: NDArray[Any], scale: ImageScale) -> NDArray[np.float32]:
    """``array`` mapped by ``scale``: a new float32 array of the same shape.

    Example:
        >>> apply_scale(np.array([0, 5, 10, 40]), ImageScale(0.0, 10.0, (-1.0, 2.0))).tolist()
        [0.0, 0.5, 1.0, 2.0]
    """
    out = np.asarray(array, dtype=np.float32) - np.float32(scale.lo)
    out *= np.float32(1.0 / (scale.hi - scale.lo))
    if scale.clip is not None:
        np.clip(out, scale.clip[0], scale.clip[1], out=out)
    return out


def channels_first(image: NDArray[Any], ndim: int) -> NDArray[Any]:
    """``(*spatial[, c])`` -> ``(C, *spatial)``; a grayscale image gets ``C = 1`` (a view).

    Example:
        >>> channels_first(np.zeros((5, 6, 3)), 2).shape, channels_first(np.zeros((5, 6)), 2).shape
        ((3, 5, 6), (1, 5, 6))
    """
    if image.ndim == ndim:
        return image[None]
    return np.moveaxis(image, -1, 0)
