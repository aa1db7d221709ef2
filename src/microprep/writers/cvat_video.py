"""A predicted volume as CVAT for video 1.1 XML: one frame per slice, shapes in tracks.

A semantic prediction of a stack or volume (``(Z, H, W)`` class map, ``prep predict`` of a 3D
U-Net or slice by slice) is written for "Upload annotations" into a CVAT task whose frames are
the slices (frame ``z`` = slice ``z``)::

    <annotations><version>1.1</version>
      <meta><task><name>predictions</name><size>Z</size><mode>interpolation</mode>
        <start_frame>0</start_frame><stop_frame>Z-1</stop_frame><frame_filter></frame_filter>
        <labels>...</labels><original_size><width>W</width><height>H</height></original_size>
      </task></meta>
      <track id="0" label="pore" source="auto" [group_id="4"]>
        <polygon frame="3" outside="0" occluded="0" keyframe="1" points="..." z_order="0"/>
        <polygon frame="4" outside="0" occluded="0" keyframe="1" points="..." z_order="0"/>
        <polygon frame="5" outside="1" occluded="0" keyframe="1" points="..." z_order="0"/>
      </track>
    </annotations>

Each slice is traced like an image (:mod:`microprep.writers.shapes`: pixel-edge polygons, hole-free
pieces). Slices are joined by the connected 3D regions of each class (6-connected: voxels that
share a face). A 3D region spans consecutive slices; it becomes one track with one polygon per
slice (the first piece of the region on that slice), closed by an ``outside="1"`` shape on the
next slice, as CVAT writes the end of a track. Further pieces of the region on a slice (the
region splits within the slice, or holes were cut out) are one-slice tracks of their own; all
tracks of one 3D region share a ``group_id``, so ``prep convert --volume`` reads each 3D region
back as one object, and the class maps voxel for voxel.

Example:
    >>> v = np.zeros((2, 3, 3), np.uint8); v[:, 1, 1] = 1
    >>> data, n = cvat_video_xml("v", v, classes=("background", "pore"),
    ...                          colors=((0, 0, 0), (255, 0, 0)))
    >>> xml = data.decode()
    >>> n, xml.count("<track "), xml.count('outside="0"'), "<stop_frame>1</stop_frame>" in xml
    (2, 1, 2, True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import zarr
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import Point, Polygon
from zarr.storage import LocalStore

from microprep.errors import StoreError
from microprep.predict.write import read_prediction_attrs
from microprep.writers.cvat import label_meta
from microprep.writers.vectorize import class_regions, hole_free_all

__all__ = ["cvat_video_xml", "store_volumes"]

logger = logging.getLogger(__name__)


def store_volumes(path: Any, wanted: Sequence[str]) -> list[tuple[str, NDArray[Any]]]:
    """The ``(Z, H, W)`` class maps of the volume nodes named in ``wanted``, in store order.

    Raises:
        StoreError: a damaged node.
    """
    attrs = read_prediction_attrs(path)
    out = []
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r", zarr_format=3)
        for group in attrs["nodes"]:
            node: Any = root[group]
            name = str(node.attrs.get("name", group))
            if name in wanted and len(node.attrs.get("shape", ())) == 3:
                out.append((name, np.asarray(node["labels"][...])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: the prediction store is damaged: {exc}") from exc
    return out


def _regions_3d(volume: NDArray[Any]) -> NDArray[np.int64]:
    """Ids of the 6-connected regions of each class (0: background), unique over classes."""
    out = np.zeros(volume.shape, np.int64)
    offset = 0
    for label in np.unique(volume):
        if label == 0:
            continue
        ids, count = ndimage.label(volume == label)
        inside = ids > 0
        out[inside] = ids[inside] + offset
        offset += int(count)
    return out


def _pixel_of(polygon: Polygon, class_map: NDArray[Any], label: int) -> tuple[int, int]:
    """One pixel ``(y, x)`` of a pixel-edge region: in the top row of its bounds."""
    x0, y0, x1, _ = (int(v) for v in polygon.bounds)
    for x in range(x0, x1):
        if class_map[y0, x] == label and polygon.contains(Point(x + 0.5, y0 + 0.5)):
            return y0, x
    raise AssertionError("a pixel-edge region has a pixel in its top row")  # pragma: no cover


def _points(polygon: Polygon) -> str:
    flat = np.asarray(polygon.exterior.coords, np.float64)[:-1].reshape(-1).tolist()
    return ";".join(["%.2f,%.2f"] * (len(flat) // 2)) % tuple(flat)


def _track(track_id: int, label: str, group: int, pieces: list[tuple[int, str]], depth: int) -> str:
    head = f'<track id="{track_id}" label="{label}" source="auto"'
    head += f' group_id="{group}">' if group else ">"
    shape = '<polygon frame="{}" outside="{}" occluded="0" keyframe="1" points="{}" z_order="0"/>'
    body = [shape.format(frame, 0, points) for frame, points in pieces]
    last_frame, last_points = pieces[-1]
    if last_frame + 1 < depth:  # the track ends: absent from the next frame on
        body.append(shape.format(last_frame + 1, 1, last_points))
    return head + "\n" + "\n".join(body) + "\n</track>\n"


def cvat_video_xml(
    name: str,
    volume: NDArray[Any],
    *,
    classes: Sequence[str],
    colors: Sequence[Sequence[int]],
) -> tuple[bytes, int]:
    """The CVAT for video 1.1 XML of the ``(Z, H, W)`` class map ``volume`` (module docstring),
    and the number of visible shapes written."""
    depth, height, width = (int(v) for v in volume.shape)
    regions_3d = _regions_3d(volume)
    # per 3D region: its label and, per slice, its pieces (exterior points)
    found: dict[int, tuple[int, dict[int, list[str]]]] = {}
    for z in range(depth):
        regions = class_regions(volume[z])
        pieces = hole_free_all([region.polygon for region in regions])
        for region, cut in zip(regions, pieces, strict=True):
            y, x = _pixel_of(region.polygon, volume[z], region.label)
            entry = found.setdefault(int(regions_3d[z, y, x]), (region.label, {}))
            entry[1].setdefault(z, []).extend(_points(piece) for piece in cut)
    tracks: list[str] = []
    for region_id, (label, slices) in sorted(found.items()):
        frames = sorted(slices)
        several = any(len(slices[z]) > 1 for z in frames)
        group = region_id if several else 0
        text = escape(classes[label], {'"': "&quot;"})
        main = [(z, slices[z][0]) for z in frames]
        tracks.append(_track(len(tracks), text, group, main, depth))
        for z in frames:
            for points in slices[z][1:]:
                tracks.append(_track(len(tracks), text, group, [(z, points)], depth))
    task = (
        f"<name>{escape(name)}</name><size>{depth}</size><mode>interpolation</mode>"
        f"<overlap>0</overlap><start_frame>0</start_frame><stop_frame>{depth - 1}</stop_frame>"
        "<frame_filter></frame_filter>"
    )
    size = f"<original_size><width>{width}</width><height>{height}</height></original_size>"
    meta = f"<meta><task>{task}{label_meta(classes, colors)}{size}</task></meta>"
    logger.debug("%s: %d tracks over %d slices", name, len(tracks), depth)
    shapes = sum(len(pieces) for _, slices in found.values() for pieces in slices.values())
    data = (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
        f"{meta}\n{''.join(tracks)}</annotations>\n"
    )
    return data.encode("utf-8"), shapes
