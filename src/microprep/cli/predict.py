"""``prep predict RUN_DIR INPUT --out PRED.zarr``: tiled inference with a trained run.

The run directory says which trainer made it; that trainer's ``predict`` does the work (class
maps for U-Net runs, instances for Mask R-CNN runs). The options every trainer takes are below;
each trainer adds its own from its ``predict_schema()`` (:mod:`microprep.cli.trainer_options`),
such as U-Net's ``--probabilities`` and Mask R-CNN's ``--score-threshold``.
"""

from __future__ import annotations

from pathlib import Path

import click

from microprep.cli.options import force_option, guard_outputs, parse_ints, window_value
from microprep.cli.trainer_options import TrainerOptionsCommand
from microprep.errors import UsageError
from microprep.training.predict_options import PREDICT_DEFAULTS as DEFAULTS


@click.command("predict", cls=TrainerOptionsCommand)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="PRED.zarr")
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Weights to use (default: the run's best.pt, else its last good checkpoint).",
)
@click.option(
    "--overlap",
    type=click.FloatRange(0, 0.9),
    default=DEFAULTS["overlap"],
    show_default=True,
    help="Fraction of the window shared by neighbouring tiles.",
)
@click.option(
    "--window",
    callback=parse_ints,
    help="Tile size: 256, or one per axis (32,128,128); default: the training window.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULTS["batch_size"], show_default=True
)
@click.option(
    "--device", default=DEFAULTS["device"], show_default=True, help="auto, cpu, cuda, cuda:N."
)
@click.option(
    "--uncertainty",
    is_flag=True,
    help="Also store per-pixel uncertainty and a per-image mean (for prep rank), and heat maps "
    "in PRED.overlays/uncertainty/.",
)
@click.option("--no-overlays", is_flag=True, help="Do not write overlay PNGs.")
@click.option(
    "--truth",
    is_flag=True,
    help="Overlays also outline the ground truth in white (INPUT: a dataset store with class "
    "maps), so errors show at a glance.",
)
@click.option(
    "--tta",
    is_flag=False,
    flag_value="all",
    default=None,
    metavar="[all|flips|N]",
    help="Test-time augmentation: predict each tile flipped and turned too (alone: all 8 in "
    "2D, 48 in 3D; flips; or the first N); U-Net averages the probabilities, Mask R-CNN keeps "
    "objects found in at least half of the views.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary.")
@force_option
def predict_command(
    run_dir: Path,
    source: Path,
    out: Path,
    checkpoint: Path | None,
    quiet: bool,
    no_overlays: bool,
    force: bool,
    **options: object,
) -> None:
    """Predict INPUT (a store, an image, a folder of images, a TIFF stack) with RUN_DIR."""
    guard_outputs("out", force=force)
    from microprep.plugins import load_trainer
    from microprep.predict.truth import require_truth, truth_overlays
    from microprep.training.job import PredictRequest
    from microprep.training.rundir import RunDir

    if options.get("truth"):
        if no_overlays:
            raise UsageError("--truth draws on the overlays; leave out --no-overlays")
        require_truth(source)
    run = RunDir.open(run_dir)
    trainer = load_trainer(run.trainer)
    request = PredictRequest(
        run=run,
        source=source,
        out=out,
        options={
            **options,
            "window": window_value(options.get("window")),
            "overlays": not no_overlays,
        },
        checkpoint=checkpoint,
        progress=not quiet,
    )
    with truth_overlays(bool(options.get("truth"))):
        summary = trainer.predict(request)
    if not quiet:
        parts = ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, dict | list))
        click.echo(f"{out}: {parts}")
