"""The overlap report: pairs of objects of one image whose IoU exceeds a threshold.

Objects taking part: valid polygons, boxes and ellipses (rotation included; ellipses as
64-gons) and masks with pixels. Pairs are found with one shapely ``STRtree`` per image and
``predicate="intersects"``; bounds that cannot reach the threshold (area ratio, extent overlap)
drop most pairs before the exact IoU is computed. Two vector shapes are compared on geometry
(vectorized ``shapely.intersection``); a pair with a mask on pixels, both drawn with the
pixel-centre rule of :func:`microprep.targets.raster.rasterize_shape`. Shapes that form one
object downstream (same non-zero ``group`` and same label) are never paired.

Example:
    >>> import numpy as np
    >>> from microprep.model import Shape
    >>> from microprep.validate.checks import Batch
    >>> a = Shape("box", "grain", np.array([[0.0, 0.0], [10.0, 10.0]]), order=0)
    >>> b = Shape("box", "grain", np.array([[1.0, 0.0], [11.0, 10.0]]), order=1)
    >>> batch = Batch.single("a.png", 20, 20, [a, b])
    >>> [(f.code, f.shape, f.details["other"]) for f in overlap_findings(batch, batch.measure(99))]
    [('overlapping-objects', 0, 1)]
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.targets.raster import rasterize_shape
from microprep.targets.types import Raster
from microprep.validate.checks import Batch
from microprep.validate.geometry import Measures
from microprep.validate.report import Finding

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]


def _pairs(
    geoms: NDArray[Any], positions: IntArray, members: IntArray
) -> tuple[IntArray, IntArray]:
    """Pairs ``(i, j)``, ``i < j`` (indices into the batch) of intersecting members per image."""
    order = members[np.argsort(positions[members], kind="stable")]
    cuts = np.flatnonzero(np.diff(positions[order])) + 1
    firsts: list[IntArray] = []
    seconds: list[IntArray] = []
    for group in np.split(order, cuts):
        if len(group) < 2:
            continue
        g = geoms[group]
        tree = shapely.STRtree(g)
        a, b = tree.query(g, predicate="intersects")
        keep = a < b
        firsts.append(group[a[keep]])
        seconds.append(group[b[keep]])
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(firsts), np.concatenate(seconds)


def _pixel_iou(batch: Batch, i: int, j: int, cache: dict[int, Raster]) -> float:
    for k in (i, j):
        if k not in cache:
            cache[k] = rasterize_shape(batch.shapes[k], batch.heights[k], batch.widths[k])
    ra, rb = cache[i], cache[j]
    na, nb = ra.area, rb.area
    if not na or not nb:
        return 0.0
    (ta, la), (tb, lb) = ra.origin, rb.origin
    top, left = max(ta, tb), max(la, lb)
    bottom = min(ta + ra.mask.shape[0], tb + rb.mask.shape[0])
    right = min(la + ra.mask.shape[1], lb + rb.mask.shape[1])
    if bottom <= top or right <= left:
        return 0.0
    wa = ra.mask[top - ta : bottom - ta, left - la : right - la]
    wb = rb.mask[top - tb : bottom - tb, left - lb : right - lb]
    inter = int(np.count_nonzero(wa & wb))
    return inter / (na + nb - inter)


def overlap_findings(batch: Batch, m: Measures, threshold: float = 0.5) -> list[Finding]:
    """``overlapping-objects`` warnings for pairs with IoU above ``threshold``.

    Args:
        batch: the shapes and their images.
        m: ``batch.measure(...)``.
        threshold: report pairs whose IoU is strictly greater.

    Returns:
        One finding per pair, on the pair's first shape (lower index in the image), naming the
        other in ``details["other"]`` with ``details["iou"]``.
    """
    kinds = m.kinds
    is_mask = (kinds == "mask") & (m.area > 0) & m.finite & ~m.malformed
    vector = ~shapely.is_missing(m.geoms)
    members = np.flatnonzero(vector | is_mask)
    if len(members) < 2:
        return []
    geoms = m.geoms.copy()
    masks = np.flatnonzero(is_mask)
    if len(masks):
        geoms[masks] = shapely.box(*m.bounds[masks].T)
    positions = np.asarray(batch.positions, dtype=np.int64)
    a, b = _pairs(geoms, positions, members)
    if not len(a):
        return []
    groups = np.fromiter((s.group for s in batch.shapes), np.int64, len(batch.shapes))
    labels = np.array([s.label for s in batch.shapes], dtype=object)
    same_object = (groups[a] != 0) & (groups[a] == groups[b]) & (labels[a] == labels[b])
    area = np.where(vector, shapely.area(geoms), m.area)
    lo, hi = np.minimum(area[a], area[b]), np.maximum(area[a], area[b])
    ext_w = np.minimum(m.bounds[a, 2], m.bounds[b, 2]) - np.maximum(m.bounds[a, 0], m.bounds[b, 0])
    ext_h = np.minimum(m.bounds[a, 3], m.bounds[b, 3]) - np.maximum(m.bounds[a, 1], m.bounds[b, 1])
    reach = np.minimum(np.clip(ext_w, 0, None) * np.clip(ext_h, 0, None), lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.minimum(lo / hi, reach / (area[a] + area[b] - reach))
    keep = ~same_object & (bound > threshold)
    a, b = a[keep], b[keep]
    iou = np.zeros(len(a))
    both = vector[a] & vector[b]
    if both.any():
        inter = shapely.area(shapely.intersection(geoms[a[both]], geoms[b[both]]))
        union = area[a[both]] + area[b[both]] - inter
        iou[both] = inter / union
    cache: dict[int, Raster] = {}
    for k in np.flatnonzero(~both):
        iou[k] = _pixel_iou(batch, int(a[k]), int(b[k]), cache)
    out = []
    for i, j, v in zip(a, b, iou, strict=True):
        if v <= threshold:
            continue
        si, sj = batch.shapes[i], batch.shapes[j]
        out.append(
            Finding(
                "warning", "overlapping-objects",
                f"{si.kind} overlaps {sj.kind} #{sj.order} ({sj.label}), IoU {v:.3f}",
                batch.names[i], si.order, si.label,
                {"other": sj.order, "other_label": sj.label, "iou": round(float(v), 6)},
            )
        )  # fmt: skip
    return out
