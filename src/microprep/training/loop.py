"""The training loop every trainer plugin shares.

A plugin builds its model and data loaders, then hands them to :func:`fit` with two small
functions: ``train_step(model, batch, device) -> (loss, logs)`` and ``evaluate(model, loader,
device, precision) -> metrics``. :func:`fit` does the rest, the same way for every plugin:
optimiser and schedule, mixed precision, gradient clipping, DistributedDataParallel, progress
bars, per-epoch validation, ``metrics.csv`` and ``curves.png``, atomic checkpoints
(:class:`~microprep.training.checkpoint.CheckpointState`), ``--resume`` from the last good
checkpoint, early stopping, a target metric, a time budget (:mod:`.stopping`), and
``summary.json``. Its parts: :func:`resume`, :func:`train_epoch`, :func:`validate`,
:func:`save_epoch` and the stop rules of :func:`microprep.training.stopping.stop_reason`.

Call :func:`prepare` first: it seeds every generator and picks the device, so that the model
the plugin then builds starts from the same weights in every run with the same seed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from microprep.progress import progress_logger
from microprep.training import distributed
from microprep.training.checkpoint import CheckpointState, load_latest, prune, save_checkpoint
from microprep.training.curves import draw_curves, epoch_line
from microprep.training.job import TrainJob
from microprep.training.runtime import Precision, choose_device, rng_state, seed_everything
from microprep.training.runtime import set_rng_state as _set_rng
from microprep.training.schedule import make_optimizer, make_scheduler
from microprep.training.stopping import Progress, stop_reason

logger = logging.getLogger(__name__)

TrainStep = Callable[[torch.nn.Module, Any, torch.device], tuple[torch.Tensor, dict[str, float]]]
Evaluate = Callable[[torch.nn.Module, DataLoader[Any], torch.device, Precision], dict[str, float]]


@dataclass(frozen=True)
class Runtime:
    """The device and precision of a run (from :func:`prepare`)."""

    device: torch.device
    precision: Precision


def prepare(job: TrainJob) -> Runtime:
    """Seed everything, set torch's thread count, pick the device, join torchrun's group."""
    cfg = job.config
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    device = choose_device(cfg["device"], local_rank=job.dist.local_rank)
    distributed.init_distributed(job.dist, device)
    seed_everything(int(cfg["seed"]), deterministic=bool(cfg["deterministic"]))
    return Runtime(device, Precision(cfg["amp"], device))


def set_epoch(loader: DataLoader[Any] | None, epoch: int) -> None:
    """Tell the loader's sampler and dataset which epoch starts (shuffling, augmentation)."""
    if loader is None:
        return
    for obj in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
        hook = getattr(obj, "set_epoch", None)
        if callable(hook):
            hook(epoch)


@dataclass(frozen=True)
class Parts:
    """What the epochs of one run update: the model (and ``net``, the same model wrapped for
    DistributedDataParallel when distributed), its optimiser and schedule, and the runtime."""

    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    runtime: Runtime


def resume(job: TrainJob, parts: Parts) -> Progress:
    """Load the newest good checkpoint of ``job.run`` into ``parts`` (model, optimiser,
    schedule, scaler, RNG states); the progress it had. A fresh :class:`Progress` without one.
    """
    found = load_latest(job.run.checkpoints, map_location=parts.runtime.device)
    if found is None:
        logger.warning("%s: no good checkpoint to resume from; starting at epoch 1", job.run.path)
        return Progress()
    path, saved = found
    state = CheckpointState.from_dict(saved, path=path)
    parts.model.load_state_dict(state.model)
    parts.optimizer.load_state_dict(state.optimizer)
    parts.scheduler.load_state_dict(state.scheduler)
    parts.runtime.precision.scaler.load_state_dict(state.scaler)
    _set_rng(state.rng)
    progress = Progress(
        start=state.epoch + 1,
        history=state.history,
        best=state.best,
        best_epoch=state.best_epoch,
        stale=state.stale,
    )
    logger.info("resuming %s from %s (epoch %d)", job.run.path, path.name, progress.start)
    return progress


def train_epoch(
    job: TrainJob, parts: Parts, loader: DataLoader[Any], train_step: TrainStep, epoch: int
) -> float:
    """One pass over ``loader``: forward in autocast, backward, clipping, optimiser and
    schedule steps; the mean loss over every rank.

    Raises:
        FloatingPointError: a loss that is not finite.
    """
    cfg, device, precision = job.config, parts.runtime.device, parts.runtime.precision
    set_epoch(loader, epoch)
    parts.net.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    bar = tqdm(
        loader,
        desc=f"epoch {epoch}/{int(cfg['epochs'])}",
        unit="batch",
        leave=False,
        disable=None if job.progress and job.dist.main else True,  # None: off if no terminal
    )
    for batch in bar:
        parts.optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss, _logs = train_step(parts.net, batch, device)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"epoch {epoch}: the loss is {loss.item()}; lower lr or turn amp off"
            )
        precision.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if cfg["grad_clip"]:
            precision.scaler.unscale_(parts.optimizer)
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), float(cfg["grad_clip"]))
        precision.scaler.step(parts.optimizer)
        precision.scaler.update()
        parts.scheduler.step()
        total += loss.detach().to(torch.float64)
        count += 1
    bar.close()
    return distributed.mean_over_ranks(float(total) / max(count, 1), device)


def validate(parts: Parts, loader: DataLoader[Any], evaluate: Evaluate) -> dict[str, float]:
    """``evaluate`` in eval mode without gradients; its metrics as ``val_<name>``."""
    parts.net.eval()
    with torch.no_grad():
        metrics = evaluate(parts.model, loader, parts.runtime.device, parts.runtime.precision)
    return {f"val_{k}": float(v) for k, v in metrics.items()}


def save_epoch(
    job: TrainJob, parts: Parts, progress: Progress, *, epoch: int, best: bool, extra: Any
) -> None:
    """The checkpoint of ``epoch`` (and ``best.pt``), pruning, ``metrics.csv``, curves."""
    cfg, run = job.config, job.run
    state = CheckpointState(
        model=parts.model.state_dict(),
        optimizer=parts.optimizer.state_dict(),
        scheduler=parts.scheduler.state_dict(),
        scaler=parts.runtime.precision.scaler.state_dict(),
        epoch=epoch,
        rng=rng_state(),
        history=progress.history,
        best=progress.best,
        best_epoch=progress.best_epoch,
        stale=progress.stale,
        config=cfg,
        trainer=run.trainer,
        extra=dict(extra or {}),
    )
    save_checkpoint(run.checkpoints, state.as_dict(), epoch=epoch, best=best)
    prune(run.checkpoints, keep=int(cfg["keep_checkpoints"]))
    run.write_metrics(progress.history)
    draw_curves(progress.history, run.curves_png, title=f"{run.trainer}: {run.path.name}")


def fit(
    job: TrainJob,
    runtime: Runtime,
    *,
    model: torch.nn.Module,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any] | None,
    train_step: TrainStep,
    evaluate: Evaluate | None,
    monitor: str,
    mode: str = "max",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` as ``job.config`` says; returns the summary (also in ``summary.json``).

    Args:
        monitor: the validation metric (a key ``evaluate`` returns) that picks ``best.pt``,
            drives early stopping and ``target_metric``; without validation, ``train_loss``.
        mode: ``"max"`` or ``"min"``: which way ``monitor`` improves.
        extra: JSON-safe facts saved in every checkpoint (e.g. class names, window).
    """
    cfg, info = job.config, job.dist
    model.to(runtime.device)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch=len(train_loader))
    net = distributed.wrap(model, info, runtime.device)
    parts = Parts(model, net, optimizer, scheduler, runtime)
    validating = val_loader is not None and evaluate is not None
    if not validating:
        monitor, mode = "train_loss", "min"
    progress = resume(job, parts) if job.resume else Progress()
    min_delta = float(cfg["early_stopping"]["min_delta"])
    began, stop, stopped_early = time.monotonic(), "all epochs done", False
    durations: list[float] = []  # wall seconds of each epoch this session, validation included
    epochs = int(cfg["epochs"])
    key = monitor if monitor == "train_loss" else f"val_{monitor}"
    for epoch in range(progress.start, epochs + 1):
        t0 = time.monotonic()
        loss = train_epoch(job, parts, train_loader, train_step, epoch)
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        row["train_loss"] = loss
        if validating and (epoch % int(cfg["val_every"]) == 0 or epoch == epochs):
            row.update(validate(parts, val_loader, evaluate))  # type: ignore[arg-type]
        row["seconds"] = round(time.monotonic() - t0, 3)
        durations.append(time.monotonic() - t0)
        progress.history.append(row)
        value = float(row.get(key, math.nan))
        is_best = progress.record(
            value, epoch=epoch, key_present=key in row, mode=mode, min_delta=min_delta
        )
        if info.main:
            save_epoch(job, parts, progress, epoch=epoch, best=is_best, extra=extra)
        reason = stop_reason(
            cfg, stale=progress.stale, value=value, monitor=monitor, mode=mode, began=began,
            durations=durations,
        )  # fmt: skip
        if info.main and job.progress:
            progress_logger.info("%s", epoch_line(row, epochs=epochs, durations=durations))
        if reason is not None:
            stop, stopped_early = reason, epoch < epochs
            break
    distributed.barrier()
    distributed.barrier()
    summary = _summary(job, runtime, progress, monitor=monitor, validating=validating, began=began)
    summary.update(stopped=stop, stopped_early=stopped_early)
    if info.main:
        _finish(job, progress, summary)
    return summary


def _summary(
    job: TrainJob,
    runtime: Runtime,
    progress: Progress,
    *,
    monitor: str,
    validating: bool,
    began: float,
) -> dict[str, Any]:
    last = progress.history[-1] if progress.history else {}
    return {
        "trainer": job.run.trainer,
        "epochs_run": int(last.get("epoch", 0)),
        "epochs_planned": int(job.config["epochs"]),
        "stopped": "all epochs done",
        "stopped_early": False,
        "monitor": monitor,
        "validation": validating,
        "best": progress.best,
        "best_epoch": progress.best_epoch,
        "final": last,
        "seconds_this_session": round(time.monotonic() - began, 2),
        "device": str(runtime.device),
        "world_size": job.dist.world_size,
    }


def _finish(job: TrainJob, progress: Progress, summary: dict[str, Any]) -> None:
    """Warn about (and mark on the curves) a run that stopped early; write ``summary.json``."""
    run = job.run
    if summary["stopped_early"]:
        done, planned, why = summary["epochs_run"], summary["epochs_planned"], summary["stopped"]
        logger.warning("%s: stopped after epoch %d of %d: %s", run.path, done, planned, why)
        draw_curves(
            progress.history,
            run.curves_png,
            title=f"{run.trainer}: {run.path.name}",
            note=f"stopped after epoch {done} of {planned}: {why}",
        )
    run.write_summary(summary)
