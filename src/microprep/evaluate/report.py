"""The semantic evaluation report: scores, what was compared, a text table and JSON.

Example:
    >>> import numpy as np
    >>> from microprep.metrics import SegmentationScores
    >>> report = SemanticReport(
    ...     scores=SegmentationScores.from_confusion(np.array([[3, 1], [0, 4]])),
    ...     class_names=["background", "pore"], prediction="p.zarr", ground_truth="d.zarr")
    >>> report.as_dict()["per_class"]["pore"]["iou"]
    0.8
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import StoreError
from microprep.metrics.semantic import SegmentationScores
from microprep.outputs import write_file_atomic

__all__ = ["ImageResult", "SemanticReport", "write_json"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class ImageResult:
    """One compared image (or volume): its name, the pixels counted and its confusion matrix."""

    name: str
    pixels: int
    confusion: NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class SemanticReport:
    """The result of :func:`microprep.evaluate.semantic.evaluate_semantic`.

    Attributes:
        scores: the scores of the summed confusion matrix of all images.
        class_names: names by class index.
        prediction, ground_truth: what was compared (paths as given).
        split: the split the ground truth was restricted to, or None.
        images: one :class:`ImageResult` per matched image, in ground truth order.
    """

    scores: SegmentationScores
    class_names: list[str]
    prediction: str
    ground_truth: str
    split: str | None = None
    images: list[ImageResult] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        """Pixels (voxels) compared, all images."""
        return int(self.scores.confusion.sum())

    def table(self) -> str:
        """A text report: what was compared, then the per-class table with macro and micro."""
        scope = f", split {self.split!r}" if self.split else ""
        head = (
            f"{self.prediction} vs {self.ground_truth}{scope}: {len(self.images)} images, "
            f"{self.pixels:,} pixels"
        )
        return f"{head}\n{self.scores.table(self.class_names)}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data: the scores (see :meth:`SegmentationScores.as_dict`), the inputs and
        per image its pixel count and macro / micro IoU and F1 (``None`` for ``nan``)."""
        per_image = []
        for image in self.images:
            own = SegmentationScores.from_confusion(
                image.confusion, include_background=self.scores.include_background
            )
            per_image.append(
                {
                    "name": image.name,
                    "pixels": image.pixels,
                    **{
                        key: None if np.isnan(value) else float(value)
                        for key, value in (
                            ("macro_iou", own.macro_iou),
                            ("macro_f1", own.macro_f1),
                            ("micro_iou", own.micro_iou),
                            ("micro_f1", own.micro_f1),
                        )
                    },
                }
            )
        return {
            "kind": "semantic",
            "prediction": self.prediction,
            "ground_truth": self.ground_truth,
            "split": self.split,
            "images": len(self.images),
            "pixels": self.pixels,
            **self.scores.as_dict(self.class_names),
            "per_image": per_image,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`as_dict` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.as_dict(), indent=indent, allow_nan=False, ensure_ascii=False)


def write_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (a temp file beside it, then a rename).

    Raises:
        StoreError: the file cannot be written (or ``data`` is not JSON data).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "scores.json"
        >>> write_json({"iou": 0.5}, target).read_text(encoding="utf-8")
        '{\\n  "iou": 0.5\\n}\\n'
    """
    path = Path(path)
    try:
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot write {path}: the report is not JSON data: {exc}") from exc
    write_file_atomic(path, text.encode("utf-8"))
    logger.info("wrote %s", path)
    return path
