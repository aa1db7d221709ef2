"""The ``yolo`` export: YOLO detection labels, one text file per image (per slice for volumes).

Layout::

    OUT/data.yaml                   path, train, val, nc, names (ids from 0)
    OUT/labels/<name>.txt           one line per object: "class cx cy w h"

``<name>`` is the image name with its last extension replaced by ``.txt`` (folders kept).
``class`` is the class index minus 1 (YOLO ids start at 0); ``cx cy w h`` are the box centre and
size divided by the image width (x, w) and height (y, h), so in ``[0, 1]``, with 6 decimals.
An image without objects gets an empty file. The images themselves are not copied:
``data.yaml`` expects them under ``OUT/images/`` with the same relative names.

Example:
    >>> yolo_line(0, (10.0, 20.0, 30.0, 60.0), 100, 200)
    '0 0.200000 0.200000 0.200000 0.200000'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from microprep.errors import InputError
from microprep.exports.coco import planes
from microprep.exports.masks import one_line, output_name
from microprep.model import LabelMap
from microprep.paths import safe_join
from microprep.targets.bands import Band, BandedTargets
from microprep.targets.types import Raster, Targets

logger = logging.getLogger(__name__)

__all__ = ["YoloSink", "yolo_line"]

DATA_YAML_HEADER = (
    "# YOLO dataset. Put the images under images/ with the same relative names as the\n"
    "# label files under labels/ (labels/grid 1/a.txt <-> images/grid 1/a.png).\n"
)


def yolo_line(
    class_id: int, box: tuple[float, float, float, float], width: int, height: int
) -> str:
    """One label line ``"class cx cy w h"`` for a box ``(x_min, y_min, x_max, y_max)``.

    The box is in pixel units with exclusive max; the result is normalised by the image
    ``width`` and ``height`` and printed with 6 decimals.

    Example:
        >>> yolo_line(2, (0.0, 0.0, 4.0, 4.0), 8, 4)
        '2 0.250000 0.500000 0.500000 1.000000'
    """
    x0, y0, x1, y1 = box
    cx = (x0 + x1) / 2.0 / width
    cy = (y0 + y1) / 2.0 / height
    w = (x1 - x0) / width
    h = (y1 - y0) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


class _NoRows:
    """A band writer with nothing to write per band."""

    def write(self, band: Band) -> None:
        """Nothing: the labels were written up front."""

    def close(self) -> None:
        """Nothing to finish."""


class YoloSink:
    """Writes ``OUT/labels/<name>.txt`` per image and ``OUT/data.yaml`` on :meth:`close`.

    Args:
        root: the existing output folder.
        labels: the label map; class ``i`` (1..K) becomes YOLO id ``i - 1``.
        provenance: facts about the run (not written by this export).

    Objects without any pixel are left out; :attr:`skipped` counts them and :meth:`close` logs
    a warning when there were any. Objects of a volume get one line in each slice where they
    have pixels, with the box of that slice's pixels.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> t = Targets("a.png", (ImageInfo("a.png", 4, 3),), np.zeros((3, 4), np.uint8),
        ...             Instances.empty((3, 4)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = YoloSink(Path(d), lm, provenance={})
        ...     sink.add(t, None)
        ...     sink.close()
        ...     (Path(d) / "labels/a.txt").read_text(), yaml.safe_load(
        ...         (Path(d) / "data.yaml").read_text())["names"]
        ('', {0: 'pore'})
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        self.provenance = dict(provenance)
        self.skipped = 0
        self.dir = self.root / "labels"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._num_classes = labels.num_classes
        self._written: dict[PurePosixPath, str] = {}

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write one label file per plane of ``targets``. ``pixels`` is not used."""
        plane_list, skipped = planes(targets)
        self.skipped += skipped
        if skipped:
            logger.debug("%s: %d object(s) without pixels left out", targets.name, skipped)
        for plane in plane_list:
            height, width = (int(v) for v in plane.class_map.shape)
            lines = []
            inst = plane.instances
            for label, box in zip(inst.labels.tolist(), inst.boxes.tolist(), strict=True):
                if not 1 <= label < self._num_classes:
                    raise ValueError(
                        f"{plane.image.name!r}: class index {label} "
                        f"outside 1..{self._num_classes - 1}"
                    )
                lines.append(yolo_line(label - 1, (box[0], box[1], box[2], box[3]), width, height))
            rel = output_name(plane.image.name, ".txt")
            other = self._written.get(rel)
            if other is not None:
                raise InputError(
                    f"images {other!r} and {plane.image.name!r} would both be written to "
                    f"labels/{rel}; rename one of them"
                )
            self._written[rel] = plane.image.name
            path = safe_join(self.dir, str(rel))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")

    def banded_writer(self, banded: BandedTargets, pixels: NDArray[np.generic] | None) -> _NoRows:
        """Write the label file of an image built in bands: its boxes are known up front."""
        empty = Raster((0, 0), np.ones((1, 1), dtype=bool))
        rasters = tuple(empty for _ in banded.instances.rasters)  # every object has pixels
        instances = replace(banded.instances, rasters=rasters)
        height, width = banded.shape
        cmap = np.broadcast_to(np.zeros(1, np.uint8), (height, width))
        self.add(Targets(banded.name, banded.images, cmap, instances, banded.num_classes), None)
        self.skipped += banded.skipped
        return _NoRows()

    def close(self) -> None:
        """Write ``data.yaml`` and warn about objects left out."""
        names = {i: one_line(label.name) for i, label in enumerate(self.labels.classes)}
        data = {"path": ".", "train": "images", "val": "images", "nc": len(names), "names": names}
        text = DATA_YAML_HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        (self.root / "data.yaml").write_text(text, encoding="utf-8")
        if self.skipped:
            logger.warning(
                "yolo: %d object(s) without any pixel were left out of the labels", self.skipped
            )
