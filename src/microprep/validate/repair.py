"""The documented repairs (docs/validate.md), applied to the shapes a report flags.

* ``polygon-self-intersection`` / ``invalid-polygon`` (invalid polygons whose repair changes
  their pixels; ``harmless-invalid-polygon`` ones convert as drawn and are not touched):
  repeated consecutive vertices are dropped,
  then ``shapely.make_valid`` (its default "linework" method, which keeps every face of a
  crossing outline: a bow-tie becomes its two triangles, nothing is lost as ``buffer(0)``
  would). The polygon parts of the result replace the shape:

  - one part without holes: the same shape with the new vertices;
  - several parts without holes: one polygon shape per part, all sharing one ``group`` id (the
    shape's own, or a fresh id above every id in use when it had none) and the label, so they
    form one object downstream; they keep the shape's ``order`` and other fields;
  - any part with a hole: a polygon cannot hold a hole, so the object becomes one ``mask``
    shape, rasterized from all rings (exteriors and holes, even-odd) with
    :func:`microprep.targets.raster.fill_rings` over its pixel extent.

  Shapes whose result has no area (or, as a mask, no pixel) are left as they are.
* ``duplicate-vertices``: repeated consecutive vertices (and a closing vertex equal to the first)
  are dropped; the area does not change.

* ``wholly-outside``: the shape is dropped (it would give no pixel and no object).

Shapes partly outside their image are not clipped (the targets clip). Each applied repair is an
``info`` finding ``repaired-<code>`` with the area before and after in ``details``.

Example:
    >>> import numpy as np
    >>> from microprep.model import AnnotatedImage, ImageInfo, LabelMap, LabelSpec, Shape
    >>> from microprep.validate import validate
    >>> # a bow-tie whose left lobe is traced twice: even-odd leaves it empty, make_valid fills it
    >>> lobes = np.array([[0.0, 0], [5, 5], [0, 10], [0, 0], [5, 5], [10, 0], [10, 10], [5, 5],
    ...                   [0, 10]])
    >>> item = AnnotatedImage(ImageInfo("a.png", 16, 16), (Shape("polygon", "grain", lobes),))
    >>> ds = AnnotationSet.from_items([item], labels=LabelMap((LabelSpec("grain"),)))
    >>> fixed, done = repair(ds, validate(ds))
    >>> [(s.kind, s.group) for s in next(iter(fixed)).shapes], done[0].details["area_after"]
    ([('polygon', 1), ('polygon', 1)], 50.0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, Shape
from microprep.targets.raster import fill_rings
from microprep.validate.geometry import dedup_vertices, polygon_parts
from microprep.validate.report import Finding, Report

logger = logging.getLogger(__name__)

#: Codes that :func:`repair` acts on, strongest first.
REPAIRABLE = (
    "wholly-outside",
    "polygon-self-intersection",
    "invalid-polygon",
    "duplicate-vertices",
)


def _ring(coords: Any) -> NDArray[np.float64]:
    return np.asarray(coords, dtype=np.float64)[:-1]


class _Repairer:
    def __init__(self, next_group: int) -> None:
        self.next_group = next_group

    def duplicates(self, s: Shape, image: ImageInfo) -> tuple[tuple[Shape, ...], Finding] | None:
        pts = dedup_vertices(np.asarray(s.points), closed=s.kind == "polygon")
        dropped = len(s.points) - len(pts)
        if not dropped:
            return None
        area = float(shapely.Polygon(pts).area) if s.kind == "polygon" and len(pts) >= 3 else 0.0
        return (replace(s, points=pts),), Finding(
            "info", "repaired-duplicate-vertices",
            f"{s.kind}: dropped {dropped} repeated vertex(es); area {area:.6g} -> {area:.6g} px²",
            image.name, s.order, s.label,
            {"dropped": dropped, "area_before": area, "area_after": area},
        )  # fmt: skip

    def drop(self, s: Shape, image: ImageInfo) -> tuple[tuple[Shape, ...], Finding]:
        return (), Finding(
            "info", "repaired-wholly-outside",
            f"{s.kind}: dropped, it lies wholly outside the {image.width}x{image.height} image",
            image.name, s.order, s.label, {},
        )  # fmt: skip

    def invalid(
        self, s: Shape, image: ImageInfo, code: str
    ) -> tuple[tuple[Shape, ...], Finding] | None:
        pts = dedup_vertices(np.asarray(s.points), closed=True)
        if len(pts) < 3:
            return None
        before = float(shapely.Polygon(np.asarray(s.points)).area)
        parts = polygon_parts(shapely.make_valid(shapely.Polygon(pts)))
        if not parts:
            return None
        after = float(sum(p.area for p in parts))
        holes = sum(len(p.interiors) for p in parts)
        details: dict[str, Any] = {
            "area_before": before, "area_after": after, "parts": len(parts), "holes": holes,
        }  # fmt: skip
        if holes:
            shape = self._mask(s, parts)
            if shape is None:
                return None
            pixels = int(np.count_nonzero(np.asarray(shape.bitmap)))
            details |= {"kind": "mask", "pixels": pixels}
            what = f"mask of {pixels} px ({len(parts)} polygon(s), {holes} hole(s))"
            shapes: tuple[Shape, ...] = (shape,)
        elif len(parts) == 1:
            details["kind"] = "polygon"
            what = "1 polygon"
            shapes = (replace(s, points=_ring(parts[0].exterior.coords)),)
        else:
            group = s.group
            if not group:
                group, self.next_group = self.next_group, self.next_group + 1
            details |= {"kind": "polygon", "group": group}
            what = f"{len(parts)} polygons sharing group {group}"
            shapes = tuple(replace(s, points=_ring(p.exterior.coords), group=group) for p in parts)
        return shapes, Finding(
            "info", f"repaired-{code}",
            f"polygon -> {what} (make_valid); area {before:.6g} -> {after:.6g} px²",
            image.name, s.order, s.label, details,
        )  # fmt: skip

    @staticmethod
    def _mask(s: Shape, parts: list[shapely.Polygon]) -> Shape | None:
        rings = [_ring(r.coords) for p in parts for r in (p.exterior, *p.interiors)]
        x0, y0, x1, y1 = shapely.bounds(shapely.MultiPolygon(parts))
        left, top = math.floor(x0), math.floor(y0)
        right, bottom = math.ceil(x1), math.ceil(y1)
        bitmap = fill_rings(rings, top, left, bottom - top, right - left)
        if not bitmap.any():
            return None
        points = np.array([[left, top], [right, bottom]], dtype=np.float64)
        return replace(s, kind="mask", points=points, bitmap=bitmap, rotation=0.0)


def repair(annotations: AnnotationSet, report: Report) -> tuple[AnnotationSet, list[Finding]]:
    """Apply the documented repairs to the shapes that ``report`` flags.

    Args:
        annotations: the set ``report`` was made from.
        report: ``validate(annotations)``; its findings with a code in :data:`REPAIRABLE` name
            the shapes to repair (by image name and ``Shape.order``).

    Returns:
        ``(repaired, repairs)``: a set that yields the repaired shapes (lazily: it iterates
        ``annotations`` again and swaps in the replacements kept in memory), and one ``info``
        finding per repair applied. Nothing to repair gives ``annotations`` itself.
    """
    targets: dict[tuple[str, int], str] = {}
    for f in report.findings:
        if f.code in REPAIRABLE and f.image is not None and f.shape is not None:
            key = (f.image, f.shape)
            if key not in targets or REPAIRABLE.index(f.code) < REPAIRABLE.index(targets[key]):
                targets[key] = f.code
    if not targets:
        return annotations, []
    used = report.shapes["group"] if "group" in report.shapes.columns else None
    repairer = _Repairer(max(int(used.max()), 0) + 1 if used is not None and len(used) else 1)
    replacements: dict[int, dict[int, tuple[Shape, ...]]] = {}
    repairs: list[Finding] = []
    for pos, item in enumerate(annotations):
        for k, s in enumerate(item.shapes):
            code = targets.get((item.image.name, s.order))
            if code is None:
                continue
            result: tuple[tuple[Shape, ...], Finding] | None
            if code == "wholly-outside":
                result = repairer.drop(s, item.image)
            elif s.kind not in ("polygon", "polyline"):
                result = None
            elif code == "duplicate-vertices":
                result = repairer.duplicates(s, item.image)
            elif s.kind == "polygon":
                result = repairer.invalid(s, item.image, code)
            else:
                result = None
            if result is None:
                logger.info("image %r shape %d: %s not repairable", item.image.name, s.order, code)
                continue
            replacements.setdefault(pos, {})[k] = result[0]
            repairs.append(result[1])

    def load() -> Iterator[AnnotatedImage]:
        for pos, item in enumerate(annotations):
            swap = replacements.get(pos)
            if swap is None:
                yield item
                continue
            shapes = [new for k, s in enumerate(item.shapes) for new in swap.get(k, (s,))]
            yield AnnotatedImage(item.image, tuple(shapes))

    fixed = replace(annotations, load=load)
    logger.info("%d shape(s) repaired", len(repairs))
    return fixed, repairs
