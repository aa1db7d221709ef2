"""Overlay PNGs of predictions: the input with its predicted class map and a legend.

2D inputs give one overlay; volumes a montage of a few evenly spaced slices (first and last
included), captioned ``z = k / depth``, all with one display range. Drawing reuses
:mod:`microprep.preview` (same colours, opacity and display scaling as ``prep preview``).
Under ``prep predict --truth`` the ground truth's outlines are drawn in white over the
prediction (:mod:`microprep.predict.truth`). Pictures with a side over :data:`MAX_SIDE`
pixels are scaled down when saved.
:func:`uncertainty_picture` draws the per-pixel uncertainty (0..1) as a heat map, black (0)
through red to yellow-white (1), laid out the same way, with a scale bar.

Example:
    >>> labels = np.zeros((8, 8), np.uint8); labels[2:5, 2:5] = 1
    >>> picture = prediction_picture(None, {None: labels}, title="a.png",
    ...                              colors=[(0, 0, 0), (0, 200, 0)], names=["bg", "pore"])
    >>> picture.mode
    'RGB'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from microprep.predict.truth import TRUTH_NOTE, draw_truth
from microprep.preview.montage import caption, enlarge, grid, with_legend
from microprep.preview.overlay import display_range, render_overlay

__all__ = [
    "MAX_SIDE",
    "display_pixels",
    "heat_colors",
    "prediction_picture",
    "save_picture",
    "uncertainty_picture",
]

#: Longest side (px) of a saved overlay; larger pictures are scaled down.
MAX_SIDE = 4096


def display_pixels(image: NDArray[Any] | None) -> NDArray[Any] | None:
    """A 2D plane ``(H, W[, C])`` in a layout :func:`render_overlay` draws.

    Gray, RGB and RGBA pass unchanged; other channel counts show their first channel.
    """
    if image is None:
        return None
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        return array[..., 0]
    return array


def prediction_picture(
    image: NDArray[Any] | None,
    planes: Mapping[int | None, NDArray[Any]],
    *,
    title: str,
    colors: Sequence[Sequence[int]],
    names: Sequence[str],
    depth: int | None = None,
    truth: Mapping[int | None, NDArray[Any]] | None = None,
) -> Image.Image:
    """The overlay of one prediction, with a legend and a title.

    Args:
        image: the input pixels, channels last: ``(H, W[, C])`` for images, ``(Z, H, W[, C])``
            for volumes (only the slices in ``planes`` are read), or None (grey background).
        planes: predicted class maps ``(H, W)``: ``{None: labels}`` for an image,
            ``{z: labels of slice z}`` for a volume.
        title: the caption (usually the image name).
        colors: RGB per class index, background first.
        names: class names by index.
        depth: slices of the volume (for the captions).
        truth: ground truth maps (class or instance ids) keyed like ``planes``, drawn as white
            outlines over the prediction (:func:`microprep.predict.truth.draw_truth`); None:
            the prediction alone.
    """

    def with_truth(picture: Image.Image, key: int | None) -> Image.Image:
        return picture if truth is None else draw_truth(picture, truth[key])

    if truth is not None:
        title = f"{title}  ({TRUTH_NOTE})"
    if None in planes:
        body = enlarge(
            with_truth(
                render_overlay(
                    display_pixels(image), planes[None], None, colors=colors, names=names
                ),
                None,
            )
        )
        return caption(with_legend(body, colors, names), title)
    shown = sorted(z for z in planes if z is not None)
    slices = {z: None if image is None else display_pixels(np.asarray(image[z])) for z in shown}
    value_range = None
    if image is not None and np.asarray(image[shown[0]]).dtype != np.uint8:
        value_range = display_range(np.stack([s for s in slices.values() if s is not None]))
    pictures = [
        enlarge(
            with_truth(
                render_overlay(
                    slices[z], planes[z], None, colors=colors, names=names, value_range=value_range
                ),
                z,
            )
        )
        for z in shown
    ]
    total = depth if depth is not None else max(shown) + 1
    body = grid(
        pictures, captions=[f"z = {z} / {total}" for z in shown], columns=min(4, len(shown))
    )
    return caption(with_legend(body, colors, names), f"{title}  (volume, {total} slices)")


def heat_colors(values: NDArray[Any]) -> NDArray[np.uint8]:
    """RGB ``(*shape, 3)`` uint8 of values in ``[0, 1]``: black, red, yellow, white.

    Example:
        >>> heat_colors(np.array([0.0, 1.0])).tolist()
        [[0, 0, 0], [255, 255, 255]]
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    red = np.clip(v * 3, 0, 1)
    green = np.clip(v * 3 - 1, 0, 1)
    blue = np.clip(v * 3 - 2, 0, 1)
    rgb: NDArray[np.uint8] = np.round(np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)
    return rgb


def _scale_bar(width: int) -> Image.Image:
    """A horizontal bar of the heat colours from 0 (left) to 1 (right), captioned."""
    ramp = np.tile(np.linspace(0, 1, max(width, 2), dtype=np.float32), (10, 1))
    bar = Image.fromarray(heat_colors(ramp), "RGB")
    return caption(bar, "uncertainty 0 (left) .. 1 (right)")


def uncertainty_picture(
    planes: Mapping[int | None, NDArray[Any]], *, title: str, depth: int | None = None
) -> Image.Image:
    """The uncertainty heat map of one prediction, with a scale bar and a title.

    Args:
        planes: per-pixel uncertainty ``(H, W)`` in ``[0, 1]``: ``{None: map}`` for an image,
            ``{z: map of slice z}`` for a volume.
        title: the caption (usually the image name).
        depth: slices of the volume (for the captions).

    Example:
        >>> uncertainty_picture({None: np.full((4, 4), 0.5)}, title="a.png").mode
        'RGB'
    """
    if None in planes:
        body = enlarge(Image.fromarray(heat_colors(planes[None]), "RGB"))
        label = title
    else:
        shown = sorted(z for z in planes if z is not None)
        total = depth if depth is not None else max(shown) + 1
        body = grid(
            [enlarge(Image.fromarray(heat_colors(planes[z]), "RGB")) for z in shown],
            captions=[f"z = {z} / {total}" for z in shown],
            columns=min(4, len(shown)),
        )
        label = f"{title}  (volume, {total} slices)"
    bar = _scale_bar(max(160, body.width // 2))
    out = Image.new("RGB", (max(body.width, bar.width), body.height + bar.height), (255, 255, 255))
    out.paste(body, (0, 0))
    out.paste(bar, (0, body.height))
    return caption(out, label)


def save_picture(picture: Image.Image, path: Path) -> None:
    """Save ``picture`` as PNG, scaled down to :data:`MAX_SIDE` px on its longest side."""
    if max(picture.size) > MAX_SIDE:
        scale = MAX_SIDE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")
