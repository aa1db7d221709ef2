"""``prep convert EXPORT --out OUT [--to zarr,masks,onehot,coco,yolo,...]``.

The output kinds come from :mod:`microprep.registry` (built-ins and plugins alike).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from microprep.cli.class_options import class_options
from microprep.cli.options import (
    force_option,
    guard_outputs,
    kinds_option,
    max_memory_option,
    reader_options,
)
from microprep.cli.report import print_convert_summary

if TYPE_CHECKING:
    from microprep.classes import ClassOptions
    from microprep.readers.options import ReadOptions


def _sink_kinds() -> list[Any]:
    from microprep.registry import sink_kinds

    return sink_kinds()


class _ConvertCommand(click.Command):
    """Lists the output kinds of the registry (plugins included) at the end of ``--help``."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from microprep.registry import broken, reader_kinds, sink_kinds

        super().format_epilog(ctx, formatter)
        with formatter.section("Output kinds (--to)"):
            formatter.write_dl([(kind.name, kind.description) for kind in sink_kinds()])
        with formatter.section("Formats (--format; detected when left out)"):
            formatter.write_dl([(kind.name, kind.description) for kind in reader_kinds()])
        if failed := broken():
            with formatter.section("Plugins that failed to load"):
                formatter.write_dl(sorted(failed.items()))


@click.command("convert", cls=_ConvertCommand)
@click.argument("export", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Output: the store (DATASET.zarr) for --to zarr, else a folder of the exports.",
)
@click.option(
    "--to",
    "to",
    default="zarr",
    show_default=True,
    callback=kinds_option(_sink_kinds),
    help="Comma list of output kinds (listed below).",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of the image files (by their names in the export); stores their pixels "
    "(default for CVAT exports: the images/ folder beside the export or in its archive).",
)
@reader_options
@click.option(
    "--volume",
    is_flag=True,
    help="Stack all images (the frames of a track export) into one (Z, H, W) volume.",
)
@click.option(
    "--skip-missing", is_flag=True, help="Leave out images whose file is missing, and report them."
)
@click.option(
    "--line-width",
    type=click.FloatRange(min=0, min_open=True),
    default=3.0,
    show_default=True,
    help="Width of polylines in pixels.",
)
@click.option(
    "--point-radius",
    type=click.FloatRange(min=0, min_open=True),
    default=3.0,
    show_default=True,
    help="Radius of points in pixels.",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Apply the documented repairs (see prep validate) instead of refusing such errors.",
)
@click.option(
    "--pixel-size",
    help="Size of one pixel with its unit (0.5nm, 1.2um): axis units of ome-zarr, nnunet spacing.",
)
@max_memory_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@class_options
@force_option
def convert_command(
    export: Path,
    out: Path,
    to: tuple[str, ...],
    images: Path | None,
    fmt: str | None,
    read: ReadOptions,
    volume: bool,
    skip_missing: bool,
    line_width: float,
    point_radius: float,
    repair: bool,
    pixel_size: str | None,
    max_memory: int | None,
    quiet: bool,
    classes: ClassOptions,
    force: bool,
) -> None:
    """Convert an annotation EXPORT into class maps, one-hot masks, boxes and instance masks.

    EXPORT is an export file, or a CVAT export archive (.zip, read without extracting it).

    \b
    Examples:
      prep convert annotations.xml --images micrographs --out dataset.zarr
      prep convert task_export.zip --out dataset.zarr
      prep convert annotations.xml --to masks,coco,yolo --out exports/
      prep convert annotations.xml --images imgs --to ome-zarr --pixel-size 0.5nm -o ome/
      prep convert stack.xml --images slices --volume --out volume.zarr
      prep convert export.ndjson --classes classes.txt --map Void=bubble --ignore unsure -o d.zarr
    """
    guard_outputs("out", force=force)
    from microprep.conversion import ConvertOptions, convert
    from microprep.exports.omezarr import parse_pixel_size
    from microprep.targets import RasterOptions

    options = ConvertOptions(
        to=to,
        images=images,
        volume=volume,
        skip_missing=skip_missing,
        raster=RasterOptions(line_width=line_width, point_radius=point_radius),
        format=fmt,
        progress=not quiet,
        repair=repair,
        read=replace(read, images=images, classes=classes.classes),
        classes=classes,
        pixel_size=parse_pixel_size(pixel_size) if pixel_size else None,
        max_memory=max_memory,
    )
    summary = convert(export, out, options)
    if not quiet:
        print_convert_summary(summary)
