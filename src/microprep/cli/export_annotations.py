"""``prep export-annotations PRED.zarr --to cvat|via|labelbox|coco --out FILE [--like EXPORT]``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from microprep.cli.options import guard_outputs, reader_options
from microprep.readers.options import ReadOptions
from microprep.writers.export import TARGETS, ExportOptions, export_annotations


@click.command("export-annotations")
@click.argument("pred", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(TARGETS), help="Format to write.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="File to write.")
@click.option(
    "--like",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The original export: labels, image ids, names, sizes and subsets come from it.",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of the image files, for the image sizes of a --like VIA export.",
)
@reader_options
@click.option(
    "--as",
    "as_shape",
    type=click.Choice(["polygon", "mask"]),
    default="polygon",
    show_default=True,
    help="Pixel-edge polygons, or CVAT masks (exact by construction; cvat only).",
)
@click.option(
    "--simplify",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="PX",
    help="Simplify polygons within PX pixels (fewer vertices; the changed pixels are reported).",
)
@click.option(
    "--score-threshold",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Leave out instances scored lower.",
)
@click.option(
    "--coco-kind",
    type=click.Choice(["results", "instances"]),
    default="results",
    show_default=True,
    help="COCO results list, or a full instances file.",
)
@click.option(
    "--only",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="RANKING.json",
    help="Write only the images of this ranking (prep rank --json), e.g. the top 10.",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
def export_annotations_command(
    pred: Path,
    to: str,
    out: Path,
    like: Path | None,
    images: Path | None,
    fmt: str | None,
    read: ReadOptions,
    as_shape: str,
    simplify: float,
    score_threshold: float,
    coco_kind: str,
    only: Path | None,
    quiet: bool,
) -> None:
    """Write the predictions in PRED.zarr as pre-annotations for CVAT, VIA or Labelbox, or COCO."""
    guard_outputs("out")
    names: tuple[str, ...] | None = None
    if only is not None:
        from microprep.predict.rank import read_ranking

        names = tuple(read_ranking(only))
    options = ExportOptions(
        to=to,  # type: ignore[arg-type]  # click.Choice(TARGETS)
        as_shape=as_shape,  # type: ignore[arg-type]  # click.Choice
        simplify=simplify,
        score_threshold=score_threshold,
        coco_kind=coco_kind,  # type: ignore[arg-type]  # click.Choice
        like=like,
        like_format=fmt,
        read_options=replace(read, images=images),
        label_attribute=read.label_attribute,
        only=names,
        only_from=str(only),
    )
    summary = export_annotations(pred, out, options)
    if not quiet:
        line = f"wrote {summary.shapes} shapes of {summary.images} images to {summary.out}"
        if simplify > 0 and summary.kind == "semantic":
            line += f"; --simplify {simplify:g} changed {summary.changed_pixels} pixels"
        click.echo(line)
