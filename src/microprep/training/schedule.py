"""Optimiser and learning-rate schedule from the shared configuration keys.

The schedule is stepped once per training step, so it does not depend on the number of
batches per epoch: ``warmup_epochs`` of linear warm-up from 1% of ``lr``, then ``constant``,
``cosine`` (down to ``min_lr_ratio * lr`` at the last step), ``step`` (times ``gamma`` every
``step_epochs``) or ``onecycle`` (torch's OneCycleLR over the whole run).

Example:
    >>> import torch
    >>> p = [torch.nn.Parameter(torch.zeros(1))]
    >>> cfg = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.9,
    ...        "epochs": 2, "schedule": {"name": "constant", "warmup_epochs": 0}}
    >>> opt = make_optimizer(p, cfg); sched = make_scheduler(opt, cfg, steps_per_epoch=5)
    >>> opt.param_groups[0]["lr"]
    0.1
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch


def make_optimizer(params: Iterable[Any], config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (with momentum, Nesterov) at ``lr`` with ``weight_decay``."""
    name, lr, wd = config["optimizer"], float(config["lr"]), float(config["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=float(config["momentum"]),
            weight_decay=wd,
            nesterov=float(config["momentum"]) > 0,
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def lr_factor(
    step: int, *, total: int, warmup: int, schedule: Mapping[str, Any], per_epoch: int
) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total`` steps."""
    if warmup > 0 and step < warmup:
        return 0.01 + 0.99 * step / warmup
    name = schedule["name"]
    if name == "cosine":
        span = max(1, total - warmup)
        t = min(1.0, (step - warmup) / span)
        low = float(schedule["min_lr_ratio"])
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * t))
    if name == "step":
        return float(schedule["gamma"]) ** ((step // per_epoch) // int(schedule["step_epochs"]))
    return 1.0


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: Mapping[str, Any], *, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The configured schedule (see the module docstring), stepped once per training step."""
    schedule = config["schedule"]
    per_epoch = max(1, steps_per_epoch)
    total = per_epoch * int(config["epochs"])
    if schedule["name"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=float(config["lr"]), total_steps=total
        )
    warmup = round(float(schedule["warmup_epochs"]) * per_epoch)

    def factor(step: int) -> float:
        return lr_factor(step, total=total, warmup=warmup, schedule=schedule, per_epoch=per_epoch)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
