"""Training that leaves pixels that are not annotated out of the negatives.

A store made with ``--ignore`` / ``--annotated-region`` (docs/classes.md) has pixels that are
not annotated; :class:`~microprep.data.InstanceDataset` marks them (and padding, and areas
warped in by augmentation) ``valid = False`` in each target. Unlabelled objects may lie there,
so a box there must not be taught as background.

**The rule.** In training, an anchor of the RPN or a proposal of the RoI heads that
torchvision's matcher labels *background* (negative) is discarded, label ``-1``, neither
positive nor negative, exactly as torchvision discards the boxes between its IoU thresholds,
when **more than half of its box area** (:data:`IGNORED_FRACTION`) lies on pixels that are not
valid. The box is rounded to whole pixels; its part outside the image counts as valid.
Positives (anchors and proposals matched to an object, and the objects themselves) are never
changed: an object drawn in an unannotated area stays an object. The fraction of every box is
read from an integral image (cumulative sums) of the invalid pixels: four look-ups a box.

The model's transform (:class:`~microprep_maskrcnn.model.ChannelTransform`) resizes ``valid``
with the image (nearest neighbour), so the rule holds whatever ``min_size`` / ``max_size`` do.
:func:`enable_ignore` switches a torchvision Mask R-CNN / Faster R-CNN to the classes here;
:func:`~microprep_maskrcnn.model.build_model` does it for every model it builds. Targets
without ``valid``, or with every pixel valid, train exactly as in torchvision.

Example:
    >>> valid = torch.ones(8, 8, dtype=torch.bool); valid[:, :4] = False
    >>> table = ignored_integral(valid)
    >>> ignored_fraction(torch.tensor([[0.0, 0, 4, 8], [2, 0, 6, 8], [4, 0, 8, 8]]), table)
    tensor([1.0000, 0.5000, 0.0000])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads  # type: ignore[import-untyped]
from torchvision.models.detection.rpn import (  # type: ignore[import-untyped]
    RegionProposalNetwork,
)

__all__ = [
    "IGNORED_FRACTION",
    "IgnoreAwareRPN",
    "IgnoreAwareRoIHeads",
    "discard_ignored_negatives",
    "enable_ignore",
    "ignored_fraction",
    "ignored_integral",
]

logger = logging.getLogger(__name__)

#: A negative box with more than this fraction of its area on invalid pixels is discarded.
IGNORED_FRACTION = 0.5


def ignored_integral(valid: Tensor) -> Tensor | None:
    """The integral image ``(H + 1, W + 1)`` int64 of the invalid pixels of ``valid``
    ``(H, W)`` bool (``table[y, x]`` = invalid pixels above and left of ``(y, x)``), or None
    when every pixel is valid.

    Example:
        >>> ignored_integral(torch.ones(2, 2, dtype=torch.bool)) is None
        True
        >>> ignored_integral(torch.tensor([[True, False]])).tolist()
        [[0, 0, 0], [0, 0, 1]]
    """
    invalid = ~valid.bool()
    if not bool(invalid.any()):
        return None
    table = invalid.to(torch.int64).cumsum(0).cumsum(1)
    return nn.functional.pad(table, (1, 0, 1, 0))


def ignored_fraction(boxes: Tensor, table: Tensor) -> Tensor:
    """The fraction of each box's area on invalid pixels, float32 ``(N,)``.

    ``boxes`` ``(N, 4)`` ``x_min, y_min, x_max, y_max`` in pixels of the image of ``table``
    (:func:`ignored_integral`); each box is rounded to whole pixels, its part outside the
    image counts as valid, and a box without area gets 0.
    """
    height, width = table.shape[0] - 1, table.shape[1] - 1
    corners = boxes.detach().round().to(torch.int64)
    x0, y0, x1, y1 = corners.unbind(1)
    area = ((x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)).to(torch.float32)
    x0, x1 = x0.clamp(0, width), x1.clamp(0, width)
    y0, y1 = y0.clamp(0, height), y1.clamp(0, height)
    inside = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return torch.where(area > 0, inside.to(torch.float32) / area.clamp(min=1), 0.0)


def discard_ignored_negatives(
    labels: Tensor, boxes: Tensor, table: Tensor | None, *, discard: float | int = -1
) -> Tensor:
    """``labels`` with the negatives (label 0) whose box is mostly invalid
    (:data:`IGNORED_FRACTION`) set to ``discard``; positives and discarded boxes unchanged.

    Example:
        >>> valid = torch.ones(8, 8, dtype=torch.bool); valid[:, :4] = False
        >>> boxes = torch.tensor([[0.0, 0, 4, 8], [0, 0, 4, 8], [4, 0, 8, 8]])
        >>> discard_ignored_negatives(torch.tensor([0, 1, 0]), boxes, ignored_integral(valid))
        tensor([-1,  1,  0])
    """
    if table is None or not labels.numel():
        return labels
    negative = labels == 0
    if not bool(negative.any()):
        return labels
    mostly = ignored_fraction(boxes, table.to(boxes.device)) > IGNORED_FRACTION
    return torch.where(negative & mostly, torch.full_like(labels, discard), labels)


def _tables(targets: Sequence[Mapping[str, Tensor]] | None) -> list[Tensor | None]:
    if targets is None:
        return []
    return [ignored_integral(t["valid"]) if "valid" in t else None for t in targets]


class IgnoreAwareRPN(RegionProposalNetwork):  # type: ignore[misc]
    """torchvision's RPN whose negative anchors mostly on invalid pixels are discarded."""

    def assign_targets_to_anchors(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's assignment, then :func:`discard_ignored_negatives` per image."""
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        tables = _tables(targets)
        out = [
            discard_ignored_negatives(lab, boxes, table, discard=-1.0)
            for lab, boxes, table in zip(labels, anchors, tables, strict=True)
        ]
        return out, matched


class IgnoreAwareRoIHeads(RoIHeads):  # type: ignore[misc]
    """torchvision's RoI heads whose negative proposals mostly on invalid pixels are
    discarded before the positive / negative sampling."""

    _ignore_tables: list[Tensor | None] | None = None

    def select_training_samples(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]] | None
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """torchvision's sampling, with the targets' ``valid`` masks at hand."""
        self._ignore_tables = _tables(targets)
        try:
            out: tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]] = (
                super().select_training_samples(proposals, targets)
            )
        finally:
            self._ignore_tables = None
        return out

    def assign_targets_to_proposals(
        self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's assignment, then :func:`discard_ignored_negatives` per image."""
        matched, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        tables = self._ignore_tables or [None] * len(labels)
        out = [
            discard_ignored_negatives(lab, boxes, table, discard=-1)
            for lab, boxes, table in zip(labels, proposals, tables, strict=True)
        ]
        return matched, out


def enable_ignore(model: Any) -> Any:
    """Switch ``model``'s RPN and RoI heads (torchvision's own classes) to
    :class:`IgnoreAwareRPN` and :class:`IgnoreAwareRoIHeads`, in place; returns ``model``.

    Only the class changes: parameters, state dict entries and eval-mode results stay the same.
    """
    if type(model.rpn) is RegionProposalNetwork:
        model.rpn.__class__ = IgnoreAwareRPN
    if type(model.roi_heads) is RoIHeads:
        model.roi_heads.__class__ = IgnoreAwareRoIHeads
    return model
