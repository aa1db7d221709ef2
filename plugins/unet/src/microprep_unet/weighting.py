"""Per-class loss weights from class pixel counts (numpy only, no torch).

Rare classes (a few small pores against a large background) get larger weights, so the
cross-entropy does not settle for predicting background everywhere. The counts are usually the
pixel (voxel) counts of the ``labels`` of the training split.

Example:
    >>> print(class_weights([900, 100, 0], method="inverse"))
    [0.2 1.8 0. ]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = ["WEIGHT_METHODS", "class_weights"]

#: Methods of :func:`class_weights`.
WEIGHT_METHODS: tuple[str, ...] = ("inverse_sqrt", "inverse", "median")

WeightMethod = Literal["inverse_sqrt", "inverse", "median"]


def class_weights(
    counts: Sequence[int] | NDArray[np.integer], *, method: WeightMethod | str = "inverse_sqrt"
) -> NDArray[np.float32]:
    """Per-class loss weights from pixel counts, larger for rarer classes.

    With ``f_k = counts[k] / sum(counts)``:

    * ``inverse``: ``1 / f_k``;
    * ``inverse_sqrt``: ``1 / sqrt(f_k)`` (milder; the default);
    * ``median``: median frequency balancing, ``median(f) / f_k`` with the median over the
      present classes. After the normalisation below it has the same values as ``inverse``
      (the two differ only in scale, which the normalisation removes).

    A class with 0 pixels gets weight 0 (it cannot occur in the target, and 1/0 would be
    infinite). The weights of the present classes are scaled to average 1.

    Args:
        counts: ``(K,)`` non-negative pixel (voxel) counts per class, background included.
        method: one of :data:`WEIGHT_METHODS`.

    Returns:
        ``(K,)`` float32 weights.

    Raises:
        UsageError: unknown method, negative or non-finite counts, or no pixel at all.

    Example:
        >>> print(class_weights([900, 100, 0], method="inverse"))
        [0.2 1.8 0. ]
        >>> print(class_weights([900, 100, 0]))
        [0.5 1.5 0. ]
    """
    if method not in WEIGHT_METHODS:
        raise UsageError(
            f"class weights: unknown method {method!r}; use {', '.join(WEIGHT_METHODS)}"
        )
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise UsageError(f"class weights: counts must be a 1-D list, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise UsageError(f"class weights: counts must be finite and >= 0, got {values.tolist()}")
    total = values.sum()
    if total <= 0:
        raise UsageError("class weights: every class count is 0 (no labelled pixels)")
    present = values > 0
    freq = values[present] / total
    if method == "inverse_sqrt":
        raw = 1.0 / np.sqrt(freq)
    elif method == "inverse":
        raw = 1.0 / freq
    else:
        raw = float(np.median(freq)) / freq
    weights = np.zeros(values.shape, dtype=np.float64)
    weights[present] = raw / raw.mean()
    return weights.astype(np.float32)
