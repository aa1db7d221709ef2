"""Put pictures together: a legend strip under a picture, captioned grids, volume montages.

Example:
    >>> a = Image.new("RGB", (20, 10)); b = Image.new("RGB", (20, 10))
    >>> grid(([a, b]), captions=["a", "b"], columns=2).size[0] >= 40
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from microprep.preview.overlay import class_color, font, render_overlay
from microprep.targets.types import Instances, Raster

#: Background of legends, captions and padding.
PAPER = (250, 250, 250)
#: Text colour.
INK = (20, 20, 20)
#: Pictures smaller than this (longest side, px) are enlarged by a whole factor for viewing.
MIN_SIDE = 256
#: Slices shown per volume by default.
DEFAULT_SLICES = 4


def enlarge(picture: Image.Image, *, min_side: int = MIN_SIDE) -> Image.Image:
    """Scale a small picture up by the smallest whole factor that reaches ``min_side``
    (nearest neighbour: every pixel stays a crisp square). Larger pictures are unchanged."""
    longest = max(picture.size)
    if longest >= min_side or longest == 0:
        return picture
    factor = -(-min_side // longest)
    return picture.resize(
        (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
    )


def legend_strip(
    colors: Sequence[Sequence[int]], names: Sequence[str], *, width: int, size: int = 12
) -> Image.Image:
    """A strip with a colour swatch and the name of every class but background (index 0),
    wrapped onto as many rows as ``width`` (px) needs."""
    text_font = font(size)
    pad, swatch = 6, size
    entries = [(i, name) for i, name in enumerate(names) if i > 0]
    if not entries:
        entries = [(0, "(no classes)")]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [
        swatch + 4 + int(measure.textlength(f"{i} {name}", font=text_font)) + 2 * pad
        for i, name in entries
    ]
    rows: list[list[int]] = [[]]
    used = pad
    for k, w in enumerate(widths):
        if rows[-1] and used + w > width:
            rows.append([])
            used = pad
        rows[-1].append(k)
        used += w
    row_height = size + 2 * pad
    strip = Image.new("RGB", (width, row_height * len(rows)), PAPER)
    draw = ImageDraw.Draw(strip)
    for row_index, row in enumerate(rows):
        x, y = pad, row_index * row_height + pad
        for k in row:
            index, name = entries[k]
            draw.rectangle(
                (x, y, x + swatch - 1, y + swatch - 1),
                fill=class_color(colors, index),
                outline=INK,
            )
            draw.text((x + swatch + 4, y - 1), f"{index} {name}", fill=INK, font=text_font)
            x += widths[k]
    return strip


def caption(picture: Image.Image, text: str, *, size: int = 12) -> Image.Image:
    """``picture`` with a line of text above it."""
    height = size + 8
    text_font = font(size)
    width = max(picture.width, int(ImageDraw.Draw(picture).textlength(text, font=text_font)) + 8)
    out = Image.new("RGB", (width, picture.height + height), PAPER)
    ImageDraw.Draw(out).text((4, 3), text, fill=INK, font=text_font)
    out.paste(picture, (0, height))
    return out


def with_legend(
    picture: Image.Image, colors: Sequence[Sequence[int]], names: Sequence[str]
) -> Image.Image:
    """``picture`` with a legend strip of every class under it (same width or wider)."""
    strip = legend_strip(colors, names, width=max(picture.width, 160))
    out = Image.new("RGB", (max(picture.width, strip.width), picture.height + strip.height), PAPER)
    out.paste(picture, (0, 0))
    out.paste(strip, (0, picture.height))
    return out


def grid(
    pictures: Sequence[Image.Image],
    *,
    captions: Sequence[str] | None = None,
    columns: int | None = None,
    pad: int = 6,
) -> Image.Image:
    """Pictures in a grid (row by row), each in a cell as large as the largest, with captions.

    ``columns`` defaults to about the square root of the count.
    """
    if not pictures:
        raise ValueError("grid needs at least one picture")
    if captions is not None:
        pictures = [caption(p, c) for p, c in zip(pictures, captions, strict=True)]
    columns = columns or int(np.ceil(np.sqrt(len(pictures))))
    rows = -(-len(pictures) // columns)
    cell_w = max(p.width for p in pictures)
    cell_h = max(p.height for p in pictures)
    out = Image.new("RGB", (columns * (cell_w + pad) + pad, rows * (cell_h + pad) + pad), PAPER)
    for k, picture in enumerate(pictures):
        row, col = divmod(k, columns)
        out.paste(picture, (pad + col * (cell_w + pad), pad + row * (cell_h + pad)))
    return out


def slice_indices(depth: int, count: int = DEFAULT_SLICES) -> list[int]:
    """``count`` evenly spaced slice indices of ``depth`` slices, first and last included.

    Example:
        >>> slice_indices(32, 4), slice_indices(2, 4)
        ([0, 10, 21, 31], [0, 1])
    """
    if depth <= 0:
        return []
    return sorted({round(float(v)) for v in np.linspace(0, depth - 1, max(1, count))})


def slice_instances(instances: Instances, z: int) -> Instances:
    """The objects of a volume that cross slice ``z``, as 2D objects of that slice.

    Each 2D box is the tight box of the object's pixels in the slice (``x_min, y_min, x_max,
    y_max``, exclusive max); objects without pixels in the slice are left out.
    """
    rasters: list[Raster] = []
    keep: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for i, raster in enumerate(instances.rasters):
        if not raster.mask.size:
            continue
        z0 = raster.origin[0]
        if not z0 <= z < z0 + raster.mask.shape[0]:
            continue
        plane = raster.mask[z - z0]
        if not plane.any():
            continue
        flat = Raster(raster.origin[1:], plane)
        (y0, y1), (x0, x1) = flat.bounds()
        rasters.append(flat)
        keep.append(i)
        boxes.append((float(x0), float(y0), float(x1), float(y1)))
    index = np.array(keep, np.int64)
    return Instances(
        shape=tuple(instances.shape[1:]),
        rasters=tuple(rasters),
        labels=instances.labels[index],
        boxes=np.array(boxes, np.float64).reshape(len(keep), 4),
        areas=np.array([r.area for r in rasters], np.int64),
        occluded=instances.occluded[index],
        groups=instances.groups[index],
        tracks=instances.tracks[index],
    )


def volume_montage(
    image: NDArray[Any] | None,
    labels: NDArray[np.integer[Any]] | None,
    instances: Instances | None,
    *,
    colors: Sequence[Sequence[int]],
    names: Sequence[str] | None = None,
    slices: int = DEFAULT_SLICES,
) -> Image.Image:
    """Overlays of a few evenly spaced slices of a volume, captioned ``z = k``, in a grid.

    ``image`` is ``(Z, H, W[, C])`` or None, ``labels`` ``(Z, H, W)``, ``instances`` 3D. All
    slices share one display range (percentiles over the whole volume), so brightness compares.
    """
    from microprep.preview.overlay import display_range

    source = labels if labels is not None else image
    if source is None:
        raise ValueError("volume_montage needs the image or the labels")
    depth = int(source.shape[0])
    value_range = display_range(image) if image is not None and image.dtype != np.uint8 else None
    pictures, captions = [], []
    for z in slice_indices(depth, slices):
        picture = render_overlay(
            None if image is None else image[z],
            None if labels is None else labels[z],
            None if instances is None else slice_instances(instances, z),
            colors=colors,
            names=names,
            value_range=value_range,
        )
        pictures.append(enlarge(picture))
        captions.append(f"z = {z} / {depth}")
    return grid(pictures, captions=captions, columns=min(len(pictures), 4))
