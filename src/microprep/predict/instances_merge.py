"""How tiled instance prediction joins the detections of neighbouring tiles into objects.

Used by :func:`microprep.predict.instances.predict_instances_tiled`. Masks are
:class:`~microprep.targets.types.Raster` crops in image coordinates throughout; no full-image
mask is made.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microprep.targets.types import Raster

__all__ = ["Candidates", "Tile", "mask_nms", "merge_candidates"]


@dataclass(frozen=True, slots=True)
class Tile:
    """The part of the image a tile sees: rows ``top..bottom``, columns ``left..right``."""

    top: int
    left: int
    bottom: int
    right: int
    inner: tuple[bool, bool, bool, bool]  # top, bottom, left, right border shared with a tile


@dataclass(slots=True)
class Candidates:
    """Detections (or merged objects) as parallel lists: the mask in image coordinates, the
    class, the score, whether an inner tile border cuts it, and the tile it came from."""

    rasters: list[Raster]
    labels: list[int]
    scores: list[float]
    cut: list[bool]
    tile: list[int]


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


def _zone(t: Tile, u: Tile, margin: int) -> _Zone | None:
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


def _tile_pairs(tiles: list[Tile], busy: list[int]) -> list[tuple[int, int]]:
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


def merge_candidates(
    found: Candidates, tiles: list[Tile], *, merge_iou: float, margin: int
) -> Candidates:
    """Join the detections of one object across ``tiles`` into one object each (steps 1-3
    of the module docstring); ``found.tile`` indexes ``tiles``."""
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
    out = Candidates([], [], [], [], [])
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


def mask_nms(objects: Candidates, *, merge_iou: float) -> NDArray[np.intp]:
    """Per-class mask NMS (step 4 of the module docstring): the indices of the objects kept,
    ascending."""
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
    return np.flatnonzero(kept)
