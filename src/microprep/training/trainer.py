""":class:`BaseTrainer`: the scaffolding of a trainer plugin, written once.

A trainer subclasses it and writes its model, loss and metrics in a few ``configure_*`` hooks;
:meth:`BaseTrainer.fit` calls them in a fixed order, after :func:`~microprep.training.loop.prepare`
seeded every generator, and hands the result to :func:`microprep.training.loop.fit`:

1. :meth:`~BaseTrainer.check_job`: checks that need no data (default: none);
2. :meth:`~BaseTrainer.configure_datasets`: the train and validation datasets from
   :meth:`~BaseTrainer.build_dataset` over the store's splits
   (:func:`~microprep.training.datasets.train_and_val`);
3. :meth:`~BaseTrainer.configure_model` (required), then :meth:`~BaseTrainer.configure_loss`;
4. :meth:`~BaseTrainer.configure_loaders`: the seeded train loader (sharded under torchrun) and
   the validation loader, both with :attr:`~BaseTrainer.collate_fn`;
5. :meth:`~BaseTrainer.configure_step` (required) and :meth:`~BaseTrainer.configure_evaluate`;
6. :meth:`~BaseTrainer.configure_monitor` (``monitor`` of the configuration; ``loss`` is
   minimised, anything else maximised) and :meth:`~BaseTrainer.checkpoint_extra` (classes,
   channels, window and normalisation of the training set, saved in every checkpoint).

Prediction helpers: :meth:`~BaseTrainer.predict_options` (the request's options over the shared
defaults and :meth:`~BaseTrainer.predict_schema`'s), :meth:`~BaseTrainer.checkpoint` (the
request's checkpoint, else ``best.pt``, else the newest good one) and
:func:`~microprep.training.stores.store_colors` for overlays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from microprep.data.loader import make_loader
from microprep.training.checkpoint import checkpoint_for_prediction
from microprep.training.datasets import DataSource, train_and_val
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.loop import Evaluate, Runtime, TrainStep, fit, prepare
from microprep.training.predict_options import EMPTY_SCHEMA, predict_options

__all__ = ["BaseTrainer", "Setup"]


@dataclass(frozen=True)
class Setup:
    """What the hooks of one run see: the job, the runtime (device, precision), the datasets
    and, once configured, the model and the loss."""

    job: TrainJob
    runtime: Runtime
    train_set: Any
    val_set: Any | None
    model: torch.nn.Module | None = None
    loss: Any = None

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration (``job.config``)."""
        return self.job.config


class BaseTrainer:
    """The trainer protocol (:class:`microprep.plugins.Trainer`) with the shared scaffolding.

    Subclasses set ``name`` and ``summary`` and write :meth:`build_dataset`,
    :meth:`configure_model`, :meth:`configure_step` (usually :meth:`configure_loss` and
    :meth:`configure_evaluate` too) and :meth:`predict`.
    """

    name: str = ""
    summary: str = ""
    #: collate function of both loaders (None: torch's default)
    collate_fn: Any = None

    def config_schema(self) -> dict[str, Any]:
        """JSON Schema of the trainer's own configuration keys (default: none)."""
        return dict(EMPTY_SCHEMA)

    def predict_schema(self) -> dict[str, Any]:
        """JSON Schema of the trainer's own ``prep predict`` options (default: none); see
        :mod:`microprep.training.predict_options`."""
        return dict(EMPTY_SCHEMA)

    # -- training hooks -------------------------------------------------------------------

    def check_job(self, job: TrainJob) -> None:
        """Refuse a job before any data is read (e.g. a missing weights file)."""

    def build_dataset(self, job: TrainJob, source: DataSource, *, train: bool) -> Any:
        """The dataset of one side of the run (``train`` or validation) over ``source``."""
        raise NotImplementedError(f"{type(self).__name__} must define build_dataset")

    def configure_datasets(self, job: TrainJob) -> tuple[Any, Any | None]:
        """``(train_set, val_set)``; val_set is None without validation."""
        return train_and_val(
            job.dataset,
            job.config["data"],
            lambda source, train: self.build_dataset(job, source, train=train),
        )

    def configure_model(self, setup: Setup) -> torch.nn.Module:
        """The network to train (built after seeding: the same weights for the same seed)."""
        raise NotImplementedError(f"{type(self).__name__} must define configure_model")

    def configure_loss(self, setup: Setup) -> Any:
        """The loss, kept as ``setup.loss`` for the step and evaluation (default: None)."""
        return None

    def configure_loaders(self, setup: Setup) -> tuple[DataLoader[Any], DataLoader[Any] | None]:
        """The shuffled, seeded training loader and the validation loader (``batch_size``,
        ``data.workers``; the last partial training batch is dropped when there are more)."""
        cfg, job = setup.config, setup.job
        batch_size, workers = int(cfg["batch_size"]), int(cfg["data"]["workers"])
        train_loader = make_loader(
            setup.train_set,
            batch_size=batch_size,
            shuffle=True,
            seed=int(cfg["seed"]),
            workers=workers,
            drop_last=len(setup.train_set) > batch_size,
            collate_fn=self.collate_fn,
            distributed=job.dist.distributed,
            pin_memory=setup.runtime.device.type == "cuda",
        )
        if setup.val_set is None:
            return train_loader, None
        val_loader = make_loader(
            setup.val_set,
            batch_size=batch_size,
            shuffle=False,
            seed=0,
            workers=workers,
            collate_fn=self.collate_fn,
        )
        return train_loader, val_loader

    def configure_step(self, setup: Setup) -> TrainStep:
        """``step(net, batch, device) -> (loss, logs)``, run by the loop under autocast."""
        raise NotImplementedError(f"{type(self).__name__} must define configure_step")

    def configure_evaluate(self, setup: Setup) -> Evaluate | None:
        """``evaluate(net, loader, device, precision) -> metrics`` (None: no validation)."""
        return None

    def configure_monitor(self, job: TrainJob) -> tuple[str, str]:
        """``(monitor, mode)``: ``monitor`` of the configuration (default ``loss``); ``loss``
        falls, the others rise."""
        monitor = str(job.config.get("monitor", "loss"))
        return monitor, "min" if monitor == "loss" else "max"

    def checkpoint_extra(self, setup: Setup) -> dict[str, Any]:
        """JSON-safe facts saved in every checkpoint, for ``predict`` and for the record:
        classes, channels, window, normalisation, and the training data's augmentation and
        samples per epoch (when the dataset has them)."""
        train_set = setup.train_set
        augment = getattr(train_set, "augment", None)
        return {
            "classes": list(train_set.classes),
            "in_channels": train_set.in_channels,
            "window": [int(w) for w in train_set.window],
            "normalization": setup.config["data"]["normalization"],
            "augment": None if augment is None else augment.as_dict(),
            "samples_per_epoch": getattr(train_set, "samples_per_epoch", None),
        }

    def fit(self, job: TrainJob) -> dict[str, Any]:
        """Train on the store's train split, validate on its val split; the run's summary."""
        runtime = prepare(job)
        self.check_job(job)
        train_set, val_set = self.configure_datasets(job)
        setup = Setup(job, runtime, train_set, val_set)
        model = self.configure_model(setup)
        setup = replace(setup, model=model)
        setup = replace(setup, loss=self.configure_loss(setup))
        train_loader, val_loader = self.configure_loaders(setup)
        monitor, mode = self.configure_monitor(job)
        return fit(
            job,
            runtime,
            model=model,
            train_loader=train_loader,
            val_loader=val_loader,
            train_step=self.configure_step(setup),
            evaluate=self.configure_evaluate(setup),
            monitor=monitor,
            mode=mode,
            extra=self.checkpoint_extra(setup),
        )

    # -- prediction helpers ---------------------------------------------------------------

    def predict_options(self, request: PredictRequest) -> dict[str, Any]:
        """``request.options`` over the shared defaults and those of :meth:`predict_schema`."""
        return predict_options(request.options, self.predict_schema())

    def checkpoint(
        self, request: PredictRequest, device: torch.device
    ) -> tuple[Path, dict[str, Any]]:
        """``(path, state)``: ``request.checkpoint``, else the run's ``best.pt``, else its newest
        checkpoint that verifies (:func:`.checkpoint.checkpoint_for_prediction`)."""
        return checkpoint_for_prediction(
            request.run.checkpoints, request.checkpoint, map_location=device
        )

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Predict ``request.source`` with the run's weights into ``request.out``; a summary."""
        raise NotImplementedError(f"{type(self).__name__} must define predict")
