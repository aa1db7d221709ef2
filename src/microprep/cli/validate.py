"""``prep validate EXPORT [--images DIR] [--json REPORT] [--strict] ...``.

Reads the export, validates it (:func:`microprep.validate.validate`), prints the findings table
and optionally writes the JSON report (atomically). Exit code: 0 clean, 1 warnings with
``--strict``, 2 errors (in the data, or a reader error handled by ``prep``'s main).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from microprep.cli.class_options import class_options
from microprep.cli.options import reader_options
from microprep.errors import UsageError

if TYPE_CHECKING:
    from microprep.classes import ClassOptions
    from microprep.readers.options import ReadOptions

logger = logging.getLogger(__name__)

_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically
    (:func:`microprep.outputs.write_file_atomic`: the file follows the umask)."""
    from microprep.outputs import write_file_atomic

    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_file_atomic(path, text.encode("utf-8"))


@click.command("validate")
@click.argument("export", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of the image files: checks that each exists and has the export's size "
    "(default for CVAT exports: the images/ folder beside the export or in its archive).",
)
@reader_options
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full report as JSON to this file.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings (and no errors).")
@click.option(
    "--iou",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Report pairs of objects whose IoU is above this.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Rows shown per finding code (0: all); the JSON report has them all.",
)
@click.pass_context
@class_options
def validate_command(
    ctx: click.Context,
    export: Path,
    images: Path | None,
    fmt: str | None,
    json_path: Path | None,
    strict: bool,
    iou: float,
    read: ReadOptions,
    max_rows: int,
    classes: ClassOptions,
) -> None:
    """Check an annotation EXPORT: geometry, labels, image files, overlaps.

    Exit code 0 when clean, 1 with --strict when there are warnings, 2 when there are errors.

    \b
    Examples:
      prep validate annotations.xml
      prep validate annotations.xml --images micrographs --json report.json --strict
      prep validate via.json --format via --size 512x512 --label-attribute class
    """
    from microprep.classes import apply_classes, images_without_region, region_warning
    from microprep.imagefiles import FolderImages, ImageSource, find_images
    from microprep.readers import read_annotations
    from microprep.validate import ValidateOptions, validate

    if json_path is not None and not json_path.parent.is_dir():
        raise UsageError(f"--json: the folder {json_path.parent} does not exist")
    start = time.perf_counter()
    annotations = read_annotations(
        export,
        format=fmt,
        on_warning=lambda message: logger.debug("reader: %s", message),
        options=replace(read, images=images, classes=classes.classes),
    )
    annotations = apply_classes(annotations, classes)
    source: ImageSource | None = FolderImages(images) if images is not None else None
    if source is None and annotations.format.startswith("cvat"):
        source = find_images(export)  # the images/ CVAT writes beside or into its export
    try:
        report = validate(annotations, ValidateOptions(images=source, iou_threshold=iou))
    finally:
        if source is not None:
            source.close()
    if json_path is not None:
        data = report.to_json()
        data["images_from"] = None if source is None else source.label
        write_json(json_path, data)
    click.echo(
        f"{export.name} ({report.format}): {len(report.images)} images, "
        f"{len(report.shapes)} shapes, checked in {time.perf_counter() - start:.2f} s"
    )
    click.echo(f"images from {source.label}" if source is not None else "no image files checked")
    click.echo(
        report.format_table(
            max_per_code=max_rows or None,
            style=lambda text, severity: click.style(text, fg=_COLOURS[severity]),
        )
    )
    no_region = region_warning(
        images_without_region(annotations, annotations.labels), annotations.labels
    )
    if no_region is not None:
        click.echo(f"warning: {no_region}", err=True)
    if json_path is not None:
        click.echo(f"report written to {json_path}")
    ctx.exit(report.exit_code(strict))
