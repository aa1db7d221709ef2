"""``prep split DATASET --val 0.15 --test 0.15 --by image|volume|region --seed S [--out F]``."""

from __future__ import annotations

from pathlib import Path

import click

from microprep.splits import BY_CHOICES


@click.command("split")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--val",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.15,
    show_default=True,
    help="Fraction for validation.",
)
@click.option(
    "--test",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.15,
    show_default=True,
    help="Fraction for testing.",
)
@click.option(
    "--by",
    type=click.Choice(BY_CHOICES),
    default="image",
    show_default=True,
    help="Whole images / volumes, or disjoint blocks (regions) of every node.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same splits.")
@click.option(
    "--axis",
    "region_axis",
    type=click.Choice(("z", "y", "x")),
    default="z",
    show_default=True,
    help="--by region: axis of volumes to cut (images are cut along y for z).",
)
@click.option(
    "--gap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="--by region: pixels left out between neighbouring blocks.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Splits file (default: beside the store, e.g. dataset.zarr.splits.json).",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
def split_command(
    dataset: Path,
    val: float,
    test: float,
    by: str,
    seed: int,
    region_axis: str,
    gap: int,
    out: Path | None,
    quiet: bool,
) -> None:
    """Split a DATASET store into train, val and test before cropping.

    Whole nodes (--by image / volume) or disjoint blocks of each node (--by region) go to one
    split each; overlapping splits are refused. The store is not changed: the splits go to a
    JSON file beside it.

    \b
    Examples:
      prep split dataset.zarr --val 0.15 --test 0.15 --seed 1
      prep split volume.zarr --by region --gap 16 --out volume.splits.json
    """
    from microprep.splits import default_splits_path, make_splits, save_splits, summarize

    splits = make_splits(
        dataset, val=val, test=test, by=by, seed=seed, region_axis=region_axis, gap=gap
    )
    path = save_splits(splits, out if out is not None else default_splits_path(dataset))
    if quiet:
        return
    total = sum(pixels for _, _, pixels in summarize(splits)) or 1
    click.echo(f"{dataset} split by {by} (seed {seed}):")
    for name, count, pixels in summarize(splits):
        click.echo(f"  {name:<5} {count:>5} regions {pixels:>14,} px  {100 * pixels / total:6.2f}%")
    click.echo(f"  splits -> {path}")
