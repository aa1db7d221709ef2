"""``prep crop DATASET --window 256 --stride 128 --out CROPS.zarr``."""

from __future__ import annotations

from pathlib import Path

import click

from microprep.cli.options import force_option, guard_outputs, parse_ints, split_options


@click.command("crop")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="CROPS.zarr")
@click.option(
    "--window", required=True, callback=parse_ints, help="Window size: 256, or 64,64,64 per axis."
)
@click.option("--stride", callback=parse_ints, help="Step between windows (default: the window).")
@click.option(
    "--edge",
    type=click.Choice(["flush", "pad"]),
    default="flush",
    show_default=True,
    help="flush: the last window ends at the edge; pad: it reaches past it (padded).",
)
@click.option(
    "--pad",
    type=click.Choice(["constant", "reflect"]),
    default="constant",
    show_default=True,
    help="How pixels outside the image are filled (images smaller than the window, --edge pad).",
)
@click.option(
    "--min-visible",
    type=click.FloatRange(0, 1),
    default=0.25,
    show_default=True,
    help="Drop objects with less than this fraction of their area inside a crop.",
)
@click.option(
    "--min-area",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Drop objects with fewer pixels inside a crop.",
)
@click.option(
    "--min-foreground",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Keep only windows with at least this fraction of non-background pixels.",
)
@click.option("--node", "nodes", multiple=True, help="Crop only this node (repeatable).")
@split_options("Crop only inside")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Read crops on a dask LocalCluster of N worker processes (0: in this process).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@force_option
def crop_command(
    dataset: Path,
    out: Path,
    window: tuple[int, ...],
    stride: tuple[int, ...] | None,
    edge: str,
    pad: str,
    min_visible: float,
    min_area: int,
    min_foreground: float,
    nodes: tuple[str, ...],
    split: str | None,
    splits_path: Path | None,
    workers: int,
    quiet: bool,
    force: bool,
) -> None:
    """Cut a dataset store into fixed-size crops (2D tiles or 3D sub-volumes).

    Every pixel is covered; each crop records its source node and origin. With --split, only
    the regions of that split are cropped, and no crop reads a pixel outside them.

    \b
    Examples:
      prep crop dataset.zarr --window 256 --stride 128 --out crops.zarr
      prep crop volume.zarr --window 64,64,64 --stride 32,32,32 --out cubes.zarr
      prep crop dataset.zarr --window 256 --split train --out train-crops.zarr
    """
    guard_outputs("out", force=force)
    from microprep.crops.index import CropIndex, CropOptions
    from microprep.crops.write import node_samples, write_crops
    from microprep.errors import StoreError
    from microprep.store.read import open_dataset

    options = CropOptions(
        window=window[0] if len(window) == 1 else window,
        stride=None if stride is None else (stride[0] if len(stride) == 1 else stride),
        edge=edge,
        pad=pad,
        min_visible=min_visible,
        min_area=min_area,
        min_foreground=min_foreground,
    )
    with open_dataset(dataset) as ds:
        try:
            index = CropIndex(
                ds, options, nodes=list(nodes) or None, split=split, splits=splits_path
            )
        except (KeyError, IndexError) as exc:
            raise StoreError(f"{dataset}: {exc.args[0] if exc.args else exc}") from exc
        if workers:
            from microprep.cluster import local_cluster
            from microprep.crops.scale import distributed_samples

            with local_cluster(workers) as client:
                summary = write_crops(
                    index,
                    out,
                    progress=not quiet,
                    samples=distributed_samples(client),
                    extra_attrs={"workers": workers},
                )
        else:
            summary = write_crops(index, out, progress=not quiet, samples=node_samples)
    if not quiet:
        click.echo(
            f"wrote {summary.crops} crops ({summary.objects} objects) from "
            f"{len(summary.per_node)} nodes to {out}"
        )
