"""An augmentation gallery: one source image and one variant per noise kind, in a labelled grid.

The noise kinds come from ``microprep.augment.NOISE_KINDS`` (name -> ``fn(image, rng)``),
imported when a gallery is asked for. Every variant is drawn with the source's display range
(when its dtype is unchanged), so a brightness or contrast change stays visible instead of
being scaled away.

Example:
    >>> fake = {"invert": lambda img, rng: 255 - img}
    >>> gallery = augmentation_gallery(np.zeros((8, 8), np.uint8), kinds=fake)
    >>> gallery.mode
    'RGB'
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import PrepError
from microprep.preview.montage import enlarge, grid
from microprep.preview.overlay import display_range, to_display

logger = logging.getLogger(__name__)

NoiseFn = Callable[[NDArray[Any], np.random.Generator], NDArray[Any]]


class PreviewError(PrepError):
    """A preview cannot be made (missing augmentation, nothing to show, bad input)."""


def noise_kinds() -> Mapping[str, NoiseFn]:
    """``microprep.augment.NOISE_KINDS``, imported now.

    Raises:
        PreviewError: the augmentation module cannot be imported.
    """
    try:
        module = importlib.import_module("microprep.augment")
    except ImportError as exc:
        raise PreviewError(
            f"augmentation is not available ({exc}); the gallery needs microprep.augment"
        ) from exc
    kinds = getattr(module, "NOISE_KINDS", None)
    if not isinstance(kinds, Mapping):
        raise PreviewError(
            "augmentation is not available: microprep.augment has no NOISE_KINDS mapping"
        )
    return kinds


def augmentation_gallery(
    image: NDArray[Any],
    *,
    seed: int = 0,
    kinds: Mapping[str, NoiseFn] | None = None,
    columns: int | None = None,
) -> Image.Image:
    """The source ``image`` and one variant per noise kind, captioned, in a grid.

    Args:
        image: ``(H, W[, C])`` pixels of any dtype (display scaling as in
            :func:`~microprep.preview.overlay.to_display`).
        seed: every kind gets its own ``numpy.random.default_rng(seed)``, so a gallery is
            reproducible and kinds do not depend on each other's draws.
        kinds: name -> ``fn(image, rng) -> image`` (default: ``microprep.augment.NOISE_KINDS``).
        columns: grid columns (default: about the square root of the count).

    Raises:
        PreviewError: augmentation is not available, there are no kinds, or a kind fails.
    """
    kinds = noise_kinds() if kinds is None else kinds
    if not kinds:
        raise PreviewError("no noise kinds to show in the gallery")
    source = np.asarray(image)
    value_range = None if source.dtype == np.uint8 else display_range(source)
    shape = (int(source.shape[0]), int(source.shape[1]))
    pictures = [enlarge(Image.fromarray(to_display(source, shape, value_range=value_range)))]
    captions = ["original"]
    for name, fn in kinds.items():
        try:
            variant = np.asarray(fn(source.copy(), np.random.default_rng(seed)))
        except Exception as exc:
            raise PreviewError(
                f"noise kind {name!r} failed on a {source.dtype} image: {exc}"
            ) from exc
        same = variant.dtype == source.dtype
        pictures.append(
            enlarge(
                Image.fromarray(
                    to_display(variant, shape, value_range=value_range if same else None)
                )
            )
        )
        captions.append(name)
    return grid(pictures, captions=captions, columns=columns)
