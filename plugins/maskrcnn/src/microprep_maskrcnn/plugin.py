"""The ``maskrcnn`` trainer: :class:`MaskRCNNTrainer` (entry point ``microprep.trainers``).

The trainer is a :class:`~microprep.training.trainer.BaseTrainer`: it builds
:class:`~microprep.data.InstanceDataset` sets over the store's ``train`` and ``val`` splits
(2D stores only) and a torchvision Mask R-CNN
(:func:`~microprep_maskrcnn.model.build_model`: ``num_classes`` = the store's classes with
background, ``in_channels`` from the images, sizes = the training window so crops are never
resized, starting weights from a local file or none); the base class makes the loaders and
hands everything to the shared loop (:func:`microprep.training.loop.fit`: checkpoints, resume,
AMP, early stopping, curves, torchrun). A training step sums torchvision's five losses;
anchors and proposals mostly on pixels that are not annotated are no negatives
(:mod:`microprep_maskrcnn.ignore`); validation is COCO AP of boxes and masks on the validation
windows (:mod:`microprep_maskrcnn.validation`).

``predict`` (:mod:`microprep_maskrcnn.prediction`) rebuilds the network from the checkpoint and
predicts every input tile by tile, merging objects across tile seams.

Configuration keys: ``schemas/maskrcnn-config.schema.json`` and ``docs/maskrcnn.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torchvision.models.detection import MaskRCNN  # type: ignore[import-untyped]

from microprep.data import InstanceDataset, collate_instances
from microprep.schemas import load_schema
from microprep.training.datasets import (
    DataSource,
    augment_config,
    source_images,
    train_stride,
    train_transform,
)
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.loop import Evaluate, TrainStep
from microprep.training.runtime import Precision
from microprep.training.trainer import BaseTrainer, Setup
from microprep_maskrcnn.model import build_model
from microprep_maskrcnn.predict_options import PREDICT_SCHEMA
from microprep_maskrcnn.validation import evaluate_detector
from microprep_maskrcnn.weights import WeightsError

__all__ = ["MaskRCNNTrainer", "build_network", "model_sizes", "train_step"]

logger = logging.getLogger(__name__)


def model_sizes(
    window: Sequence[int], *, min_size: int | None = None, max_size: int | None = None
) -> tuple[int, int]:
    """The ``(min_size, max_size)`` the model resizes crops of ``window`` ``(h, w)`` px to.

    ``min_size`` None: the shorter side of the window (no resizing). ``max_size`` None: the
    longer side, scaled like the shorter one.

    Example:
        >>> model_sizes((128, 192)), model_sizes((128, 192), min_size=256)
        ((128, 192), (256, 384))
    """
    short, long = min(window), max(window)
    lo = short if min_size is None else int(min_size)
    hi = round(long * lo / short) if max_size is None else int(max_size)
    return lo, hi


def build_network(
    config: Mapping[str, Any],
    *,
    num_classes: int,
    in_channels: int,
    sizes: tuple[int, int],
    weights: str | Path | None = None,
    frozen_batch_norm: bool | None = None,
    score_threshold: float | None = None,
) -> MaskRCNN:
    """The Mask R-CNN that ``config["model"]`` describes (see the schema), at ``sizes``.

    ``score_threshold`` (default ``config["score_threshold"]``) is torchvision's
    ``box_score_thresh``: eval-mode detections scoring below it are never made.
    """
    m = config["model"]
    threshold = config["score_threshold"] if score_threshold is None else score_threshold
    return build_model(
        num_classes=num_classes,
        in_channels=in_channels,
        variant=str(m["variant"]),
        min_size=sizes[0],
        max_size=sizes[1],
        weights=weights,
        trainable_backbone_layers=int(m["trainable_backbone_layers"]),
        box_detections_per_img=int(m["box_detections_per_img"]),
        frozen_batch_norm=frozen_batch_norm,
        box_score_thresh=float(threshold),
        rpn_pre_nms_top_n_train=int(m["rpn_pre_nms_top_n_train"]),
        rpn_post_nms_top_n_train=int(m["rpn_post_nms_top_n_train"]),
        rpn_pre_nms_top_n_test=int(m["rpn_pre_nms_top_n_test"]),
        rpn_post_nms_top_n_test=int(m["rpn_post_nms_top_n_test"]),
        box_batch_size_per_image=int(m["box_batch_size_per_image"]),
    )


def train_step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
    """One training forward: ``(images, targets)`` -> (sum of the losses, each loss)."""
    images, targets = batch
    images = [image.to(device, non_blocking=True) for image in images]
    targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
    losses = net(images, targets)
    total = sum(losses.values())
    return total, {name: float(value.detach()) for name, value in losses.items()}


def _weights(config: Mapping[str, Any]) -> Path | None:
    """``model.weights`` as a path, checked before anything is built (never downloaded)."""
    value = config["model"]["weights"]
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise WeightsError(
            f"model.weights: {path}: {what}; give a local weights file (a Mask R-CNN or "
            "ResNet-50 state dict; nothing is downloaded), or null for random weights"
        )
    return path


def _dataset(job: TrainJob, source: DataSource, *, train: bool) -> InstanceDataset:
    data = job.config["data"]
    window = data["window"]
    stride = train_stride(window, data["stride"]) if train else data["val_stride"]
    augment = augment_config(data, images=source_images(source)) if train else None
    if augment is not None and augment.recipe:
        logger.info("small training set: %s augmentation on (data.auto_augment)", augment.recipe)
    per_epoch = data.get("samples_per_epoch") if train else None
    return InstanceDataset(
        source.store,
        split=source.split,
        splits=source.splits,
        window=window,
        stride=stride,
        augment=augment,
        transform=train_transform(data) if train else None,
        seed=int(job.config["seed"]),
        normalization=data["normalization"],
        min_visible=float(data["min_visible"]),
        min_area=int(data["min_area"]),
        samples_per_epoch=None if per_epoch is None else int(per_epoch),
    )


class MaskRCNNTrainer(BaseTrainer):
    """Mask R-CNN (torchvision ResNet-50 FPN) for instance segmentation of 2D images."""

    name = "maskrcnn"
    summary = "Mask R-CNN ResNet-50 FPN (v1/v2), instance segmentation of 2D images, COCO AP"
    collate_fn = staticmethod(collate_instances)

    def config_schema(self) -> dict[str, Any]:
        """The trainer's own keys (``schemas/maskrcnn-config.schema.json``)."""
        return load_schema("maskrcnn-config.schema.json")

    def predict_schema(self) -> dict[str, Any]:
        """``prep predict --score-threshold / --mask-threshold``."""
        return PREDICT_SCHEMA

    def check_job(self, job: TrainJob) -> None:
        """A ``model.weights`` file that is not there stops the run before any data is read."""
        _weights(job.config)
        if float(job.config["data"].get("min_foreground") or 0) > 0:
            logger.warning("data.min_foreground is not used by maskrcnn: empty windows are kept")

    def build_dataset(self, job: TrainJob, source: DataSource, *, train: bool) -> Any:
        """An :class:`~microprep.data.InstanceDataset` (see :func:`_dataset`)."""
        return _dataset(job, source, train=train)

    def configure_model(self, setup: Setup) -> torch.nn.Module:
        """The Mask R-CNN of ``model``, sized to the training window (no resizing)."""
        cfg, train_set, m = setup.config, setup.train_set, setup.config["model"]
        if train_set.ignore_index is not None:
            logger.info(
                "%s has pixels that are not annotated (ignore_index %d): anchors and proposals "
                "mostly on them are no negatives",
                train_set.path,
                train_set.ignore_index,
            )
        weights = _weights(cfg)
        window = tuple(int(w) for w in train_set.window)
        sizes = model_sizes(window, min_size=m["min_size"], max_size=m["max_size"])
        logger.info(
            "Mask R-CNN %s: %d classes, %d channel(s), window %s, model sizes %s, %s",
            m["variant"],
            len(train_set.classes),
            train_set.in_channels,
            window,
            sizes,
            f"weights {weights}" if weights else "random weights",
        )
        model: torch.nn.Module = build_network(
            cfg,
            num_classes=len(train_set.classes),
            in_channels=train_set.in_channels,
            sizes=sizes,
            weights=weights,
        )
        return model

    def configure_step(self, setup: Setup) -> TrainStep:
        """:func:`train_step`: the sum of torchvision's five losses."""
        return train_step

    def configure_evaluate(self, setup: Setup) -> Evaluate:
        """COCO AP of boxes and masks on the validation windows."""
        cfg, classes = setup.config, list(setup.train_set.classes)
        max_detections = max(100, int(cfg["model"]["box_detections_per_img"]))

        def evaluate(
            net: torch.nn.Module, loader: Any, device: torch.device, precision: Precision
        ) -> dict[str, float]:
            return evaluate_detector(
                net,
                loader,
                device,
                precision,
                classes=classes,
                score_threshold=float(cfg["score_threshold"]),
                max_detections=max_detections,
            )

        return evaluate

    def checkpoint_extra(self, setup: Setup) -> dict[str, Any]:
        """The base facts plus what rebuilds the network: variant, sizes, weights."""
        cfg, m = setup.config, setup.config["model"]
        weights = _weights(cfg)
        window = tuple(int(w) for w in setup.train_set.window)
        sizes = model_sizes(window, min_size=m["min_size"], max_size=m["max_size"])
        return {
            **super().checkpoint_extra(setup),
            "variant": m["variant"],
            "min_size": sizes[0],
            "max_size": sizes[1],
            "frozen_batch_norm": weights is not None,
            "weights": None if weights is None else str(weights),
        }

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Tiled instance prediction of ``request.source`` into ``request.out`` (zarr store,
        COCO results, overlays); see :func:`microprep_maskrcnn.prediction.predict_run`."""
        from microprep_maskrcnn.prediction import predict_run

        return predict_run(request, self.predict_options(request))
