"""Semantic segmentation scores from a confusion matrix: IoU, F1, precision, recall.

:func:`confusion_matrix` counts pixels (voxels) per ``(ground truth, prediction)`` class pair;
:class:`SegmentationScores` turns a matrix into per-class and averaged scores. Matrices of
several images (or of the slabs of one volume) are simply added before scoring, so the scores
of a dataset are pixel-weighted, not a mean of per-image scores.

Per class ``k`` with ``TP = C[k, k]``, ``FP = C[:, k].sum() - TP`` and
``FN = C[k, :].sum() - TP`` (rows: ground truth, columns: prediction)::

    IoU       = TP / (TP + FP + FN)
    F1        = 2 TP / (2 TP + FP + FN)     (the Dice coefficient)
    precision = TP / (TP + FP)
    recall    = TP / (TP + FN)

A class absent from both the ground truth and the prediction has no score (``nan``); it is left
out of the averages. For a class present in either, a ratio whose denominator is 0 (precision
of a class never predicted, recall of a class not in the ground truth) is 0.

*Macro* scores are the mean over the counted classes that are present; *micro* scores use the
TP, FP and FN summed over the counted classes. ``include_background=False`` leaves class 0 out
of both averages (its per-class scores are still reported); pixels of other classes predicted
as background still count as false negatives of those classes, and background pixels predicted
as a class as false positives of that class.

Example:
    >>> target = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> cm = confusion_matrix(pred, target, num_classes=2)
    >>> cm.tolist()
    [[1, 1], [0, 2]]
    >>> scores = SegmentationScores.from_confusion(cm)
    >>> [round(float(v), 3) for v in scores.iou], round(scores.macro_iou, 3)
    ([0.5, 0.667], 0.583)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from microprep.errors import UsageError

__all__ = ["SCORE_NAMES", "SegmentationScores", "confusion_matrix"]

#: The per-class scores, in the order tables show them.
SCORE_NAMES: tuple[str, ...] = ("iou", "f1", "precision", "recall")
#: Pixels counted per bincount call (bounds the int64 temporaries).
_BLOCK = 1 << 24


def confusion_matrix(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    num_classes: int,
    valid: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Count pixels per ``(ground truth, prediction)`` class pair.

    Args:
        pred: predicted class indices, any shape, integer dtype.
        target: ground truth class indices, the same shape.
        num_classes: ``K``, the number of classes (background included).
        valid: optional bool mask of the same shape; only pixels where it is True are counted.

    Returns:
        ``(K, K)`` int64: ``[i, j]`` = pixels of ground truth class ``i`` predicted as ``j``.

    Raises:
        UsageError: shapes differ, a non-integer dtype, or a value outside ``0..K-1``
            (naming the array, the value and how many pixels hold out-of-range values).

    Example:
        >>> confusion_matrix([2, 0, 2], [2, 1, 2], num_classes=3).tolist()
        [[0, 0, 0], [1, 0, 0], [0, 0, 2]]
    """
    k = int(num_classes)
    if k < 1:
        raise UsageError(f"num_classes must be 1 or more, got {num_classes}")
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise UsageError(f"prediction has shape {p.shape} but the ground truth {t.shape}")
    for what, arr in (("prediction", p), ("ground truth", t)):
        if arr.dtype.kind not in "biu":
            raise UsageError(f"{what} has dtype {arr.dtype}; class indices must be integers")
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != p.shape:
            raise UsageError(f"valid mask has shape {mask.shape} but the labels {p.shape}")
        p, t = p[mask], t[mask]
    p, t = p.reshape(-1), t.reshape(-1)
    for what, arr in (("prediction", p), ("ground truth", t)):
        _check_range(arr, k, what)
    counts = np.zeros(k * k, np.int64)
    for start in range(0, p.size, _BLOCK):
        flat = t[start : start + _BLOCK].astype(np.int64) * k
        flat += p[start : start + _BLOCK]
        counts += np.bincount(flat, minlength=k * k)
    return counts.reshape(k, k)


def _check_range(values: NDArray[Any], k: int, what: str) -> None:
    if not values.size:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= k:
        bad = int(np.count_nonzero((values < 0) | (values >= k)))
        value = low if low < 0 else high
        raise UsageError(
            f"{what} holds class index {value} ({bad} pixels outside 0..{k - 1}); "
            f"there are {k} classes"
        )


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True, slots=True, eq=False)
class SegmentationScores:
    """Per-class and averaged scores of one confusion matrix (see the module docstring).

    Attributes:
        confusion: ``(K, K)`` int64, rows ground truth, columns prediction.
        iou, f1, precision, recall: ``(K,)`` float64 per class; ``nan`` where the class is
            in neither the ground truth nor the prediction.
        present: ``(K,)`` bool, the class is in the ground truth or the prediction.
        counted: ``(K,)`` bool, the class enters the averages (present, and not the
            background when ``include_background`` is False).
        macro_iou, macro_f1: mean of the counted classes' scores (``nan`` if none).
        micro_iou, micro_f1: from TP, FP, FN summed over the counted classes.
        accuracy: correctly classified pixels / all pixels (every class, background too).
        include_background: whether class 0 enters the averages.
    """

    confusion: NDArray[np.int64]
    iou: NDArray[np.float64]
    f1: NDArray[np.float64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    present: NDArray[np.bool_]
    counted: NDArray[np.bool_]
    macro_iou: float
    macro_f1: float
    micro_iou: float
    micro_f1: float
    accuracy: float
    include_background: bool = True

    @classmethod
    def from_confusion(
        cls, confusion: ArrayLike, *, include_background: bool = True
    ) -> SegmentationScores:
        """Scores of a ``(K, K)`` confusion matrix (rows ground truth, columns prediction).

        Args:
            confusion: non-negative integer counts, square.
            include_background: count class 0 in the macro and micro averages (default True;
                with False, a model that labels everything background cannot score well on
                images that are mostly background).

        Raises:
            UsageError: the matrix is not square, has negative or non-integer counts.

        Example:
            >>> s = SegmentationScores.from_confusion([[5, 0, 0], [0, 2, 1], [0, 0, 0]])
            >>> s.iou[2], s.present.tolist()
            (np.float64(0.0), [True, True, True])
            >>> SegmentationScores.from_confusion([[4, 0], [0, 0]]).iou.tolist()
            [1.0, nan]
        """
        cm = np.asarray(confusion)
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
            raise UsageError(f"a confusion matrix is square (K, K), got shape {cm.shape}")
        if cm.dtype.kind not in "biu" or (cm.size and int(cm.min()) < 0):
            raise UsageError("a confusion matrix holds non-negative integer counts")
        cm = cm.astype(np.int64)
        tp = np.diag(cm).astype(np.float64)
        gt = cm.sum(axis=1).astype(np.float64)
        pr = cm.sum(axis=0).astype(np.float64)
        fp, fn = pr - tp, gt - tp
        present = (gt + pr) > 0
        counted = present.copy()
        if not include_background:
            counted[0] = False

        def per_class(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
            out = _ratio(num, den)
            out[~present] = np.nan
            return out

        iou = per_class(tp, tp + fp + fn)
        f1 = per_class(2 * tp, 2 * tp + fp + fn)
        precision = per_class(tp, tp + fp)
        recall = per_class(tp, tp + fn)
        n = int(counted.sum())
        macro_iou = float(iou[counted].mean()) if n else math.nan
        macro_f1 = float(f1[counted].mean()) if n else math.nan
        stp, sfp, sfn = (float(v[counted].sum()) for v in (tp, fp, fn))
        micro_iou = stp / (stp + sfp + sfn) if stp + sfp + sfn > 0 else math.nan
        micro_f1 = 2 * stp / (2 * stp + sfp + sfn) if stp + sfp + sfn > 0 else math.nan
        total = float(cm.sum())
        accuracy = float(tp.sum()) / total if total > 0 else math.nan
        return cls(
            confusion=cm,
            iou=iou,
            f1=f1,
            precision=precision,
            recall=recall,
            present=present,
            counted=counted,
            macro_iou=macro_iou,
            macro_f1=macro_f1,
            micro_iou=micro_iou,
            micro_f1=micro_f1,
            accuracy=accuracy,
            include_background=include_background,
        )

    @property
    def num_classes(self) -> int:
        """``K``, the number of classes."""
        return int(self.confusion.shape[0])

    def _names(self, class_names: list[str] | tuple[str, ...] | None) -> list[str]:
        if class_names is None:
            return [f"class {k}" for k in range(self.num_classes)]
        names = [str(n) for n in class_names]
        if len(names) != self.num_classes:
            raise UsageError(
                f"{len(names)} class names given for a {self.num_classes}-class confusion matrix"
            )
        return names

    def as_dict(self, class_names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """The scores as plain JSON data (``nan`` becomes ``None``).

        Returns:
            ``{"classes": [...], "include_background": bool, "per_class": {name: {"index",
            "iou", "f1", "precision", "recall", "gt_pixels", "pred_pixels", "counted"}},
            "macro": {"iou", "f1"}, "left_out": [names not in the averages],
            "micro": {"iou", "f1"}, "accuracy": float, "confusion_matrix": [[...]]}``.

        Example:
            >>> s = SegmentationScores.from_confusion([[3, 1], [0, 4]])
            >>> s.as_dict(["background", "pore"])["per_class"]["pore"]["iou"]
            0.8
        """
        names = self._names(class_names)
        gt = self.confusion.sum(axis=1)
        pr = self.confusion.sum(axis=0)
        per_class = {
            name: {
                "index": k,
                **{key: _nan_to_none(float(getattr(self, key)[k])) for key in SCORE_NAMES},
                "gt_pixels": int(gt[k]),
                "pred_pixels": int(pr[k]),
                "counted": bool(self.counted[k]),
            }
            for k, name in enumerate(names)
        }
        return {
            "classes": names,
            "include_background": self.include_background,
            "per_class": per_class,
            "macro": {"iou": _nan_to_none(self.macro_iou), "f1": _nan_to_none(self.macro_f1)},
            "left_out": [name for name, c in zip(names, self.counted, strict=True) if not c],
            "micro": {"iou": _nan_to_none(self.micro_iou), "f1": _nan_to_none(self.micro_f1)},
            "accuracy": _nan_to_none(self.accuracy),
            "confusion_matrix": self.confusion.tolist(),
        }

    def table(self, class_names: list[str] | tuple[str, ...] | None = None) -> str:
        """A text table: one row per class, then the macro and micro rows.

        Scores are shown with 4 decimals; ``-`` marks a class absent from ground truth and
        prediction; ``*`` marks classes left out of the averages (background with
        ``include_background=False``).

        Example:
            >>> print(SegmentationScores.from_confusion([[3, 1], [0, 4]]).table(["bg", "pore"]))
            ... # doctest: +NORMALIZE_WHITESPACE
              # class     IoU      F1  precision  recall  gt pixels  pred pixels
              0 bg     0.7500  0.8571     1.0000  0.7500          4            3
              1 pore   0.8000  0.8889     0.8000  1.0000          4            5
                macro  0.7750  0.8730
                micro  0.7778  0.8750
        """
        names = self._names(class_names)
        width = max(
            5, *(len(n) + (1 if not c else 0) for n, c in zip(names, self.counted, strict=True))
        )
        gt = self.confusion.sum(axis=1)
        pr = self.confusion.sum(axis=0)

        def fmt(value: float, w: int) -> str:
            return f"{'-':>{w}}" if math.isnan(value) else f"{value:>{w}.4f}"

        lines = [
            f"{'#':>3} {'class':<{width}} {'IoU':>7} {'F1':>7} {'precision':>10} "
            f"{'recall':>7} {'gt pixels':>10} {'pred pixels':>12}"
        ]
        for k, name in enumerate(names):
            shown = name if self.counted[k] or not self.present[k] else name + "*"
            lines.append(
                f"{k:>3} {shown:<{width}} {fmt(self.iou[k], 7)} {fmt(self.f1[k], 7)} "
                f"{fmt(self.precision[k], 10)} {fmt(self.recall[k], 7)} {int(gt[k]):>10,} "
                f"{int(pr[k]):>12,}"
            )
        lines.append(f"{'':>3} {'macro':<{width}} {fmt(self.macro_iou, 7)} {fmt(self.macro_f1, 7)}")
        lines.append(f"{'':>3} {'micro':<{width}} {fmt(self.micro_iou, 7)} {fmt(self.micro_f1, 7)}")
        if not self.include_background:
            lines.append("* not in the averages (background left out)")
        absent = [name for name, p in zip(names, self.present, strict=True) if not p]
        if absent:
            lines.append(
                "- not in the averages (in neither ground truth nor prediction): "
                + ", ".join(absent)
            )
        return "\n".join(lines)
