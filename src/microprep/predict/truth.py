"""Ground truth in prediction overlays (``prep predict --truth``).

Predicting a dataset store whose nodes carry targets, the overlays can show the truth's
outlines over the prediction: the prediction filled in class colours, the ground truth's
outlines in white (class regions for class maps, each object for instance predictions), so
errors stand out. The CLI switches this on for one command with :func:`truth_overlays` (the
trainers' predict functions need no new argument); :func:`require_truth` refuses an input
without ground truth before anything is predicted.

Example:
    >>> labels = np.zeros((5, 5), np.uint8); labels[1:4, 1:4] = 2
    >>> truth_edges(labels).astype(int)[2].tolist()
    [0, 1, 0, 1, 0]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import UsageError

__all__ = [
    "TRUTH_COLOR",
    "draw_truth",
    "require_truth",
    "truth_edges",
    "truth_overlays",
    "truth_wanted",
]

#: Colour of the ground truth's outlines.
TRUTH_COLOR = (255, 255, 255)
#: What the overlay's caption adds when it shows the truth.
TRUTH_NOTE = "filled: prediction, white outlines: ground truth"

_wanted: ContextVar[bool] = ContextVar("microprep_truth_overlays", default=False)


@contextmanager
def truth_overlays(enabled: bool = True) -> Iterator[None]:
    """Within the block, prediction overlays draw the ground truth's outlines where the input
    has ground truth (:func:`truth_wanted`)."""
    token = _wanted.set(enabled)
    try:
        yield
    finally:
        _wanted.reset(token)


def truth_wanted() -> bool:
    """Whether overlays drawn now should show the ground truth (see :func:`truth_overlays`)."""
    return _wanted.get()


def require_truth(source: Path) -> None:
    """Raise :class:`~microprep.errors.UsageError` unless ``source`` is a dataset store whose
    nodes carry ground truth (class maps)."""
    from microprep.predict.inputs import is_dataset_store

    if not is_dataset_store(Path(source)):
        raise UsageError(
            f"--truth: {source} has no ground truth; give a dataset store converted from an "
            "annotation export (prep convert), or leave out --truth"
        )
    from microprep.store.read import open_dataset

    dataset = open_dataset(source)
    try:
        if not any("labels" in dataset[node] for node in dataset.nodes):
            raise UsageError(
                f"--truth: the store {source} holds no class maps (labels) to compare with; "
                "leave out --truth"
            )
    finally:
        dataset.close()


def truth_edges(truth: NDArray[Any]) -> NDArray[np.bool_]:
    """Outline pixels of a class map or instance id map ``(H, W)`` (or ``(layers, H, W)``):
    non-zero pixels with a 4-neighbour of another value, or on the array's edge."""
    maps = np.asarray(truth)
    if maps.ndim == 2:
        maps = maps[None]
    edges = np.zeros(maps.shape[1:], bool)
    for plane in maps:
        padded = np.pad(plane, 1, mode="constant", constant_values=0)
        centre = padded[1:-1, 1:-1]
        differs = (
            (padded[:-2, 1:-1] != centre)
            | (padded[2:, 1:-1] != centre)
            | (padded[1:-1, :-2] != centre)
            | (padded[1:-1, 2:] != centre)
        )
        edges |= differs & (centre != 0)
    return edges


def draw_truth(picture: Image.Image, truth: NDArray[Any]) -> Image.Image:
    """``picture`` (of the truth's own size) with the truth's outlines in :data:`TRUTH_COLOR`.

    Example:
        >>> labels = np.zeros((4, 4), np.uint8); labels[1:3, 1:3] = 1
        >>> draw_truth(Image.new("RGB", (4, 4)), labels).getpixel((1, 1))
        (255, 255, 255)
    """
    pixels = np.array(picture.convert("RGB"))
    edges = truth_edges(truth)
    if edges.shape != pixels.shape[:2]:
        raise UsageError(
            f"the ground truth has shape {edges.shape}, the prediction {pixels.shape[:2]}"
        )
    pixels[edges] = TRUTH_COLOR
    return Image.fromarray(pixels, "RGB")
