"""Test-time augmentation for instance detectors: :func:`with_instance_tta`.

The wrapper runs a detector ``forward`` (:data:`microprep.predict.instances.Forward`) on each
chosen symmetry of the tiles (flips and quarter turns, as ``--tta`` picks them for U-Net:
:func:`microprep.predict.tta.chosen`), maps every detected mask back to the tile's own frame,
and merges the views per tile before the tiler sees them, so the seam merge of
:func:`~microprep.predict.instances.predict_instances_tiled` is unchanged.

**Merge rule** (per tile; V views):

1. Each view's detection becomes a binary mask (probability above ``mask_threshold``), mapped
   back by the inverse symmetry; detections with empty masks are left out.
2. All detections of all views are taken by descending score (ties: class, then larger mask).
   Each joins the group of its class whose first (highest-scoring) member it overlaps most,
   when that mask IoU is at least ``match_iou`` and the group has no detection of its view yet;
   otherwise it starts a new group.
3. A group is an object when at least ``min_votes`` views found it (default: half of them,
   rounded up: 4 of 8, 2 of 4).
4. Its score is the mean of its members' scores; its mask value at a pixel is the fraction of
   members whose mask holds that pixel (the tiler then keeps the pixels above
   ``mask_threshold``: with 0.5, those that more than half of the members hold); its box is
   that of the pixels above ``mask_threshold``.

The rule does not depend on the order of the views, and the views of the whole group
(``--tta all`` on square tiles) of a flipped or turned tile are the views of the tile itself, so
the prediction of a flipped image equals the flipped prediction. Only one view's output is held
at a time (each detection is kept as the bool crop of its box).

Example:
    >>> def forward(tiles):  # a square in the top-left corner of whatever it is shown
    ...     out = []
    ...     for t in tiles:
    ...         m = np.zeros((1, *t.shape[1:]), np.float32); m[0, :3, :3] = 1
    ...         out.append({"labels": np.array([1]), "scores": np.array([0.9]), "masks": m})
    ...     return out
    >>> tile = np.zeros((1, 8, 8), np.float32)
    >>> len(with_instance_tta(forward, "all")([tile])[0]["scores"])  # each corner: 2 of 8 views
    0
    >>> out = with_instance_tta(forward, "all", min_votes=2)([tile])[0]
    >>> out["boxes"].tolist()[:2], out["masks"].shape
    ([[0.0, 0.0, 3.0, 3.0], [5.0, 0.0, 8.0, 3.0]], (4, 8, 8))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError
from microprep.predict.instances import Forward, detector_arrays
from microprep.predict.tta import Symmetry, chosen, parse_tta

__all__ = ["with_instance_tta"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Detection:
    """One detection of one view, in the tile's own frame: bool ``crop`` at ``box``
    ``(y0, x0, y1, x1)``."""

    view: int
    label: int
    score: float
    box: tuple[int, int, int, int]
    crop: NDArray[np.bool_]

    @property
    def area(self) -> int:
        return int(self.crop.sum())


@dataclass(slots=True)
class _Group:
    seed: _Detection
    members: list[_Detection] = field(default_factory=list)
    views: set[int] = field(default_factory=set)


def _detections(
    view: int, out: Mapping[str, Any], sym: Symmetry, threshold: float
) -> list[_Detection]:
    """The detections of one view's output, masks mapped back by ``sym``."""
    masks, scores, labels = detector_arrays(out, "the detector's output")
    back = sym.invert((masks > threshold).astype(np.float32)) > 0
    found = []
    for k in range(back.shape[0]):
        mask = back[k]
        rows = np.flatnonzero(mask.any(axis=1))
        if not rows.size:
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        crop = np.ascontiguousarray(mask[y0:y1, x0:x1])
        found.append(_Detection(view, int(labels[k]), float(scores[k]), (y0, x0, y1, x1), crop))
    return found


def _iou(a: _Detection, b: _Detection) -> float:
    """Mask IoU of two detections (0 when their boxes do not meet)."""
    y0, x0 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    y1, x1 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    if y0 >= y1 or x0 >= x1:
        return 0.0
    inter = int(
        np.count_nonzero(
            a.crop[y0 - a.box[0] : y1 - a.box[0], x0 - a.box[1] : x1 - a.box[1]]
            & b.crop[y0 - b.box[0] : y1 - b.box[0], x0 - b.box[1] : x1 - b.box[1]]
        )
    )
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def _merge(
    detections: Sequence[_Detection],
    shape: tuple[int, int],
    *,
    match_iou: float,
    mask_threshold: float,
    min_votes: int,
) -> dict[str, NDArray[Any]]:
    """One tile's merged ``detections`` (see the module doc): ``boxes`` (n, 4) float32 xyxy,
    ``labels`` (n,), ``scores`` (n,) float32 and ``masks`` (n, h, w) float32 vote fractions,
    by descending score."""
    order = sorted(detections, key=lambda d: (-d.score, d.label, -d.area, d.view))
    groups: list[_Group] = []
    for det in order:
        best: _Group | None = None
        best_iou = match_iou
        for group in groups:
            if group.seed.label != det.label or det.view in group.views:
                continue
            iou = _iou(group.seed, det)
            if iou >= best_iou and (best is None or iou > best_iou):
                best, best_iou = group, iou
        if best is None:
            best = _Group(det)
            groups.append(best)
        best.members.append(det)
        best.views.add(det.view)
    kept = [g for g in groups if len(g.views) >= min_votes]
    kept.sort(key=lambda g: -float(np.mean([m.score for m in g.members])))
    masks = np.zeros((len(kept), *shape), np.float32)
    boxes = np.zeros((len(kept), 4), np.float32)
    for k, group in enumerate(kept):
        for m in group.members:
            masks[k, m.box[0] : m.box[2], m.box[1] : m.box[3]] += m.crop
        masks[k] /= np.float32(len(group.members))
        hit = masks[k] > mask_threshold
        if hit.any():
            rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
            boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return {
        "boxes": boxes,
        "labels": np.asarray([g.seed.label for g in kept], np.int64),
        "scores": np.asarray([np.mean([m.score for m in g.members]) for g in kept], np.float32),
        "masks": masks,
    }


def with_instance_tta(
    forward: Forward,
    spec: str | int | None,
    *,
    match_iou: float = 0.5,
    mask_threshold: float = 0.5,
    min_votes: int | None = None,
) -> Forward:
    """``forward`` run on the symmetries of ``spec`` (:func:`~microprep.predict.tta.parse_tta`:
    ``"all"``, ``"flips"``, a count, or None for ``forward`` itself) with the views merged per
    tile by the module's rule.

    Args:
        forward: the detector on a batch of tiles (all of one shape).
        spec: which symmetries.
        match_iou: mask IoU at which detections of two views are one object.
        mask_threshold: a pixel belongs to a view's detection above this probability.
        min_votes: views that must find an object (default: half of them, rounded up).

    Raises:
        UsageError: a bad ``spec``, thresholds outside [0, 1], ``min_votes`` below 1.
    """
    spec = parse_tta(spec)
    if spec is None:
        return forward
    for name, value in (("match_iou", match_iou), ("mask_threshold", mask_threshold)):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{name} must be in [0, 1], got {value}")
    if min_votes is not None and min_votes < 1:
        raise UsageError(f"min_votes must be at least 1, got {min_votes}")
    told: set[tuple[int, ...]] = set()

    def merged(tiles: list[NDArray[np.float32]]) -> list[dict[str, NDArray[Any]]]:
        if not tiles:
            return []
        batch = np.stack([np.asarray(t, np.float32) for t in tiles])
        shape = (int(batch.shape[2]), int(batch.shape[3]))
        group = chosen(shape, spec)
        votes = math.ceil(len(group) / 2) if min_votes is None else int(min_votes)
        if shape not in told:
            told.add(shape)
            logger.info(
                "test-time augmentation: %d views of %s tiles, objects found in >= %d kept",
                len(group),
                shape,
                votes,
            )
        found: list[list[_Detection]] = [[] for _ in tiles]
        for view, sym in enumerate(group):
            moved = np.ascontiguousarray(sym.apply(batch))
            outputs = list(forward(list(moved)))
            if len(outputs) != len(tiles):
                raise UsageError(
                    f"the detector returned {len(outputs)} results for {len(tiles)} tiles"
                )
            for k, out in enumerate(outputs):
                found[k].extend(_detections(view, out, sym, mask_threshold))
        return [
            _merge(
                dets,
                shape,
                match_iou=match_iou,
                mask_threshold=mask_threshold,
                min_votes=votes,
            )
            for dets in found
        ]

    return merged
