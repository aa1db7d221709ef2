"""The training loop every trainer plugin shares.

A plugin builds its model and data loaders, then hands them to :func:`fit` with two small
functions: ``train_step(model, batch, device) -> (loss, logs)`` and ``evaluate(model, loader,
device, precision) -> metrics``. :func:`fit` does the rest, the same way for every plugin:
optimiser and schedule, mixed precision, gradient clipping, DistributedDataParallel, progress
bars, per-epoch validation, ``metrics.csv`` and ``curves.png``, atomic checkpoints (model,
optimiser, scheduler, scaler, epoch, RNG states, history, configuration), ``--resume`` from the
last good checkpoint, early stopping, a target metric, a time budget, and ``summary.json``.

Call :func:`prepare` first: it seeds every generator and picks the device, so that the model
the plugin then builds starts from the same weights in every run with the same seed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from microprep.progress import progress_logger
from microprep.training import distributed
from microprep.training.checkpoint import load_latest, prune, save_checkpoint
from microprep.training.curves import draw_curves
from microprep.training.job import TrainJob
from microprep.training.runtime import Precision, choose_device, rng_state, seed_everything
from microprep.training.runtime import set_rng_state as _set_rng
from microprep.training.schedule import make_optimizer, make_scheduler

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


def _out_of_time(began: float, durations: list[float], budget: float) -> bool:
    """True when the next epoch would end past ``budget`` seconds after ``began`` (its length
    estimated as the mean of ``durations``, the epochs run so far).

    Stopping *before* an epoch that would not fit keeps the run inside its budget, instead of
    overrunning it by up to one epoch; the epochs run are always whole.
    """
    now = time.monotonic()
    return now - began + sum(durations) / max(len(durations), 1) > budget


def _stop_reason(
    cfg: Mapping[str, Any],
    *,
    stale: int,
    value: float,
    monitor: str,
    mode: str,
    began: float,
    durations: list[float],
    epoch_start: float,
) -> str | None:
    """Why the run stops after this epoch (early stopping, the target metric, the time
    limit), or None to go on. The rules are tried in that order."""
    patience = cfg["early_stopping"]["patience"]
    target = cfg["target_metric"]
    limit = cfg["time_limit_minutes"]
    if patience is not None and stale >= int(patience):
        return f"early stopping: no improvement of {monitor} in {patience} epochs"
    if target is not None and _reached(value, float(target), mode=mode):
        return f"{monitor} reached the target {target}"
    if limit is not None and _out_of_time(began, durations, float(limit) * 60):
        return f"time limit of {limit} minutes (another epoch would not fit)"
    return None


def epoch_line(row: Mapping[str, Any], *, epochs: int, durations: Sequence[float]) -> str:
    """One log line for a finished epoch: its number, losses, validation metrics, seconds and
    the estimated time left (the mean epoch so far times the epochs left).

    Example:
        >>> epoch_line({"epoch": 2, "train_loss": 0.5, "val_iou_macro": 0.71, "seconds": 30.0},
        ...            epochs=4, durations=[30.0, 30.0])
        'epoch 2/4: train_loss 0.5000, val_iou_macro 0.7100, 30.0 s, ETA 1 min 0 s'
    """
    epoch = int(row["epoch"])
    parts = [
        f"{key} {float(value):.4f}"
        for key, value in row.items()
        if key.endswith("loss") or key.startswith("val_")
    ]
    left = (sum(durations) / max(len(durations), 1)) * (epochs - epoch)
    minutes, seconds = divmod(round(left), 60)
    parts.append(f"{float(row.get('seconds', 0.0)):.1f} s")
    parts.append(f"ETA {minutes} min {seconds} s")
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts)


def _improved(value: float, best: float | None, *, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _reached(value: float, target: float, *, mode: str) -> bool:
    if math.isnan(value):
        return False
    return value >= target if mode == "max" else value <= target


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
    cfg, run, info = job.config, job.run, job.dist
    device, precision = runtime.device, runtime.precision
    model.to(device)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch=len(train_loader))
    net = distributed.wrap(model, info, device)
    validate_any = val_loader is not None and evaluate is not None
    if not validate_any:
        monitor, mode = "train_loss", "min"
    start, history, best, best_epoch, stale = 1, [], None, 0, 0
    if job.resume:
        found = load_latest(run.checkpoints, map_location=device)
        if found is None:
            logger.warning("%s: no good checkpoint to resume from; starting at epoch 1", run.path)
        else:
            path, state = found
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            precision.scaler.load_state_dict(state["scaler"])
            _set_rng(state["rng"])
            start = int(state["epoch"]) + 1
            history = json.loads(state["history"])
            best, best_epoch, stale = state["best"], int(state["best_epoch"]), int(state["stale"])
            logger.info("resuming %s from %s (epoch %d)", run.path, path.name, start)
    min_delta = float(cfg["early_stopping"]["min_delta"])
    began, stop_reason, stopped_early = time.monotonic(), "all epochs done", False
    durations: list[float] = []  # wall seconds of each epoch this session, validation included
    epochs = int(cfg["epochs"])
    for epoch in range(start, epochs + 1):
        t0 = time.monotonic()
        set_epoch(train_loader, epoch)
        net.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        bar = tqdm(
            train_loader,
            desc=f"epoch {epoch}/{epochs}",
            unit="batch",
            leave=False,
            disable=None if job.progress and info.main else True,  # None: off when not a terminal
        )
        for batch in bar:
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                loss, _logs = train_step(net, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"epoch {epoch}: the loss is {loss.item()}; lower lr or turn amp off"
                )
            precision.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            if cfg["grad_clip"]:
                precision.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
            precision.scaler.step(optimizer)
            precision.scaler.update()
            scheduler.step()
            total += loss.detach().to(torch.float64)
            count += 1
        bar.close()
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": distributed.mean_over_ranks(float(total) / max(count, 1), device),
        }
        validate = val_loader is not None and evaluate is not None
        if validate and (epoch % int(cfg["val_every"]) == 0 or epoch == epochs):
            net.eval()
            with torch.no_grad():
                metrics = evaluate(model, val_loader, device, precision)  # type: ignore[arg-type,misc]
            row.update({f"val_{k}": float(v) for k, v in metrics.items()})
        row["seconds"] = round(time.monotonic() - t0, 3)
        durations.append(time.monotonic() - t0)
        history.append(row)
        key = monitor if monitor == "train_loss" else f"val_{monitor}"
        value = float(row.get(key, math.nan))
        is_best = _improved(value, best, mode=mode, min_delta=min_delta)
        if is_best:
            best, best_epoch, stale = value, epoch, 0
        elif key in row:
            stale += 1
        if info.main:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": precision.scaler.state_dict(),
                "epoch": epoch,
                "rng": rng_state(),
                "history": json.dumps(history),
                "best": best,
                "best_epoch": best_epoch,
                "stale": stale,
                "config": json.dumps(cfg),
                "trainer": run.trainer,
                "extra": json.dumps(dict(extra or {})),
            }
            save_checkpoint(run.checkpoints, state, epoch=epoch, best=is_best)
            prune(run.checkpoints, keep=int(cfg["keep_checkpoints"]))
            run.write_metrics(history)
            draw_curves(history, run.curves_png, title=f"{run.trainer}: {run.path.name}")
        reason = _stop_reason(
            cfg, stale=stale, value=value, monitor=monitor, mode=mode, began=began,
            durations=durations, epoch_start=t0,
        )  # fmt: skip
        if info.main and job.progress:
            progress_logger.info("%s", epoch_line(row, epochs=epochs, durations=durations))
        if reason is not None:
            stop_reason, stopped_early = reason, epoch < epochs
            break
    distributed.barrier()
    distributed.barrier()
    last = history[-1] if history else {}
    epochs_run = int(last.get("epoch", 0))
    summary = {
        "trainer": run.trainer,
        "epochs_run": epochs_run,
        "epochs_planned": epochs,
        "stopped": stop_reason,
        "stopped_early": stopped_early,
        "monitor": monitor,
        "validation": validate_any,
        "best": best,
        "best_epoch": best_epoch,
        "final": last,
        "seconds_this_session": round(time.monotonic() - began, 2),
        "device": str(device),
        "world_size": info.world_size,
    }
    if info.main:
        if stopped_early:
            logger.warning(
                "%s: stopped after epoch %d of %d: %s", run.path, epochs_run, epochs, stop_reason
            )
            draw_curves(
                history,
                run.curves_png,
                title=f"{run.trainer}: {run.path.name}",
                note=f"stopped after epoch {epochs_run} of {epochs}: {stop_reason}",
            )
        run.write_summary(summary)
    return summary
