"""Writing instance predictions of many images: a prediction store, COCO results and overlays.

:func:`write_instance_predictions` takes one :class:`PredictedImage` per input (its name, the
:class:`~microprep.predict.instances.InstancePrediction` and optionally its pixels) and writes,
for ``out = PRED.zarr``::

    PRED.zarr/          the prediction store, kind "instances" (layout below)
    PRED.overlays/      one PNG per input: pixels, class colours, outlines and boxes, legend
    PRED.coco.json      COCO results: a list of detections, masks as compressed RLE

All three are built in temporary files and put in place only when every input is written
(:func:`microprep.outputs.atomic_output`); inputs are handled one at a time, so memory holds one
image's objects plus the COCO records (small RLE strings).

**COCO results**: :mod:`microprep.predict.coco_results` (one record per object, masks as
compressed RLE, lossless).

**Store layout.** The root attributes ``microprep_prediction`` are those of the semantic
prediction store (:mod:`microprep.predict.write`) with ``kind: "instances"``: ``version``,
``format_version``, ``kind``, ``classes``, ``colors``, ``run``, ``nodes``, ``complete``. One group
per input (named like the dataset store's nodes), attributes ``name``, ``kind: "image"``,
``shape: [H, W]``, and the arrays

==================  ====================  =========  ==============================================
array               dims                  dtype      content
==================  ====================  =========  ==============================================
``instances``       ``(y, x)``            uint32     ``i + 1`` on the pixels of object ``i``; where
                                                     objects overlap the higher score is on top
``labels``          ``(y, x)``            uint8      class index per pixel from ``instances``
``instance_label``  ``(instance,)``       int64      class index of object ``i``
``instance_score``  ``(instance,)``       float32    its score; objects by descending score
``instance_box``    ``(instance, box_coord)`` float64  ``x_min, y_min, x_max, y_max`` of its whole
                                                     mask, pixels, exclusive max
``instance_area``   ``(instance,)``       int64      pixel count of its whole mask
==================  ====================  =========  ==============================================

With ``uncertainty=True`` (``prep predict --uncertainty``) each group also has an
``uncertainty`` array ``(y, x)`` float16: ``1 - score`` of the object shown at each pixel of the
id map, 0 where there is no object (the Mask R-CNN plugin has no test-time augmentation, so the
score is the only signal), and the attributes ``uncertainty_mean`` (its mean over the pixels);
the root attributes record ``uncertainty: "score"``. Every group records ``class_pixels``.

The id map keeps one object per pixel, so a lower-scored object under a higher-scored one loses
its covered pixels there
(:func:`microprep.predict.instances_read.read_instance_predictions` rebuilds the visible parts); the
COCO results keep every mask whole.

Example:
    >>> import tempfile
    >>> from microprep.targets.types import Raster
    >>> pred = InstancePrediction.from_rasters(
    ...     (4, 6), [Raster((1, 1), np.ones((2, 2), bool))], labels=[1], scores=[0.9])
    >>> out = Path(tempfile.mkdtemp()) / "pred.zarr"
    >>> summary = write_instance_predictions(
    ...     [PredictedImage("a.png", pred)], out, classes=["background", "pore"])
    >>> from microprep.predict.instances_read import read_instance_predictions
    >>> [(name, len(p)) for name, p in read_instance_predictions(out)]
    [('a.png', 1)]
    >>> import json
    >>> json.loads(coco_results_path(out).read_text())[0]["bbox"]
    [1.0, 1.0, 2.0, 2.0]
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from tqdm import tqdm
from zarr.storage import LocalStore

from microprep.errors import StoreError, UsageError
from microprep.outputs import atomic_output
from microprep.paths import picture_name
from microprep.predict.coco_results import coco_results, coco_results_path, write_coco_results
from microprep.predict.instances import InstancePrediction
from microprep.predict.overlays import display_pixels, save_picture
from microprep.predict.semantic import default_colors, overlays_path
from microprep.predict.truth import TRUTH_NOTE, draw_truth, truth_wanted
from microprep.predict.write import FORMAT_VERSION, PREDICTION_KEY
from microprep.preview.montage import caption, enlarge, with_legend
from microprep.preview.overlay import render_overlay
from microprep.progress import lines_wanted, with_progress_lines
from microprep.store.layout import COMPRESSORS, jsonable, node_name, package_version
from microprep.store.layout import spatial_chunking as _chunking
from microprep.targets.types import class_dtype

__all__ = ["InstanceWriteSummary", "PredictedImage", "write_instance_predictions"]

logger = logging.getLogger(__name__)

_DESCRIPTIONS = {
    "instances": "predicted instance id per pixel (1..N, 0 none); higher score on top",
    "labels": "predicted class index per pixel, from the instance map (0 background)",
    "instance_label": "class index (1..K) of each predicted instance",
    "instance_score": "score of each predicted instance; instances by descending score",
    "instance_box": "box of each whole mask: x_min, y_min, x_max, y_max; pixels, exclusive max",
    "instance_area": "pixel count of each whole mask",
    "uncertainty": "1 - score of the instance at each pixel; 0 where there is none",
}


@dataclass(frozen=True, slots=True)
class PredictedImage:
    """One input's prediction. ``image``: its pixels channels last, ``(H, W[, C])`` in any
    dtype, for the overlay (None: grey background); ``source``: where it came from;
    ``truth``: the ground-truth instance id map ``([layer,] H, W)`` whose outlines the overlay
    draws in white under :func:`microprep.predict.truth.truth_overlays` (None: none)."""

    name: str
    prediction: InstancePrediction
    image: Any = None
    source: str | None = None
    truth: Any = None


def _item_name(item: PredictedImage) -> str:
    return item.name


@dataclass(slots=True)
class InstanceWriteSummary:
    """What :func:`write_instance_predictions` wrote: the paths (None when not asked for),
    the image names and store groups in input order, and the object count per input."""

    out: Path
    overlays: Path | None
    coco: Path | None
    names: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    objects: list[int] = field(default_factory=list)


def write_instance_predictions(
    items: Iterable[PredictedImage],
    out: str | Path,
    *,
    classes: Sequence[str],
    colors: Sequence[Sequence[int]] | None = None,
    run: Mapping[str, Any] | None = None,
    coco: bool = True,
    overlays: bool = True,
    overwrite: bool = True,
    progress: bool = False,
    uncertainty: bool = False,
) -> InstanceWriteSummary:
    """Write the prediction store ``out``, its overlays and COCO results (module docstring).

    Args:
        items: the predictions, one per input (consumed one at a time).
        out: the prediction store (``PRED.zarr``); overlays and COCO results go beside it.
        classes: class names by index, background first (the training store's ``classes``).
        colors: RGB per class (default: black, then the default palette).
        run: facts about the run (model, checkpoint, thresholds): JSON-able, stored in the
            root attributes under ``run``.
        coco: write ``PRED.coco.json`` (:func:`coco_results_path`).
        overlays: write ``PRED.overlays/`` (:func:`~microprep.predict.semantic.overlays_path`).
        overwrite: replace earlier outputs (each only once the new one is complete).
        progress: show a progress bar.
        uncertainty: also write each group's score-based ``uncertainty`` (module docstring).

    Raises:
        UsageError: no classes, colours that do not match them, a class index outside the
            classes, or no inputs.
        StoreError, LockedError: the outputs cannot be written.
    """
    out = Path(out)
    names = [str(c) for c in classes]
    if len(names) < 2:
        raise UsageError("classes must name the background and at least one class")
    palette = [list(c)[:3] for c in (colors if colors is not None else default_colors(len(names)))]
    if len(palette) != len(names):
        raise UsageError(f"{len(names)} classes but {len(palette)} colours")
    summary = InstanceWriteSummary(
        out=out,
        overlays=overlays_path(out) if overlays else None,
        coco=coco_results_path(out) if coco else None,
    )
    records: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_output(out, overwrite=overwrite))
        tmp_over = (
            stack.enter_context(atomic_output(summary.overlays)) if summary.overlays else None
        )
        attrs: dict[str, Any] = {
            "version": package_version(),
            "format_version": FORMAT_VERSION,
            "kind": "instances",
            "classes": names,
            "colors": [[int(v) for v in c] for c in palette],
            "run": jsonable(dict(run or {}), "run"),
            "nodes": [],
            "complete": False,
        }
        if uncertainty:
            attrs["uncertainty"] = "score"
        try:
            root = zarr.create_group(
                store=LocalStore(tmp), zarr_format=3, attributes={PREDICTION_KEY: attrs}
            )
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot create the prediction store at {out}: {exc}") from exc
        taken: set[str] = set()
        pictures: set[str] = set()  # overlay file names taken
        lines = with_progress_lines(
            items, what="predicted", enabled=lines_wanted(progress), name=_item_name
        )
        for item in tqdm(lines, desc="write", unit="input", disable=None if progress else True):
            pred = item.prediction
            if len(pred) and not 1 <= int(pred.labels.min()) <= int(pred.labels.max()) < len(names):
                raise UsageError(
                    f"{item.name!r}: class indices {sorted(set(pred.labels.tolist()))} are "
                    f"outside 1..{len(names) - 1}"
                )
            group = node_name(item.name, taken)
            id_map = pred.id_map()
            class_map = _class_map(id_map, pred.labels, len(names))
            _write_group(
                root,
                group,
                item,
                id_map,
                class_map,
                num_classes=len(names),
                uncertainty=uncertainty,
                where=str(out),
            )
            if coco:
                records.extend(
                    coco_results(pred, image_id=len(summary.names) + 1, file_name=item.name)
                )
            if tmp_over is not None:
                picture = render_overlay(
                    display_pixels(item.image), class_map, pred.to_instances(), colors=palette
                )
                title = item.name
                if item.truth is not None and truth_wanted():
                    picture = draw_truth(picture, np.asarray(item.truth))
                    title = f"{title}  ({TRUTH_NOTE})"
                picture = caption(with_legend(enlarge(picture), palette, names), title)
                save_picture(picture, tmp_over / picture_name(group, pictures))
            summary.names.append(item.name)
            summary.groups.append(group)
            summary.objects.append(len(pred))
        if not summary.names:
            raise UsageError(f"{out}: no predictions to write")
        _finish(root, attrs, summary.groups, where=str(out))
        if summary.coco is not None:
            write_coco_results(records, summary.coco)
    logger.info(
        "wrote %d instance predictions (%d objects) to %s",
        len(summary.names),
        sum(summary.objects),
        out,
    )
    return summary


def _class_map(
    id_map: NDArray[np.uint32], labels: NDArray[np.int64], num_classes: int
) -> NDArray[np.unsignedinteger[Any]]:
    lookup = np.concatenate(([0], labels)).astype(class_dtype(num_classes))
    out: NDArray[np.unsignedinteger[Any]] = lookup[id_map]
    return out


def _write_group(
    root: zarr.Group,
    group: str,
    item: PredictedImage,
    id_map: NDArray[np.uint32],
    class_map: NDArray[np.unsignedinteger[Any]],
    *,
    num_classes: int,
    uncertainty: bool = False,
    where: str,
) -> None:
    pred = item.prediction
    n = len(pred)
    chunks, shards = _chunking(id_map.shape)
    attrs: dict[str, Any] = {"name": item.name, "kind": "image", "shape": list(id_map.shape)}
    counts = np.bincount(class_map.reshape(-1), minlength=num_classes)[:num_classes]
    attrs["class_pixels"] = [int(v) for v in counts]
    if item.source is not None:
        attrs["source"] = item.source
    arrays: list[tuple[str, NDArray[Any], list[str], tuple[int, ...], tuple[int, ...] | None]] = [
        ("instances", id_map, ["y", "x"], chunks, shards),
        ("labels", class_map, ["y", "x"], chunks, shards),
        ("instance_label", pred.labels, ["instance"], (max(n, 1),), None),
        ("instance_score", pred.scores, ["instance"], (max(n, 1),), None),
        (
            "instance_box",
            pred.boxes.astype(np.float64),
            ["instance", "box_coord"],
            (max(n, 1), 4),
            None,
        ),
        ("instance_area", pred.areas, ["instance"], (max(n, 1),), None),
    ]
    if uncertainty:
        lookup = np.concatenate(([0.0], 1.0 - np.asarray(pred.scores, np.float64)))
        heat = np.clip(lookup[id_map], 0.0, 1.0)
        attrs["uncertainty_mean"] = float(heat.mean()) if heat.size else 0.0
        arrays.append(("uncertainty", heat.astype(np.float16), ["y", "x"], chunks, shards))
    try:
        node = root.create_group(group, attributes=attrs)
        for key, data, dims, chunk, shard in arrays:
            node.create_array(
                key,
                data=np.ascontiguousarray(data),
                chunks=chunk,
                shards=shard,
                compressors=COMPRESSORS,
                fill_value=0,
                dimension_names=dims,
                attributes={"description": _DESCRIPTIONS[key]},
                config={"write_empty_chunks": True},
            )
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(f"{where}: cannot write the prediction of {item.name!r}: {exc}") from exc


def _finish(root: zarr.Group, attrs: dict[str, Any], groups: list[str], *, where: str) -> None:
    """List the nodes, consolidate the metadata, then mark the store complete (last)."""
    listed = {**attrs, "nodes": list(groups)}
    try:
        root.attrs.update({PREDICTION_KEY: listed})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
            consolidated = zarr.consolidate_metadata(root.store)
        consolidated.attrs.update({PREDICTION_KEY: {**listed, "complete": True}})
    except (OSError, ValueError) as exc:
        raise StoreError(f"{where}: cannot finish the prediction store: {exc}") from exc
