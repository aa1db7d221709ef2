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

**Merge rule.** A detection keeps its mask above ``mask_threshold`` inside its tile, cropped to
its pixels. It is *cut* when its mask comes within ``border_margin`` pixels of an inner tile
border (one shared with a neighbouring tile, not the image edge). Two detections of the same
label from different tiles are the same object when their masks agree where both tiles see the
image: the IoU of the two masks inside the tiles' shared area is at least ``merge_iou`` (for
tiles that only touch, with ``overlap=0``: the IoU of the masks' pixels along the shared edge,
within ``border_margin`` pixels on either side). This measure does not depend on how much of the
object lies outside the shared area, so large objects cut into pieces are joined as reliably as
small ones. Joined detections form groups (transitively: an object at a four-tile corner joins
its four pieces). Each group becomes one object:

* if some member is not cut, the object lies whole inside that tile: the best-scoring uncut
  member is kept (mask and score);
* otherwise (every member is a piece) the object is the union of the pieces' masks, with the
  best score among them.

Last, a per-class mask NMS removes remaining duplicates: in descending score order, an object
whose mask IoU with an already kept object of its class is at least ``merge_iou`` is dropped.

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
from microprep.predict.tiles import tile_origins
from microprep.targets.types import Instances, Raster

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BORDER_MARGIN", "Forward", "InstancePrediction", "predict_instances_tiled"]

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


@dataclass(frozen=True, slots=True)
class _Tile:
    """The part of the image a tile sees: rows ``top..bottom``, columns ``left..right``."""

    top: int
    left: int
    bottom: int
    right: int
    inner: tuple[bool, bool, bool, bool]  # top, bottom, left, right border shared with a tile


@dataclass(slots=True)
class _Candidates:
    rasters: list[Raster]
    labels: list[int]
    scores: list[float]
    cut: list[bool]
    tile: list[int]


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
    found = _Candidates([], [], [], [], [])
    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=not progress)
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
    merged = _merge(found, tiles, merge_iou=merge_iou, margin=border_margin)
    result = _nms(merged, (height, width), merge_iou)
    logger.debug(
        "%d tiles, %d detections, %d objects after merging",
        len(tiles),
        len(found.rasters),
        len(result),
    )
    return result


def _tile(top: int, left: int, win: tuple[int, ...], height: int, width: int) -> _Tile:
    bottom, right = min(top + win[0], height), min(left + win[1], width)
    return _Tile(top, left, bottom, right, (top > 0, bottom < height, left > 0, right < width))


def _pixels(image: Any, tile: _Tile, win: tuple[int, ...], channels: int) -> NDArray[np.float32]:
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
    tile: _Tile,
    index: int,
    win: tuple[int, ...],
    found: _Candidates,
    *,
    score_threshold: float,
    mask_threshold: float,
    margin: int,
) -> None:
    """Add the detections of one tile's output above ``score_threshold`` to ``found``."""
    try:
        masks = np.asarray(out["masks"])
        scores = np.asarray(out["scores"], np.float64).reshape(-1)
        labels = np.asarray(out["labels"], np.int64).reshape(-1)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"the detector's output for tile at (y={tile.top}, x={tile.left}) lacks usable "
            f"'masks', 'scores' and 'labels': {exc}"
        ) from exc
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if (
        masks.ndim != 3
        or masks.shape[1:] != win
        or not masks.shape[0] == scores.size == labels.size
    ):
        raise UsageError(
            f"the detector's output for tile at (y={tile.top}, x={tile.left}): masks of shape "
            f"{masks.shape} for {scores.size} scores and {labels.size} labels; expected "
            f"(n, {win[0]}, {win[1]})"
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


Box = tuple[int, int, int, int]  # top, bottom, left, right (exclusive)


def _extent(r: Raster) -> Box:
    top, left = r.origin
    return top, top + r.mask.shape[0], left, left + r.mask.shape[1]


def _clip(a: Box, b: Box) -> Box | None:
    top, bottom, left, right = max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])
    return (top, bottom, left, right) if top < bottom and left < right else None


def _view(r: Raster, box: Box) -> NDArray[np.bool_]:
    top, left = r.origin
    return r.mask[box[0] - top : box[1] - top, box[2] - left : box[3] - left]


def _count(r: Raster, zone: Box) -> int:
    box = _clip(_extent(r), zone)
    return 0 if box is None else int(np.count_nonzero(_view(r, box)))


def _iou_in(a: Raster, b: Raster, zone: Box) -> float:
    """IoU of two masks inside ``zone`` (0 when neither has pixels there)."""
    area_a, area_b = _count(a, zone), _count(b, zone)
    if not area_a or not area_b:
        return 0.0
    box = _clip(_extent(a), _extent(b))
    box = None if box is None else _clip(box, zone)
    inter = 0 if box is None else int(np.count_nonzero(_view(a, box) & _view(b, box)))
    return inter / (area_a + area_b - inter)


def _seam_iou(a: Raster, b: Raster, band_a: Box, band_b: Box, axis: int) -> float:
    """1-D IoU of the pixels of ``a`` in ``band_a`` and ``b`` in ``band_b``, projected along
    ``axis`` (0: rows collapsed, for a horizontal seam)."""
    profiles = []
    for r, band in ((a, band_a), (b, band_b)):
        line = np.zeros(band[3] - band[2] if axis == 0 else band[1] - band[0], bool)
        box = _clip(_extent(r), band)
        if box is not None:
            hit = _view(r, box).any(axis=axis)
            start = box[2] - band[2] if axis == 0 else box[0] - band[0]
            line[start : start + hit.size] = hit
        profiles.append(line)
    union = int(np.count_nonzero(profiles[0] | profiles[1]))
    return int(np.count_nonzero(profiles[0] & profiles[1])) / union if union else 0.0


@dataclass(frozen=True, slots=True)
class _Zone:
    """Where two tiles are compared: ``covers`` is their shared area, or for tiles that only
    touch along an edge (``bands`` set) the band around that edge, with the ``bands`` of pixels
    on each side of it (first: the first tile's side) and the ``axis`` the seam's profile is
    taken along (0: horizontal seam)."""

    covers: Box
    bands: tuple[Box, Box] | None = None
    axis: int = 0


def _zone(t: _Tile, u: _Tile, margin: int) -> _Zone | None:
    top, bottom = max(t.top, u.top), min(t.bottom, u.bottom)
    left, right = max(t.left, u.left), min(t.right, u.right)
    if top < bottom and left < right:
        return _Zone((top, bottom, left, right))
    depth = max(margin, 1)
    if top == bottom and left < right:  # horizontal seam at row `top`
        above, below = (top - depth, top, left, right), (top, top + depth, left, right)
        bands = (above, below) if t.top < u.top else (below, above)
        return _Zone((top - depth, top + depth, left, right), bands=bands, axis=0)
    if left == right and top < bottom:  # vertical seam at column `left`
        before, after = (top, bottom, left - depth, left), (top, bottom, left, left + depth)
        bands = (before, after) if t.left < u.left else (after, before)
        return _Zone((top, bottom, left - depth, left + depth), bands=bands, axis=1)
    return None


def _tile_pairs(tiles: list[_Tile], busy: list[int]) -> list[tuple[int, int]]:
    """Pairs of tiles (indices into ``tiles``, both in ``busy``) that overlap or touch."""
    if len(busy) < 2:
        return []
    spans = np.array([(tiles[i].top, tiles[i].bottom, tiles[i].left, tiles[i].right) for i in busy])
    pairs: list[tuple[int, int]] = []
    for p in range(len(busy) - 1):
        rest = spans[p + 1 :]
        near = (rest[:, 0] <= spans[p, 1]) & (spans[p, 0] <= rest[:, 1])
        near &= (rest[:, 2] <= spans[p, 3]) & (spans[p, 2] <= rest[:, 3])
        pairs.extend((busy[p], busy[p + 1 + int(q)]) for q in np.flatnonzero(near))
    return pairs


def _touching(extents: NDArray[np.int64], box: Box) -> NDArray[np.bool_]:
    hit: NDArray[np.bool_] = (extents[:, 0] < box[1]) & (box[0] < extents[:, 1])
    hit &= (extents[:, 2] < box[3]) & (box[2] < extents[:, 3])
    return hit


def _merge(found: _Candidates, tiles: list[_Tile], *, merge_iou: float, margin: int) -> _Candidates:
    """Join the detections of one object across tiles (see the module docstring)."""
    n = len(found.rasters)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    extents = np.array([_extent(r) for r in found.rasters], np.int64).reshape(n, 4)
    labels = np.asarray(found.labels, np.int64)
    tile_of = np.asarray(found.tile, np.int64)
    by_tile = {int(t): np.flatnonzero(tile_of == t) for t in np.unique(tile_of)}
    for ti, tj in _tile_pairs(tiles, sorted(by_tile)):
        zone = _zone(tiles[ti], tiles[tj], margin)
        if zone is None:
            continue
        covers = zone.covers
        mine = by_tile[ti][_touching(extents[by_tile[ti]], covers)]
        theirs = by_tile[tj][_touching(extents[by_tile[tj]], covers)]
        if not mine.size or not theirs.size:
            continue
        a, b = extents[mine][:, None], extents[theirs][None]
        close = (a[..., 0] <= b[..., 1]) & (b[..., 0] <= a[..., 1])
        close &= (a[..., 2] <= b[..., 3]) & (b[..., 2] <= a[..., 3])
        close &= labels[mine][:, None] == labels[theirs][None]
        for p, q in zip(*np.nonzero(close), strict=True):
            i, j = int(mine[p]), int(theirs[q])
            if root(i) == root(j):
                continue
            if zone.bands is not None:
                iou = _seam_iou(found.rasters[i], found.rasters[j], *zone.bands, zone.axis)
            else:
                iou = _iou_in(found.rasters[i], found.rasters[j], zone.covers)
            if iou >= merge_iou and iou > 0.0:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    out = _Candidates([], [], [], [], [])
    for members in groups.values():
        whole = [m for m in members if not found.cut[m]]
        if whole:
            best = max(whole, key=lambda m: found.scores[m])
            raster = found.rasters[best]
            score = found.scores[best]
        else:
            raster = _union([found.rasters[m] for m in members])
            score = max(found.scores[m] for m in members)
        out.rasters.append(raster)
        out.labels.append(found.labels[members[0]])
        out.scores.append(score)
        out.cut.append(not whole)
        out.tile.append(found.tile[members[0]])
    return out


def _union(rasters: list[Raster]) -> Raster:
    if len(rasters) == 1:
        return rasters[0]
    extents = np.array([_extent(r) for r in rasters])
    top, left = int(extents[:, 0].min()), int(extents[:, 2].min())
    mask = np.zeros((int(extents[:, 1].max()) - top, int(extents[:, 3].max()) - left), bool)
    for r in rasters:
        r0, c0 = r.origin[0] - top, r.origin[1] - left
        mask[r0 : r0 + r.mask.shape[0], c0 : c0 + r.mask.shape[1]] |= r.mask
    return Raster((top, left), mask)


def _nms(objects: _Candidates, shape: tuple[int, int], merge_iou: float) -> InstancePrediction:
    """Per-class mask NMS, then the objects sorted by descending score."""
    n = len(objects.rasters)
    order = np.argsort(-np.asarray(objects.scores, np.float64), kind="stable")
    extents = np.array([_extent(r) for r in objects.rasters], np.int64).reshape(n, 4)
    labels = np.asarray(objects.labels, np.int64)
    areas = np.array([r.area for r in objects.rasters], np.int64)
    kept = np.zeros(n, bool)
    for i in order:
        near = kept & (labels == labels[i])
        near &= (extents[:, 0] < extents[i, 1]) & (extents[i, 0] < extents[:, 1])
        near &= (extents[:, 2] < extents[i, 3]) & (extents[i, 2] < extents[:, 3])
        duplicate = False
        for j in np.flatnonzero(near):
            a, b = objects.rasters[i], objects.rasters[j]
            box = _clip(_extent(a), _extent(b))
            inter = 0 if box is None else int(np.count_nonzero(_view(a, box) & _view(b, box)))
            if inter and inter / (areas[i] + areas[j] - inter) >= merge_iou:
                duplicate = True
                break
        kept[i] = not duplicate
    keep = np.flatnonzero(kept)
    return InstancePrediction.from_rasters(
        shape,
        [objects.rasters[i] for i in keep],
        labels=labels[keep],
        scores=np.asarray(objects.scores, np.float32)[keep],
    )
