"""``prep split DATASET [--val F --test F] --by image|volume|region|subset [--subset-map M]``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from microprep.cli.options import guard_outputs
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
    type=click.Choice((*BY_CHOICES, "subset")),
    default="image",
    show_default=True,
    help="Whole images / volumes, disjoint blocks (regions) of every node, or the "
    "annotators' own subsets (--val/--test unused).",
)
@click.option(
    "--subset-map",
    metavar="SUBSET=SPLIT,...",
    help="--by subset: the split of subsets not named train/training, val/validation/valid, "
    "test/testing (case-insensitive), e.g. Holdout=test,Dev=val.",
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
@click.option(
    "--update",
    "update",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="OLD.splits.json",
    help="Keep every node of this earlier splits file in its split and assign only new nodes "
    "(its --by, --seed, fractions, --axis and --gap are used); region splits of a grown node "
    "keep their old regions and get new ones for the new extent; reports what was added.",
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
    subset_map: str | None,
    out: Path | None,
    update: Path | None,
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
      prep split dataset.zarr --by subset --subset-map Holdout=test
      prep split dataset.zarr --update dataset.zarr.splits.json
    """
    guard_outputs("out")
    from microprep.splits import (
        SplitError,
        default_splits_path,
        make_splits,
        save_splits,
        summarize,
    )
    from microprep.splits.subsets import parse_subset_map

    if subset_map is not None and by != "subset":
        raise SplitError("--subset-map goes with --by subset")
    if update is not None:
        _update(dataset, update, out, quiet=quiet)
        return
    splits = make_splits(
        dataset,
        val=val,
        test=test,
        by=by,
        seed=seed,
        region_axis=region_axis,
        gap=gap,
        subset_map=parse_subset_map(subset_map),
    )
    path = save_splits(splits, out if out is not None else default_splits_path(dataset))
    if quiet:
        return
    total = sum(pixels for _, _, pixels in summarize(splits)) or 1
    click.echo(f"{dataset} split by {by}" + (":" if by == "subset" else f" (seed {seed}):"))
    for name, count, pixels in summarize(splits):
        click.echo(f"  {name:<5} {count:>5} regions {pixels:>14,} px  {100 * pixels / total:6.2f}%")
    click.echo(f"  splits -> {path}")


def _update(dataset: Path, old_path: Path, out: Path | None, *, quiet: bool) -> None:
    """``--update``: keep the old assignments, add new nodes, drop removed ones, report."""
    from microprep.splits import default_splits_path, load_splits, node_shapes, save_splits
    from microprep.splits.update import update_splits
    from microprep.store.read import open_dataset

    old = load_splits(old_path)
    with open_dataset(dataset) as opened:
        shapes = node_shapes(opened)
    splits, change = update_splits(old, shapes)
    splits = replace(splits, dataset=str(dataset))
    path = save_splits(splits, out if out is not None else default_splits_path(dataset))
    if quiet:
        return
    click.echo(
        f"{dataset}: updated {old_path} (by {old.by}, seed {old.seed}): {change.kept} nodes "
        f"kept their splits, {len(change.added)} added, {len(change.removed)} removed"
        + (f", {len(change.grown)} grown" if change.grown else "")
    )
    for node, split in change.added:
        click.echo(f"  added   {node} -> {split}")
    for growth in change.grown:
        click.echo(f"  grown   {growth.node} {list(growth.old)} -> {list(growth.new)} px:")
        for split, region in growth.regions:
            click.echo(f"    {split:<5} {region}")
    for node in change.removed:
        click.echo(f"  removed {node}")
    click.echo(f"  splits -> {path}")
