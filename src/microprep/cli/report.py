"""Plain-text reports printed by the commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from microprep.conversion import ConvertSummary


def print_convert_summary(summary: ConvertSummary) -> None:
    """Print what ``convert`` did: counts, a table of classes, the outputs and the warnings."""
    skipped = f", {summary.skipped_objects} outside the images" if summary.skipped_objects else ""
    click.echo(
        f"{summary.source.name} ({summary.format}): {summary.images} images, "
        f"{summary.shapes} shapes -> {summary.objects} objects{skipped} "
        f"in {summary.seconds:.2f} s"
    )
    if summary.images_from is not None:
        click.echo(f"  images from {summary.images_from}")
    else:
        click.echo("  no image files: targets only (--images DIR stores the pixels)")
    total = sum(summary.pixels_per_class) or 1
    width = max(len(name) for name in summary.classes)
    click.echo(f"  {'class':>5}  {'name':<{width}}  {'pixels':>12}  {'share':>7}")
    for index, (name, pixels) in enumerate(
        zip(summary.classes, summary.pixels_per_class, strict=False)
    ):
        click.echo(f"  {index:>5}  {name:<{width}}  {pixels:>12,}  {100 * pixels / total:>6.2f}%")
    for kind, path in summary.outputs.items():
        click.echo(f"  {kind:<6} -> {path}")
    if summary.missing_images:
        shown = ", ".join(summary.missing_images[:5])
        more = " ..." if len(summary.missing_images) > 5 else ""
        click.echo(f"  skipped {len(summary.missing_images)} images without a file: {shown}{more}")
    for line in summary.changes:
        click.echo(f"  since the last conversion: {line}")
    for line in summary.repairs:
        click.echo(f"  repaired: {line}")
    for warning in summary.warnings:
        click.echo(f"  warning: {warning}", err=True)
