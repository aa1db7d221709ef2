"""Checks of shape geometry, turning :class:`~.geometry.Measures` into findings.

The codes and severities (docs/validate.md has the full list):

=========================== ======== ========================================================
code                        severity meaning
=========================== ======== ========================================================
non-finite                  error    a coordinate or the rotation is NaN or infinite
malformed-shape             error    wrong number of points for the kind, or a mask bitmap
                                     whose size is not its box's
too-many-vertices           error    more vertices than ``ValidateOptions.max_vertices``
too-complex                 error    an invalid polygon whose edges cross each other more than
                                     ``MAX_SELF_CROSSINGS`` times: not repaired (make_valid's
                                     cost explodes with the crossings)
too-few-points              error    polygon with < 3 distinct points, polyline < 2, points 0
reversed-box                error    box with ``x_max < x_min`` or ``y_max < y_min``
zero-area                   error    polygon, box, ellipse or mask with no area
polygon-self-intersection   error    polygon whose outline crosses or touches itself, and
                                     whose repair changes its pixels
invalid-polygon             error    the same, invalid for another reason
harmless-invalid-polygon    warning  an invalid polygon whose repair covers the same pixels: it
                                     converts as drawn (see :mod:`.invalid`)
duplicate-vertices          info     consecutive repeated vertices (polygons, polylines)
partly-outside              warning  part of the shape lies outside its image
wholly-outside              error    nothing of the shape lies inside its image (a wrong coordinate
                                     or image size); repair drops the shape
no-pixels                   warning  a valid shape that covers no pixel centre: no object
=========================== ======== ========================================================

Example:
    >>> import numpy as np
    >>> from microprep.model import Shape
    >>> bowtie = np.array([[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]])
    >>> retraced = np.array([[2.0, 2], [12, 2], [12, 12], [2, 12], [2, 2], [12, 2], [12, 7],
    ...                      [2, 7]])
    >>> shapes = [Shape("polygon", "grain", bowtie), Shape("polygon", "grain", retraced)]
    >>> batch = Batch.single("a.png", 16, 16, shapes)
    >>> [(f.severity, f.code) for f in geometry_findings(batch, batch.measure(10_000))]
    [('warning', 'harmless-invalid-polygon'), ('error', 'polygon-self-intersection')]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from microprep.model import Shape
from microprep.targets.raster import rasterize_shape
from microprep.validate.crossings import MAX_SELF_CROSSINGS
from microprep.validate.geometry import AREA_KINDS, Measures, measure
from microprep.validate.invalid import compare_repairs, invalid_finding
from microprep.validate.report import Finding, Severity

logger = logging.getLogger(__name__)

#: Fewest distinct points per kind.
_MIN_DISTINCT = {"polygon": 3, "polyline": 2, "points": 1}
#: A valid shape is rasterized to look for covered pixels when area / perimeter is below this
#: (a convex shape with a larger ratio holds a disk of radius > sqrt(2)/2: a pixel centre).
_THIN = 1.0


@dataclass
class Batch:
    """Shapes of several images, with their image's name, size and position in the export."""

    shapes: list[Shape] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def add(
        self, position: int, name: str, width: int, height: int, shapes: Sequence[Shape]
    ) -> None:
        """Append the shapes of the image at ``position`` (0-based) in the export."""
        k = len(shapes)
        self.shapes.extend(shapes)
        self.names.extend([name] * k)
        self.widths.extend([width] * k)
        self.heights.extend([height] * k)
        self.positions.extend([position] * k)

    @staticmethod
    def single(name: str, width: int, height: int, shapes: Sequence[Shape]) -> Batch:
        """A batch of one image's shapes."""
        batch = Batch()
        batch.add(0, name, width, height, shapes)
        return batch

    def measure(self, max_vertices: int) -> Measures:
        """:func:`~microprep.validate.geometry.measure` of the batch's shapes, with the pixel
        comparison of the invalid polygons (:func:`~microprep.validate.invalid.compare_repairs`)."""
        m = measure(self.shapes, max_vertices)
        compare_repairs(m, self.shapes, self.heights, self.widths)
        return m


def _finding(
    batch: Batch,
    i: int | np.integer[Any],
    severity: Severity,
    code: str,
    message: str,
    **details: Any,
) -> Finding:
    s = batch.shapes[int(i)]
    name = batch.names[int(i)]
    return Finding(severity, code, f"{s.kind} {message}", name, s.order, s.label, details)


def _distinct(points: NDArray[np.float64]) -> int:
    return len(np.unique(points, axis=0)) if len(points) else 0


def geometry_findings(
    batch: Batch, m: Measures, max_vertices: int = 10_000, error_rows: list[int] | None = None
) -> list[Finding]:
    """Findings about each shape's own geometry (not about its image).

    Args:
        batch: the shapes and their images.
        m: ``batch.measure(max_vertices)``.
        max_vertices: the vertex cap of ``too-many-vertices``.
        error_rows: when given, receives the batch index of each shape found in error.

    Returns:
        One finding per problem, in shape order; see the module docstring for the codes.
    """
    out: list[Finding] = []

    def add(i: Any, finding: Finding) -> None:
        out.append(finding)
        if error_rows is not None and finding.severity == "error":
            error_rows.append(int(i))

    def emit(i: Any, severity: Severity, code: str, message: str, **details: Any) -> None:
        add(i, _finding(batch, i, severity, code, message, **details))

    for i in np.flatnonzero(~m.finite):
        emit(i, "error", "non-finite", "has NaN or infinite coordinates")
    for i in np.flatnonzero(m.malformed & m.finite):
        emit(i, "error", "malformed-shape", f"has malformed points ({m.n_vertices[i]} rows)")
    for i in np.flatnonzero(m.n_vertices > max_vertices):
        n = int(m.n_vertices[i])
        message = f"has {n} vertices, more than the cap of {max_vertices}"
        emit(i, "error", "too-many-vertices", message, vertices=n, cap=max_vertices)
    ok = m.finite & ~m.malformed & (m.n_vertices <= max_vertices)
    for i in np.flatnonzero(ok & np.isin(m.kinds, list(_MIN_DISTINCT))):
        need = _MIN_DISTINCT[m.kinds[i]]
        degenerate = m.kinds[i] == "polygon" and m.fixed_area[i] == 0
        if m.n_vertices[i] >= need and not degenerate and not m.duplicates[i]:
            continue
        have = _distinct(batch.shapes[i].points)
        if have < need:
            emit(
                i, "error", "too-few-points", f"has {have} distinct point(s), needs {need}",
                distinct=have, needed=need,
            )  # fmt: skip
        elif degenerate:
            emit(i, "error", "zero-area", "has zero area (collinear vertices)")
    for i in np.flatnonzero(ok & (m.kinds == "box")):
        (x0, y0), (x1, y1) = batch.shapes[i].points
        if x1 < x0 or y1 < y0:
            emit(i, "error", "reversed-box", "is reversed (max < min)")
        elif x1 == x0 or y1 == y0:
            emit(i, "error", "zero-area", f"has zero area ({x1 - x0} x {y1 - y0})")
    for i in np.flatnonzero(ok & np.isin(m.kinds, ["ellipse", "mask"]) & (m.area == 0)):
        what = "radius is not positive" if m.kinds[i] == "ellipse" else "bitmap is empty"
        emit(i, "error", "zero-area", f"has zero area ({what})")
    for i in np.flatnonzero(m.crossings > MAX_SELF_CROSSINGS):
        n = int(m.n_vertices[i])
        message = (
            f"has {n} vertices whose edges cross each other more than {MAX_SELF_CROSSINGS} times "
            "(MAX_SELF_CROSSINGS): too complex to check or repair; redraw it"
        )
        emit(i, "error", "too-complex", message, vertices=n, cap=MAX_SELF_CROSSINGS)
    for k in np.flatnonzero(~m.valid & (m.fixed_area > 0)).tolist():
        s = batch.shapes[k]
        add(k, invalid_finding(m, k, s, batch.names[k], batch.heights[k], batch.widths[k]))
    for i in np.flatnonzero(ok & (m.duplicates > 0)):
        n = int(m.duplicates[i])
        emit(
            i,
            "info",
            "duplicate-vertices",
            f"has {n} repeated consecutive vertex(es)",
            duplicates=n,
        )
    return out


def outside_findings(
    batch: Batch, m: Measures
) -> tuple[list[Finding], NDArray[np.bool_], NDArray[Any]]:
    """``partly-outside`` / ``wholly-outside`` warnings.

    Returns:
        The findings, a bool array marking wholly-outside shapes, and per shape the part inside
        the image of partly-outside area shapes (a shapely geometry, None elsewhere).
    """
    w = np.asarray(batch.widths, dtype=np.float64)
    h = np.asarray(batch.heights, dtype=np.float64)
    x0, y0, x1, y1 = m.bounds.T
    usable = m.finite & ~m.malformed & (m.kinds != "tag") & np.isfinite(m.bounds).all(axis=1)
    area_kind = np.isin(m.kinds, list(AREA_KINDS))
    with np.errstate(invalid="ignore"):
        wholly = (
            np.where(
                area_kind,
                (x1 <= 0) | (y1 <= 0) | (x0 >= w) | (y0 >= h),
                (x1 < 0) | (y1 < 0) | (x0 > w) | (y0 > h),
            )
            & usable
        )
        partly = usable & ~wholly & ((x0 < 0) | (y0 < 0) | (x1 > w) | (y1 > h))
    inside = np.full(len(m.kinds), None, dtype=object)
    cand = np.flatnonzero(partly)
    if len(cand):
        geoms = np.where(m.valid[cand], m.geoms[cand], m.fixed[cand])
        frame = shapely.box(0.0, 0.0, w[cand], h[cand])
        has = np.asarray([g is not None for g in geoms], dtype=bool)
        poly_like = has & area_kind[cand]
        if poly_like.any():
            clipped = shapely.intersection(geoms[poly_like], frame[poly_like])
            inside[cand[poly_like]] = clipped
            empty = cand[poly_like][shapely.area(clipped) == 0]
            wholly[empty], partly[empty] = True, False
        for i in cand[~area_kind[cand]]:
            p = batch.shapes[i].points
            hit = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= w[i]) & (p[:, 1] <= h[i])
            if m.kinds[i] == "polyline" and len(p) >= 2:
                hit_any = shapely.intersects(shapely.LineString(p), shapely.box(0, 0, w[i], h[i]))
            else:
                hit_any = bool(hit.any())
            if not hit_any:
                wholly[i], partly[i] = True, False
    out = [
        _finding(
            batch, i, "warning", "partly-outside",
            f"extends outside its {batch.widths[i]}x{batch.heights[i]} image "
            f"(extent {x0[i]:.6g}, {y0[i]:.6g} .. {x1[i]:.6g}, {y1[i]:.6g})",
            extent=[float(v) for v in m.bounds[i]],
        )
        for i in np.flatnonzero(partly)
    ]  # fmt: skip
    out.extend(
        _finding(
            batch, i, "error", "wholly-outside",
            f"lies wholly outside its {batch.widths[i]}x{batch.heights[i]} image: no object",
            extent=[float(v) for v in m.bounds[i]],
        )
        for i in np.flatnonzero(wholly)
    )  # fmt: skip
    return out, wholly, inside


def no_pixel_findings(
    batch: Batch, m: Measures, wholly: NDArray[np.bool_], inside: NDArray[Any]
) -> list[Finding]:
    """``no-pixels`` warnings: valid area shapes (not wholly outside) that draw no pixel.

    Only thin shapes (area / perimeter below 1 px, inside the image) are rasterized, so the cost
    stays small; what counts as covered is :func:`microprep.targets.raster.rasterize_shape`'s
    pixel-centre rule.
    """
    cand = np.flatnonzero(~shapely.is_missing(m.geoms) & ~wholly)
    if not len(cand):
        return []
    geoms = np.where(shapely.is_missing(inside[cand]), m.geoms[cand], inside[cand])
    length = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        thin = shapely.area(geoms) < _THIN * length
    out = []
    for i in cand[thin]:
        raster = rasterize_shape(batch.shapes[i], batch.heights[i], batch.widths[i])
        if not raster.mask.any():
            out.append(
                _finding(
                    batch, i, "warning", "no-pixels",
                    f"covers no pixel centre (area {m.area[i]:.3g} px²): it draws nothing",
                    area=float(m.area[i]),
                )
            )  # fmt: skip
    return out
