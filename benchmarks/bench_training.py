"""Benchmark the training data path and the trainer's overhead, side by side in one run.

Usage::

    python benchmarks/bench_training.py [--store d.zarr] [--window 128] [--batch 8]
                                        [--steps 12] [--json OUT]

Without ``--store`` the sample CVAT export is converted and split (by region) into a
temporary store first.

Cases:

1. **loader vs step**: a :class:`~microprep.data.SegmentationDataset` as ``prep train`` builds
   it for a few images (train split, windows at random positions, ``data.samples_per_epoch``,
   flips and quarter turns plus the small-dataset ``microscopy`` augmentation recipe) through
   :func:`~microprep.data.loader.make_loader` with 2 workers, against the rate at which one
   U-Net training step (forward, loss, backward, AdamW) consumes samples of the same shape in
   this process. Goal: the loader delivers at
   least 3x the step's rate, so data is never the bottleneck.
2. **trainer overhead**: steps through the shared loop (:func:`microprep.training.loop.fit`:
   autocast context, gradient scaler, schedule, loss bookkeeping, progress bar) against a bare
   PyTorch loop (zero_grad, forward, loss, backward, step) on the same model, batches and
   device, both fed from the same in-memory batches so only the loop differs. Goal: within
   1.2x. A second row adds the once-per-epoch work (checkpoint, metrics CSV, curves PNG)
   spread over the ``--steps`` of the epoch.

Timing: the two sides of case 2 alternate for ``--rounds`` rounds and the median is reported.
The exit status is 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microprep.cli.main import main as prep
from microprep.data import SegmentationDataset
from microprep.data.loader import make_loader
from microprep.training.config import build_config, trainer_schema
from microprep.training.datasets import SMALL_DATASET, augment_config
from microprep.training.job import TrainJob
from microprep.training.loop import fit, prepare
from microprep.training.rundir import RunDir
from microprep_unet.losses import CombinedLoss
from microprep_unet.model import UNet

ROOT = Path(__file__).resolve().parents[1]
LOADER_GOAL = 3.0
OVERHEAD_GOAL = 1.2


def sample_store(folder: Path) -> Path:
    """The sample micrographs converted and split by region."""
    store = folder / "d.zarr"
    args = [
        "convert", str(ROOT / "sample_data/cvat/annotations.xml"),
        "--images", str(ROOT / "sample_data/micrographs"), "--out", str(store), "-q",
    ]  # fmt: skip
    if prep(args) != 0 or prep(["split", str(store), "--val", "0.2", "--test", "0",
                                "--by", "region", "-q"]) != 0:  # fmt: skip
        sys.exit("could not prepare the sample store")
    return store


def network(k: int) -> UNet:
    return UNet(in_channels=1, num_classes=k, dims=2, depth=4, base_filters=16, dropout=0.0)


def loader_rate(store: Path, window: int, batch: int, batches: int) -> float:
    """Samples per second from a 2-worker loader (after the workers are up)."""
    aug = augment_config({"noise": None, "geometry": "flip,rot90"}, images=SMALL_DATASET)
    assert aug is not None and aug.recipe == "microscopy"
    ds = SegmentationDataset(
        store,
        split="train",
        window=window,
        stride=window // 2,
        augment=aug,
        seed=0,
        samples_per_epoch=batch * batches,
    )
    loader = make_loader(ds, batch_size=batch, shuffle=True, seed=0, workers=2)
    it = iter(loader)
    next(it)  # workers started, first batch ready
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            n += len(next(it)["image"])
        except StopIteration:
            it = iter(loader)
            n += len(next(it)["image"])
    return n / (time.perf_counter() - t0)


def step_rate(k: int, window: int, batch: int, steps: int) -> float:
    """Samples per second consumed by U-Net training steps on random batches."""
    torch.manual_seed(0)
    model = network(k)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = CombinedLoss({"ce": 1.0, "dice": 1.0})
    x = torch.rand(batch, 1, window, window)
    y = torch.randint(0, k, (batch, window, window))
    v = torch.ones(batch, window, window, dtype=torch.bool)
    for _ in range(2):
        opt.zero_grad()
        loss_fn(model(x), y, v)[0].backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y, v)[0].backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def batches(k: int, window: int, batch: int, steps: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        {
            "image": torch.rand(batch, 1, window, window, generator=g),
            "target": torch.randint(0, k, (batch, window, window), generator=g),
            "valid": torch.ones(batch, window, window, dtype=torch.bool),
        }
        for _ in range(steps)
    ]


def bare_loop(k: int, data: list[dict[str, torch.Tensor]]) -> float:
    torch.manual_seed(0)
    model = network(k)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = CombinedLoss({"ce": 1.0, "dice": 1.0})
    model.train()
    t0 = time.perf_counter()
    for b in data:
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model(b["image"]), b["target"], b["valid"])
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / len(data)


def trainer_loop(k: int, data: list[dict[str, torch.Tensor]], folder: Path) -> tuple[float, float]:
    from microprep_unet.plugin import UNetTrainer

    schema = trainer_schema(UNetTrainer().config_schema())
    config = build_config(schema, options={"epochs": 1, "device": "cpu", "deterministic": False})
    run = RunDir.create(
        Path(tempfile.mkdtemp(dir=folder)) / "run", trainer="unet", dataset=folder, config=config
    )
    job = TrainJob(dataset=folder, config=config, run=run, progress=True)
    runtime = prepare(job)
    model = network(k)
    loss_fn = CombinedLoss({"ce": 1.0, "dice": 1.0})

    def step(net: torch.nn.Module, b: Any, device: torch.device) -> Any:
        return loss_fn(net(b["image"].to(device)), b["target"].to(device), b["valid"].to(device))

    t0 = time.perf_counter()
    summary = fit(job, runtime, model=model, train_loader=data, val_loader=None,  # type: ignore[arg-type]
                  train_step=step, evaluate=None, monitor="loss")  # fmt: skip
    total = time.perf_counter() - t0
    # the epoch's own clock stops before the checkpoint, metrics.csv and curves are written
    return float(summary["final"]["seconds"]) / len(data), total / len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = args.store or sample_store(folder)
        from microprep import open_dataset

        k = len(open_dataset(store).classes)
        steps = step_rate(k, args.window, args.batch, args.steps)
        loads = loader_rate(store, args.window, args.batch, 3 * args.steps)
        data = batches(k, args.window, args.batch, args.steps)
        bare, ours, whole = [], [], []
        for _ in range(args.rounds):
            bare.append(bare_loop(k, data))
            step_s, total_s = trainer_loop(k, data, folder)
            ours.append(step_s)
            whole.append(total_s)
    bare_s, ours_s, whole_s = (statistics.median(v) for v in (bare, ours, whole))
    results = {
        "window": args.window,
        "batch": args.batch,
        "loader_samples_per_s": round(loads, 1),
        "step_samples_per_s": round(steps, 1),
        "loader_over_step": round(loads / steps, 2),
        "bare_step_ms": round(bare_s * 1e3, 1),
        "trainer_step_ms": round(ours_s * 1e3, 1),
        "trainer_over_bare": round(ours_s / bare_s, 3),
        "trainer_with_epoch_end_ms": round(whole_s * 1e3, 1),
        "epoch_end_included_over_bare": round(whole_s / bare_s, 3),
        "steps_per_epoch": args.steps,
    }
    ok_loader = loads / steps >= LOADER_GOAL
    ok_overhead = ours_s / bare_s <= OVERHEAD_GOAL
    print(f"{'case':<22}{'microprep':>14}{'baseline':>14}{'ratio':>9}  goal")
    print(
        f"{'loader vs step':<22}{loads:>10.1f} s/s{steps:>10.1f} s/s{loads / steps:>8.2f}x"
        f"  >= {LOADER_GOAL}x {'PASS' if ok_loader else 'FAIL'}"
    )
    print(
        f"{'trainer step':<22}{ours_s * 1e3:>11.1f} ms{bare_s * 1e3:>11.1f} ms"
        f"{ours_s / bare_s:>8.3f}x  <= {OVERHEAD_GOAL}x {'PASS' if ok_overhead else 'FAIL'}"
    )
    print(
        f"{'  + epoch end (1 ckpt)':<22}{whole_s * 1e3:>11.1f} ms{bare_s * 1e3:>11.1f} ms"
        f"{whole_s / bare_s:>8.3f}x  (checkpoint, CSV, curves once per {args.steps} steps)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok_loader and ok_overhead else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
