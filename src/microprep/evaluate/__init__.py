"""Evaluation of predictions against ground truth.

* :func:`evaluate_semantic` (``semantic.py``): class maps (a prediction store, a dataset store
  or a folder of class-index images) against a dataset store or a folder; per-class IoU, F1,
  precision and recall with macro and micro averages, optionally restricted to a split.
* :class:`SemanticReport`, :func:`write_json` (``report.py``): the text table and JSON.
* ``coco.py``, ``coco_report.py``: COCO mAP of instance predictions (pycocotools).
* ``plots.py``: the pictures of ``prep evaluate --plot`` (confusion matrix and per-class bars,
  precision-recall curves).

Example:
    >>> report = evaluate_semantic("pred.zarr", "dataset.zarr")  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
"""

from __future__ import annotations

from microprep.evaluate.labels import match_key, open_labels
from microprep.evaluate.report import ImageResult, SemanticReport, write_json
from microprep.evaluate.semantic import evaluate_semantic

__all__ = [
    "ImageResult",
    "SemanticReport",
    "evaluate_semantic",
    "match_key",
    "open_labels",
    "write_json",
]
