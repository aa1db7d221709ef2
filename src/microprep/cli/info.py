"""``prep info DATASET [--verify] [--json FILE]``: what a dataset store holds; is it whole."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("info")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as JSON to this file (atomically).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="First read every chunk of the store and check it against its checksum; exit 2 "
    "listing each missing or damaged chunk.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def info_command(dataset: Path, json_path: Path | None, verify: bool, quiet: bool) -> None:
    """Summarise a dataset store: nodes, shapes, pixels and objects per class, splits.

    A missing or damaged chunk met on the way is an error (exit 2) naming node, array and
    chunk; --verify reads every chunk, not only the class maps.

    \b
    Examples:
      prep info dataset.zarr
      prep info dataset.zarr --verify
      prep info aug.zarr --json aug-info.json
    """
    from microprep.evaluate.report import write_json
    from microprep.store.info import store_info

    summary = store_info(dataset, progress=not quiet, verify=verify)
    click.echo(summary.table())
    if json_path is not None:
        write_json(summary.as_dict(), json_path)
        click.echo(f"  summary -> {json_path}")
