"""``prep export DATASET --to ome-zarr,nnunet,cellpose,stardist,... --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from microprep.cli.options import force_option, guard_outputs, kinds_option
from microprep.exports.from_store import export_kinds


@click.command("export")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--to",
    "to",
    required=True,
    callback=kinds_option(export_kinds),
    help="Comma list of outputs: ome-zarr, nnunet, cellpose, stardist, masks, onehot, coco, "
    "yolo (and any a plugin adds).",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (replaced only by a complete one).",
)
@click.option(
    "--splits",
    "splits_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Splits file of prep split (default: DATASET.splits.json beside the store, if any).",
)
@click.option("--pixel-size", help="Size of one pixel with its unit (0.5nm, 1.2um).")
@click.option(
    "--predictions",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A prediction store of the same nodes (prep predict): adds labels/predicted to the "
    "ome-zarr images.",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
@force_option
def export_command(
    dataset: Path,
    to: tuple[str, ...],
    out: Path,
    splits_path: Path | None,
    pixel_size: str | None,
    predictions: Path | None,
    quiet: bool,
    force: bool,
) -> None:
    """Export a store (converted or augmented; not a crops store) for other tools and trainers.

    \b
    Examples:
      prep export dataset.zarr --to nnunet --out nnUNet_raw/Dataset001_pores
      prep export AUG.zarr --to cellpose,stardist --out trainsets/
      prep export dataset.zarr --to ome-zarr --predictions pred.zarr --pixel-size 2nm -o ome/
    """
    guard_outputs("out", force=force)
    from microprep.exports.from_store import export_store
    from microprep.exports.omezarr import parse_pixel_size

    summary = export_store(
        dataset,
        out,
        to,
        splits=splits_path,
        pixel_size=parse_pixel_size(pixel_size) if pixel_size else None,
        predictions=predictions,
    )
    if not quiet:
        splits = ", ".join(f"{n} {k}" for k, n in summary.splits.items()) or "no splits"
        click.echo(
            f"exported {summary.nodes} node(s) ({splits}) as {', '.join(summary.kinds)} "
            f"-> {summary.out}"
        )
