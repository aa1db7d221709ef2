"""Evaluation pictures (matplotlib, headless), for ``prep evaluate --plot FILE.png``.

* Class maps (:func:`draw_semantic`): the confusion matrix, each ground truth row normalised to
  1 (the fraction of that class's pixels predicted as each class; the pixel counts in small
  print), beside per-class IoU and F1 bars with the macro averages as lines.
* Instances (:func:`draw_instances`): per class, the precision-recall curve at IoU 0.5 (the
  curve whose mean is the class's AP50), one panel per IoU type (``bbox``, ``segm``).

The PNG is written atomically (:func:`microprep.outputs.write_file_atomic`).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from microprep.evaluate.report import SemanticReport
    >>> from microprep.metrics import SegmentationScores
    >>> scores = SegmentationScores.from_confusion(np.array([[90, 10], [5, 45]]))
    >>> report = SemanticReport(scores, ["background", "pore"], "pred", "truth")
    >>> out = draw_report(report, Path(tempfile.mkdtemp()) / "scores.png")
    >>> out.read_bytes()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from microprep.evaluate.coco_report import RECALLS, InstanceReport
from microprep.evaluate.report import SemanticReport
from microprep.outputs import write_file_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_instances", "draw_report", "draw_semantic"]


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _save(fig: Figure, out: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return write_file_atomic(out, buf.getvalue())


def _title(report: SemanticReport | InstanceReport) -> str:
    scope = f" (split {report.split})" if report.split else ""
    return f"{Path(report.prediction).name} vs {Path(report.ground_truth).name}{scope}"


def draw_semantic(report: SemanticReport, out: str | Path) -> Path:
    """Confusion matrix (rows: ground truth, normalised) and per-class IoU / F1 bars -> PNG."""
    scores = report.scores
    confusion = np.asarray(scores.confusion, np.float64)
    k = len(confusion)
    names = [report.class_names[i] if i < len(report.class_names) else str(i) for i in range(k)]
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    size = max(4.0, 0.6 * k + 2.5)
    fig = _figure(2 * size + 1, size)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    image = left.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=left, fraction=0.046, pad=0.04, label="fraction of the true class")
    left.set_xticks(range(k), names, rotation=45, ha="right")
    left.set_yticks(range(k), names)
    left.set_xlabel("predicted")
    left.set_ylabel("ground truth")
    left.set_title("confusion (rows sum to 1)")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                dark = share[i, j] > 0.6
                left.text(
                    j,
                    i,
                    f"{share[i, j]:.2f}\n{int(confusion[i, j]):,}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    shown = [i for i in range(k) if scores.present[i]]
    xs = np.arange(len(shown))
    iou = [scores.iou[i] for i in shown]
    f1 = [scores.f1[i] for i in shown]
    right.bar(xs - 0.2, iou, width=0.4, label="IoU")
    right.bar(xs + 0.2, f1, width=0.4, label="F1")
    if not math.isnan(scores.macro_iou):
        right.axhline(scores.macro_iou, color="C0", ls="--", lw=1, label="macro IoU")
    if not math.isnan(scores.macro_f1):
        right.axhline(scores.macro_f1, color="C1", ls=":", lw=1, label="macro F1")
    right.set_xticks(xs, [names[i] for i in shown], rotation=45, ha="right")
    right.set_ylim(0, 1.2)
    right.set_yticks(np.linspace(0, 1, 6))
    right.set_title("per class")
    right.grid(axis="y", alpha=0.3)
    right.legend(fontsize=8, loc="upper center", ncol=4)
    fig.suptitle(_title(report))
    return _save(fig, Path(out))


def draw_instances(report: InstanceReport, out: str | Path) -> Path:
    """Precision-recall curves at IoU 0.5 per class, one panel per IoU type -> PNG."""
    types = list(report.scores)
    fig = _figure(5.0 * max(1, len(types)), 4.5)
    axes: Any = fig.subplots(1, max(1, len(types)), squeeze=False)[0]
    for axis, iou_type in zip(axes, types, strict=False):
        scores = report.scores[iou_type]
        for name, curve in scores.pr50.items():
            values = np.asarray(curve, np.float64)
            if np.isnan(values).all():
                continue
            ap = float(np.nanmean(values))
            axis.plot(RECALLS, values, label=f"{name} (AP50 {ap:.3f})")
        if not scores.pr50:
            axis.text(0.5, 0.5, "no detections", ha="center", va="center")
        axis.set_xlim(0, 1)
        axis.set_ylim(-0.02, 1.05)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        summary = "-" if math.isnan(scores.ap50) else f"{scores.ap50:.3f}"
        axis.set_title(f"{iou_type}: AP50 {summary}")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="lower left")
    fig.suptitle(_title(report))
    return _save(fig, Path(out))


def draw_report(report: SemanticReport | InstanceReport, out: str | Path) -> Path:
    """:func:`draw_semantic` or :func:`draw_instances`, by the report's kind."""
    if isinstance(report, InstanceReport):
        return draw_instances(report, out)
    return draw_semantic(report, out)
