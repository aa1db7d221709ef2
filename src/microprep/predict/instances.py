"""Instance prediction on images larger than the training crop: overlapping tiles, one object each.

:func:`predict_instances_tiled` cuts a ``(C, H, W)`` image into tiles of the training window,
runs a detector on batches of tiles (any ``forward`` function on numpy arrays, so this module
needs no torch), and merges the detections of all tiles into one :class:`InstancePrediction`.

**Tiles.** The tiles of semantic prediction (:func:`microprep.predict.tiles.tile_origins`):
``window`` pixels, stepping by ``max(1, round(window * (1 - overlap)))`` along each axis, the
last tile of a row or column moved back to end flush with the image edge, so every pixel is
covered. An axis shorter than the window gets one tile, padded at the bottom / right with the
tile's mean value per channel (not mirrored: mirrored objects would be detected too), so the
detector sees the same pixel scale as in training; the padding is cut from the masks.

**Merge rule.** Detections of one object in neighbouring tiles are joined by the agreement of
their masks where both tiles see the image, kept whole from a tile that holds the object
entirely, else united from the pieces; a per-class mask NMS removes what remains duplicated.
The rule in full is in :mod:`microprep.predict.instances_merge`.

**Memory.** Masks are kept as :class:`~microprep.targets.types.Raster` crops in image
coordinates; no full-image mask is ever made per object, and only one batch of tile outputs is
held at a time.

Example:
    >>> def forward(tiles):  # a fake detector: one square per tile
    ...     out = []
    ...     for t in tiles:
    ...         m = np.zeros((1, *t.shape[1:]), np.float32); m[0, 2:6, 2:6] = 1
    ...         out.append({"labels": np.array([1]), "scores": np.array([0.9]), "masks": m})
    ...     return out
    >>> pred = predict_instances_tiled(forward, np.zeros((1, 16, 16), np.float32), window=16)
    >>> len(pred), pred.boxes.tolist()
    (1, [[2.0, 2.0, 6.0, 6.0]])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.crops.windows import as_tuple
from microprep.errors import UsageError
from microprep.predict.instances_merge import Candidates, Tile, mask_nms, merge_candidates
from microprep.predict.tiles import tile_origins
from microprep.targets.types import Instances, Raster

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BORDER_MARGIN",
    "Forward",
    "InstancePrediction",
    "detector_arrays",
    "predict_instances_tiled",
]

#: A detector on numpy tiles: ``(C, h, w)`` float32 arrays in, per tile a mapping with
#: ``labels`` (n,), ``scores`` (n,) and ``masks`` (n, h, w) or (n, 1, h, w) probabilities out
#: (``boxes`` may be there too; boxes are recomputed from the masks).
Forward = Callable[[list[NDArray[np.float32]]], Sequence[Mapping[str, Any]]]
#: A mask this close (px) to an inner tile border counts as cut by it.
DEFAULT_BORDER_MARGIN = 2


@dataclass(frozen=True, slots=True, eq=False)
class InstancePrediction:
    """The objects found in one 2D image, sorted by descending score.

    ``shape``: ``(H, W)`` of the image. Per object ``i``: ``rasters[i]`` its bool mask cropped
    to its pixels (origin ``(top, left)`` in the image), ``labels[i]`` its class index (int64),
    ``scores[i]`` (float32) and ``boxes[i]`` float32 ``x_min, y_min, x_max, y_max`` in pixels,
    exclusive max, computed from the mask.

    Example:
        >>> p = InstancePrediction.from_rasters(
        ...     (4, 4), [Raster((1, 1), np.ones((2, 3), bool))], labels=[2], scores=[0.8])
        >>> p.boxes.tolist(), p.areas.tolist(), int(p.id_map().sum())
        ([[1.0, 1.0, 4.0, 3.0]], [6], 6)
    """

    shape: tuple[int, int]
    rasters: tuple[Raster, ...]
    labels: NDArray[np.int64]
    scores: NDArray[np.float32]
    boxes: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.rasters)

    @property
    def areas(self) -> NDArray[np.int64]:
        """Pixel count of each object, int64."""
        return np.array([r.area for r in self.rasters], dtype=np.int64)

    @staticmethod
    def empty(shape: tuple[int, int]) -> InstancePrediction:
        """No objects in an image of ``shape``."""
        return InstancePrediction.from_rasters(shape, [], labels=[], scores=[])

    @staticmethod
    def from_rasters(
        shape: tuple[int, int],
        rasters: Sequence[Raster],
        *,
        labels: Sequence[int] | NDArray[np.integer[Any]],
        scores: Sequence[float] | NDArray[np.floating[Any]],
    ) -> InstancePrediction:
        """Objects from masks, labels and scores: boxes computed, sorted by descending score."""
        score_array = np.asarray(scores, dtype=np.float32).reshape(-1)
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
        if not len(rasters) == score_array.size == label_array.size:
            raise ValueError(
                f"{len(rasters)} masks, {label_array.size} labels and {score_array.size} scores"
            )
        order = np.argsort(-score_array, kind="stable")
        boxes = np.zeros((len(rasters), 4), np.float32)
        for k, i in enumerate(order):
            (y0, y1), (x0, x1) = rasters[i].bounds()
            boxes[k] = (x0, y0, x1, y1)
        return InstancePrediction(
            shape=(int(shape[0]), int(shape[1])),
            rasters=tuple(rasters[i] for i in order),
            labels=label_array[order],
            scores=score_array[order],
            boxes=boxes,
        )

    def to_instances(self) -> Instances:
        """The objects as :class:`~microprep.targets.types.Instances` (for previews, layers)."""
        n = len(self)
        return Instances(
            shape=self.shape,
            rasters=self.rasters,
            labels=self.labels.copy(),
            boxes=self.boxes.astype(np.float64),
            areas=self.areas,
            occluded=np.zeros(n, bool),
            groups=np.zeros(n, np.int64),
            tracks=np.full(n, -1, np.int64),
        )

    def id_map(self) -> NDArray[np.uint32]:
        """``(H, W)`` uint32: ``i + 1`` on the pixels of object ``i``, 0 elsewhere; where
        objects overlap, the higher score is on top (the lower-scored one may vanish)."""
        out = np.zeros(self.shape, np.uint32)
        for i in range(len(self) - 1, -1, -1):
            self.rasters[i].paste(out, i + 1)
        return out


def predict_instances_tiled(
    forward: Forward,
    image: NDArray[Any],
    *,
    window: int | tuple[int, int],
    overlap: float = 0.25,
    batch_size: int = 2,
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    merge_iou: float = 0.5,
    border_margin: int = DEFAULT_BORDER_MARGIN,
    progress: bool = False,
) -> InstancePrediction:
    """Predict the objects of a large image tile by tile and merge them across tile borders.

    Args:
        forward: the detector on a batch of tiles (see :data:`Forward`); each tile is a
            ``(C, h, w)`` float32 array of the window's size.
        image: ``(C, H, W)`` pixels (float32, normalised as in training); any array that
            supports slicing and ``numpy.asarray`` works, so a lazy (dask) array is read one
            tile at a time.
        window: tile size in pixels, ``(h, w)`` or one int: the training crop size.
        overlap: fraction of the window that neighbouring tiles share, in ``[0, 1)``.
        batch_size: tiles per ``forward`` call.
        score_threshold: detections scoring below this are dropped first.
        mask_threshold: a pixel belongs to a detection when its mask probability is above this.
        merge_iou: mask IoU above which detections from neighbouring tiles are one object,
            and above which the final NMS drops the lower-scored of two objects of one class.
        border_margin: pixels from an inner tile border within which a mask counts as cut.
        progress: show a progress bar over the tiles.

    Returns:
        The merged objects (see the module docstring for the rule), by descending score.

    Raises:
        UsageError: an image that is not ``(C, H, W)``, bad parameters, or a ``forward`` that
            returns something else than one mapping with matching masks per tile.

    Example:
        >>> empty = lambda tiles: [{"labels": [], "scores": [], "masks": np.zeros((0, 8, 8))}
        ...                        for _ in tiles]
        >>> len(predict_instances_tiled(empty, np.zeros((1, 20, 30)), window=8))
        0
    """
    if len(getattr(image, "shape", ())) != 3:
        raise UsageError(f"image must be (C, H, W), got shape {getattr(image, 'shape', None)}")
    channels, height, width = (int(n) for n in image.shape)
    win = as_tuple(window, 2, "window")
    if not 0.0 <= overlap < 1.0:
        raise UsageError(f"overlap must be in [0, 1), got {overlap}")
    if batch_size < 1 or border_margin < 0:
        raise UsageError(
            f"need batch_size >= 1 and border_margin >= 0, got {batch_size}, {border_margin}"
        )
    for name, value in (
        ("score_threshold", score_threshold),
        ("mask_threshold", mask_threshold),
        ("merge_iou", merge_iou),
    ):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{name} must be in [0, 1], got {value}")
    origins = tile_origins((height, width), window=win, overlap=overlap)
    tiles = [_tile(int(y), int(x), win, height, width) for y, x in origins]
    found = Candidates([], [], [], [], [])
    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=None if progress else True)
    try:
        for first in range(0, len(tiles), batch_size):
            batch = tiles[first : first + batch_size]
            arrays = [_pixels(image, t, win, channels) for t in batch]
            outputs = list(forward(arrays))
            if len(outputs) != len(arrays):
                raise UsageError(
                    f"the detector returned {len(outputs)} results for {len(arrays)} tiles"
                )
            for offset, (tile, out) in enumerate(zip(batch, outputs, strict=True)):
                _collect(
                    out,
                    tile,
                    first + offset,
                    win,
                    found,
                    score_threshold=score_threshold,
                    mask_threshold=mask_threshold,
                    margin=border_margin,
                )
            bar.update(len(batch))
    finally:
        bar.close()
    merged = merge_candidates(found, tiles, merge_iou=merge_iou, margin=border_margin)
    keep = mask_nms(merged, merge_iou=merge_iou)
    result = InstancePrediction.from_rasters(
        (height, width),
        [merged.rasters[i] for i in keep],
        labels=np.asarray(merged.labels, np.int64)[keep],
        scores=np.asarray(merged.scores, np.float32)[keep],
    )
    logger.debug(
        "%d tiles, %d detections, %d objects after merging",
        len(tiles),
        len(found.rasters),
        len(result),
    )
    return result


def _tile(top: int, left: int, win: tuple[int, ...], height: int, width: int) -> Tile:
    bottom, right = min(top + win[0], height), min(left + win[1], width)
    return Tile(top, left, bottom, right, (top > 0, bottom < height, left > 0, right < width))


def _pixels(image: Any, tile: Tile, win: tuple[int, ...], channels: int) -> NDArray[np.float32]:
    data = np.asarray(image[:, tile.top : tile.bottom, tile.left : tile.right], dtype=np.float32)
    h, w = data.shape[1:]
    if (h, w) == win:
        return np.ascontiguousarray(data)
    fill = data.reshape(channels, -1).mean(axis=1) if data.size else np.zeros(channels, np.float32)
    out = np.empty((channels, *win), np.float32)
    out[...] = fill[:, None, None]
    out[:, :h, :w] = data
    return out


def _collect(
    out: Mapping[str, Any],
    tile: Tile,
    index: int,
    win: tuple[int, ...],
    found: Candidates,
    *,
    score_threshold: float,
    mask_threshold: float,
    margin: int,
) -> None:
    """Add the detections of one tile's output above ``score_threshold`` to ``found``."""
    masks, scores, labels = detector_arrays(
        out, f"the detector's output for tile at (y={tile.top}, x={tile.left})", window=win
    )
    h, w = tile.bottom - tile.top, tile.right - tile.left
    cut_top, cut_bottom, cut_left, cut_right = tile.inner
    for k in np.flatnonzero(scores >= score_threshold):
        mask = masks[k, :h, :w] > mask_threshold
        rows = np.flatnonzero(mask.any(axis=1))
        if not rows.size:
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        found.rasters.append(Raster((tile.top + r0, tile.left + c0), mask[r0:r1, c0:c1].copy()))
        found.labels.append(int(labels[k]))
        found.scores.append(float(scores[k]))
        found.cut.append(
            (cut_top and r0 < margin + 1)
            or (cut_bottom and r1 > h - margin - 1)
            or (cut_left and c0 < margin + 1)
            or (cut_right and c1 > w - margin - 1)
        )
        found.tile.append(index)


def detector_arrays(
    out: Mapping[str, Any], where: str, *, window: tuple[int, ...] | None = None
) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.int64]]:
    """``(masks (n, H, W), scores (n,) float64, labels (n,) int64)`` of one detector output
    (``{"masks": (n, [1,] H, W), "scores", "labels"}``), checked; ``where`` starts the message.

    Raises:
        UsageError: a key is missing or unusable, or the shapes disagree (or the masks are not
            ``window``-sized, when given).
    """
    try:
        masks = np.asarray(out["masks"])
        scores = np.asarray(out["scores"], np.float64).reshape(-1)
        labels = np.asarray(out["labels"], np.int64).reshape(-1)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where} lacks usable 'masks', 'scores' and 'labels': {exc}") from exc
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if (
        masks.ndim != 3
        or (window is not None and masks.shape[1:] != window)
        or not masks.shape[0] == scores.size == labels.size
    ):
        expected = "" if window is None else f"; expected (n, {window[0]}, {window[1]})"
        raise UsageError(
            f"{where}: masks of shape {masks.shape} for {scores.size} scores and "
            f"{labels.size} labels{expected}"
        )
    return masks, scores, labels
