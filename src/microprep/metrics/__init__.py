"""Scores of predictions against ground truth (numpy only).

* :func:`confusion_matrix`, :class:`SegmentationScores` (``semantic.py``): per-class IoU, F1,
  precision and recall of class maps, with macro and micro averages.

Example:
    >>> import numpy as np
    >>> cm = confusion_matrix(np.array([1, 1, 0]), np.array([1, 0, 0]), num_classes=2)
    >>> round(SegmentationScores.from_confusion(cm).micro_f1, 4)
    0.6667
"""

from __future__ import annotations

from microprep.metrics.semantic import SCORE_NAMES, SegmentationScores, confusion_matrix

__all__ = ["SCORE_NAMES", "SegmentationScores", "confusion_matrix"]
