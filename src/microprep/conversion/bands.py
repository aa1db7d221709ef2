"""``prep convert`` within a memory budget: which images are built whole, which in bands.

:func:`plan_group` asks :func:`microprep.memory.plan_image` about each image (or volume) before
its targets are built; :func:`convert_banded` builds an image too large for the budget band by
band (:mod:`microprep.targets.bands`) and hands each band to every sink's band writer (the
zarr store, masks and yolo exports have one; ``onehot`` and ``coco`` do not, so an image that
needs bands is refused when they are asked for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from microprep.exports import Sink
from microprep.memory import ImagePlan, plan_image
from microprep.model import AnnotatedImage, LabelMap
from microprep.registry import SinkKind
from microprep.targets.bands import Band, BandedTargets, build_banded
from microprep.targets.raster import RasterOptions, drawn_extent

logger = logging.getLogger(__name__)

#: Bytes per pixel assumed for an image file's pixels (loaded whole): up to 4 channels of
#: 8 bits, or 2 of 16.
PIXEL_BYTES = 4


class BandWriter(Protocol):
    """What a sink's ``banded_writer`` returns."""

    def write(self, band: Band) -> None: ...  # pragma: no cover - protocol

    def close(self) -> None: ...  # pragma: no cover - protocol


def _object_columns(items: Sequence[AnnotatedImage], options: RasterOptions) -> int:
    total = 0.0
    for item in items:
        for shape in item.shapes:
            if len(shape.points):
                x0, _, x1, _ = drawn_extent(shape, options)
                width = min(float(item.image.width), x1) - max(0.0, x0)
                total += max(0.0, width) + 1
    return int(total)


def plan_group(
    items: Sequence[AnnotatedImage],
    name: str,
    *,
    kinds: Sequence[SinkKind],
    labels: LabelMap,
    options: RasterOptions,
    budget: int,
    pixels: bool,
) -> ImagePlan:
    """The plan of one image (one item) or volume (several): whole or in bands.

    Raises:
        MemoryBudgetError: it cannot be built within ``budget``.
    """
    first = items[0].image
    depth = len(items)
    return plan_image(
        name=name,
        height=first.height,
        width=first.width,
        depth=depth,
        budget=budget,
        pixel_bytes=PIXEL_BYTES * depth * first.height * first.width if pixels else 0,
        object_columns=_object_columns(items, options),
        onehot_classes=labels.num_classes if any(k.name == "onehot" for k in kinds) else 0,
        can_band=depth == 1 and all(kind.bands for kind in kinds),
    )


def convert_banded(
    item: AnnotatedImage,
    labels: LabelMap,
    options: RasterOptions,
    *,
    band_rows: int,
    sinks: Sequence[Sink],
    load_pixels: Callable[[], NDArray[np.generic]] | None,
) -> tuple[BandedTargets, NDArray[np.int64]]:
    """Build ``item`` in bands of ``band_rows`` rows and write each band to every sink.

    Returns the banded targets (their tables) and the pixel count per class value.
    """
    banded = build_banded(item, labels, options, band_rows=band_rows)
    pixels = None if load_pixels is None else load_pixels()
    writers: list[Any] = [sink.banded_writer(banded, pixels) for sink in sinks]  # type: ignore[attr-defined]
    del pixels
    counts = np.zeros(labels.num_classes, dtype=np.int64)
    for band in banded.bands():
        for writer in writers:
            writer.write(band)
        counts += np.bincount(band.class_map.ravel(), minlength=counts.size)[: counts.size]
    for writer in writers:
        writer.close()
    logger.info("%s: written in bands of %d rows", item.image.name, band_rows)
    return banded, counts
