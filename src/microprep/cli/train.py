"""``prep train --list`` and ``prep train NAME DATASET [--config FILE] [options]``.

Trainers are plugins (entry-point group ``microprep.trainers``); torch is imported only by the
trainer that runs. Under ``torchrun`` every process runs this command; rank 0 writes the run
directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from microprep.cli.options import guard_outputs, parse_ints, window_value
from microprep.errors import UsageError


def _list() -> None:
    from microprep.plugins import list_trainers, load_trainer

    found = list_trainers()
    if not found:
        click.echo("no trainer plugins installed (see docs/plugins.md)")
        return
    for info in found:
        if info.ok:
            summary = load_trainer(info.name).summary
            click.echo(f"{info.name:<12} {summary}  [{info.distribution}]")
        else:
            click.echo(f"{info.name:<12} BROKEN: {info.error}")


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@click.command("train")
@click.argument("name", required=False)
@click.argument(
    "dataset", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--list", "list_", is_flag=True, help="List the installed trainers and exit.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON configuration (docs/training.md).",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (overrides the config).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of every random draw.")
@click.option("--device", help="auto, cpu, cuda, cuda:N.")
@click.option("--amp", type=click.Choice(["off", "fp16", "bf16"]), help="Mixed precision.")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option(
    "--window",
    callback=parse_ints,
    help="Training window in pixels: 256, or one per axis (16,64,64), as in prep crop.",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A local weights file to start from (trainers with model.weights, e.g. maskrcnn).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set any configuration key, e.g. --set model.depth=3 (repeatable).",
)
@click.option("--print-config", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, epoch lines or closing line.")
def train_command(
    name: str | None,
    dataset: Path | None,
    list_: bool,
    config_file: Path | None,
    out: Path | None,
    resume: bool,
    overrides: tuple[str, ...],
    print_config: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train the trainer NAME on the dataset store DATASET (see `prep train --list`)."""
    guard_outputs("out")
    if list_:
        _list()
        return
    if name is None:
        raise UsageError("give a trainer NAME and a DATASET, or --list")
    from microprep.plugins import load_trainer
    from microprep.training.config import build_config, trainer_schema
    from microprep.training.job import TrainJob, dist_info
    from microprep.training.rundir import RunDir

    trainer = load_trainer(name)
    schema = trainer_schema(trainer.config_schema())
    given = {
        "epochs": options["epochs"],
        "batch_size": options["batch_size"],
        "lr": options["lr"],
        "seed": options["seed"],
        "device": options["device"],
        "amp": options["amp"],
        "data.workers": options["workers"],
        "data.window": window_value(options["window"]),
    }
    if options["weights"] is not None:
        model_keys = schema.get("properties", {}).get("model", {}).get("properties", {})
        if "weights" not in model_keys:
            raise UsageError(f"trainer {name!r} takes no starting weights (--weights)")
        given["model.weights"] = str(options["weights"])
    dist = dist_info()
    if resume:
        if out is None:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        run = RunDir.open(out)
        if run.trainer != name:
            raise UsageError(f"{out}: that run was made by trainer {run.trainer!r}, not {name!r}")
        changed = [k for k, v in given.items() if v is not None and k != "epochs"]
        if changed or overrides or config_file:
            raise UsageError(
                "--resume continues a run with its own configuration; only --epochs may change"
            )
        config = dict(run.config)
        if options["epochs"] is not None:
            config["epochs"] = options["epochs"]
        data_path = dataset or run.dataset
    else:
        if dataset is None:
            raise UsageError(f"give the DATASET store to train {name} on")
        config = build_config(schema, file=config_file, options=given, overrides=overrides)
        if print_config:
            click.echo(json.dumps(config, indent=2))
            return
        if out is None:
            if dist.distributed:
                raise UsageError("under torchrun, give --out (every process needs the same one)")
            out = _default_out(name)
        data_path = dataset
        if dist.main:
            run = RunDir.create(out, trainer=name, dataset=dataset, config=config)
        else:
            run = RunDir(out, name, dataset, config)
    job = TrainJob(
        dataset=Path(data_path),
        config=config,
        run=run,
        resume=resume,
        dist=dist,
        progress=not quiet,
    )
    summary = trainer.fit(job)
    if dist.main and not quiet:
        click.echo(f"{run.path}: {summary_line(summary)}")


def summary_line(summary: dict[str, Any]) -> str:
    """The last line ``prep train`` prints: epochs run of planned, the best validation metric
    (or "no validation"), and why the run stopped, loudly when it stopped early.

    Example:
        >>> summary_line({"epochs_run": 3, "epochs_planned": 11, "stopped_early": True,
        ...               "stopped": "time limit", "monitor": "iou_macro",
        ...               "validation": True, "best": 0.5, "best_epoch": 3}).split("; ")
        ['STOPPED EARLY after 3 of 11 epochs (time limit)', 'best val iou_macro 0.5000 (epoch 3)']
    """
    run, planned = (
        summary.get("epochs_run"),
        summary.get("epochs_planned", summary.get("epochs_run")),
    )
    if summary.get("validation", True) and summary.get("monitor") != "train_loss":
        best = summary.get("best")
        if best is None:
            score = f"no validation result for {summary.get('monitor')}"
        else:
            score = (
                f"best val {summary.get('monitor')} {best:.4f} (epoch {summary.get('best_epoch')})"
            )
    else:
        score = "no validation"
    if summary.get("stopped_early"):
        return f"STOPPED EARLY after {run} of {planned} epochs ({summary.get('stopped')}); {score}"
    return f"{run} of {planned} epochs ({summary.get('stopped')}); {score}"
