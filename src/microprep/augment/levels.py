"""Exact ``uint8`` noise: per-level transition matrices and a guide-table sampler.

The output grey level of a ``uint8`` pixel under a pointwise noise depends only on its input
level, so the 256 x 256 transition probabilities are computed once (per parameter set) and each
pixel is drawn with one uniform number through a guide table (:func:`sample_levels`). Products
of transition matrices give the exact distribution of pointwise noises applied one after the
other.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import special

from microprep.errors import UsageError

__all__ = [
    "GUIDE_BINS",
    "apply_transition",
    "build_sampler",
    "draw_levels",
    "sample_levels",
    "transition_matrix",
]

#: Number of guide-table bins per input level of the ``uint8`` sampler (12 bits).
GUIDE_BINS = 4096


def sample_levels(
    image: NDArray[np.uint8], cdf: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Draw each pixel's new level from ``cdf[level]`` (exact inverse-CDF sampling, uint8).

    Args:
        image: any shape, ``uint8``.
        cdf: ``(256, 256)`` float64, ``cdf[v, j] = P(out <= j | in = v)``, rows non-decreasing,
            last column 1.
        rng: the generator.

    Each pixel gets a 12-bit uniform bin ``b``; a guide table built from ``cdf`` gives the level
    for every bin that lies inside one CDF step (almost all). Pixels whose bin straddles a step
    draw a float64 position inside the bin and are resolved against ``cdf`` itself, so the
    result follows ``cdf`` to float64 precision.

    Example:
        >>> cdf = np.tile(np.linspace(0, 1, 257)[1:], (256, 1))   # uniform output levels
        >>> out = sample_levels(np.zeros((4, 4), np.uint8), cdf, np.random.default_rng(1))
        >>> out.dtype
        dtype('uint8')
    """
    return _sample(image, cdf, _guide_table(cdf.tobytes()), rng)


def _sample(
    image: NDArray[np.uint8],
    cdf: NDArray[np.float64],
    table: NDArray[np.uint16],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    flat = image.reshape(-1)
    # 12 uniform bits per pixel from raw bytes (exactly uniform on 0..4095)
    bins = np.frombuffer(rng.bytes(2 * flat.size), np.uint16) & np.uint16(GUIDE_BINS - 1)
    index = flat.astype(np.uint32) << np.uint32(12)
    index |= bins
    coded = np.take(table, index)
    out = coded.astype(np.uint8)  # low byte: the level (exact where the bin is unambiguous)
    ambiguous = np.flatnonzero(coded >= 256)
    if ambiguous.size:
        levels = flat[ambiguous].astype(np.intp)
        u = (bins[ambiguous] + rng.random(ambiguous.size)) / GUIDE_BINS
        # binary search for the first level j with cdf[level, j] > u, in [guide level, 255]
        j = out[ambiguous].astype(np.intp)
        top = np.full(ambiguous.size, 255, np.intp)
        while True:
            open_ = j < top
            if not open_.any():
                break
            mid = (j + top) // 2
            above = cdf[levels, mid] > u
            top = np.where(open_ & above, mid, top)
            j = np.where(open_ & ~above, mid + 1, j)
        out[ambiguous] = j.astype(np.uint8)
    result: NDArray[np.uint8] = out.reshape(image.shape)
    return result


@lru_cache(maxsize=64)
def _guide_table(cdf_bytes: bytes) -> NDArray[np.uint16]:
    """``(256 * GUIDE_BINS,)`` uint16: level of each (input level, bin); bit 8 set: ambiguous."""
    cdf = np.frombuffer(cdf_bytes, np.float64).reshape(256, 256)
    edges = np.arange(GUIDE_BINS + 1, dtype=np.float64) / GUIDE_BINS
    table = np.empty((256, GUIDE_BINS), np.uint16)
    for v in range(256):
        row = cdf[v]
        lo = np.searchsorted(row, edges[:-1], side="right")
        hi = np.searchsorted(row, edges[1:], side="left")
        lo = np.minimum(lo, 255)
        hi = np.minimum(hi, 255)
        table[v] = lo + np.where(lo == hi, 0, 256)
    table.flags.writeable = False
    return table.reshape(-1)


@lru_cache(maxsize=64)
def _sampler(
    kind: str, params: tuple[tuple[str, float], ...]
) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    """``(cdf, guide table)`` of a noise kind's uint8 transition matrix (cached)."""
    cdf = _cdf_from_matrix(_transition(kind, params))
    cdf.flags.writeable = False
    return cdf, _guide_table(cdf.tobytes())


def _apply_kind(
    image: NDArray[np.uint8],
    kind: str,
    params: tuple[tuple[str, float], ...],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    cdf, table = _sampler(kind, params)
    return _sample(image, cdf, table, rng)


def _cdf_from_matrix(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    cdf = np.cumsum(matrix, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def transition_matrix(kind: str, **params: float) -> NDArray[np.float64]:
    """``(256, 256)`` float64 ``P[v, j]``: probability that uint8 level ``v`` becomes ``j``.

    ``kind`` is ``"gaussian"`` (``sigma``), ``"poisson"`` (``dose``) or ``"salt_and_pepper"``
    (``amount``, ``salt_ratio``). Products of these matrices give the exact distribution of
    noises applied one after the other (each pixel independently).

    Example:
        >>> p = transition_matrix("gaussian", sigma=0.0)
        >>> bool(np.allclose(p, np.eye(256)))
        True
    """
    key = tuple(sorted((k, float(v)) for k, v in params.items()))
    return _transition(kind, key).copy()


@lru_cache(maxsize=64)
def _transition(kind: str, params: tuple[tuple[str, float], ...]) -> NDArray[np.float64]:
    p = dict(params)
    levels = np.arange(256, dtype=np.float64)
    upper = levels + 0.5  # level j collects values in [j - 0.5, j + 0.5)
    if kind == "gaussian":
        s = p["sigma"] * 255.0
        if s == 0:
            return np.eye(256)
        cdf = special.ndtr((upper[None, :] - levels[:, None]) / s)
    elif kind == "poisson":
        dose = p["dose"]
        # out = floor(k * 255 / dose + 0.5) <= j  <=>  k <= ceil((j + 0.5) * dose / 255) - 1
        kmax = np.ceil(upper * dose / 255.0) - 1.0
        lam = levels * dose / 255.0
        cdf = np.where(
            kmax[None, :] >= 0, special.pdtr(np.maximum(kmax[None, :], 0), lam[:, None]), 0.0
        )
        cdf[0, :] = 1.0  # level 0: lambda 0, always 0 counts
    elif kind == "salt_and_pepper":
        a, s = p["amount"], p["salt_ratio"]
        keep = (levels[None, :] >= levels[:, None]).astype(np.float64)
        cdf = (1 - a) * keep + a * (1 - s)
        cdf[:, 255] = 1.0
    else:
        raise UsageError(f"no uint8 transition matrix for noise kind {kind!r}")
    cdf = np.asarray(cdf, np.float64)
    cdf[:, -1] = 1.0
    matrix = np.diff(cdf, axis=1, prepend=0.0)
    np.clip(matrix, 0.0, None, out=matrix)
    matrix /= matrix.sum(axis=1, keepdims=True)
    matrix.flags.writeable = False
    return matrix


def build_sampler(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.uint16]]:
    """``(cdf, guide table)`` for :func:`draw_levels` from a ``(256, 256)`` transition matrix.

    Building takes a few milliseconds; keep the result when the matrix is used again.
    """
    cdf = _cdf_from_matrix(np.asarray(matrix, np.float64))
    cdf.flags.writeable = False
    return cdf, _guide_table(cdf.tobytes())


def draw_levels(
    image: NDArray[np.uint8],
    sampler: tuple[NDArray[np.float64], NDArray[np.uint16]],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """Draw every uint8 pixel's new level with a sampler from :func:`build_sampler`."""
    return _sample(image, sampler[0], sampler[1], rng)


def apply_transition(
    image: NDArray[np.uint8], matrix: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Draw every uint8 pixel's new level from ``matrix[level]`` (see :func:`transition_matrix`).

    Example:
        >>> m = transition_matrix("poisson", dose=20.0) @ transition_matrix("gaussian", sigma=0.02)
        >>> apply_transition(np.full((8, 8), 90, np.uint8), m, np.random.default_rng(0)).shape
        (8, 8)
    """
    return draw_levels(image, build_sampler(matrix), rng)
