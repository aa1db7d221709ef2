"""The ``prep`` command group. Commands parse options, call the library and report.

A :class:`~microprep.errors.PrepError` becomes one line on stderr and exit code 2; ``-v`` adds
the traceback. So does an exception raised in a ``DataLoader`` worker, whose message PyTorch
fills with the worker's traceback (:mod:`microprep.cli.worker_errors`).
Logging is configured here and nowhere else.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence

import click

from microprep import __version__
from microprep.cli.augment import augment_command
from microprep.cli.convert import convert_command
from microprep.cli.crop import crop_command
from microprep.cli.evaluate import evaluate_command
from microprep.cli.export import export_command
from microprep.cli.export_annotations import export_annotations_command
from microprep.cli.info import info_command
from microprep.cli.predict import predict_command
from microprep.cli.preview import preview_command
from microprep.cli.rank import rank_command
from microprep.cli.split import split_command
from microprep.cli.train import train_command
from microprep.cli.validate import validate_command
from microprep.cli.worker_errors import worker_failure
from microprep.errors import PrepError, SystemRefusedError, system_refusal

EXIT_ERROR = 2
#: An unexpected exception: a bug in microprep (or a library it calls), not bad input.
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

_state = {"verbose": 0}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="prep")
@click.option("-v", "--verbose", count=True, help="More output; -v also shows tracebacks.")
def cli(verbose: int) -> None:
    """microprep: turn CVAT, VIA and Labelbox annotations into segmentation training data."""
    _state["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    _progress_lines()


def _progress_lines() -> None:
    """Progress lines (one per epoch, one per N predicted inputs) go to stderr as plain lines,
    shown without ``-v`` so that a run whose output is redirected is never silent for minutes;
    a command's ``-q`` keeps its library calls from emitting them."""
    progress = logging.getLogger("microprep.progress")
    for handler in list(progress.handlers):
        progress.removeHandler(handler)
    handler = logging.StreamHandler()  # stderr, looked up now (test runners swap it)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    progress.propagate = False


cli.add_command(convert_command)
cli.add_command(augment_command)
cli.add_command(crop_command)
cli.add_command(validate_command)
cli.add_command(info_command)
cli.add_command(split_command)
cli.add_command(preview_command)
cli.add_command(train_command)
cli.add_command(predict_command)
cli.add_command(evaluate_command)
cli.add_command(export_annotations_command)
cli.add_command(export_command)
cli.add_command(rank_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prep`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except PrepError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        failure = worker_failure(exc)  # raised in a data-loading worker: its message, one line
        shown = exc if failure is None else f"{failure.message} ({failure.where})"
        click.echo(f"prep: error: {shown}", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("prep: interrupted; no output was changed", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line (the traceback with -v); outputs are atomic
        if _state["verbose"]:
            traceback.print_exc()
        if (refused := system_refusal(exc)) is not None:  # the system's limits, not a bug
            click.echo(f"prep: error: {SystemRefusedError.from_os_error(refused)}", err=True)
            return EXIT_ERROR
        if (failure := worker_failure(exc)) is not None:  # the data pipeline failed: one line
            click.echo(
                f"prep: error: data loading failed: {failure}"
                + ("" if _state["verbose"] else " (run with -v for the traceback)"),
                err=True,
            )
            return EXIT_ERROR
        click.echo(
            f"prep: internal error: {type(exc).__name__}: {exc}\n"
            "prep: no output was changed; run with -v for the traceback and please report it",
            err=True,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
