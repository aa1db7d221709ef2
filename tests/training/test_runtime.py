"""Device choice, mixed precision and the learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from microprep.errors import UsageError
from microprep.training.runtime import Precision, choose_device
from microprep.training.schedule import lr_factor, make_optimizer, make_scheduler


def test_cpu_is_chosen_without_cuda_and_cuda_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert choose_device("auto").type == "cpu"
    with pytest.raises(UsageError, match="CUDA is not available"):
        choose_device("cuda:0")


def test_bf16_autocast_on_cpu_and_fp16_refused() -> None:
    cpu = torch.device("cpu")
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        Precision("fp16", cpu)
    p = Precision("bf16", cpu)
    layer = torch.nn.Linear(4, 4)
    with p.autocast():
        out = layer(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16
    assert not p.scaler.is_enabled()
    with Precision("off", cpu).autocast():
        assert layer(torch.ones(2, 4)).dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "last"),
    [("constant", 1.0), ("cosine", 0.01), ("step", 0.1**2)],
)
def test_schedules_end_where_documented(name: str, last: float) -> None:
    schedule = {
        "name": name,
        "warmup_epochs": 1,
        "min_lr_ratio": 0.01,
        "step_epochs": 2,
        "gamma": 0.1,
    }
    per_epoch, epochs = 5, 5
    total, warmup = per_epoch * epochs, per_epoch
    factors = [
        lr_factor(s, total=total, warmup=warmup, schedule=schedule, per_epoch=per_epoch)
        for s in range(total + 1)
    ]
    assert factors[0] == pytest.approx(0.01)  # warm-up starts at 1% of lr
    assert factors[:warmup] == sorted(factors[:warmup])
    assert factors[warmup] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(last)
    assert all(math.isfinite(f) and f > 0 for f in factors)


def test_scheduler_steps_the_optimizer_lr() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    cfg = {
        "optimizer": "adamw", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "epochs": 2,
        "schedule": {"name": "cosine", "warmup_epochs": 0, "min_lr_ratio": 0.0},
    }  # fmt: skip
    opt = make_optimizer(params, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=4)
    seen = []
    for _ in range(8):
        opt.step()
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen[-1] == pytest.approx(0.0, abs=1e-12) and seen[0] < 0.1
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_with_and_without_momentum(momentum: float) -> None:
    params = [torch.nn.Parameter(torch.ones(1))]
    cfg = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": momentum}
    opt = make_optimizer(params, cfg)
    params[0].grad = torch.ones(1)
    opt.step()
    # Nesterov: p - lr * (g + momentum * g) on the first step
    assert params[0].item() == pytest.approx(1 - 0.1 * (1 + momentum))
    assert opt.param_groups[0]["nesterov"] is (momentum > 0)
