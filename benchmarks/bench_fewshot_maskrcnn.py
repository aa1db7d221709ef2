"""Few-label benchmark of the Mask R-CNN recipe: 2 micrographs for training, the others to test.

Usage::

    python benchmarks/bench_fewshot_maskrcnn.py [--work DIR] [--test-images 8] [--tta flips]
                                                [--json OUT] [--reuse]

The same store and splits as ``bench_fewshot.py`` (the first two micrographs of
``sample_data/training``: rows 0-400 to train, rows 416-512 to validate; the next
``--test-images`` whole micrographs to test). Both cases train from random weights with
``sample_data/train-maskrcnn-few.yaml`` (256 px windows, batch 2) for the same number of
optimiser steps and about as many validations (best-checkpoint candidates):

* **recipe**: as shipped: the fixed grid of windows seen again every epoch, flips and quarter
  turns only (the recipe turns ``data.auto_augment`` off);
* **random + augmentation**: ``data.samples_per_epoch`` random windows, new ones every epoch,
  and the small-dataset microscopy augmentation (``data.auto_augment=true``), with as many
  epochs as give the recipe's step count;
* **recipe + TTA**: the recipe's run predicted with ``--tta`` (``flips`` by default: 4 views).

Each is scored by ``prep evaluate --kind semantic``: the class map of the predicted objects
(their union per class, the higher score on top) against the ground truth's class map, so the
per-class IoU is the *merged* IoU of the objects. CPU only; prints the training wall time and
CPU seconds (process and joined DataLoader workers) beside the scores.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench_fewshot import (
    ROOT,
    TRAIN_ROWS,
    cpu_seconds,
    grid_windows,
    predict_and_score,
    store,
)
from microprep.cli.main import main as prep

RECIPE = ROOT / "sample_data" / "train-maskrcnn-few.yaml"


def run_case(
    name: str, path: Path, work: Path, sets: list[str], tta: str | None, reuse: bool = False
) -> dict[str, Any]:
    """Train (unless ``reuse`` and trained already), predict (plain, and with ``tta`` when
    given), evaluate; scores and times."""
    run = work / f"mrcnn-{name}"
    cpu: float | None = None
    if reuse and (run / "summary.json").is_file():
        trained = float(json.loads((run / "summary.json").read_text())["seconds_this_session"])
    else:
        shutil.rmtree(run, ignore_errors=True)
        cpu0, began = cpu_seconds(), time.perf_counter()
        args = ["train", "maskrcnn", str(path), "--out", str(run), "--config", str(RECIPE),
                "--device", "cpu", "-q", "--set", "seed=0", *sets]  # fmt: skip
        if prep(args):
            sys.exit(f"{name}: training failed")
        trained, cpu = time.perf_counter() - began, cpu_seconds() - cpu0
    summary = json.loads((run / "summary.json").read_text())
    results = {}
    for label, extra in (("", []), ("+tta", ["--tta", tta])) if tta else (("", []),):
        report, predicted = predict_and_score(
            run, path, work, f"mrcnn-{name}{label}", extra, ("--kind", "semantic")
        )
        results[name + label] = {
            "merged_iou_macro": round(float(report["macro"]["iou"]), 4),
            "merged_iou": {
                k: round(float(v["iou"]), 4)
                for k, v in report["per_class"].items()
                if v.get("iou") is not None
            },
            "epochs": summary["epochs_run"],
            "train_seconds": round(trained, 1),
            "train_cpu_seconds": None if cpu is None else round(cpu, 1),
            "predict_seconds": round(predicted, 1),
        }
    return results


#: Random windows per epoch of the comparison case (a validation every epoch, about as often
#: as the recipe validates).
RANDOM_PER_EPOCH = 32


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--test-images", type=int, default=8, help="test micrographs (<= 34)")
    parser.add_argument("--tta", default="flips", help="--tta of the third case (all, flips, N)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="keep runs already trained in WORK (no CPU time)"
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="fewshot-mrcnn-"))
    work.mkdir(parents=True, exist_ok=True)
    path = store(work, args.test_images)
    recipe = yaml.safe_load(RECIPE.read_text())
    data, batch = recipe["data"], int(recipe["batch_size"])
    if data.get("samples_per_epoch"):
        steps = int(recipe["epochs"]) * (int(data["samples_per_epoch"]) // batch)
    else:
        grid = grid_windows(TRAIN_ROWS, 512, 2, int(data["window"]))
        steps = int(recipe["epochs"]) * max(grid // batch, 1)
    random_epochs = math.ceil(steps / (RANDOM_PER_EPOCH // batch))
    print(f"recipe {RECIPE.name}: {steps} optimiser steps of {batch} windows; random windows: "
          f"{random_epochs} epochs of {RANDOM_PER_EPOCH}; test: {args.test_images} images",
          flush=True)  # fmt: skip
    results: dict[str, Any] = {"recipe": RECIPE.name, "steps": steps}
    results.update(run_case("recipe", path, work, [], args.tta, args.reuse))
    random = ["--set", f"data.samples_per_epoch={RANDOM_PER_EPOCH}", "--set",
              "data.auto_augment=true", "--epochs", str(random_epochs),
              "--set", "val_every=1"]  # fmt: skip
    results.update(run_case("random+aug", path, work, random, None, args.reuse))
    for key in ("recipe", "recipe+tta", "random+aug"):
        r = results[key]
        print(f"{key:10s} merged IoU macro {r['merged_iou_macro']:.3f}  per class "
              f"{r['merged_iou']}  train {r['train_seconds']} s ({r['train_cpu_seconds']} CPU "
              f"s), predict {r['predict_seconds']} s", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
