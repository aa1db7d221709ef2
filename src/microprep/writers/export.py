"""``prep export-annotations``: a prediction store into a file an annotation tool imports.

Example:
    >>> options = ExportOptions(to="cvat")
    >>> options.as_shape, options.coco_kind
    ('polygon', 'results')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from microprep.errors import UsageError
from microprep.outputs import write_file_atomic
from microprep.readers import ReadOptions
from microprep.writers.coco import CocoKind, coco_json
from microprep.writers.cvat import cvat_xml
from microprep.writers.cvat_video import cvat_video_xml, store_volumes
from microprep.writers.labelbox import labelbox_ndjson
from microprep.writers.labelbox_video import labelbox_video_ndjson
from microprep.writers.like import Like, read_like
from microprep.writers.shapes import ImageShapes, Prediction, ShapeAs, prediction_shapes
from microprep.writers.via import via_json

__all__ = ["TARGETS", "ExportOptions", "ExportSummary", "export_annotations"]

logger = logging.getLogger(__name__)

Target = Literal["cvat", "via", "labelbox", "coco"]
#: The formats written, each the tool whose ``--like`` export it matches.
TARGETS: tuple[str, ...] = ("cvat", "via", "labelbox", "coco")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to write: ``to`` the format; ``as_shape`` polygons or masks (masks: CVAT only;
    COCO always writes RLE); ``simplify`` the Douglas-Peucker tolerance in pixels (0: exact);
    ``score_threshold`` the lowest instance score kept; ``coco_kind`` results or instances;
    ``like`` the original export, read with ``like_format`` / ``read_options``;
    ``label_attribute`` the VIA region attribute for the class; ``only`` the image names to
    write (None: all), ``only_from`` where they came from (for messages)."""

    to: Target
    as_shape: ShapeAs = "polygon"
    simplify: float = 0.0
    score_threshold: float = 0.0
    coco_kind: CocoKind = "results"
    like: Path | None = None
    like_format: str | None = None
    read_options: ReadOptions | None = None
    label_attribute: str | None = None
    only: tuple[str, ...] | None = None
    only_from: str = "--only"

    def __post_init__(self) -> None:
        if self.to not in TARGETS:
            raise UsageError(f"unknown format {self.to!r}; choose from {', '.join(TARGETS)}")
        if self.as_shape == "mask" and self.to in ("via", "labelbox"):
            raise UsageError(f"--as mask is written for cvat (and coco), not {self.to}")
        if self.simplify < 0:
            raise UsageError(f"--simplify must be >= 0 pixels, got {self.simplify}")


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What was written: the file, images, shapes, and the pixels that ``simplify`` changed."""

    out: Path
    images: int
    shapes: int
    changed_pixels: int
    kind: str = ""
    per_image_changed: dict[str, int] = field(default_factory=dict)


def export_annotations(pred: str | Path, out: str | Path, options: ExportOptions) -> ExportSummary:
    """Write the prediction store ``pred`` as ``options.to`` into ``out`` (atomically).

    Raises:
        StoreError: an incomplete or damaged prediction store; ``out`` cannot be written.
        UsageError: options that do not fit, a ``--like`` export that does not match (images,
            sizes, classes, tool); nothing is written then.
        InputError: the ``--like`` export is unreadable.
    """
    out = Path(out)
    as_shape: ShapeAs = "mask" if options.to == "coco" else options.as_shape
    prediction = prediction_shapes(
        pred,
        as_shape=as_shape,
        simplify=options.simplify if as_shape == "polygon" else 0.0,
        score_threshold=options.score_threshold,
        only=options.only,
        only_from=options.only_from,
    )
    volumes = store_volumes(Path(pred), list(prediction.sizes))
    if volumes:
        return _export_volume(Path(pred), out, options, prediction, volumes)
    like: Like | None = None
    if options.like is not None:
        like = read_like(
            options.like,
            sizes=prediction.sizes,
            classes=prediction.classes,
            format=options.like_format,
            options=options.read_options,
        )
        if options.to != "coco" and like.tool != options.to:
            raise UsageError(
                f"--like {options.like} is a {like.tool} export; --to {options.to} needs a "
                f"{options.to} export"
            )
    images: list[ImageShapes] = list(prediction.images())
    if options.to == "cvat":
        data = cvat_xml(images, classes=prediction.classes, colors=prediction.colors, like=like)
    elif options.to == "via":
        data = via_json(
            images, classes=prediction.classes, like=like, label_attribute=options.label_attribute
        )
    elif options.to == "labelbox":
        data = labelbox_ndjson(images, like=like)
    else:
        data = coco_json(images, kind=options.coco_kind, classes=prediction.classes, like=like)
    write_file_atomic(out, data)
    changed = dict(prediction.changed_pixels)
    summary = ExportSummary(
        out=out,
        images=len(images),
        shapes=sum(len(i.shapes) for i in images),
        changed_pixels=sum(changed.values()),
        kind=prediction.kind,
        per_image_changed=changed,
    )
    logger.info("wrote %d shapes of %d images to %s", summary.shapes, summary.images, out)
    return summary


def _export_volume(
    pred: Path,
    out: Path,
    options: ExportOptions,
    prediction: Prediction,
    volumes: list[tuple[str, Any]],
) -> ExportSummary:
    """The volumes of the store as CVAT for video (:mod:`microprep.writers.cvat_video`) or as a
    Labelbox video mask import (:mod:`microprep.writers.labelbox_video`)."""
    name = volumes[0][0]
    if options.to not in ("cvat", "labelbox"):
        raise UsageError(
            f"{pred}: {name!r} is a volume; volumes are written as CVAT for video (--to cvat) "
            f"or Labelbox video masks (--to labelbox), not {options.to}"
        )
    if options.to == "cvat" and len(prediction.sizes) > 1:
        raise UsageError(
            f"{pred}: holds {len(prediction.sizes)} images or volumes; a CVAT for video file "
            "holds one volume: write each with --only"
        )
    if len(volumes) != len(prediction.sizes):
        raise UsageError(
            f"{pred}: holds images and volumes; write the volumes and the images each with --only"
        )
    if options.like is not None or options.as_shape != "polygon" or options.simplify > 0:
        raise UsageError(
            f"{pred}: {name!r} is a volume: --like, --as mask and --simplify are not written "
            "for volumes"
        )
    if prediction.kind != "semantic":  # pragma: no cover - instance stores are 2D
        raise UsageError(f"{pred}: volumes are written from semantic predictions")
    if options.to == "labelbox":
        data, shapes = labelbox_video_ndjson(
            volumes, classes=prediction.classes, colors=prediction.colors
        )
    else:
        data, shapes = cvat_video_xml(
            name, volumes[0][1], classes=prediction.classes, colors=prediction.colors
        )
    write_file_atomic(out, data)
    slices = sum(int(volume.shape[0]) for _, volume in volumes)
    logger.info("wrote %d shapes of %d slices to %s", shapes, slices, out)
    return ExportSummary(out=out, images=slices, shapes=shapes, changed_pixels=0, kind="volume")
