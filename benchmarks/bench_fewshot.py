"""Few-label benchmark: the U-Net recipe trained on 2 micrographs, tested on the 34 others.

Usage::

    python benchmarks/bench_fewshot.py [--work DIR] [--recipe YAML] [--test-images 34] [--json OUT]

The sample training set (``sample_data/training``, 36 micrographs of 512 x 512) is converted
once into ``WORK/fewshot.zarr`` (kept between runs). The splits file gives the first two
micrographs to training (rows 0-400) and validation (rows 416-512, a region split as ``prep
split --by region`` makes it) and the other 34 whole micrographs to test. Both cases train the
recipe (default ``sample_data/train-unet-few.yaml``: depth 5, 16 base filters, 256 px windows,
batch 4) for the same number of optimiser steps, predict the test micrographs with the best
checkpoint (picked on the validation region, validated as often in both cases) and are scored
by ``prep evaluate --split test``:

* **old defaults**: the fixed grid of windows (stride half the window) seen again every epoch,
  flips and quarter turns only (``data.samples_per_epoch=null``, ``data.auto_augment=false``),
  with as many epochs as give the recipe's step count;
* **new defaults**: the recipe as shipped: random windows (``data.samples_per_epoch``) and the
  small-dataset microscopy augmentation (the default for 8 images or fewer);
* **new defaults + TTA**: the same run predicted with ``--tta`` (8 symmetries).

Training wall time depends on the load of the machine; the CPU seconds of the training process
(user + system, all threads) are printed beside it. Results go to stdout (and ``--json``).
CPU only. ``--test-images N`` tests on the first N of the 34 to keep a run short.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
import zarr

from microprep.cli.main import main as prep
from microprep.splits import Region, Splits, default_splits_path, save_splits
from microprep.store.read import open_dataset

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ROWS, VAL_START = 400, 416


def store(work: Path, test_images: int) -> Path:
    """``WORK/fewshot.zarr`` (converted once) with the few-label splits file, and
    ``WORK/test/``: links to the test micrographs."""
    path = work / "fewshot.zarr"
    if not path.exists():
        data = ROOT / "sample_data" / "training"
        code = prep(["convert", str(data / "annotations.xml"), "--images",
                     str(data / "micrographs"), "--out", str(path), "-q"])  # fmt: skip
        if code:
            sys.exit(f"convert failed ({code})")
    with open_dataset(path) as ds:
        nodes = sorted(ds.nodes)
    root: Any = zarr.open_group(path, mode="r")
    shapes = {n: tuple(int(v) for v in root[n]["labels"].shape) for n in nodes}
    train_nodes, test_nodes = nodes[:2], nodes[2 : 2 + test_images]
    folder = work / "test"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in test_nodes:
        (folder / name).symlink_to(ROOT / "sample_data" / "training" / "micrographs" / name)
    splits = Splits(
        train=tuple(Region(n, (0, 0), (TRAIN_ROWS, shapes[n][1])) for n in train_nodes),
        val=tuple(Region(n, (VAL_START, 0), tuple(shapes[n])) for n in train_nodes),
        test=tuple(Region(n, (0, 0), tuple(shapes[n])) for n in test_nodes),
        by="region",
        gap=VAL_START - TRAIN_ROWS,
    )
    save_splits(splits, default_splits_path(path))
    return path


def grid_windows(rows: int, cols: int, images: int, window: int) -> int:
    """Windows of the training grid (stride half the window, flush edges)."""
    step = window // 2
    return (
        images * (math.ceil((rows - window) / step) + 1) * (math.ceil((cols - window) / step) + 1)
    )


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its joined children (DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def predict_and_score(
    run: Path, path: Path, work: Path, case: str, extra: list[str], evaluate: tuple[str, ...] = ()
) -> tuple[dict[str, Any], float]:
    """``prep predict`` of ``WORK/test`` with ``run`` (plus ``extra`` options) into
    ``WORK/pred-CASE.zarr``, then ``prep evaluate --split test`` against ``path`` (plus
    ``evaluate`` options); the JSON report and the prediction's wall seconds."""
    pred = work / f"pred-{case}.zarr"
    began = time.perf_counter()
    code = prep(["predict", str(run), str(work / "test"), "--out", str(pred), "--device", "cpu",
                 "--no-overlays", "-q", "--force", *extra])  # fmt: skip
    if code:
        sys.exit(f"{case}: predict failed")
    predicted = time.perf_counter() - began
    scores = work / f"scores-{case}.json"
    code = prep(["evaluate", str(pred), str(path), "--split", "test", *evaluate, "--json",
                 str(scores)])  # fmt: skip
    if code:
        sys.exit(f"{case}: evaluate failed")
    return json.loads(scores.read_text()), predicted


def run_case(
    name: str, path: Path, work: Path, recipe: Path, sets: list[str], tta: bool
) -> dict[str, Any]:
    """Train, predict, evaluate; the test scores and the times."""
    run = work / f"run-{name}"
    common = ["--config", str(recipe), "--device", "cpu", "-q", "--set", "seed=0"]
    shutil.rmtree(run, ignore_errors=True)
    cpu0, began = cpu_seconds(), time.perf_counter()
    if prep(["train", "unet", str(path), "--out", str(run), *common, *sets]):
        sys.exit(f"{name}: training failed")
    trained = time.perf_counter() - began
    cpu = cpu_seconds() - cpu0
    summary = json.loads((run / "summary.json").read_text())
    results = {}
    for label, extra in (("", []), ("+tta", ["--tta", "all"])) if tta else (("", []),):
        report, predicted = predict_and_score(run, path, work, f"{name}{label}", extra)
        results[name + label] = {
            "test_iou_macro": round(float(report["macro"]["iou"]), 4),
            "per_class_iou": {
                k: round(float(v["iou"]), 4)
                for k, v in report["per_class"].items()
                if v.get("iou") is not None
            },
            "epochs": summary["epochs_run"],
            "best_val": summary.get("best"),
            "train_seconds": round(trained, 1),
            "train_cpu_seconds": round(cpu, 1),
            "predict_seconds": round(predicted, 1),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "sample_data" / "train-unet-few.yaml")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--test-images", type=int, default=34, help="test micrographs (<= 34)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="fewshot-"))
    work.mkdir(parents=True, exist_ok=True)
    path = store(work, args.test_images)
    recipe = yaml.safe_load(args.recipe.read_text())
    data, batch = recipe["data"], int(recipe["batch_size"])
    window = int(data["window"])
    steps = int(recipe["epochs"]) * (int(data["samples_per_epoch"]) // batch)
    grid = grid_windows(TRAIN_ROWS, 512, 2, window)
    old_epochs = math.ceil(steps / max(grid // batch, 1))
    # as many validations (best-checkpoint candidates) in both cases
    validations = math.ceil(int(recipe["epochs"]) / int(recipe.get("val_every", 1)))
    old_val_every = max(old_epochs // validations, 1)
    print(
        f"recipe {args.recipe.name}: {steps} optimiser steps of {batch} windows of {window} px; "
        f"old defaults: {old_epochs} epochs of the {grid}-window grid; test: "
        f"{args.test_images} images",
        flush=True,
    )
    results: dict[str, Any] = {"recipe": args.recipe.name, "steps": steps, "window": window}
    old_sets = ["--set", "data.samples_per_epoch=null", "--set", "data.auto_augment=false",
                "--epochs", str(old_epochs), "--set", f"val_every={old_val_every}"]  # fmt: skip
    results.update(run_case("old", path, work, args.recipe, old_sets, tta=False))
    results.update(run_case("new", path, work, args.recipe, [], tta=True))
    for key in ("old", "new", "new+tta"):
        r = results[key]
        print(f"{key:8s} test macro IoU {r['test_iou_macro']:.3f}  per class {r['per_class_iou']}"
              f"  train {r['train_seconds']} s ({r['train_cpu_seconds']} CPU s), predict "
              f"{r['predict_seconds']} s", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
