"""Test-time augmentation: average a model over the symmetries of the square or the cube.

:func:`with_tta` wraps a ``forward(batch)`` (``(B, C, *window)`` -> ``(B, K, *window)``
probabilities): for each chosen symmetry it transforms the batch, runs ``forward``, transforms
the probabilities back and adds them up; the mean is what the tiler then blends. Only one
batch is in flight at a time, so memory stays that of plain prediction (plus one sum).

A symmetry is an axis permutation and a set of axis flips of the spatial axes: 8 for 2D tiles
(the dihedral group of the square: flips, quarter turns, transposes), 48 for 3D tiles (the cube
group). Tiles that are not squares / cubes only get the symmetries that keep their shape (a
``16x64x64`` tile never turns z into y), as in training (``keep_shape``, see
:mod:`microprep.augment.geometry_steps`).

The ``--tta`` choices (:func:`parse_tta`): ``all`` (every symmetry), ``flips`` (the axis flips
only: 4 in 2D, 8 in 3D), or a number ``N`` (the first N of :func:`symmetries`: identity, the
flips, then the rest); ``none`` (or 1) turns it off.

Example:
    >>> import numpy as np
    >>> def forward(batch):  # marks the top-left pixel: not equivariant
    ...     out = np.zeros((batch.shape[0], 2, *batch.shape[2:]), np.float32)
    ...     out[:, 0] = 1
    ...     out[:, :, 0, 0] = (0, 1)
    ...     return out
    >>> probs = with_tta(forward, "all")(np.zeros((1, 1, 4, 4), np.float32))
    >>> [float(probs[0, 1, y, x]) for y, x in ((0, 0), (0, 3), (3, 3), (1, 1))]
    [0.25, 0.25, 0.25, 0.0]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = ["TTA_CHOICES", "Symmetry", "parse_tta", "symmetries", "with_tta"]

logger = logging.getLogger(__name__)

Forward = Callable[[NDArray[np.float32]], NDArray[np.float32]]

#: The named ``--tta`` choices (a number N is also accepted).
TTA_CHOICES = ("all", "flips", "none")


@dataclass(frozen=True)
class Symmetry:
    """Flip the spatial axes where ``flips`` is True, then reorder them by ``perm``."""

    perm: tuple[int, ...]
    flips: tuple[bool, ...]

    def apply(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The symmetry of ``(B, C, *spatial)``."""
        lead = batch.ndim - len(self.perm)
        axes = tuple(lead + a for a, f in enumerate(self.flips) if f)
        out = np.flip(batch, axis=axes) if axes else batch
        order = (*range(lead), *(lead + p for p in self.perm))
        return np.transpose(out, order)

    def invert(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Undo :meth:`apply` on ``(B, K, *spatial)``."""
        lead = batch.ndim - len(self.perm)
        inverse = tuple(int(v) for v in np.argsort(self.perm))
        out = np.transpose(batch, (*range(lead), *(lead + p for p in inverse)))
        axes = tuple(lead + a for a, f in enumerate(self.flips) if f)
        return np.flip(out, axis=axes) if axes else out


def symmetries(shape: tuple[int, ...]) -> list[Symmetry]:
    """The symmetries that keep a spatial ``shape``: identity first, then the flips, then the
    ones that reorder axes (8 for a square, 48 for a cube, 16 for ``16x64x64``).

    Example:
        >>> len(symmetries((8, 8))), len(symmetries((8, 8, 8))), len(symmetries((4, 8, 8)))
        (8, 48, 16)
        >>> len(symmetries((4, 8)))
        4
    """
    ndim = len(shape)
    out = []
    for perm in itertools.permutations(range(ndim)):
        if tuple(shape[p] for p in perm) != tuple(shape):
            continue
        for flips in itertools.product((False, True), repeat=ndim):
            out.append(Symmetry(tuple(perm), tuple(flips)))
    identity = tuple(range(ndim))
    out.sort(key=lambda s: (s.perm != identity, s.perm, sum(s.flips), s.flips))
    return out


def parse_tta(text: str | int | None) -> str | int | None:
    """Check a ``--tta`` value: ``"all"``, ``"flips"``, ``"none"`` or a count >= 1; returns
    None for no augmentation, else the name or the count.

    Example:
        >>> parse_tta("all"), parse_tta("4"), parse_tta("none"), parse_tta(None)
        ('all', 4, None, None)
    """
    if text is None:
        return None
    value = str(text).strip().lower()
    if value in ("all", "flips"):
        return value
    if value in ("none", "off", "1", "false"):
        return None
    try:
        count = int(value)
    except ValueError:
        raise UsageError(
            f"--tta {text!r}: choose all, flips, none or a number of symmetries"
        ) from None
    if count < 1:
        raise UsageError(f"--tta {text!r}: the number of symmetries must be at least 1")
    return count


def chosen(shape: tuple[int, ...], spec: str | int) -> list[Symmetry]:
    """The symmetries of ``spec`` (see :func:`parse_tta`) for tiles of spatial ``shape``."""
    every = symmetries(shape)
    if spec == "all":
        return every
    if spec == "flips":
        return [s for s in every if s.perm == tuple(range(len(shape)))]
    return every[: int(spec)]


def with_tta(forward: Forward, spec: str | int | None) -> Forward:
    """``forward`` averaged over the symmetries of ``spec`` (:func:`parse_tta`); ``forward``
    itself when ``spec`` is None.

    Each symmetry is applied to the whole batch, run through ``forward`` and inverted on the
    probabilities; the result is the mean over the symmetries (shape ``(B, K, *window)``).
    """
    spec = parse_tta(spec)
    if spec is None:
        return forward
    told: set[tuple[int, ...]] = set()

    def averaged(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        shape = tuple(int(s) for s in batch.shape[2:])
        group = chosen(shape, spec)
        if shape not in told:
            told.add(shape)
            logger.info("test-time augmentation: %d symmetries of %s tiles", len(group), shape)
        total: NDArray[np.float32] | None = None
        for sym in group:
            moved = np.ascontiguousarray(sym.apply(batch))
            probs = sym.invert(np.asarray(forward(moved), dtype=np.float32))
            if total is None:
                total = np.array(probs, dtype=np.float32)
            else:
                total += probs
        assert total is not None  # the identity is always in the group
        total /= np.float32(len(group))
        return total

    return averaged
