"""The ``unet`` trainer: :class:`UNetTrainer` (entry point ``microprep.trainers: unet``).

``fit`` builds :class:`~microprep.data.SegmentationDataset` loaders over the store's ``train``
and ``val`` splits, a 2D or 3D :class:`~microprep_unet.model.UNet` (from the store: images give
2D, volumes 3D), the configured loss, and hands them to the shared loop
(:func:`microprep.training.loop.fit`), which does checkpoints, resume, AMP, early stopping,
curves and torchrun. Validation scores come from one confusion matrix over every validation
window (valid pixels only): per-class IoU and F1, macro and micro averages.

``predict`` rebuilds the network from the run's configuration and checkpoint and runs
:func:`microprep.predict.semantic.predict_semantic`: overlapping tiles, Gaussian blending, the
training normalisation rule applied to each whole input.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from numpy.typing import NDArray

from microprep.data import SegmentationDataset
from microprep.data.loader import make_loader
from microprep.data.normalize import apply_scale, image_scale
from microprep.errors import UsageError
from microprep.metrics.semantic import SegmentationScores, confusion_matrix
from microprep.schemas import load_schema
from microprep.splits import Region, load_splits
from microprep.store.read import open_dataset
from microprep.training.checkpoint import BEST, load_checkpoint, load_latest
from microprep.training.datasets import (
    DataSource,
    augment_config,
    source_images,
    splits_file,
    train_and_val,
    train_stride,
    train_transform,
)
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.loop import Runtime, fit, prepare
from microprep.training.runtime import Precision, choose_device
from microprep_unet.losses import CombinedLoss, class_weights, parse_loss
from microprep_unet.model import UNet

logger = logging.getLogger(__name__)

#: Pixels read per region when counting class frequencies (a strided subsample beyond this).
_COUNT_BUDGET = 16_000_000


def class_counts(store: Path, splits_path: Path | None, split: str | None, k: int) -> NDArray[Any]:
    """Pixels per class in the ``split`` regions of ``store`` (all nodes when no split)."""
    root: Any = zarr.open_group(store, mode="r")
    ds = open_dataset(store)
    counts = np.zeros(k, np.int64)
    boxes: list[tuple[str, Region | None]]
    if split is None or splits_path is None:
        boxes = [(n, None) for n in ds.nodes]
    else:
        boxes = [(r.node, r) for r in load_splits(splits_path)[split]]
    for node, region in boxes:
        labels = root[node]["labels"]
        index = (
            tuple(slice(None) for _ in labels.shape)
            if region is None
            else tuple(slice(a, b) for a, b in zip(region.start, region.stop, strict=True))
        )
        size = int(
            np.prod([len(range(*s.indices(n))) for s, n in zip(index, labels.shape, strict=True)])
        )
        step = max(1, int(np.ceil((size / _COUNT_BUDGET) ** (1 / labels.ndim))))
        index = tuple(slice(s.start, s.stop, step) for s in index)
        counts += np.bincount(np.asarray(labels[index]).ravel(), minlength=k)[:k]
    return counts


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


class UNetTrainer:
    """2D/3D residual U-Net for semantic segmentation (class-index maps)."""

    name = "unet"
    summary = "2D/3D residual U-Net, semantic segmentation (CE / Dice / Jaccard^2 losses)"

    def config_schema(self) -> dict[str, Any]:
        """The U-Net's own keys (``schemas/unet-config.schema.json``)."""
        return load_schema("unet-config.schema.json")

    def fit(self, job: TrainJob) -> dict[str, Any]:
        """Train on the store's train split, validate on its val split (see the module doc)."""
        cfg, data = job.config, job.config["data"]
        runtime: Runtime = prepare(job)
        splits = splits_file(job.dataset, data)
        train_set, val_set = train_and_val(
            job.dataset, data, lambda source, train: _dataset(job, source, train=train)
        )
        k, dims = train_set.num_classes, train_set.ndim
        model = build_network(cfg, in_channels=train_set.in_channels, num_classes=k, dims=dims)
        weights = cfg["loss"]["class_weights"]
        if isinstance(weights, str) and weights != "none":
            counts = class_counts(job.dataset, splits, data["train_split"], k)
            weights = class_weights(counts, method=weights).tolist()
            logger.info("class pixel counts %s -> weights %s", counts.tolist(), weights)
        elif weights == "none":
            weights = None
        if weights is not None and len(weights) != k:
            raise UsageError(f"loss.class_weights: {len(weights)} weights for {k} classes")
        loss_fn = CombinedLoss(parse_loss(cfg["loss"]["terms"]), class_weight=weights).to(
            runtime.device
        )
        workers = int(data["workers"])
        train_loader = make_loader(
            train_set,
            batch_size=int(cfg["batch_size"]),
            shuffle=True,
            seed=int(cfg["seed"]),
            workers=workers,
            drop_last=len(train_set) > int(cfg["batch_size"]),
            distributed=job.dist.distributed,
            pin_memory=runtime.device.type == "cuda",
        )
        val_loader = (
            make_loader(
                val_set, batch_size=int(cfg["batch_size"]), shuffle=False, seed=0, workers=workers
            )
            if val_set is not None
            else None
        )
        include_bg = bool(cfg["include_background"])

        def step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
            image = batch["image"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            valid = batch["valid"].to(device, non_blocking=True)
            total, parts = loss_fn(net(image), target, valid)
            return total, {name: float(v) for name, v in parts.items()}

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
            scores = _scores(confusion, include_bg, list(train_set.classes))
            scores["loss"] = float(np.mean(losses)) if losses else float("nan")
            return scores

        monitor = cfg["monitor"]
        extra = {
            "classes": list(train_set.classes),
            "in_channels": train_set.in_channels,
            "dims": dims,
            "window": list(train_set.window),
            "normalization": data["normalization"],
            "augment": None if train_set.augment is None else train_set.augment.as_dict(),
            "samples_per_epoch": train_set.samples_per_epoch,
        }
        return fit(
            job,
            runtime,
            model=model,
            train_loader=train_loader,
            val_loader=val_loader,
            train_step=step,
            evaluate=evaluate,
            monitor=monitor,
            mode="min" if monitor == "loss" else "max",
            extra=extra,
        )

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Tiled prediction of ``request.source`` into ``request.out`` (class maps, overlays)."""
        from microprep.predict.semantic import predict_semantic
        from microprep.predict.tta import parse_tta, with_tta

        run, opts = request.run, request.options
        device = choose_device(str(opts.get("device") or "auto"))
        if request.checkpoint is not None:
            state = load_checkpoint(request.checkpoint, map_location=device)
            used = request.checkpoint
        elif (run.checkpoints / BEST).is_file():
            used = run.checkpoints / BEST
            state = load_checkpoint(used, map_location=device)
        else:
            found = load_latest(run.checkpoints, map_location=device)
            if found is None:
                raise UsageError(f"{run.path}: no usable checkpoint to predict with")
            used, state = found
        extra = json.loads(state["extra"])
        config = json.loads(state["config"])
        classes = list(extra["classes"])
        model = build_network(
            config,
            in_channels=int(extra["in_channels"]),
            num_classes=len(classes),
            dims=int(extra["dims"]),
        )
        model.load_state_dict(state["model"])
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

        colors = None
        try:
            colors = open_dataset(run.dataset).colors
        except Exception:  # the training store may have moved; default colours then
            logger.info("training store %s not readable; default overlay colours", run.dataset)
        summary = predict_semantic(
            averaged,
            request.source,
            request.out,
            window=window,
            classes=classes,
            colors=colors,
            overlap=float(opts.get("overlap", 0.25)),
            batch_size=int(opts.get("batch_size", 4)),
            scale_fn=scale,
            in_channels=int(extra["in_channels"]),
            probabilities=bool(opts.get("probabilities", False)),
            uncertainty=bool(opts.get("uncertainty", False)),
            overlays=bool(opts.get("overlays", True)),
            run={"run": str(run.path), "checkpoint": str(used), "trainer": "unet"},
            progress=request.progress,
        )
        return {
            "inputs": len(summary.names),
            "seconds": round(summary.seconds, 2),
            "overlays": str(summary.overlays) if summary.overlays else None,
        }
