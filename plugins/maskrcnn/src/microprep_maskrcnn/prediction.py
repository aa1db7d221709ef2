"""``prep predict`` for Mask R-CNN runs: :func:`predict_run`.

The network is rebuilt from the checkpoint (``--checkpoint``, else the run's ``best.pt``, else
its newest checkpoint that verifies) without its starting weights file. Every input of the
source (:func:`microprep.predict.inputs.iter_inputs`: a dataset store, a folder, an image file)
is normalised whole with the training rule, cut into tiles of the training window (or
``--window``) and predicted with :func:`microprep.predict.instances.predict_instances_tiled`,
which merges objects across tile seams. The results go to
:func:`microprep.predict.instances_write.write_instance_predictions`: ``PRED.zarr``,
``PRED.coco.json`` and ``PRED.overlays/``. Mask R-CNN takes 2D images: a volume in the source is
refused before anything is predicted.

The tiles keep the training pixel scale: with another ``--window``, the model's resize sizes
are set so that a tile is scaled exactly as a training crop was (1:1 unless ``model.min_size``
said otherwise).

Options (``request.options`` with the defaults filled in): ``window``, ``overlap`` (0.25),
``batch_size`` (4, tiles per forward), ``score_threshold`` (0.5), ``mask_threshold`` (0.5),
``device`` (auto), ``overlays`` (True), ``tta`` (None; ``all``, ``flips`` or a count: each
tile is also predicted flipped and turned and the views are merged,
:mod:`microprep.predict.instances_tta`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microprep.crops.windows import as_tuple
from microprep.data.normalize import apply_scale, image_scale
from microprep.errors import UsageError
from microprep.predict.inputs import PredictionInput, iter_inputs
from microprep.predict.instances import predict_instances_tiled
from microprep.predict.instances_tta import with_instance_tta
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.scaling import channels_first
from microprep.predict.tta import parse_tta
from microprep.training.checkpoint import checkpoint_for_prediction
from microprep.training.job import PredictRequest
from microprep.training.runtime import choose_device
from microprep.training.stores import store_colors
from microprep_maskrcnn.model import detector_forward
from microprep_maskrcnn.plugin import build_network

__all__ = ["predict_run", "tile_sizes"]

logger = logging.getLogger(__name__)


def tile_sizes(
    train_window: Sequence[int], sizes: Sequence[int], tile: Sequence[int]
) -> tuple[int, int]:
    """``(min_size, max_size)`` that scale a ``tile`` ``(h, w)`` like a training crop of
    ``train_window`` was scaled by the model's training ``sizes``.

    Example:
        >>> tile_sizes((128, 128), (128, 128), (256, 256))
        (256, 256)
        >>> tile_sizes((64, 64), (128, 128), (96, 96))  # trained at twice the pixel scale
        (192, 192)
    """
    scale = min(sizes[0] / min(train_window), sizes[1] / max(train_window))
    lo = max(1, round(min(tile) * scale))
    return lo, max(lo, round(max(tile) * scale))


def _images(inputs: list[PredictionInput], source: Path) -> list[PredictionInput]:
    volumes = [r.name for r in inputs if r.ndim != 2]
    if volumes:
        shown = ", ".join(repr(v) for v in volumes[:3]) + (" ..." if len(volumes) > 3 else "")
        raise UsageError(
            f"{source}: Mask R-CNN predicts 2D images, but {len(volumes)} input(s) are volumes "
            f"({shown}); predict their slices as separate images"
        )
    return inputs


def predict_run(request: PredictRequest, options: Mapping[str, Any]) -> dict[str, Any]:
    """Predict ``request.source`` with the run's weights into ``request.out`` (module doc).

    ``options`` are ``request.options`` with every default filled in (the trainer's
    ``predict_options``).

    Returns:
        ``{"inputs", "objects", "seconds", "coco", "overlays"}`` (paths as strings or None).

    Raises:
        UsageError: no usable checkpoint, a volume input, bad options or pixels whose
            channels do not fit the model. InputError / ImageFileError: unreadable inputs.
    """
    started = time.perf_counter()
    opts = options
    inputs = _images(list(iter_inputs(request.source)), request.source)
    device = choose_device(str(opts["device"]))
    used, state = checkpoint_for_prediction(
        request.run.checkpoints, request.checkpoint, map_location=device
    )
    extra = json.loads(state["extra"])
    config = json.loads(state["config"])
    classes = [str(c) for c in extra["classes"]]
    in_channels = int(extra["in_channels"])
    train_window = (int(extra["window"][0]), int(extra["window"][1]))
    window = train_window
    if opts.get("window"):
        height, width = as_tuple(opts["window"], 2, "window")
        window = (height, width)
    sizes = tile_sizes(train_window, (extra["min_size"], extra["max_size"]), window)
    score_threshold = float(opts["score_threshold"])
    mask_threshold = float(opts["mask_threshold"])
    overlap = float(opts["overlap"])
    batch_size = int(opts["batch_size"])
    model = build_network(
        config,
        num_classes=len(classes),
        in_channels=in_channels,
        sizes=sizes,
        frozen_batch_norm=bool(extra["frozen_batch_norm"]),
        score_threshold=score_threshold,
    )
    model.load_state_dict(state["model"])
    model.to(device).eval()
    del state
    tta = parse_tta(opts.get("tta"))
    forward = with_instance_tta(
        detector_forward(model, device=device), tta, mask_threshold=mask_threshold
    )
    rule = str(extra["normalization"])

    def predicted() -> Iterator[PredictedImage]:
        for record in inputs:
            raw = np.asarray(record.image)
            try:
                pixels = channels_first(raw, ndim=2, in_channels=in_channels)
            except UsageError as exc:
                raise UsageError(f"{record.source}: {exc}") from exc
            scale = image_scale(np.moveaxis(pixels, 0, -1), rule, ndim=2)
            prediction = predict_instances_tiled(
                forward,
                apply_scale(pixels, scale),
                window=window,
                overlap=overlap,
                batch_size=batch_size,
                score_threshold=score_threshold,
                mask_threshold=mask_threshold,
                progress=request.progress,
            )
            truth = record.truth.get("instances")
            yield PredictedImage(record.name, prediction, raw, source=record.source, truth=truth)

    colors = store_colors(request.run.dataset, count=len(classes))
    summary = write_instance_predictions(
        predicted(),
        request.out,
        classes=classes,
        colors=colors,
        run={
            "run": str(request.run.path),
            "checkpoint": str(used),
            "trainer": "maskrcnn",
            "window": list(window),
            "overlap": overlap,
            "score_threshold": score_threshold,
            "mask_threshold": mask_threshold,
            "tta": tta,
            "source": str(request.source),
        },
        overlays=bool(opts["overlays"]),
        progress=request.progress,
        uncertainty=bool(opts["uncertainty"]),
    )
    return {
        "inputs": len(summary.names),
        "objects": sum(summary.objects),
        "seconds": round(time.perf_counter() - started, 2),
        "coco": str(summary.coco) if summary.coco else None,
        "overlays": str(summary.overlays) if summary.overlays else None,
    }
