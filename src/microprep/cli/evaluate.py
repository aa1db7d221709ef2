"""``prep evaluate PRED GROUND_TRUTH [--split NAME] [--json FILE] [--no-background] [--kind K]``."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

from microprep.cli.options import guard_outputs, split_options
from microprep.errors import UsageError

KINDS = ("auto", "semantic", "instances")


def detect_kind(pred: Path) -> str:
    """``"instances"`` for a ``.json`` file or a prediction store of kind ``instances``, else
    ``"semantic"``.

    Example:
        >>> detect_kind(Path("detections.json")), detect_kind(Path("no-such.zarr"))
        ('instances', 'semantic')
    """
    from microprep.predict.write import PREDICTION_KEY

    if pred.suffix.lower() == ".json" and not pred.is_dir():
        return "instances"
    try:
        data = json.loads((pred / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "semantic"
    attributes = data.get("attributes") if isinstance(data, dict) else None
    attrs = attributes.get(PREDICTION_KEY) if isinstance(attributes, dict) else None
    if isinstance(attrs, dict) and attrs.get("kind") == "instances":
        return "instances"
    return "semantic"


def _instances_report(
    pred: Path, ground_truth: Path, split: str | None, splits_path: Path | None
) -> Any:
    try:
        coco = importlib.import_module("microprep.evaluate.coco")
    except ImportError as exc:
        raise UsageError(f"instance evaluation is not available: {exc}") from exc
    kwargs: dict[str, Any] = {"split": split}
    if splits_path is not None:
        kwargs["splits"] = splits_path
    return coco.evaluate_instances(pred, ground_truth, **kwargs)


@click.command("evaluate")
@click.argument("pred", type=click.Path(exists=True, path_type=Path))
@click.argument("ground_truth", type=click.Path(exists=True, path_type=Path))
@split_options("Evaluate only", store="GROUND_TRUTH")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON to this file (atomically).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the scores to this PNG: confusion matrix and per-class bars (class maps), "
    "precision-recall curves (instances).",
)
@click.option(
    "--no-background",
    is_flag=True,
    help="Leave class 0 out of the macro and micro averages (semantic).",
)
@click.option(
    "--ignore-index",
    type=click.IntRange(min=0),
    help="Ground truth value of pixels that are not annotated, left out (semantic; default: "
    "the store's ignore_index; give 255 for the PNGs of prep convert --to masks).",
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="auto",
    show_default=True,
    help="semantic (class maps) or instances (COCO); auto: from PRED.",
)
def evaluate_command(
    pred: Path,
    ground_truth: Path,
    split: str | None,
    splits_path: Path | None,
    json_path: Path | None,
    plot_path: Path | None,
    no_background: bool,
    kind: str,
    ignore_index: int | None,
) -> None:
    """Score the predictions PRED against GROUND_TRUTH.

    Semantic: PRED is a prediction store (PRED.zarr), a dataset store or a folder of
    class-index PNG/TIFF files; GROUND_TRUTH a dataset store or such a folder. Images are
    matched by name without extension. Prints per-class IoU, F1, precision and recall with
    macro and micro averages. Instances (a .json file or an instance prediction store): COCO
    metrics.

    \b
    Examples:
      prep evaluate pred.zarr dataset.zarr --split val --json scores.json --plot scores.png
      prep evaluate pred_masks/ gt_masks/ --no-background
    """
    guard_outputs("json_path", "plot_path")
    from microprep.evaluate.report import write_json

    chosen = detect_kind(pred) if kind == "auto" else kind
    if chosen == "instances":
        if no_background:
            raise UsageError("--no-background applies to semantic evaluation only")
        report: Any = _instances_report(pred, ground_truth, split, splits_path)
    else:
        from microprep.evaluate.semantic import evaluate_semantic

        report = evaluate_semantic(
            pred,
            ground_truth,
            include_background=not no_background,
            split=split,
            splits_path=splits_path,
            ignore_index=ignore_index,
        )
    click.echo(report.table())
    if json_path is not None:
        write_json(report.as_dict(), json_path)
        click.echo(f"  report -> {json_path}")
    if plot_path is not None:
        from microprep.evaluate.plots import draw_report

        draw_report(report, plot_path)
        click.echo(f"  picture -> {plot_path}")
