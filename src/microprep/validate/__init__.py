"""Validate an annotation export before it becomes training data, and repair what can be.

:func:`validate` reads every image and shape once (streaming: shapes are measured in batches of
about :data:`BATCH_SHAPES`) and returns a :class:`Report`: findings with a severity and a stable
code, plus an image table and a shape table checked against the pandera schemas in
``schemas/images.yaml`` and ``schemas/shapes.yaml``. :func:`repair` applies the documented repairs.
The checks, codes and severities are listed in docs/validate.md.

Example:
    >>> import numpy as np
    >>> from microprep.model import AnnotatedImage, ImageInfo, LabelMap, LabelSpec, Shape
    >>> box = Shape("box", "grain", np.array([[2.0, 2.0], [2.0, 6.0]]), order=0)
    >>> item = AnnotatedImage(ImageInfo("a.png", 8, 8), (box,))
    >>> ds = AnnotationSet.from_items([item], labels=LabelMap((LabelSpec("grain"),)))
    >>> report = validate(ds)
    >>> [(f.severity, f.code, f.shape) for f in report.errors], report.exit_code(strict=False)
    ([('error', 'zero-area', 0)], 2)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microprep.imagefiles import ImageSource, as_source, image_keys
from microprep.model import AnnotatedImage, AnnotationSet
from microprep.validate.checks import Batch, geometry_findings, no_pixel_findings, outside_findings
from microprep.validate.files import (
    check_file,
    export_findings,
    file_names,
    label_findings,
    shapes_digest,
)
from microprep.validate.overlap import overlap_findings
from microprep.validate.repair import REPAIRABLE, repair
from microprep.validate.report import Finding, Report, Severity
from microprep.validate.tables import (
    IMAGE_COLUMNS,
    images_table,
    load_table_schema,
    schema_findings,
    shape_columns,
    shapes_table,
)

__all__ = [
    "REPAIRABLE",
    "Finding",
    "Report",
    "Severity",
    "ValidateOptions",
    "repair",
    "validate",
]

logger = logging.getLogger(__name__)

#: Shapes measured together (images are never split between batches).
BATCH_SHAPES = 20_000


@dataclass(frozen=True)
class ValidateOptions:
    """What :func:`validate` checks beyond the export itself.

    Args:
        images: folder of the image files (by their names in the export), or an image source
            (see :mod:`microprep.imagefiles`); None: no file checks.
        iou_threshold: report pairs of objects whose IoU is above this (``overlapping-objects``).
        max_vertices: the most vertices a shape may have (``too-many-vertices``); polygons above
            it get no geometry checks.
        check_overlaps: False skips the overlap report.
        schemas: folder holding ``images.yaml`` and ``shapes.yaml``; None: the shipped ones.
    """

    images: Path | ImageSource | None = None
    iou_threshold: float = 0.5
    max_vertices: int = 10_000
    check_overlaps: bool = True
    schemas: Path | None = None


class _Run:
    """State of one validation pass."""

    def __init__(self, annotations: AnnotationSet, options: ValidateOptions) -> None:
        self.options = options
        self.findings: list[Finding] = [
            Finding("warning", "reader-warning", w) for w in annotations.warnings
        ]
        self.files: list[str] | None = None
        self.source = as_source(options.images)
        if self.source is not None:
            self.files, found = file_names(annotations, self.source)
            self.findings.extend(found)
        self.images: dict[str, list[Any]] = {c: [] for c in IMAGE_COLUMNS}
        self.keys = image_keys(annotations.images)  # unique: subset/name in project exports
        self.digests: list[str | None] = []
        self.used: Counter[str] = Counter()
        self.parts: list[dict[str, Any]] = []
        self.in_error: list[int] = []
        self.rows = 0
        self.batch = Batch()

    def add(self, position: int, item: AnnotatedImage) -> None:
        image = item.image
        key = self.keys[position] if position < len(self.keys) else image.name
        row = self.images
        exists, fw, fh = None, None, None
        if self.source is not None and self.files is not None:
            name = self.files[position] if position < len(self.files) else image.name
            exists, fw, fh, finding = check_file(image, self.source, name, key)
            if finding is not None:
                self.findings.append(finding)
        for column, value in zip(
            IMAGE_COLUMNS,
            (image.name, image.width, image.height, image.frame, image.subset,
             len(item.shapes), exists, fw, fh),
            strict=True,
        ):  # fmt: skip
            row[column].append(value)
        self.digests.append(shapes_digest(item))
        for s in item.shapes:
            self.used[s.label] += 1
            for e in s.elements:
                self.used[e.label] += 1
        self.batch.add(position, key, image.width, image.height, item.shapes)
        if len(self.batch.shapes) >= BATCH_SHAPES:
            self.flush()

    def flush(self) -> None:
        batch, options = self.batch, self.options
        if not batch.shapes:
            return
        m = batch.measure(options.max_vertices)
        in_error: list[int] = []
        self.findings.extend(geometry_findings(batch, m, options.max_vertices, in_error))
        outside, wholly, inside = outside_findings(batch, m)
        self.findings.extend(outside)
        self.findings.extend(no_pixel_findings(batch, m, wholly, inside))
        if options.check_overlaps:
            self.findings.extend(overlap_findings(batch, m, options.iou_threshold))
        self.parts.append(shape_columns(batch, m))
        self.in_error.extend(self.rows + i for i in in_error)
        self.rows += len(batch.shapes)
        self.batch = Batch()


def validate(annotations: AnnotationSet, options: ValidateOptions = ValidateOptions()) -> Report:
    """Check ``annotations`` (geometry, labels, images and their files, overlaps, tables).

    Args:
        annotations: any reader's result, or a set built with ``AnnotationSet.from_items``.
        options: image folder, IoU threshold, vertex cap, overlap switch, schema folder.

    Returns:
        A :class:`Report`; ``report.exit_code(strict)`` is the CLI's exit code.

    Raises:
        PrepError: what the reader raises while the set is iterated; FileNotFoundError when a
            schema file is missing.
    """
    start = time.perf_counter()
    schemas = {t: load_table_schema(t, options.schemas) for t in ("images", "shapes")}
    run = _Run(annotations, options)
    for position, item in enumerate(annotations):
        run.add(position, item)
    run.flush()
    images = images_table(run.images)
    shapes = shapes_table(run.parts)
    findings = run.findings
    findings.extend(label_findings(annotations.labels, run.used))
    findings.extend(
        export_findings(
            run.keys,
            run.digests,
            run.images["n_shapes"],
            annotations.stack is not None or any(i.frame is not None for i in annotations.images),
        )
    )
    findings.extend(schema_findings("images", images, schemas["images"]))
    frames = {
        name: int(frame)
        for name, frame in zip(run.images["name"], run.images["frame"], strict=True)
        if frame is not None
    }
    findings.extend(
        schema_findings("shapes", shapes, schemas["shapes"], frozenset(run.in_error), frames)
    )
    logger.info(
        "validated %d images, %d shapes: %d findings in %.2f s",
        len(images), len(shapes), len(findings), time.perf_counter() - start,
    )  # fmt: skip
    return Report(
        source=annotations.source,
        format=annotations.format,
        findings=findings,
        images=images,
        shapes=shapes,
    )
