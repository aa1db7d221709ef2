"""Invalid polygons: harmless (the repair covers the same pixels) or refused (it does not).

A polygon that shapely finds invalid but whose ``make_valid`` form has area is judged by its
pixels (:func:`microprep.validate.pixels.compare_pixels`, over its extent inside the image):

* the same pixels: a ``harmless-invalid-polygon`` warning; it converts as drawn (zero-area
  spikes, runs back and forth along an edge, points clamped to the image border, self-touching
  rings, crossings that the even-odd fill already splits into lobes);
* other pixels: an error, ``polygon-self-intersection`` or ``invalid-polygon`` (by shapely's
  reason), naming how many pixels the repair changes; ``--repair`` applies it;
* a window too large to compare (see :data:`~microprep.validate.pixels.MAX_PIXELS`): the same
  error, naming the size.

Only the polygons shapely flags are compared, one by one; valid ones cost nothing here.

Example:
    >>> import numpy as np
    >>> from microprep.model import Shape
    >>> from microprep.validate.geometry import measure
    >>> spike = np.array([[0.0, 0], [4, 0], [4, 2], [7, 2], [4, 2], [4, 4], [0, 4]])
    >>> m = measure([Shape("polygon", "grain", spike)], max_vertices=100)
    >>> compare_repairs(m, [Shape("polygon", "grain", spike)], [8], [8])
    >>> m.pixels[0].changed, m.pixels[0].drawn
    (0, 16)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

from microprep.model import Shape
from microprep.validate.geometry import Measures, polygon_parts
from microprep.validate.outline import describe_outline
from microprep.validate.pixels import PixelChange, compare_pixels, too_large
from microprep.validate.report import Finding

logger = logging.getLogger(__name__)

#: Code of an invalid polygon whose repair covers the same pixels (a warning).
HARMLESS = "harmless-invalid-polygon"
#: Polygon validity reasons (shapely) reported as ``polygon-self-intersection``.
SELF_INTERSECTION = ("Self-intersection", "Ring Self-intersection")


def compare_repairs(
    m: Measures, shapes: Sequence[Shape], heights: Sequence[int], widths: Sequence[int]
) -> None:
    """Fill ``m.pixels`` for the invalid polygons of ``shapes`` whose repair has area, and give
    the harmless ones their repaired geometry in ``m.geoms`` (so the overlap and no-pixel checks
    see them, as the targets will)."""
    for i in np.flatnonzero(~m.valid & (m.fixed_area > 0)).tolist():
        change = compare_pixels(shapes[i].points, m.fixed[i], height=heights[i], width=widths[i])
        m.pixels[i] = change
        if change.harmless:
            parts = polygon_parts(m.fixed[i])
            m.geoms[i] = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def invalid_finding(
    m: Measures, i: int, shape: Shape, image: str, height: int, width: int
) -> Finding:
    """The finding of the invalid polygon ``shape`` (row ``i`` of ``m``) of image ``image``."""
    change = m.pixels[i]
    if not isinstance(change, PixelChange):
        change = compare_pixels(shape.points, m.fixed[i], height=height, width=width)
        m.pixels[i] = change
    reason = str(m.reason[i])
    parts = polygon_parts(m.fixed[i])
    holes = sum(len(p.interiors) for p in parts)
    before, after = float(m.shoelace[i]), float(m.fixed_area[i])
    case = describe_outline(shape.points, reason, width=width, height=height, parts=len(parts))
    details: dict[str, Any] = {
        "reason": reason, "case": case, "parts": len(parts), "holes": holes,
        "area_before": before, "area_after": after, "pixels": change.drawn,
        "repaired_pixels": change.repaired, "changed_pixels": change.changed,
    }  # fmt: skip
    head = f"{shape.kind} is invalid ({reason}: {case})"
    if change.harmless:
        return Finding(
            "warning", HARMLESS,
            f"{head}; make_valid covers the same {change.drawn} pixel(s): converts as drawn",
            image, shape.order, shape.label, details,
        )  # fmt: skip
    code = (
        "polygon-self-intersection" if reason.startswith(SELF_INTERSECTION) else "invalid-polygon"
    )
    made = (
        f"make_valid gives {len(parts)} polygon(s) with {holes} hole(s), "
        f"area {before:.6g} -> {after:.6g} px²"
    )
    if change.compared:
        tail = (
            f", and changes {change.changed} pixel(s) ({change.drawn} drawn, {change.repaired} "
            "repaired): use --repair"
        )
    else:
        details["window"] = list(change.window)
        tail = f"; its pixels were not compared ({too_large(change)}): use --repair"
    return Finding("error", code, f"{head}; {made}{tail}", image, shape.order, shape.label, details)
