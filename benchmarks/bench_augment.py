"""Benchmark microprep's augmentation against albumentations 2.0.8, side by side in one run.

Usage::

    python benchmarks/bench_augment.py [--size 512] [--instances 30] [--rounds 7]
                                       [--number 20] [--json OUT]

Cases (both sides get the same 512x512 uint8 image, class map and instance masks):

1. **pipeline**: microprep's :class:`~microprep.augment.Augmenter` with gaussian, poisson,
   salt-and-pepper and blur noise, flip and rotation, on the image, the class map and the
   instance layers (boxes recomputed), against ``A.Compose([GaussNoise, ShotNoise,
   SaltAndPepper, GaussianBlur, HorizontalFlip, Rotate])`` (all ``p=1``) on the image, the
   class map (``mask``) and one mask per instance (``masks``). Goal: at least 3.5x the rate.
2. **poisson**: :func:`microprep.augment.noise.poisson_noise` (dose 50) against
   ``A.ShotNoise(p=1)`` on the image. Goal: at least 5x faster.

Informational rows: poisson noise on uint16 and float32 images (``rng.poisson``), and plain
``numpy.random.Generator.poisson`` on the same image.

Timing: each case alternates the two sides in ``--rounds`` rounds of ``--number`` calls each
(after a warm-up call) and reports the median time per call, so both sides see the same machine
load. The exit status is 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np

from microprep.augment import AugmentConfig, Augmenter, Sample, parse_noise
from microprep.augment.noise import poisson_noise

PIPELINE_GOAL = 3.5
POISSON_GOAL = 5.0


def scene(size: int, instances: int, seed: int = 0) -> tuple[Any, Any, Any, list[Any]]:
    """A textured uint8 image, a class map, instance-id layers and per-instance masks."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, (size // 8, size // 8)).astype(np.float32)
    texture = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.clip(120 + 40 * texture, 0, 255).astype(np.uint8)
    labels = np.zeros((size, size), np.uint8)
    layers = np.zeros((1, size, size), np.uint32)
    masks: list[Any] = []
    for i in range(instances):
        mask = np.zeros((size, size), np.uint8)
        cy, cx = (int(v) for v in rng.integers(20, size - 20, 2))
        axes = (int(rng.integers(6, 20)), int(rng.integers(6, 20)))
        cv2.ellipse(mask, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        masks.append(mask)
        labels[mask > 0] = 1 + i % 3
        free = (mask > 0) & (layers[-1] == 0)
        if not np.array_equal(free, mask > 0):  # overlaps: a new layer (as in the store)
            layers = np.concatenate([layers, np.zeros((1, size, size), np.uint32)])
            free = mask > 0
        layers[-1][free] = i + 1
        image[mask > 0] = np.clip(image[mask > 0].astype(np.int32) + 60, 0, 255).astype(np.uint8)
    return image, labels, layers, masks


def time_pair(
    ours: Callable[[], object], theirs: Callable[[], object], *, rounds: int, number: int
) -> tuple[float, float]:
    """Median seconds per call of ``ours`` and ``theirs``, measured in alternating rounds."""
    ours()
    theirs()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            ours()
        a.append((time.perf_counter() - start) / number)
        start = time.perf_counter()
        for _ in range(number):
            theirs()
        b.append((time.perf_counter() - start) / number)
    return statistics.median(a), statistics.median(b)


def main(argv: list[str] | None = None) -> int:
    """Run the cases, print the table and the goals; 1 when a goal fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON.")
    args = parser.parse_args(argv)

    image, labels, layers, masks = scene(args.size, args.instances)
    rng = np.random.default_rng(0)

    augmenter = Augmenter(
        AugmentConfig(
            noise=parse_noise("gaussian:sigma=0.05,poisson:dose=50,salt_and_pepper,blur:sigma=1"),
            geometry=("flip", "rotate"),
        )
    )
    sample: Sample = {
        "image": image,
        "labels": labels,
        "instances": layers,
        "boxes": np.zeros((args.instances, 4)),
    }
    compose = A.Compose(
        [
            A.GaussNoise(p=1),
            A.ShotNoise(p=1),
            A.SaltAndPepper(p=1),
            A.GaussianBlur(p=1),
            A.HorizontalFlip(p=1),
            A.Rotate(p=1),
        ],
        seed=0,
    )
    shot = A.Compose([A.ShotNoise(p=1)], seed=0)

    rows: list[dict[str, Any]] = []

    def add(name: str, ours: float, theirs: float, goal: float | None, baseline: str) -> None:
        rows.append(
            {
                "case": name,
                "microprep_ms": ours * 1e3,
                "baseline": baseline,
                "baseline_ms": theirs * 1e3,
                "speedup": theirs / ours,
                "goal": goal,
                "pass": None if goal is None else theirs / ours >= goal,
            }
        )

    kw = {"rounds": args.rounds, "number": args.number}
    ours, theirs = time_pair(
        lambda: augmenter(sample, rng),
        lambda: compose(image=image, mask=labels, masks=masks),
        **kw,
    )
    add("pipeline uint8 (+labels, instances)", ours, theirs, PIPELINE_GOAL, "A.Compose(...)")
    ours, theirs = time_pair(
        lambda: poisson_noise(image, dose=50.0, rng=rng), lambda: shot(image=image), **kw
    )
    add("poisson uint8", ours, theirs, POISSON_GOAL, "A.ShotNoise")
    lam = image.astype(np.float64) * (50.0 / 255.0)
    ours, theirs = time_pair(
        lambda: poisson_noise(image, dose=50.0, rng=rng), lambda: rng.poisson(lam), **kw
    )
    add("poisson uint8", ours, theirs, None, "Generator.poisson")
    for dtype in (np.uint16, np.float32):
        other = (
            (image.astype(np.float32) / 255.0).astype(dtype)
            if dtype == np.float32
            else (image.astype(np.uint16) * 257)
        )
        ours, theirs = time_pair(
            lambda other=other: poisson_noise(other, dose=50.0, rng=rng),
            lambda: shot(image=image),
            **kw,
        )
        add(f"poisson {np.dtype(dtype).name}", ours, theirs, None, "A.ShotNoise (uint8)")

    print(
        f"microprep augment vs albumentations {A.__version__}, opencv {cv2.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"{args.size}x{args.size}, {args.instances} instances, median of {args.rounds} x "
        f"{args.number} calls"
    )
    header = f"{'case':<38} {'microprep':>11} {'baseline':>22} {'':>10} {'speedup':>8}  goal"
    print(header)
    print("-" * len(header))
    failed = False
    for row in rows:
        verdict = ""
        if row["goal"] is not None:
            verdict = f">= {row['goal']}x {'PASS' if row['pass'] else 'FAIL'}"
            failed |= not row["pass"]
        print(
            f"{row['case']:<38} {row['microprep_ms']:>8.2f} ms {row['baseline']:>22} "
            f"{row['baseline_ms']:>7.2f} ms {row['speedup']:>7.1f}x  {verdict}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
