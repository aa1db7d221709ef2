"""``prep rank PRED.zarr [--top N] [--json FILE] [--balance]``: what to label next."""

from __future__ import annotations

import json
from pathlib import Path

import click

from microprep.cli.options import guard_outputs


@click.command("rank")
@click.argument("pred", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--top", type=click.IntRange(min=1), help="List only the N best (default: all).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the ranking to FILE (for prep export-annotations --only).",
)
@click.option(
    "--balance",
    is_flag=True,
    help="Favour images whose predicted classes are rare in the set (score x (1 + rarity)).",
)
@click.option("--quiet", "-q", is_flag=True, help="No table.")
def rank_command(
    pred: Path, top: int | None, json_path: Path | None, balance: bool, quiet: bool
) -> None:
    """List the inputs of PRED.zarr most worth labelling next (most uncertain first).

    PRED.zarr must come from `prep predict --uncertainty`.

    \b
    Examples:
      prep rank pred.zarr --top 10 --json next.json
      prep export-annotations pred.zarr --to cvat --only next.json --out next.xml
    """
    guard_outputs("json_path")
    from microprep.outputs import write_file_atomic
    from microprep.predict.rank import rank_prediction, ranking_json

    ranked = rank_prediction(pred, balance=balance)
    if top is not None:
        ranked = ranked[:top]
    if json_path is not None:
        data = ranking_json(ranked, prediction=pred, balance=balance)
        write_file_atomic(
            json_path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        )
    if quiet:
        return
    click.echo(f"{'rank':>4}  {'score':>7}  {'uncert.':>7}  image  (predicted classes)")
    for index, r in enumerate(ranked, start=1):
        shown = ", ".join(r.classes) or "-"
        click.echo(f"{index:>4}  {r.score:7.4f}  {r.uncertainty_mean:7.4f}  {r.name}  ({shown})")
    if json_path is not None:
        click.echo(f"ranking -> {json_path}")
