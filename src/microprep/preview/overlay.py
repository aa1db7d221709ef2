"""Draw one 2D image with its targets: class map, instance outlines and boxes.

Everything here takes plain arrays, so any layout (dataset store, crop store, a batch in a
notebook) can be previewed: ``render_overlay(image, labels, instances, colors=..., names=...)``.

Display scaling (:func:`to_display`): ``uint8`` pixels are shown as they are; any other dtype
(``uint16``, ``float32``, ...) is scaled to 8 bit linearly between its 1st and 99.5th
percentiles (robust to a few hot or dead pixels), clipped. No pixels (``image=None``, a store
converted without ``--images``) gives a neutral grey background (128).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from microprep.targets.types import Instances

Color = tuple[int, int, int]

#: Grey level of the background when there are no pixels.
NEUTRAL_GREY = 128
#: Percentiles used to scale non-8-bit images for display.
DISPLAY_PERCENTILES = (1.0, 99.5)
#: Opacity of the class colours over the image.
DEFAULT_ALPHA = 0.45


def display_range(image: NDArray[Any]) -> tuple[float, float]:
    """The ``(low, high)`` values mapped to 0 and 255 for a non-``uint8`` image.

    The 1st and 99.5th percentiles of the finite values; when those are equal, the min and max;
    when the image is constant, ``(v, v + 1)``.

    Example:
        >>> display_range(np.arange(1001, dtype=np.uint16))
        (10.0, 995.0)
    """
    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, DISPLAY_PERCENTILES))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    return low, high


def to_display(
    image: NDArray[Any] | None,
    shape: tuple[int, int],
    *,
    value_range: tuple[float, float] | None = None,
) -> NDArray[np.uint8]:
    """An image as ``(H, W, 3)`` uint8 RGB for display.

    Args:
        image: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (alpha dropped), any
            numeric dtype; None for a grey background.
        shape: ``(H, W)``, used when ``image`` is None.
        value_range: ``(low, high)`` mapped to 0 and 255 for non-``uint8`` images (default:
            :func:`display_range` of the image itself).

    Example:
        >>> to_display(None, (2, 3)).shape, int(to_display(None, (2, 3))[0, 0, 0])
        ((2, 3, 3), 128)
        >>> to_display(np.array([[0.0, 1.0]]), (1, 2), value_range=(0.0, 1.0))[0, :, 0].tolist()
        [0, 255]
    """
    if image is None:
        return np.full((*shape, 3), NEUTRAL_GREY, np.uint8)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        low, high = value_range if value_range is not None else display_range(array)
        scaled = (np.nan_to_num(array.astype(np.float64), nan=low) - low) / (high - low)
        array = np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"cannot display an image of shape {np.asarray(image).shape}")
    return np.ascontiguousarray(array)


def brighter(color: Sequence[int], amount: float = 0.5) -> Color:
    """``color`` mixed with white by ``amount`` (0: unchanged, 1: white).

    Example:
        >>> brighter((100, 0, 200))
        (178, 128, 228)
    """
    r, g, b = (round(c + (255 - c) * amount) for c in color[:3])
    return r, g, b


def class_color(colors: Sequence[Sequence[int]], index: int) -> Color:
    """The colour of class ``index``; classes beyond ``colors`` get a fixed fallback hue."""
    if 0 <= index < len(colors):
        r, g, b = (int(c) for c in colors[index][:3])
        return r, g, b
    hue = (index * 0.618033988749895) % 1.0
    rgb = Image.new("HSV", (1, 1), (int(hue * 255), 200, 255)).convert("RGB").getpixel((0, 0))
    if not isinstance(rgb, tuple):  # Pillow types pixels loosely; RGB pixels are tuples
        return 255, 255, 255
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def boundary(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Pixels of ``mask`` with a 4-neighbour outside it (or on the array's edge).

    Example:
        >>> boundary(np.ones((3, 3), bool)).astype(int).tolist()
        [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    """
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    out: NDArray[np.bool_] = mask & ~inner
    return out


def render_overlay(
    image: NDArray[Any] | None,
    labels: NDArray[np.integer[Any]] | None,
    instances: Instances | None,
    *,
    colors: Sequence[Sequence[int]],
    names: Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    outlines: bool = True,
    boxes: bool = True,
    value_range: tuple[float, float] | None = None,
) -> Image.Image:
    """One 2D image with its class map, instance outlines and boxes, as an RGB ``PIL.Image``.

    The output has the image's own size (pixel ``(r, c)`` of the inputs is pixel ``(c, r)`` of
    the picture); add a legend with :func:`microprep.preview.montage.with_legend`.

    Args:
        image: ``(H, W[, C])`` pixels, any dtype (see :func:`to_display`), or None (grey).
        labels: ``(H, W)`` class index map (0: background, left unpainted), or None.
        instances: the objects (2D rasters, boxes ``x_min, y_min, x_max, y_max`` in pixels with
            exclusive max), or None.
        colors: RGB per class index, background first (a store's ``colors``).
        names: class names by index; unused here, accepted so every renderer takes the same
            arguments.
        alpha: opacity of the class colours (0..1).
        outlines: draw each instance's boundary pixels in a brighter class colour.
        boxes: draw each instance's box as a 1-pixel rectangle in the brighter class colour.
        value_range: display range for non-``uint8`` images (default: robust percentiles).

    Example:
        >>> labels = np.zeros((4, 6), np.uint8); labels[1:3, 1:4] = 1
        >>> img = render_overlay(None, labels, None, colors=[(0, 0, 0), (255, 0, 0)])
        >>> img.size, img.getpixel((2, 1))
        ((6, 4), (185, 70, 70))
    """
    del names
    if labels is not None:
        shape = (int(labels.shape[0]), int(labels.shape[1]))
    elif image is not None:
        shape = (int(image.shape[0]), int(image.shape[1]))
    elif instances is not None:
        shape = (int(instances.shape[0]), int(instances.shape[1]))
    else:
        raise ValueError("render_overlay needs at least one of image, labels, instances")
    rgb = to_display(image, shape, value_range=value_range).astype(np.float32)
    if labels is not None:
        labels = np.asarray(labels)
        palette_size = max(len(colors), int(labels.max(initial=0)) + 1)
        palette = np.array([class_color(colors, i) for i in range(palette_size)], np.float32)
        painted = labels > 0
        rgb[painted] = (1 - alpha) * rgb[painted] + alpha * palette[labels[painted]]
    out = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if instances is not None and len(instances) and outlines:
        for raster, label in zip(instances.rasters, instances.labels, strict=True):
            if raster.mask.size and raster.mask.ndim == 2:
                edge = boundary(raster.mask)
                out[raster.slices()][edge] = brighter(class_color(colors, int(label)))
    picture = Image.fromarray(out, mode="RGB")
    if instances is not None and len(instances) and boxes:
        draw = ImageDraw.Draw(picture)
        for box, label in zip(instances.boxes, instances.labels, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box[:4])
            if not np.all(np.isfinite([x0, y0, x1, y1])) or x1 <= x0 or y1 <= y0:
                continue
            # exclusive max in pixel units -> the last covered pixel column / row
            left, top = int(np.floor(x0)), int(np.floor(y0))
            right, bottom = int(np.ceil(x1)) - 1, int(np.ceil(y1)) - 1
            draw.rectangle(
                (left, top, right, bottom), outline=brighter(class_color(colors, int(label)))
            )
    return picture


def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` px (a scalable one when FreeType is available)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()
