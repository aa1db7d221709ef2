"""Class maps and masks to polygons traced on pixel edges, and masks to CVAT RLE.

Every connected region (4-connected: pixels that touch only at a corner are separate regions)
of a class becomes one polygon whose vertices lie on pixel corners (integer coordinates), traced
by ``rasterio.features.shapes``. Under the pixel-centre rule (``docs/data-model.md``) such a
polygon contains exactly the centres of its own pixels, so drawing the polygons again gives the
class map back, pixel for pixel.

Annotation tools other than COCO have no polygon holes, so :func:`hole_free` cuts a region with
holes into hole-free pieces that tile it: horizontal bands cut at the top row of each hole (each
hole then opens onto a band edge). The pieces together still hold exactly the region's pixels.

Example:
    >>> m = np.zeros((4, 5), np.uint8); m[1:4, 1:4] = 2; m[2, 2] = 0
    >>> [(r.label, len(r.polygon.interiors)) for r in class_regions(m)]
    [(2, 1)]
    >>> [p.bounds for p in hole_free(class_regions(m)[0].polygon)]
    [(1.0, 1.0, 4.0, 2.0), (1.0, 2.0, 4.0, 4.0)]
    >>> encode_cvat_rle(np.array([[True, True], [True, False]]))
    '0,3,1'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from numpy.typing import NDArray
from shapely.affinity import translate
from shapely.geometry import Polygon

from microprep.errors import UsageError
from microprep.targets.raster import fill_rings

__all__ = [
    "Region",
    "class_regions",
    "encode_cvat_rle",
    "hole_free",
    "hole_free_all",
    "mask_polygons",
    "paint_polygons",
    "simplify_polygon",
]

logger = logging.getLogger(__name__)

#: dtypes rasterio traces directly; others are cast to the first that holds their values.
_TRACEABLE = (np.uint8, np.uint16, np.int16, np.int32)


@dataclass(frozen=True, slots=True)
class Region:
    """One connected region of a class map: its class index and its pixel-edge polygon
    (``x`` right, ``y`` down, pixel units; holes as interior rings)."""

    label: int
    polygon: Polygon


def _traceable(values: NDArray[Any]) -> NDArray[Any]:
    if values.dtype in (np.dtype(t) for t in _TRACEABLE):
        return values
    top = int(values.max()) if values.size else 0
    if top <= np.iinfo(np.int32).max and (values.size == 0 or int(values.min()) >= 0):
        return values.astype(np.int32)
    raise UsageError(f"class values up to {top} cannot be traced (int32 at most)")


def class_regions(
    class_map: NDArray[Any], *, origin: tuple[int, int] = (0, 0), background: int = 0
) -> list[Region]:
    """The connected regions of every class of a 2D class map (``background`` left out).

    Args:
        class_map: ``(H, W)`` integer class indices.
        origin: ``(top, left)`` of the map in the image (for crops of a larger image).
        background: the value that is no region.

    Returns:
        The regions in rasterio's scan order (by first pixel, row-major).
    """
    if class_map.ndim != 2:
        raise UsageError(f"class maps must be 2D, got shape {class_map.shape}")
    values = _traceable(np.ascontiguousarray(class_map))
    top, left = origin
    transform = Affine.translation(left, top)
    out: list[Region] = []
    for geometry, value in rasterio.features.shapes(
        values, mask=values != background, connectivity=4, transform=transform
    ):
        out.append(Region(int(value), _integer_polygon(geometry)))
    return out


def _integer_polygon(geometry: dict[str, Any]) -> Polygon:
    """A GeoJSON polygon from rasterio as a shapely polygon with exact integer corners."""
    rings = [np.rint(np.asarray(ring, np.float64)) for ring in geometry["coordinates"]]
    return Polygon(rings[0], rings[1:])


def mask_polygons(mask: NDArray[np.bool_], *, origin: tuple[int, int] = (0, 0)) -> list[Polygon]:
    """The pixel-edge polygons (holes kept) of the regions of a bool mask.

    Example:
        >>> [p.area for p in mask_polygons(np.array([[1, 0], [0, 1]], bool))]
        [1.0, 1.0]
    """
    return [r.polygon for r in class_regions(mask.astype(np.uint8), origin=origin)]


def hole_free(polygon: Polygon) -> list[Polygon]:
    """``polygon`` (pixel-edge, integer corners) as hole-free pieces holding the same pixels.

    A polygon without holes comes back alone. Otherwise its pixels are cut into horizontal
    bands at the top row of each hole and every band traced again; each hole then touches the
    top edge of a band, so no piece encloses anything.
    """
    if not polygon.interiors:
        return [polygon]
    x0, y0, x1, y1 = (round(v) for v in polygon.bounds)
    rings = [np.asarray(polygon.exterior.coords)[:-1]]
    rings += [np.asarray(ring.coords)[:-1] for ring in polygon.interiors]
    pixels = fill_rings(rings, y0, x0, y1 - y0, x1 - x0)
    cuts = np.zeros(y1 - y0, np.int32)
    for ring in polygon.interiors:
        cuts[round(min(y for _, y in ring.coords)) - y0] = 1
    band = (np.cumsum(cuts) + 1).astype(np.int32)
    bands = np.where(pixels, band[:, None], 0).astype(np.int32)
    pieces: list[Polygon] = []
    for region in class_regions(bands, origin=(y0, x0)):
        if region.polygon.interiors:  # cannot happen for pixel sets; kept as a guard
            pieces.extend(hole_free(region.polygon))
        else:
            pieces.append(region.polygon)
    return pieces


def hole_free_all(polygons: Sequence[Polygon]) -> list[list[Polygon]]:
    """:func:`hole_free` of many polygons, traced in one pass: the same pieces, per polygon.

    The band maps of all polygons with holes are stacked into one strip (each at its own rows,
    with its own band values) and traced by a single ``rasterio.features.shapes`` call, instead
    of one call per polygon; polygons without holes come back alone.

    Example:
        >>> m = np.zeros((4, 5), np.uint8); m[1:4, 1:4] = 2; m[2, 2] = 0
        >>> [[p.bounds for p in pieces] for pieces in hole_free_all(
        ...     [r.polygon for r in class_regions(m)])]
        [[(1.0, 1.0, 4.0, 2.0), (1.0, 2.0, 4.0, 4.0)]]
    """
    out: list[list[Polygon]] = [[p] if not p.interiors else [] for p in polygons]
    holed = [i for i, p in enumerate(polygons) if p.interiors]
    if not holed:
        return out
    crops: list[NDArray[np.int32]] = []
    places: list[tuple[int, int, int]] = []  # (row in the strip, y0, x0) per holed polygon
    owner: list[int] = [0]  # band value -> index in ``polygons`` (value 0: nothing)
    row = 0
    for i in holed:
        polygon = polygons[i]
        x0, y0, x1, y1 = (round(v) for v in polygon.bounds)
        rings = [np.asarray(polygon.exterior.coords)[:-1]]
        rings += [np.asarray(ring.coords)[:-1] for ring in polygon.interiors]
        pixels = fill_rings(rings, y0, x0, y1 - y0, x1 - x0)
        cuts = np.zeros(y1 - y0, np.int32)
        for ring in polygon.interiors:
            cuts[round(min(y for _, y in ring.coords)) - y0] = 1
        band = np.cumsum(cuts).astype(np.int32) + len(owner)
        owner += [i] * (int(cuts.sum()) + 1)
        crops.append(np.where(pixels, band[:, None], 0).astype(np.int32))
        places.append((row, y0, x0))
        row += y1 - y0
    strip = np.zeros((row, max(c.shape[1] for c in crops)), np.int32)
    for crop, (top, _, _) in zip(crops, places, strict=True):
        strip[top : top + crop.shape[0], : crop.shape[1]] = crop
    starts = np.array([top for top, _, _ in places])
    for region in class_regions(strip):
        i = owner[region.label]
        top, y0, x0 = places[int(np.searchsorted(starts, region.polygon.bounds[1], "right")) - 1]
        piece = translate(region.polygon, xoff=x0, yoff=y0 - top)
        out[i].extend(hole_free(piece) if piece.interiors else [piece])
    return out


def simplify_polygon(polygon: Polygon, tolerance: float) -> Polygon:
    """Fewer vertices: Douglas-Peucker within ``tolerance`` pixels, topology kept (no ring
    crosses itself). ``tolerance`` 0 returns ``polygon`` unchanged."""
    if tolerance <= 0:
        return polygon
    simple = shapely.simplify(polygon, tolerance, preserve_topology=True)
    return simple if isinstance(simple, Polygon) and not simple.is_empty else polygon


def paint_polygons(
    shape: tuple[int, int], polygons: Iterable[tuple[int, Polygon]]
) -> NDArray[np.int64]:
    """Draw ``(class index, polygon)`` pairs in order (later wins) with the pixel-centre rule,
    as the readers' targets do: the class map that a tool's export of them would give."""
    height, width = shape
    out = np.zeros(shape, np.int64)
    for label, polygon in polygons:
        x0, y0, x1, y1 = polygon.bounds
        top, left = max(0, int(np.floor(y0))), max(0, int(np.floor(x0)))
        bottom, right = min(height, int(np.ceil(y1))), min(width, int(np.ceil(x1)))
        if bottom <= top or right <= left:
            continue
        rings = [np.asarray(polygon.exterior.coords)[:-1]]
        rings += [np.asarray(ring.coords)[:-1] for ring in polygon.interiors]
        inside = fill_rings(rings, top, left, bottom - top, right - left)
        out[top:bottom, left:right][inside] = label
    return out


def encode_cvat_rle(mask: NDArray[np.bool_]) -> str:
    """The CVAT mask RLE of a bool mask (its bounding box): run lengths row-major, the first
    run counting background pixels (0 when the mask starts with a foreground pixel); the
    inverse of :func:`microprep.readers.cvat_rle.decode_cvat_rle`."""
    flat = np.asarray(mask, bool).reshape(-1)
    if flat.size == 0:
        raise UsageError("cannot encode an empty mask")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return ",".join(map(str, runs.tolist()))


def crop_to_pixels(mask: NDArray[np.bool_]) -> tuple[int, int, NDArray[np.bool_]]:
    """``(top, left, cropped)``: ``mask`` cut to the bounding box of its pixels (non-empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise UsageError("the mask has no pixels")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(top), int(left), mask[top:bottom, left:right]


def ring_points(polygon: Polygon) -> list[tuple[float, float]]:
    """The exterior vertices ``(x, y)``, not repeated at the end."""
    return [(float(x), float(y)) for x, y in list(polygon.exterior.coords)[:-1]]
