"""``prep info DATASET [--json FILE]``: what a dataset store holds."""

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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def info_command(dataset: Path, json_path: Path | None, quiet: bool) -> None:
    """Summarise a dataset store: nodes, shapes, pixels and objects per class, splits.

    \b
    Examples:
      prep info dataset.zarr
      prep info aug.zarr --json aug-info.json
    """
    from microprep.evaluate.report import write_json
    from microprep.store.info import store_info

    summary = store_info(dataset, progress=not quiet)
    click.echo(summary.table())
    if json_path is not None:
        write_json(summary.as_dict(), json_path)
        click.echo(f"  summary -> {json_path}")
