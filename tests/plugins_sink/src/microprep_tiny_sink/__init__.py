"""A tiny output kind (``counts``: objects per image as CSV) and reader (``x,y`` point CSVs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.registry import ReaderKind, SinkKind


class CountsSink:
    def __init__(self, root: Path, labels: LabelMap, *, provenance: Any) -> None:
        self.path = root / "counts.csv"
        self.rows = ["image,objects"]

    def add(self, targets: Any, pixels: Any) -> None:
        self.rows.append(f"{targets.name},{len(targets.instances)}")

    def close(self) -> None:
        self.path.write_text("\n".join(self.rows) + "\n", encoding="utf-8")


COUNTS = SinkKind("counts", CountsSink, "counts.csv", "objects per image as CSV")


def _detect(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").startswith("image,x,y\n")
    except (OSError, UnicodeDecodeError):
        return False


def _read(path: Any, *, on_warning: Any = None, options: Any = None) -> AnnotationSet:
    path = Path(path)
    by_image: dict[str, list[Shape]] = {}
    for row in path.read_text(encoding="utf-8").splitlines()[1:]:
        name, x, y = row.split(",")
        point = np.array([[float(x), float(y)]])
        by_image.setdefault(name, []).append(Shape(kind="points", label="spot", points=point))
    items = [AnnotatedImage(ImageInfo(n, 16, 16), tuple(s)) for n, s in by_image.items()]
    return AnnotationSet.from_items(
        items, labels=LabelMap((LabelSpec("spot"),)), source=path, format="points-csv"
    )


def reader() -> ReaderKind:
    return ReaderKind("points-csv", _detect, _read, "x,y point CSV (a test plugin)")
