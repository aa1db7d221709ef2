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
from itertools import chain
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from numpy.typing import NDArray
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

_POLYGON = 3  # shapely.get_type_id of a Polygon


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
    labels: list[int] = []
    rings: list[Any] = []
    ring_counts: list[int] = []
    for geometry, value in rasterio.features.shapes(
        values, mask=values != background, connectivity=4, transform=Affine.translation(left, top)
    ):
        labels.append(int(value))
        coordinates = geometry["coordinates"]
        rings.extend(coordinates)
        ring_counts.append(len(coordinates))
    polygons = _integer_polygons(rings, ring_counts)
    return [Region(label, polygon) for label, polygon in zip(labels, polygons, strict=True)]


def _integer_polygons(rings: list[Any], ring_counts: list[int]) -> list[Polygon]:
    """GeoJSON rings from rasterio (each polygon's exterior first, then its holes;
    ``ring_counts`` rings per polygon) as shapely polygons with exact integer corners, built
    in one vectorised pass."""
    if not rings:
        return []
    lengths = np.fromiter(map(len, rings), np.int64, len(rings))
    # one flat run of numbers: much faster than numpy reading a list of (x, y) tuples
    flat = chain.from_iterable(chain.from_iterable(rings))
    coords = np.fromiter(flat, np.float64, 2 * int(lengths.sum())).reshape(-1, 2)
    np.rint(coords, out=coords)
    linear = shapely.linearrings(coords, indices=np.repeat(np.arange(len(rings)), lengths))
    owner = np.repeat(np.arange(len(ring_counts)), ring_counts)
    return list(shapely.polygons(linear, indices=owner))


def mask_polygons(mask: NDArray[np.bool_], *, origin: tuple[int, int] = (0, 0)) -> list[Polygon]:
    """The pixel-edge polygons (holes kept) of the regions of a bool mask.

    Example:
        >>> [p.area for p in mask_polygons(np.array([[1, 0], [0, 1]], bool))]
        [1.0, 1.0]
    """
    return [r.polygon for r in class_regions(mask.astype(np.uint8), origin=origin)]


def hole_free(polygon: Polygon) -> list[Polygon]:
    """``polygon`` (pixel-edge, integer corners) as hole-free pieces holding the same pixels.

    A polygon without holes comes back alone. Otherwise it is cut into horizontal bands at the
    top row of each hole; each hole then touches the top edge of a band, so no piece encloses
    anything. The same as :func:`hole_free_all` of the one polygon.
    """
    return hole_free_all([polygon])[0]


def hole_free_all(polygons: Sequence[Polygon]) -> list[list[Polygon]]:
    """:func:`hole_free` of many polygons: the hole-free pieces of each, in one vectorised pass.

    A polygon without holes comes back alone. A pixel-edge polygon (integer corners, every edge
    horizontal or vertical) with holes is cut geometrically, without tracing pixels again: it
    is intersected with one box per band (the rows from one hole top to the next), the band
    intersections split into their connected parts, and vertices on a straight run dropped,
    so the pieces are what tracing the band pixels would give. Any other polygon with holes
    (a simplified one, with slanted edges) is drawn on the pixel grid and its bands traced.

    Example:
        >>> m = np.zeros((4, 5), np.uint8); m[1:4, 1:4] = 2; m[2, 2] = 0
        >>> [[p.bounds for p in pieces] for pieces in hole_free_all(
        ...     [r.polygon for r in class_regions(m)])]
        [[(1.0, 1.0, 4.0, 2.0), (1.0, 2.0, 4.0, 4.0)]]
    """
    out: list[list[Polygon]] = [[p] for p in polygons]
    geometries = np.empty(len(polygons), object)
    geometries[:] = list(polygons)
    holed = np.flatnonzero(shapely.get_num_interior_rings(geometries) > 0)
    if not holed.size:
        return out
    exact = _pixel_edge(geometries[holed])
    for i in holed[~exact]:
        out[i] = _traced_hole_free(polygons[i])
    for i, pieces in zip(holed[exact], _band_pieces(geometries[holed[exact]]), strict=True):
        out[i] = pieces
    return out


def _pixel_edge(polygons: NDArray[np.object_]) -> NDArray[np.bool_]:
    """Per polygon: are all its corners integers and all its edges horizontal or vertical?"""
    rings, owner = shapely.get_rings(polygons, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    step = np.diff(coords, axis=0)
    slanted = (ring[1:] == ring[:-1]) & (step[:, 0] != 0) & (step[:, 1] != 0)
    off_grid = (coords != np.rint(coords)).any(axis=1)
    bad = np.bincount(owner[ring[1:][slanted]], minlength=len(polygons))
    bad += np.bincount(owner[ring[off_grid]], minlength=len(polygons))
    return np.asarray(bad == 0)


def _band_pieces(polygons: NDArray[np.object_]) -> list[list[Polygon]]:
    """The hole-free pieces of pixel-edge polygons with holes, cut at every hole's top row."""
    if not polygons.size:
        return []
    bounds = shapely.bounds(polygons)
    rings, owner = shapely.get_rings(polygons, return_index=True)
    # band edges per polygon: the top of every ring (the exterior's is the polygon's top) and
    # the polygon's bottom, sorted and without repeats
    edge_owner = np.concatenate((owner, np.arange(len(polygons))))
    edge_y = np.concatenate((shapely.bounds(rings)[:, 1], bounds[:, 3]))
    order = np.lexsort((edge_y, edge_owner))
    edge_owner, edge_y = edge_owner[order], edge_y[order]
    new = np.concatenate(([True], (np.diff(edge_owner) != 0) | (np.diff(edge_y) != 0)))
    edge_owner, edge_y = edge_owner[new], edge_y[new]
    inner = edge_owner[1:] == edge_owner[:-1]
    band_owner, band_top, band_bottom = (
        edge_owner[:-1][inner],
        edge_y[:-1][inner],
        edge_y[1:][inner],
    )
    # each band's rectangle one pixel wider than the polygon, so that only the cut lines touch
    # its boundary; ``clip_by_rect`` is fast but may join parts that meet at a corner into one
    # ring that touches itself, so the few bands it gives invalid are intersected again
    left, right = bounds[band_owner, 0] - 1, bounds[band_owner, 2] + 1
    cut = np.empty(len(band_owner), object)
    cut[:] = [
        shapely.clip_by_rect(polygons[i], x0, y0, x1, y1)
        for i, x0, y0, x1, y1 in zip(
            band_owner.tolist(),
            left.tolist(),
            band_top.tolist(),
            right.tolist(),
            band_bottom.tolist(),
            strict=True,
        )
    ]
    redo = np.flatnonzero(~shapely.is_valid(cut))
    if redo.size:
        owner_redo = band_owner[redo]
        boxes = shapely.box(left[redo], band_top[redo], right[redo], band_bottom[redo])
        cut[redo] = shapely.intersection(polygons[owner_redo], boxes)
    parts, part_band = shapely.get_parts(cut, return_index=True)
    areas = shapely.get_type_id(parts) == _POLYGON  # touching edges come back as lines
    parts, part_owner = parts[areas], band_owner[part_band[areas]]
    parts = _drop_straight_vertices(parts)
    out: list[list[Polygon]] = [[] for _ in range(len(polygons))]
    holed = shapely.get_num_interior_rings(parts) > 0
    for part, i, again in zip(parts, part_owner.tolist(), holed.tolist(), strict=True):
        # every hole opens onto a cut line, so no part encloses anything; kept as a guard
        out[i].extend(_traced_hole_free(part) if again else [part])
    return out


def _drop_straight_vertices(polygons: NDArray[np.object_]) -> NDArray[np.object_]:
    """Pixel-edge polygons without the vertices that lie on a straight run of their rings
    (the clipping leaves some where a cut line meets an edge)."""
    if not polygons.size:
        return polygons
    rings, owner = shapely.get_rings(polygons, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    # rings are closed (last vertex = first): look at each vertex's neighbours cyclically
    last = np.concatenate((ring[1:] != ring[:-1], [True]))
    first = np.concatenate(([True], ring[1:] != ring[:-1]))
    keep_rows = ~last
    coords, ring, first = coords[keep_rows], ring[keep_rows], first[keep_rows]
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(coords)))
    position = np.arange(len(coords)) - np.repeat(starts, counts)
    base = np.repeat(starts, counts)
    size = np.repeat(counts, counts)
    before = coords[base + (position - 1) % size]
    after = coords[base + (position + 1) % size]
    straight = ((before[:, 0] == coords[:, 0]) & (coords[:, 0] == after[:, 0])) | (
        (before[:, 1] == coords[:, 1]) & (coords[:, 1] == after[:, 1])
    )
    coords, ring = coords[~straight], ring[~straight]
    linear = shapely.linearrings(coords, indices=ring)
    return np.asarray(shapely.polygons(linear, indices=owner))


def _traced_hole_free(polygon: Polygon) -> list[Polygon]:
    """Hole-free pieces of any polygon with holes: its pixels (pixel-centre rule) cut into
    bands at the top row of each hole, every band traced again."""
    x0, y0, x1, y1 = (round(v) for v in polygon.bounds)
    rings = [np.asarray(polygon.exterior.coords)[:-1]]
    rings += [np.asarray(ring.coords)[:-1] for ring in polygon.interiors]
    pixels = fill_rings(rings, y0, x0, y1 - y0, x1 - x0)
    cuts = np.zeros(y1 - y0, np.int32)
    for ring in polygon.interiors:
        cuts[round(min(y for _, y in ring.coords)) - y0] = 1
    band = (np.cumsum(cuts) + 1).astype(np.int32)
    bands = np.where(pixels, band[:, None], 0).astype(np.int32)
    return [
        piece
        for region in class_regions(bands, origin=(y0, x0))
        for piece in hole_free(region.polygon)
    ]


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
