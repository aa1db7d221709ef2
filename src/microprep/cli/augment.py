"""``prep augment DATASET --noise ... --geometry ... --copies N --seed S --out AUG.zarr``."""

from __future__ import annotations

from pathlib import Path

import click

from microprep.cli.options import force_option, guard_outputs, split_options


@click.command("augment")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="The new store (AUG.zarr)."
)
@click.option(
    "--noise",
    default="",
    help="Noise kinds in order, image only, e.g. 'poisson:dose=50,gaussian:sigma=0.05'. Kinds: "
    "gaussian, poisson, salt_and_pepper, jitter, background, contrast, blur (docs/augment.md).",
)
@click.option(
    "--geometry",
    default="",
    help="Comma list of flip, rot90, rotate, zoom, field; applied to image and targets.",
)
@click.option(
    "--rotate-range",
    nargs=2,
    type=float,
    default=(-180.0, 180.0),
    show_default=True,
    help="Rotation angles in degrees (uniform).",
)
@click.option(
    "--zoom-range",
    nargs=2,
    type=click.FloatRange(min=0, min_open=True),
    default=(0.8, 1.25),
    show_default=True,
    help="Zoom factors (log-uniform; > 1 enlarges).",
)
@click.option(
    "--copies", type=click.IntRange(min=1), default=1, show_default=True, help="Copies per node."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the run.")
@click.option(
    "--in-plane",
    is_flag=True,
    help="Volumes: keep z in place (16 symmetries) instead of the 48 of the cube.",
)
@click.option("--include-original", is_flag=True, help="Also write every node unchanged.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Run on a dask.distributed LocalCluster of N worker processes (same result).",
)
@split_options("Augment only")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@force_option
def augment_command(
    dataset: Path,
    out: Path,
    noise: str,
    geometry: str,
    rotate_range: tuple[float, float],
    zoom_range: tuple[float, float],
    copies: int,
    seed: int,
    in_plane: bool,
    include_original: bool,
    workers: int | None,
    split: str | None,
    splits_path: Path | None,
    quiet: bool,
    force: bool,
) -> None:
    """Write augmented copies of every image (or volume) of DATASET into a new store.

    Noise touches the image only; geometry moves the image, class map and instance masks
    together, and boxes are recomputed. Every copy is reproducible from --seed. With --split,
    only that split's nodes (or regions of a volume, each as a node of its own) are augmented.

    \b
    Examples:
      prep augment dataset.zarr --noise poisson:dose=30 --geometry flip,rot90 --out aug.zarr
      prep augment dataset.zarr --noise gaussian:sigma=0.03,blur:sigma=1 \\
          --geometry rotate,zoom --copies 4 --seed 7 --workers 2 --out aug.zarr
      prep augment dataset.zarr --noise poisson --split train --copies 3 --out train-aug.zarr
    """
    guard_outputs("out", force=force)
    from microprep.augment import AugmentConfig, parse_geometry, parse_noise
    from microprep.augment.write import augment_store

    config = AugmentConfig(
        noise=parse_noise(noise),
        geometry=parse_geometry(geometry),
        rotate_range=(float(rotate_range[0]), float(rotate_range[1])),
        zoom_range=(float(zoom_range[0]), float(zoom_range[1])),
        cube=not in_plane,
    )
    summary = augment_store(
        dataset,
        out,
        config,
        copies=copies,
        seed=seed,
        include_original=include_original,
        workers=workers,
        progress=not quiet,
        split=split,
        splits=splits_path,
    )
    if not quiet:
        click.echo(
            f"{summary.source} -> {summary.out}: {len(summary.names)} nodes "
            f"({summary.nodes} source {'regions' if split else 'nodes'} x {summary.copies} copies"
            f"{' + originals' if include_original else ''}, seed {seed})"
        )
