"""``prep preview DATASET|CROPS|AUG --out DIR [--max N] [--gallery]``."""

from __future__ import annotations

from pathlib import Path

import click

from microprep.cli.options import force_option, guard_outputs


@click.command("preview")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the PNGs (replaced as a whole when complete).",
)
@click.option("--max", "max_nodes", type=click.IntRange(min=1), help="Preview the first N nodes.")
@click.option("--gallery", is_flag=True, help="Also write gallery.png: one variant per noise kind.")
@click.option(
    "--slices",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Slices shown per volume.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the gallery noise.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@force_option
def preview_command(
    source: Path,
    out: Path,
    max_nodes: int | None,
    gallery: bool,
    slices: int,
    seed: int,
    quiet: bool,
    force: bool,
) -> None:
    """Draw PNG previews of a store: image, class map, instance outlines and boxes.

    SOURCE is a dataset or augmented store (one PNG per image, a montage of a few slices per
    volume) or a crops store (a grid of crops per source node), each with a legend of the
    classes; --gallery adds one picture of every noise kind applied to one image.

    \b
    Examples:
      prep preview dataset.zarr --out previews/
      prep preview dataset.zarr --out previews/ --max 5 --gallery
      prep preview crops.zarr --out crop-previews/
    """
    guard_outputs("out", force=force)
    from microprep.preview.write import write_previews

    summary = write_previews(
        source,
        out,
        max_nodes=max_nodes,
        gallery=gallery,
        slices=slices,
        seed=seed,
        progress=not quiet,
    )
    if not quiet:
        click.echo(
            f"{source}: {len(summary.files)} PNGs for {summary.shown} of {summary.total} nodes "
            f"-> {summary.out}"
        )
