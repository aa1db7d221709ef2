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

Options (``request.options``): ``window``, ``overlap`` (0.25), ``batch_size`` (4, tiles per
forward), ``score_threshold`` (0.5), ``mask_threshold`` (0.5), ``device`` (auto),
``overlays`` (True), ``tta`` (None; ``all``, ``flips`` or a count: each tile is also predicted
flipped and turned and the views are merged, :mod:`microprep.predict.instances_tta`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microprep.crops.windows import as_tuple
from microprep.data.normalize import apply_scale, image_scale
from microprep.errors import UsageError
from microprep.predict.inputs import PredictionInput, iter_inputs
from microprep.predict.instances import predict_instances_tiled
from microprep.predict.instances_tta import with_instance_tta
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.scaling import channels_first
from microprep.predict.tta import parse_tta
from microprep.store.read import open_dataset
from microprep.training.checkpoint import BEST, load_checkpoint, load_latest
from microprep.training.job import PredictRequest
from microprep.training.runtime import choose_device
from microprep_maskrcnn.model import detector_forward
from microprep_maskrcnn.plugin import build_network

__all__ = ["checkpoint_state", "predict_run", "tile_sizes"]

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


def checkpoint_state(request: PredictRequest, device: torch.device) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to predict with and its state: ``request.checkpoint``, else the run's
    ``best.pt``, else its newest checkpoint that verifies.

    Raises:
        UsageError: the run has no usable checkpoint. CheckpointError: a named or best
            checkpoint that fails verification.
    """
    run = request.run
    if request.checkpoint is not None:
        return request.checkpoint, load_checkpoint(request.checkpoint, map_location=device)
    if (run.checkpoints / BEST).is_file():
        path = run.checkpoints / BEST
        return path, load_checkpoint(path, map_location=device)
    found = load_latest(run.checkpoints, map_location=device)
    if found is None:
        raise UsageError(f"{run.path}: no usable checkpoint to predict with")
    return found


def _images(inputs: list[PredictionInput], source: Path) -> list[PredictionInput]:
    volumes = [r.name for r in inputs if r.ndim != 2]
    if volumes:
        shown = ", ".join(repr(v) for v in volumes[:3]) + (" ..." if len(volumes) > 3 else "")
        raise UsageError(
            f"{source}: Mask R-CNN predicts 2D images, but {len(volumes)} input(s) are volumes "
            f"({shown}); predict their slices as separate images"
        )
    return inputs


def _option(options: Mapping[str, Any], key: str, default: Any) -> Any:
    value = options.get(key)
    return default if value is None else value


def predict_run(request: PredictRequest) -> dict[str, Any]:
    """Predict ``request.source`` with the run's weights into ``request.out`` (module doc).

    Returns:
        ``{"inputs", "objects", "seconds", "coco", "overlays"}`` (paths as strings or None).

    Raises:
        UsageError: no usable checkpoint, a volume input, bad options or pixels whose
            channels do not fit the model. InputError / ImageFileError: unreadable inputs.
    """
    started = time.perf_counter()
    opts = request.options
    inputs = _images(list(iter_inputs(request.source)), request.source)
    device = choose_device(str(opts.get("device") or "auto"))
    used, state = checkpoint_state(request, device)
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
    score_threshold = float(_option(opts, "score_threshold", 0.5))
    mask_threshold = float(_option(opts, "mask_threshold", 0.5))
    overlap = float(_option(opts, "overlap", 0.25))
    batch_size = int(_option(opts, "batch_size", 4))
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

    colors = None
    try:
        dataset = open_dataset(request.run.dataset)
        colors = dataset.colors
        dataset.close()
    except Exception:  # the training store may have moved; default colours then
        logger.info("training store %s not readable; default overlay colours", request.run.dataset)
    summary = write_instance_predictions(
        predicted(),
        request.out,
        classes=classes,
        colors=colors if colors is not None and len(colors) == len(classes) else None,
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
        overlays=bool(_option(opts, "overlays", True)),
        progress=request.progress,
        uncertainty=bool(_option(opts, "uncertainty", False)),
    )
    return {
        "inputs": len(summary.names),
        "objects": sum(summary.objects),
        "seconds": round(time.perf_counter() - started, 2),
        "coco": str(summary.coco) if summary.coco else None,
        "overlays": str(summary.overlays) if summary.overlays else None,
    }
