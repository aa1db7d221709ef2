"""The result of a COCO evaluation: :class:`InstanceReport` (text table, JSON) and
:class:`IouScores`.

**Report** (:class:`InstanceReport`): per IoU type (``"bbox"``, ``"segm"``) the COCO mAP
(IoU 0.50:0.95), AP50 and AP75 over all object sizes with at most ``max_detections`` detections
per image (COCO's 100 by default; raise it for images with more objects), and the AP
(0.50:0.95) of every class: ``nan`` for classes without ground truth objects. No predictions at
all give AP 0 where there is ground truth.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RECALLS", "InstanceReport", "IouScores"]

#: The 101 recall points of COCO's precision-recall curves.
RECALLS: tuple[float, ...] = tuple(k / 100 for k in range(101))


@dataclass(frozen=True, slots=True)
class IouScores:
    """COCO scores of one IoU type: ``mAP`` (IoU 0.50:0.95), ``ap50``, ``ap75`` (all object
    sizes) and ``per_class`` AP (0.50:0.95) by class name (``nan``: no ground truth objects).

    ``pr50``: per class, the precision at the recall points :data:`RECALLS` (0, 0.01, ..., 1)
    at IoU 0.5 (COCO's interpolated precision; ``nan`` where there is no ground truth), the
    precision-recall curve whose mean is that class's AP50. Empty when nothing was detected.
    """

    map: float
    ap50: float
    ap75: float
    per_class: dict[str, float]
    pr50: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceReport:
    """The result of :func:`microprep.evaluate.coco.evaluate_instances`.

    Attributes:
        scores: per IoU type (``"bbox"``, ``"segm"``) its :class:`IouScores`.
        class_names: the ground truth's category names, by category id.
        prediction, ground_truth: what was compared (as given; ``"<list>"`` / ``"<dict>"``).
        split: the split the ground truth was restricted to, or None.
        images: ground truth images evaluated. objects: ground truth objects.
        detections: prediction records evaluated. unmatched: records on images outside the
            ground truth (left out). max_detections: detections per image counted.
    """

    scores: dict[str, IouScores]
    class_names: list[str]
    prediction: str
    ground_truth: str
    split: str | None = None
    images: int = 0
    objects: int = 0
    detections: int = 0
    unmatched: int = 0
    max_detections: int = 100

    def table(self) -> str:
        """A text report: what was compared, the summary per IoU type, then AP per class."""
        scope = f", split {self.split!r}" if self.split else ""
        lines = [
            f"{self.prediction} vs {self.ground_truth}{scope}: {self.images} images, "
            f"{self.objects} objects, {self.detections} detections"
            + (f" ({self.unmatched} on other images, left out)" if self.unmatched else ""),
            f"COCO AP, all object sizes, up to {self.max_detections} detections per image",
        ]
        types = list(self.scores)
        width = max([len(n) for n in self.class_names] + [len("class"), len("mAP 0.50:0.95")])
        lines.append(f"{'':<{width}}" + "".join(f"  {t:>6}" for t in types))
        for label, key in (("mAP 0.50:0.95", "map"), ("AP50", "ap50"), ("AP75", "ap75")):
            row = "".join(f"  {_fmt(getattr(self.scores[t], key)):>6}" for t in types)
            lines.append(f"{label:<{width}}{row}")
        lines.append(f"{'class (AP)':<{width}}" + "".join(f"  {t:>6}" for t in types))
        for name in self.class_names:
            row = "".join(f"  {_fmt(self.scores[t].per_class[name]):>6}" for t in types)
            lines.append(f"{name:<{width}}{row}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (``nan`` -> None): inputs, counts and the scores per IoU type."""
        return {
            "kind": "instances",
            "prediction": self.prediction,
            "ground_truth": self.ground_truth,
            "split": self.split,
            "images": self.images,
            "objects": self.objects,
            "detections": self.detections,
            "unmatched": self.unmatched,
            "max_detections": self.max_detections,
            "scores": {
                t: {
                    "map": _json(s.map),
                    "ap50": _json(s.ap50),
                    "ap75": _json(s.ap75),
                    "per_class": {k: _json(v) for k, v in s.per_class.items()},
                    "precision_at_iou50": {
                        k: [_json(v) for v in curve] for k, curve in s.pr50.items()
                    },
                }
                for t, s in self.scores.items()
            },
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`as_dict` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.as_dict(), indent=indent, allow_nan=False, ensure_ascii=False)


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _json(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
