"""``prep convert EXPORT --out OUT [--to zarr,masks,onehot,coco,yolo]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from microprep.cli.class_options import class_options
from microprep.cli.options import force_option, guard_outputs, reader_options
from microprep.cli.report import print_convert_summary

if TYPE_CHECKING:
    from microprep.classes import ClassOptions

KINDS = "zarr,masks,onehot,coco,yolo"


def _kinds(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS.split(",")]
    if unknown or not kinds:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing'}; choose from {KINDS}")
    return kinds


@click.command("convert")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
    callback=_kinds,
    help=f"Comma list of outputs: {KINDS}.",
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@class_options
@force_option
def convert_command(
    export: Path,
    out: Path,
    to: tuple[str, ...],
    images: Path | None,
    fmt: str | None,
    size: tuple[int, int] | None,
    label_attribute: str | None,
    label: str | None,
    masks: Path | None,
    volume: bool,
    skip_missing: bool,
    line_width: float,
    point_radius: float,
    repair: bool,
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
      prep convert stack.xml --images slices --volume --out volume.zarr
      prep convert export.ndjson --classes classes.txt --map Void=bubble --ignore unsure -o d.zarr
    """
    guard_outputs("out", force=force)
    from microprep.conversion import ConvertOptions, convert
    from microprep.readers import ReadOptions
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
        read=ReadOptions(
            images=images, size=size, label_attribute=label_attribute, masks=masks, label=label
        ),
        classes=classes,
    )
    summary = convert(export, out, options)
    if not quiet:
        print_convert_summary(summary)
