"""Segmentation losses on logits, for 2D and 3D, with a mask of valid pixels.

Shapes (``K`` classes, ``spatial`` = ``(H, W)`` or ``(D, H, W)``):

* ``logits``: ``(B, K, *spatial)`` float (any float dtype; losses are computed in float32).
* ``target``: class indices ``(B, *spatial)`` of any integer dtype (0 = background), turned into
  one-hot inside; or per-class values ``(B, K, *spatial)`` float (one-hot or soft labels).
* ``valid``: optional bool ``(B, *spatial)``; pixels where it is False count for nothing
  (their target may hold any value, e.g. 255 for "unlabelled").

Every loss returns a scalar tensor (float32) that is 0 for a perfect prediction.

* :func:`cross_entropy`: mean negative log-likelihood over valid pixels, optionally weighted per
  class (the mean is then weighted too: ``sum(w[y] * nll) / sum(w[y])``, as in torch).
* :func:`soft_dice`: ``1 - mean_k (2 I_k + eps) / (sum y_k + sum p_k + eps)``.
* :func:`jaccard2`: ``1 - mean_k (I_k + eps) / (sum y_k**2 + sum p_k**2 - I_k + eps)``.

For the two overlap losses ``p = softmax(logits)``, ``y`` is the one-hot target and
``I_k = sum y_k * p_k``; each sum runs over the whole batch and all valid pixels of class
channel ``k`` (one score per class for the batch, not per image), and the mean is over all ``K``
classes, background included. ``eps`` is added to numerator and denominator: a class absent from
both target and prediction scores 1 (no loss) instead of 0/0, and gradients stay finite.

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 2, 4, 4)
    >>> target = torch.zeros(1, 4, 4, dtype=torch.int64)
    >>> round(float(cross_entropy(logits, target)), 4)  # log(2)
    0.6931
    >>> loss = CombinedLoss(parse_loss("ce+dice"))
    >>> total, parts = loss(logits, target)
    >>> sorted(parts)
    ['ce', 'dice']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import Tensor, nn

from microprep.errors import UsageError
from microprep_unet.loss_spec import LOSS_TERMS, check_terms, parse_loss
from microprep_unet.weighting import WEIGHT_METHODS, class_weights

__all__ = [
    "LOSS_TERMS",
    "WEIGHT_METHODS",
    "CombinedLoss",
    "class_weights",
    "cross_entropy",
    "jaccard2",
    "parse_loss",
    "soft_dice",
]

log = logging.getLogger(__name__)

Weight = Tensor | Sequence[float] | NDArray[np.floating] | None


def _targets(
    logits: Tensor, target: Tensor, valid: Tensor | None
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Check shapes; return (index target, soft target, mask), exactly one target not None.

    ``index`` is int64 ``(B, *spatial)`` with masked pixels set to class 0; ``soft`` is float32
    ``(B, K, *spatial)``; ``mask`` is float32 ``(B, 1, *spatial)`` or None.
    """
    if logits.ndim < 3:
        raise ValueError(f"logits must be (B, K, *spatial), got shape {tuple(logits.shape)}")
    batch, k, *spatial = logits.shape
    mask: Tensor | None = None
    if valid is not None:
        if tuple(valid.shape) != (batch, *spatial):
            raise ValueError(
                f"valid mask shape {tuple(valid.shape)} does not match logits "
                f"{tuple(logits.shape)}; expected {(batch, *spatial)}"
            )
        mask = valid.to(device=logits.device, dtype=torch.bool)
    fmask = None if mask is None else mask.unsqueeze(1).to(torch.float32)
    if target.ndim == logits.ndim:
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(
                f"one-hot target shape {tuple(target.shape)} differs from logits "
                f"{tuple(logits.shape)}"
            )
        return None, target.to(device=logits.device, dtype=torch.float32), fmask
    if target.ndim != logits.ndim - 1:
        raise ValueError(
            f"target must be (B, *spatial) indices or (B, K, *spatial) values, "
            f"got {tuple(target.shape)} for logits {tuple(logits.shape)}"
        )
    if tuple(target.shape) != (batch, *spatial):
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype.is_complex:
        raise ValueError(f"class-index target must have an integer dtype, not {target.dtype}")
    index = target.to(device=logits.device, dtype=torch.int64)
    if mask is not None:
        index = torch.where(mask, index, torch.zeros_like(index))
    if index.numel():
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= k:
            raise ValueError(
                f"target holds class indices outside 0..{k - 1} (min {low}, max {high}) "
                "at valid pixels"
            )
    return index, None, fmask


def _onehot(index: Tensor | None, soft: Tensor | None, k: int) -> Tensor:
    if soft is not None:
        return soft
    assert index is not None  # _targets returns one of the two
    return F.one_hot(index, k).movedim(-1, 1).to(torch.float32)


def _weight_tensor(weight: Weight, logits: Tensor) -> Tensor | None:
    if weight is None:
        return None
    w = torch.as_tensor(np.asarray(weight) if not isinstance(weight, Tensor) else weight)
    w = w.to(device=logits.device, dtype=torch.float32)
    if tuple(w.shape) != (logits.shape[1],):
        raise ValueError(
            f"class weight shape {tuple(w.shape)} does not match {logits.shape[1]} classes"
        )
    return w


def cross_entropy(
    logits: Tensor, target: Tensor, *, weight: Weight = None, valid: Tensor | None = None
) -> Tensor:
    """Mean cross-entropy over valid pixels, optionally class-weighted.

    Args:
        logits: ``(B, K, *spatial)``.
        target: ``(B, *spatial)`` class indices, or ``(B, K, *spatial)`` one-hot / soft labels.
        weight: ``(K,)`` per-class weights (e.g. from :func:`class_weights`) or None. Pixel ``i``
            counts ``w[y_i]`` times (``sum_k w_k y_ik`` for soft labels) in numerator and
            denominator, so the overall scale of ``weight`` does not matter.
        valid: ``(B, *spatial)`` bool; False pixels are ignored. None: all pixels count.

    Returns:
        Scalar float32 tensor; 0 when nothing is valid.

    Example:
        >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # (1, 2, 1, 2)
        >>> float(cross_entropy(logits, torch.tensor([[[0, 1]]]))) < 1e-6
        True
    """
    index, soft, mask = _targets(logits, target, valid)
    w = _weight_tensor(weight, logits)
    logp = F.log_softmax(logits.to(torch.float32), dim=1)
    if index is not None:
        nll = -logp.gather(1, index.unsqueeze(1)).squeeze(1)
        pixel_w = torch.ones_like(nll) if w is None else w[index]
        nll = nll * pixel_w
    else:
        assert soft is not None
        if w is not None:
            soft = soft * w.view((1, -1) + (1,) * (logits.ndim - 2))
        nll = -(soft * logp).sum(dim=1)
        pixel_w = soft.sum(dim=1)
    if mask is not None:
        nll = nll * mask[:, 0]
        pixel_w = pixel_w * mask[:, 0]
    return nll.sum() / pixel_w.sum().clamp_min(1e-12)


def _overlaps(
    logits: Tensor, target: Tensor, valid: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class (I, y, p) over the batch and valid pixels: ``y`` one-hot, ``p`` softmax."""
    index, soft, mask = _targets(logits, target, valid)
    y = _onehot(index, soft, logits.shape[1])
    p = torch.softmax(logits.to(torch.float32), dim=1)
    if mask is not None:
        y = y * mask
        p = p * mask
    dims = (0, *range(2, logits.ndim))
    return (y * p).sum(dims), y, p


def soft_dice(
    logits: Tensor, target: Tensor, *, valid: Tensor | None = None, eps: float = 1.0
) -> Tensor:
    """Soft Dice loss ``1 - mean_k (2 I_k + eps) / (sum y_k + sum p_k + eps)``.

    Sums over batch and valid pixels per class, mean over all classes (module docstring).
    Inputs as :func:`cross_entropy`. Returns a scalar in ``[0, 1]``.

    Example:
        >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])
        >>> float(soft_dice(logits, torch.tensor([[[1, 0]]]))) > 0.6
        True
    """
    inter, y, p = _overlaps(logits, target, valid)
    dims = (0, *range(2, logits.ndim))
    score = (2.0 * inter + eps) / (y.sum(dims) + p.sum(dims) + eps)
    return 1.0 - score.mean()


def jaccard2(
    logits: Tensor, target: Tensor, *, valid: Tensor | None = None, eps: float = 1.0
) -> Tensor:
    """Squared-denominator Jaccard loss ``1 - mean_k J2_k``.

    ``J2_k = (I_k + eps) / (sum y_k**2 + sum p_k**2 - I_k + eps)`` with ``I_k = sum y_k p_k``;
    sums over batch and valid pixels per class, mean over all classes (module docstring).
    Inputs as :func:`cross_entropy`. Returns a scalar in ``[0, 1]``.

    Example:
        >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])
        >>> float(jaccard2(logits, torch.tensor([[[0, 1]]]))) < 1e-6
        True
    """
    inter, y, p = _overlaps(logits, target, valid)
    dims = (0, *range(2, logits.ndim))
    score = (inter + eps) / ((y * y).sum(dims) + (p * p).sum(dims) - inter + eps)
    return 1.0 - score.mean()


class CombinedLoss(nn.Module):
    """Weighted sum of :func:`cross_entropy`, :func:`soft_dice` and :func:`jaccard2`.

    Args:
        terms: ``{name: weight}`` as from :func:`parse_loss` (checked the same way).
        class_weight: ``(K,)`` weights for the cross-entropy term only (the overlap terms already
            give every class the same say). Kept as a buffer, so ``.to(device)`` moves it.

    Calling it with ``(logits, target, valid=None)`` (shapes as in :func:`cross_entropy`) returns
    ``(total, parts)``: the weighted sum (a scalar tensor with gradient) and ``{name: value}``,
    the unweighted value of each term, detached (call ``.item()`` to log them).

    Example:
        >>> loss = CombinedLoss({"ce": 1.0, "jaccard2": 0.5}, class_weight=[0.5, 1.5])
        >>> total, parts = loss(torch.zeros(2, 2, 4, 4), torch.ones(2, 4, 4, dtype=torch.long))
        >>> round(float(total), 4) == round(float(parts["ce"] + 0.5 * parts["jaccard2"]), 4)
        True
    """

    class_weight: Tensor | None

    def __init__(
        self, terms: Mapping[str, float], *, class_weight: ArrayLike | None = None
    ) -> None:
        super().__init__()
        self.terms = check_terms(terms, "loss")
        weight = None
        if class_weight is not None:
            weight = torch.as_tensor(np.asarray(class_weight, dtype=np.float32))
            if weight.ndim != 1 or not bool(torch.isfinite(weight).all()) or (weight < 0).any():
                raise UsageError(
                    f"loss: class_weight must be a 1-D list of finite weights >= 0, "
                    f"got {weight.tolist()}"
                )
        self.register_buffer("class_weight", weight)

    def forward(
        self, logits: Tensor, target: Tensor, valid: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        total = logits.new_zeros((), dtype=torch.float32)
        for name, factor in self.terms.items():
            if name == "ce":
                value = cross_entropy(logits, target, weight=self.class_weight, valid=valid)
            elif name == "dice":
                value = soft_dice(logits, target, valid=valid)
            else:
                value = jaccard2(logits, target, valid=valid)
            total = total + factor * value
            parts[name] = value.detach()
        return total, parts
