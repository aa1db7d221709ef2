"""Benchmark the Mask R-CNN trainer: the shared loop's overhead, and tiled prediction.

Usage::

    python benchmarks/bench_maskrcnn.py [--device auto] [--window 256] [--batch 2]
                                        [--steps 12] [--rounds 3] [--size 2048]
                                        [--tile 256] [--overlap 0.25] [--json OUT]
                                        [--config sample_data/train-maskrcnn.yaml]

Cases:

1. **trainer step**: training steps of the ``maskrcnn`` network (ResNet-50 FPN v1, gray input,
   the schema's default model settings, random weights, AdamW) through the shared loop
   (:func:`microprep.training.loop.fit` with the plugin's ``train_step``: autocast context,
   gradient scaler, schedule, loss bookkeeping, progress bar) against a bare torchvision loop
   (zero_grad, forward, sum of the losses, ``loss.item()`` and a finiteness check as
   torchvision's reference ``engine.py`` does, backward, step) on the same model, batches and
   device. Both are fed the same in-memory batches of ``--batch`` gray ``--window`` px crops
   with a few objects each, so only the loop differs. The step time is the steady state: from
   the start of the second step to the start of the last (the device synchronised at each
   start), so neither the first step's warm-up nor the epoch's end counts. Goal: within 1.2x.
   The epoch-end work of the shared loop (a checkpoint of model and optimiser, several hundred
   MB, the metrics CSV and the curves) is reported apart, in seconds. The two sides alternate
   for ``--rounds`` rounds; medians are reported. Needs ``--steps`` of at least 3.
   ``--config`` takes the model settings (proposal counts, variant) and ``amp`` from a training
   configuration file, for both sides (the bare loop then runs under the same autocast), so a
   recipe's step time can be read off; the crops and batch size stay ``--window``/``--batch``.
2. **tiled prediction**: :func:`microprep.predict.instances.predict_instances_tiled` of one
   ``--size`` px gray image with a randomly initialised model (``--tile`` px tiles,
   ``--overlap``), run in a fresh subprocess: images per second, the process's peak resident
   memory (``ru_maxrss``) at the end, and its resident and peak memory just before predicting
   (model built and warmed up), and the peak CUDA memory of the prediction on a GPU. No goal
   (a random model's detections are not a real workload's); it shows whether memory stays
   bounded on a large image.

The exit status is 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microprep.training.config import build_config, trainer_schema
from microprep.training.job import TrainJob
from microprep.training.loop import fit, prepare
from microprep.training.rundir import RunDir
from microprep.training.runtime import Precision, choose_device
from microprep_maskrcnn.plugin import MaskRCNNTrainer, build_network, train_step

OVERHEAD_GOAL = 1.2
CLASSES = 3  # background and two object classes
LR = 1e-4
PREDICT_SCORE = 0.5  # prep predict's default --score-threshold


def config(device: str, file: Path | None = None) -> dict[str, Any]:
    schema = trainer_schema(MaskRCNNTrainer().config_schema())
    options = {"epochs": 1, "device": device, "deterministic": False, "lr": LR}
    overrides = ["schedule.name=constant", "schedule.warmup_epochs=0", "grad_clip=null"]
    return build_config(schema, file=file, options=options, overrides=overrides)


def network(
    cfg: dict[str, Any], window: int, *, score_threshold: float | None = None
) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(
        cfg,
        num_classes=CLASSES,
        in_channels=1,
        sizes=(window, window),
        score_threshold=score_threshold,
    )


def batches(window: int, batch: int, steps: int) -> list[tuple[list[Any], list[Any]]]:
    """``steps`` batches of ``batch`` gray crops, each with 2..5 rectangular objects."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        images, targets = [], []
        for _ in range(batch):
            image = rng.random((1, window, window), np.float32) * 0.2
            n = int(rng.integers(2, 6))
            masks = np.zeros((n, window, window), np.uint8)
            boxes = []
            for k in range(n):
                h, w = (int(v) for v in rng.integers(12, window // 4, 2))
                y, x = int(rng.integers(0, window - h)), int(rng.integers(0, window - w))
                masks[k, y : y + h, x : x + w] = 1
                image[0, y : y + h, x : x + w] += 0.6
                boxes.append([x, y, x + w, y + h])
            images.append(torch.from_numpy(image))
            targets.append(
                {
                    "boxes": torch.tensor(boxes, dtype=torch.float32),
                    "labels": torch.from_numpy(rng.integers(1, CLASSES, n)),
                    "masks": torch.from_numpy(masks),
                }
            )
        out.append((images, targets))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steady(starts: list[float]) -> float:
    """Seconds per step from the start times of the steps, without the first step."""
    return (starts[-1] - starts[1]) / (len(starts) - 2)


def bare_loop(cfg: dict[str, Any], window: int, data: list[Any], device: torch.device) -> float:
    """Seconds per step (steady state) of a plain torchvision training loop."""
    model = network(cfg, window).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=float(cfg["weight_decay"]))
    model.train()
    precision = Precision(str(cfg["amp"]), device)  # the same autocast as the trainer's
    starts = []
    for images, targets in data:
        _sync(device)
        starts.append(time.perf_counter())
        images = [image.to(device) for image in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with precision.autocast():
            losses = model(images, targets)
            loss = sum(losses.values())
        if not np.isfinite(loss.item()):
            raise FloatingPointError("the loss is not finite")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steady(starts)


def trainer_loop(
    cfg: dict[str, Any], window: int, data: list[Any], folder: Path
) -> tuple[float, float]:
    """Seconds per step (steady state) through :func:`microprep.training.loop.fit`, and the
    seconds from the start of the last step to the end of ``fit`` (last step, epoch end)."""
    run = RunDir.create(
        Path(tempfile.mkdtemp(dir=folder)) / "run", trainer="maskrcnn", dataset=folder, config=cfg
    )
    job = TrainJob(dataset=folder, config=cfg, run=run, progress=True)
    runtime = prepare(job)
    model = network(cfg, window)
    starts: list[float] = []

    def timed_step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
        _sync(device)
        starts.append(time.perf_counter())
        return train_step(net, batch, device)

    fit(job, runtime, model=model, train_loader=data, val_loader=None,  # type: ignore[arg-type]
        train_step=timed_step, evaluate=None, monitor="loss")  # fmt: skip
    _sync(runtime.device)
    tail = time.perf_counter() - starts[-1]
    for path in run.checkpoints.glob("*.pt*"):
        path.unlink()  # several hundred MB each
    return steady(starts), tail


def _peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        return float("nan")
    return float(psutil.Process().memory_info().rss) / 2**20


def predict_child(args: argparse.Namespace) -> dict[str, Any]:
    """Case 2 in this (fresh) process: the measurements as a dict."""
    from microprep.predict.instances import predict_instances_tiled
    from microprep_maskrcnn.model import detector_forward

    device = choose_device(args.device)
    cfg = config(args.device, args.config)
    # as `prep predict` builds it: detections below the score threshold are never made
    model = network(cfg, args.tile, score_threshold=PREDICT_SCORE).to(device).eval()
    forward = detector_forward(model, device=device)
    rng = np.random.default_rng(2)
    image = rng.random((1, args.size, args.size), np.float32) * 0.2
    yy, xx = np.mgrid[0 : args.size, 0 : args.size]
    for _ in range(args.size**2 // 4096):  # about one disk per 64 x 64 px
        cy, cx = rng.integers(0, args.size, 2)
        image[0][(yy - cy) ** 2 + (xx - cx) ** 2 < int(rng.integers(16, 100))] += 0.6
    del yy, xx
    forward([image[:, : args.tile, : args.tile]])  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _rss_mb()
    peak_before = _peak_mb()
    _sync(device)
    t0 = time.perf_counter()
    pred = predict_instances_tiled(
        forward,
        image,
        window=args.tile,
        overlap=args.overlap,
        batch_size=4,
        score_threshold=PREDICT_SCORE,
    )
    _sync(device)
    seconds = time.perf_counter() - t0
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "size": args.size,
        "tile": args.tile,
        "overlap": args.overlap,
        "objects": len(pred),
        "seconds": round(seconds, 2),
        "images_per_s": round(1.0 / seconds, 4),
        "rss_before_mb": round(before, 1),
        "peak_rss_before_mb": round(peak_before, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
        "peak_cuda_mb": None if cuda is None else round(cuda, 1),
        "device": str(device),
    }


def predict_case(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child-predict", "--device", args.device,
               "--size", str(args.size), "--tile", str(args.tile),
               "--overlap", str(args.overlap), "--threads", str(args.threads)]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--config", type=Path, help="model settings and amp from this file")
    parser.add_argument("--child-predict", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_predict:
        print(json.dumps(predict_child(args)))
        return 0
    if args.steps < 3:
        parser.error("--steps must be at least 3")
    cfg = config(args.device, args.config)
    device = choose_device(args.device)
    data = batches(args.window, args.batch, args.steps)
    bare, ours, tails = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            bare.append(bare_loop(cfg, args.window, data, device))
            step, tail = trainer_loop(cfg, args.window, data, Path(tmp))
            ours.append(step)
            tails.append(tail)
    bare_s, ours_s = statistics.median(bare), statistics.median(ours)
    epoch_end = statistics.median(tails) - ours_s
    ratio = ours_s / bare_s
    ok = ratio <= OVERHEAD_GOAL
    pred = predict_case(args)
    results = {
        "device": str(device),
        "window": args.window,
        "batch": args.batch,
        "steps": args.steps,
        "rounds": args.rounds,
        "bare_step_ms": round(bare_s * 1e3, 1),
        "trainer_step_ms": round(ours_s * 1e3, 1),
        "trainer_over_bare": round(ratio, 3),
        "epoch_end_s": round(epoch_end, 2),
        "predict": pred,
    }
    m = cfg["model"]
    print(f"device {device}; training {args.batch} x {args.window} px, {args.steps} steps, "
          f"{args.rounds} rounds (medians); amp {cfg['amp']}, box_batch_size_per_image "
          f"{m['box_batch_size_per_image']}, rpn train "
          f"{m['rpn_pre_nms_top_n_train']}/{m['rpn_post_nms_top_n_train']}")  # fmt: skip
    print(f"{'case':<18}{'microprep':>14}{'baseline':>14}{'ratio':>9}  goal")
    print(
        f"{'trainer step':<18}{ours_s * 1e3:>11.1f} ms{bare_s * 1e3:>11.1f} ms"
        f"{ratio:>8.3f}x  <= {OVERHEAD_GOAL}x {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"{'epoch end':<18}{epoch_end:>12.2f} s  checkpoint, metrics CSV, curves (once per epoch)"
    )
    cuda = "" if pred["peak_cuda_mb"] is None else f", peak CUDA {pred['peak_cuda_mb']:.0f} MB"
    print(
        f"{'tiled prediction':<18}{pred['images_per_s']:>10.4f} img/s  "
        f"{pred['size']} px, tiles {pred['tile']} px, overlap {pred['overlap']}: "
        f"{pred['seconds']:.1f} s, {pred['objects']} objects; before: RSS "
        f"{pred['rss_before_mb']:.0f} MB, peak {pred['peak_rss_before_mb']:.0f} MB; "
        f"after: peak {pred['peak_rss_mb']:.0f} MB{cuda}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
