"""The ``unet`` trainer: :class:`UNetTrainer` (entry point ``microprep.trainers: unet``).

The trainer is a :class:`~microprep.training.trainer.BaseTrainer`: it builds
:class:`~microprep.data.SegmentationDataset` sets over the store's ``train`` and ``val`` splits,
a 2D or 3D :class:`~microprep_unet.model.UNet` (from the store: images give 2D, volumes 3D) and
the configured loss (class weights from the pixels of each class in the training split,
:func:`microprep.training.stores.class_counts`); the base class makes the loaders and hands
everything to the shared loop (:func:`microprep.training.loop.fit`), which does checkpoints,
resume, AMP, early stopping, curves and torchrun. Validation scores come from one confusion
matrix over every validation window (valid pixels only): per-class IoU and F1, macro and micro
averages.

``predict`` rebuilds the network from the run's configuration and checkpoint and runs
:func:`microprep.predict.semantic.predict_semantic`: overlapping tiles, Gaussian blending, the
training normalisation rule applied to each whole input.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from microprep.data import SegmentationDataset
from microprep.data.normalize import apply_scale, image_scale
from microprep.errors import UsageError
from microprep.metrics.semantic import SegmentationScores, confusion_matrix
from microprep.schemas import load_schema
from microprep.training.checkpoint import CheckpointState
from microprep.training.datasets import (
    DataSource,
    augment_config,
    source_images,
    splits_file,
    train_stride,
    train_transform,
)
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.loop import Evaluate, TrainStep
from microprep.training.runtime import Precision, choose_device
from microprep.training.stores import class_counts, store_colors
from microprep.training.trainer import BaseTrainer, Setup
from microprep_unet.losses import CombinedLoss, class_weights, parse_loss
from microprep_unet.model import UNet
from microprep_unet.predict_options import PREDICT_SCHEMA

__all__ = ["UNetTrainer", "build_network", "class_counts"]

logger = logging.getLogger(__name__)


def _dataset(job: TrainJob, source: DataSource, *, train: bool) -> SegmentationDataset:
    data = job.config["data"]
    window = data["window"]
    stride = train_stride(window, data["stride"]) if train else data["val_stride"]
    augment = augment_config(data, images=source_images(source)) if train else None
    if augment is not None and augment.recipe:
        logger.info("small training set: %s augmentation on (data.auto_augment)", augment.recipe)
    per_epoch = data.get("samples_per_epoch") if train else None
    return SegmentationDataset(
        source.store,
        split=source.split,
        splits=source.splits,
        window=window,
        stride=stride,
        target=data["target"],
        augment=augment,
        transform=train_transform(data) if train else None,
        seed=int(job.config["seed"]),
        normalization=data["normalization"],
        min_foreground=float(data["min_foreground"]) if train else 0.0,
        samples_per_epoch=None if per_epoch is None else int(per_epoch),
    )


def _scores(
    confusion: NDArray[np.int64], include_background: bool, classes: list[str]
) -> dict[str, float]:
    """Validation scores; per class ``iou_<index>_<name>`` (e.g. ``iou_3_grain``)."""
    s = SegmentationScores.from_confusion(confusion, include_background=include_background)
    out = {
        "iou_macro": s.macro_iou,
        "f1_macro": s.macro_f1,
        "iou_micro": s.micro_iou,
        "f1_micro": s.micro_f1,
        "accuracy": s.accuracy,
    }
    out.update({f"iou_{k}_{classes[k]}": float(v) for k, v in enumerate(s.iou)})
    return out


def build_network(config: dict[str, Any], *, in_channels: int, num_classes: int, dims: int) -> UNet:
    """The U-Net the configuration describes."""
    m = config["model"]
    return UNet(
        in_channels=in_channels,
        num_classes=num_classes,
        dims=dims,
        depth=int(m["depth"]),
        base_filters=int(m["base_filters"]),
        dropout=float(m["dropout"]),
        norm=str(m["norm"]),
    )


class UNetTrainer(BaseTrainer):
    """2D/3D residual U-Net for semantic segmentation (class-index maps)."""

    name = "unet"
    summary = "2D/3D residual U-Net, semantic segmentation (CE / Dice / Jaccard^2 losses)"

    def config_schema(self) -> dict[str, Any]:
        """The U-Net's own keys (``schemas/unet-config.schema.json``)."""
        return load_schema("unet-config.schema.json")

    def predict_schema(self) -> dict[str, Any]:
        """``prep predict --probabilities``."""
        return PREDICT_SCHEMA

    def build_dataset(self, job: TrainJob, source: DataSource, *, train: bool) -> Any:
        """A :class:`~microprep.data.SegmentationDataset` (see :func:`_dataset`)."""
        return _dataset(job, source, train=train)

    def configure_model(self, setup: Setup) -> torch.nn.Module:
        """The U-Net of ``model``, 2D or 3D as the store, for its channels and classes."""
        train_set = setup.train_set
        return build_network(
            setup.config,
            in_channels=train_set.in_channels,
            num_classes=train_set.num_classes,
            dims=train_set.ndim,
        )

    def configure_loss(self, setup: Setup) -> CombinedLoss:
        """``loss.terms`` with ``loss.class_weights`` (a rule over the training split's class
        pixels, a list, or none).

        Raises:
            UsageError: a list of weights whose length is not the number of classes.
        """
        cfg, data, k = setup.config, setup.config["data"], setup.train_set.num_classes
        weights = cfg["loss"]["class_weights"]
        if isinstance(weights, str) and weights != "none":
            splits = splits_file(setup.job.dataset, data)
            counts = class_counts(setup.job.dataset, splits, data["train_split"], k)
            weights = class_weights(counts, method=weights).tolist()
            logger.info("class pixel counts %s -> weights %s", counts.tolist(), weights)
        elif weights == "none":
            weights = None
        if weights is not None and len(weights) != k:
            raise UsageError(f"loss.class_weights: {len(weights)} weights for {k} classes")
        return CombinedLoss(parse_loss(cfg["loss"]["terms"]), class_weight=weights).to(
            setup.runtime.device
        )

    def configure_step(self, setup: Setup) -> TrainStep:
        """The loss of a batch over its valid pixels, with each term as a log."""
        loss_fn = setup.loss

        def step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
            image = batch["image"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            valid = batch["valid"].to(device, non_blocking=True)
            total, parts = loss_fn(net(image), target, valid)
            return total, {name: float(v) for name, v in parts.items()}

        return step

    def configure_evaluate(self, setup: Setup) -> Evaluate:
        """Scores of one confusion matrix over every validation window, and the mean loss."""
        loss_fn, k = setup.loss, setup.train_set.num_classes
        include_bg = bool(setup.config["include_background"])
        classes = list(setup.train_set.classes)

        def evaluate(
            net: torch.nn.Module, loader: Any, device: torch.device, precision: Precision
        ) -> dict[str, float]:
            confusion = np.zeros((k, k), np.int64)
            losses = []
            for batch in loader:
                image = batch["image"].to(device)
                target = batch["target"].to(device)
                valid = batch["valid"].to(device)
                with precision.autocast():
                    logits = net(image)
                losses.append(float(loss_fn(logits.float(), target, valid)[0]))
                index = target.argmax(1) if target.ndim == logits.ndim else target
                confusion += confusion_matrix(
                    logits.argmax(1).cpu().numpy(),
                    index.cpu().numpy(),
                    num_classes=k,
                    valid=valid.cpu().numpy(),
                )
            scores = _scores(confusion, include_bg, classes)
            scores["loss"] = float(np.mean(losses)) if losses else float("nan")
            return scores

        return evaluate

    def checkpoint_extra(self, setup: Setup) -> dict[str, Any]:
        """The base facts plus the number of spatial dimensions."""
        return {**super().checkpoint_extra(setup), "dims": setup.train_set.ndim}

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Tiled prediction of ``request.source`` into ``request.out`` (class maps, overlays)."""
        from microprep.predict.semantic import predict_semantic
        from microprep.predict.tta import parse_tta, with_tta

        run, opts = request.run, self.predict_options(request)
        device = choose_device(str(opts["device"]))
        used, state = self.checkpoint(request, device)
        saved = CheckpointState.from_dict(state, path=used)
        extra, config = saved.extra, saved.config
        classes = list(extra["classes"])
        model = build_network(
            config,
            in_channels=int(extra["in_channels"]),
            num_classes=len(classes),
            dims=int(extra["dims"]),
        )
        model.load_state_dict(saved.model)
        model.to(device).eval()
        window = opts.get("window") or extra["window"]
        rule = str(extra["normalization"])

        def forward(batch: NDArray[np.float32]) -> NDArray[np.float32]:
            with torch.no_grad():
                logits = model(torch.from_numpy(np.ascontiguousarray(batch)).to(device))
                return torch.softmax(logits.float(), dim=1).cpu().numpy()

        averaged = with_tta(forward, parse_tta(opts.get("tta")))

        def scale(pixels: NDArray[Any]) -> NDArray[np.float32]:
            # pixels come channels-first (C, *spatial); the rule is the one used in training
            return apply_scale(pixels, image_scale(np.moveaxis(pixels, 0, -1), rule))

        summary = predict_semantic(
            averaged,
            request.source,
            request.out,
            window=window,
            classes=classes,
            colors=store_colors(run.dataset, count=len(classes)),
            overlap=float(opts["overlap"]),
            batch_size=int(opts["batch_size"]),
            scale_fn=scale,
            in_channels=int(extra["in_channels"]),
            probabilities=bool(opts["probabilities"]),
            uncertainty=bool(opts["uncertainty"]),
            overlays=bool(opts["overlays"]),
            run={"run": str(run.path), "checkpoint": str(used), "trainer": "unet"},
            progress=request.progress,
        )
        return {
            "inputs": len(summary.names),
            "seconds": round(summary.seconds, 2),
            "overlays": str(summary.overlays) if summary.overlays else None,
        }
