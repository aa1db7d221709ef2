"""When a training run stops early and which epoch is the best: the loop's rules, torch-free.

:class:`Progress` is what a run carries from epoch to epoch (and from a checkpoint into a
resumed run): the history, the best monitored value and its epoch, and the epochs since it
improved. :func:`stop_reason` tries the stop rules after each epoch: early stopping, the target
metric, the time limit.

Example:
    >>> p = Progress()
    >>> p.record(0.5, epoch=1, key_present=True, mode="max", min_delta=0.0), p.best, p.stale
    (True, 0.5, 0)
    >>> p.record(0.4, epoch=2, key_present=True, mode="max", min_delta=0.0), p.best_epoch, p.stale
    (False, 1, 1)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """What a run has done so far: the first epoch still to run (``start``), the metric rows
    (``history``), the best monitored value, its epoch, and epochs since it improved."""

    start: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float | None = None
    best_epoch: int = 0
    stale: int = 0

    def record(
        self, value: float, *, epoch: int, key_present: bool, mode: str, min_delta: float
    ) -> bool:
        """Count ``epoch``'s monitored ``value`` (NaN when not measured); True when it is a
        new best. An epoch without the metric (no validation this epoch) is not stale."""
        if improved(value, self.best, mode=mode, min_delta=min_delta):
            self.best, self.best_epoch, self.stale = value, epoch, 0
            return True
        if key_present:
            self.stale += 1
        return False


def improved(value: float, best: float | None, *, mode: str, min_delta: float) -> bool:
    """True when ``value`` beats ``best`` by more than ``min_delta`` (``mode`` max or min)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def reached(value: float, target: float, *, mode: str) -> bool:
    """True when ``value`` is at or past ``target`` (``mode`` max or min)."""
    if math.isnan(value):
        return False
    return value >= target if mode == "max" else value <= target


def out_of_time(began: float, durations: list[float], budget: float) -> bool:
    """True when the next epoch would end past ``budget`` seconds after ``began`` (its length
    estimated as the mean of ``durations``, the epochs run so far).

    Stopping *before* an epoch that would not fit keeps the run inside its budget, instead of
    overrunning it by up to one epoch; the epochs run are always whole.
    """
    now = time.monotonic()
    return now - began + sum(durations) / max(len(durations), 1) > budget


def stop_reason(
    cfg: Mapping[str, Any],
    *,
    stale: int,
    value: float,
    monitor: str,
    mode: str,
    began: float,
    durations: list[float],
) -> str | None:
    """Why the run stops after this epoch (early stopping, the target metric, the time
    limit), or None to go on. The rules are tried in that order."""
    patience = cfg["early_stopping"]["patience"]
    target = cfg["target_metric"]
    limit = cfg["time_limit_minutes"]
    if patience is not None and stale >= int(patience):
        return f"early stopping: no improvement of {monitor} in {patience} epochs"
    if target is not None and reached(value, float(target), mode=mode):
        return f"{monitor} reached the target {target}"
    if limit is not None and out_of_time(began, durations, float(limit) * 60):
        return f"time limit of {limit} minutes (another epoch would not fit)"
    return None
