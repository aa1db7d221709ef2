"""The ``coco`` export: one ``coco.json`` with instance masks as compressed RLE.

Layout of the output folder::

    OUT/coco.json

``images`` get ids ``1..`` in the order they are added (every slice of a volume is one image,
named after the slice), ``categories`` are the classes ``1..K`` (``id`` = class index,
background left out), and every object with at least one pixel becomes one annotation whose
``segmentation`` is COCO compressed RLE (column-major, as :func:`pycocotools.mask.encode`
writes it). ``bbox`` is ``[x, y, w, h]`` in pixel units from the object's box; ``area`` its
pixel count. Objects of a volume become one annotation per slice where they have pixels, with
the box of that slice's pixels.

The RLE is computed from the cropped mask of each object (:func:`raster_to_rle`), never from a
full-image mask, so images with hundreds of objects stay cheap.

Example:
    >>> import numpy as np
    >>> from microprep.targets.types import Raster
    >>> raster_to_rle(Raster((1, 1), np.ones((2, 2), dtype=bool)), 4, 4)
    {'size': [4, 4], 'counts': '52203'}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask

from microprep.model import ImageInfo, LabelMap
from microprep.paths import check_relative_name
from microprep.targets.types import Instances, Raster, Targets

logger = logging.getLogger(__name__)

__all__ = ["CocoSink", "Plane", "planes", "raster_to_rle"]


def rle_counts(raster: Raster, height: int, width: int) -> NDArray[np.int64]:
    """Uncompressed COCO RLE counts of a 2D ``raster`` placed in a ``height x width`` image.

    The counts alternate zero runs and one runs over the image flattened column by column
    (Fortran order), starting with a (possibly empty) zero run, exactly as
    :func:`pycocotools.mask.encode` counts them. Only the crop is scanned: the cost is
    proportional to the crop's size, not the image's.

    Raises:
        ValueError: ``raster`` is not 2D or does not fit in the image.

    Example:
        >>> rle_counts(Raster((0, 1), np.ones((1, 1), dtype=bool)), 2, 2).tolist()
        [2, 1, 1]
    """
    mask = raster.mask
    if mask.ndim != 2 or len(raster.origin) != 2:
        raise ValueError(f"expected a 2D raster, got a mask of shape {mask.shape}")
    total = height * width
    if mask.size == 0:
        return np.array([total], dtype=np.int64)
    top, left = (int(v) for v in raster.origin)
    h, w = mask.shape
    if top < 0 or left < 0 or top + h > height or left + w > width:
        raise ValueError(
            f"raster at (top={top}, left={left}) of size {h}x{w} "
            f"does not fit a {height}x{width} image"
        )
    # One zero row above and below the crop: every column then starts and ends with 0, so the
    # changes found in the flattened crop never straddle two columns.
    padded = np.zeros((h + 2, w), dtype=np.int8)
    padded[1:-1] = mask
    flat = padded.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    col, row = np.divmod(change, h + 2)
    pos = (col + left) * height + (row - 1 + top)
    # A column whose ones reach the bottom edge followed by one whose ones start at the top
    # edge gives the same position twice (an empty zero run): drop both.
    if top == 0 and top + h == height and pos.size > 1:
        same = pos[1:] == pos[:-1]
        if same.any():
            keep = np.ones(pos.size, dtype=bool)
            keep[1:][same] = False
            keep[:-1][same] = False
            pos = pos[keep]
    counts = np.diff(np.concatenate(([0], pos, [total])))
    if pos.size and pos[-1] == total:
        counts = counts[:-1]  # the last run is a one run up to the end: no empty zero run
    return counts.astype(np.int64, copy=False)


def raster_to_rle(raster: Raster, height: int, width: int) -> dict[str, Any]:
    """Compressed COCO RLE of a 2D ``raster`` in a ``height x width`` image.

    Returns ``{"size": [height, width], "counts": str}``, identical to
    ``pycocotools.mask.encode`` of the full mask (with ``counts`` decoded to ``str`` for JSON).
    An empty raster gives the RLE of an empty mask.

    Example:
        >>> raster_to_rle(Raster((0, 0), np.zeros((0, 0), dtype=bool)), 2, 3)
        {'size': [2, 3], 'counts': '6'}
    """
    counts = rle_counts(raster, height, width)
    rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


@dataclass(frozen=True, slots=True, eq=False)
class Plane:
    """One 2D image of a :class:`Targets`: the image itself, or one slice of a volume.

    ``class_map`` is ``(H, W)``; ``instances`` are 2D (origins ``(top, left)``, boxes
    ``x_min, y_min, x_max, y_max``) and hold only objects with at least one pixel.
    """

    image: ImageInfo
    class_map: NDArray[np.unsignedinteger]
    instances: Instances


def planes(targets: Targets) -> tuple[list[Plane], int]:
    """Split ``targets`` into 2D planes and count the objects that have no pixel at all.

    A 2D image gives one plane whose instances are the non-empty objects, boxes as given. A
    volume ``(Z, H, W)`` gives one plane per slice, named after ``targets.images[z]``; each
    object with pixels in slice ``z`` appears in that plane with its slice's mask, pixel count
    and a box recomputed from that slice's pixels (float, exclusive max).

    Raises:
        ValueError: the class map is neither 2D nor 3D, or the image list does not match it.

    Example:
        >>> from microprep.model import ImageInfo
        >>> t = Targets("a.png", (ImageInfo("a.png", 2, 2),), np.zeros((2, 2), np.uint8),
        ...             Instances.empty((2, 2)), 1)
        >>> [p.image.name for p in planes(t)[0]]
        ['a.png']
    """
    cmap = targets.class_map
    inst = targets.instances
    if cmap.ndim == 2:
        _check_images(targets, 1)
        nonempty = np.array([r.mask.size > 0 and bool(r.mask.any()) for r in inst.rasters], bool)
        skipped = int(nonempty.size - np.count_nonzero(nonempty))
        if skipped:
            inst = _subset(inst, nonempty)
        return [Plane(targets.images[0], cmap, inst)], skipped
    if cmap.ndim != 3:
        raise ValueError(f"class map of {targets.name!r} has shape {cmap.shape}: need 2D or 3D")
    depth, height, width = cmap.shape
    _check_images(targets, depth)
    per_slice: list[list[int]] = [[] for _ in range(depth)]
    rasters: list[list[Raster]] = [[] for _ in range(depth)]
    boxes: list[list[tuple[float, float, float, float]]] = [[] for _ in range(depth)]
    areas: list[list[int]] = [[] for _ in range(depth)]
    skipped = 0
    for i, raster in enumerate(inst.rasters):
        if raster.mask.ndim != 3 or len(raster.origin) != 3:
            raise ValueError(f"object {i} of volume {targets.name!r} does not have a 3D mask")
        z0, top, left = (int(v) for v in raster.origin)
        found = False
        for dz in range(raster.mask.shape[0]):
            z = z0 + dz
            if z < 0 or z >= depth:
                raise ValueError(f"object {i} of volume {targets.name!r} lies outside its slices")
            sl = raster.mask[dz]
            rows = np.flatnonzero(sl.any(axis=1))
            if not rows.size:
                continue
            found = True
            cols = np.flatnonzero(sl.any(axis=0))
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            crop = sl[r0:r1, c0:c1]
            per_slice[z].append(i)
            rasters[z].append(Raster((top + r0, left + c0), crop))
            boxes[z].append((float(left + c0), float(top + r0), float(left + c1), float(top + r1)))
            areas[z].append(int(np.count_nonzero(crop)))
        if not found:
            skipped += 1
    out: list[Plane] = []
    for z in range(depth):
        idx = np.array(per_slice[z], dtype=np.int64)
        sliced = Instances(
            shape=(height, width),
            rasters=tuple(rasters[z]),
            labels=inst.labels[idx],
            boxes=np.array(boxes[z], dtype=np.float64).reshape(-1, 4),
            areas=np.array(areas[z], dtype=np.int64),
            occluded=inst.occluded[idx],
            groups=inst.groups[idx],
            tracks=inst.tracks[idx],
        )
        out.append(Plane(targets.images[z], cmap[z], sliced))
    return out, skipped


def _check_images(targets: Targets, count: int) -> None:
    if len(targets.images) != count:
        raise ValueError(
            f"{targets.name!r}: {len(targets.images)} image entries for {count} plane(s)"
        )


def _subset(inst: Instances, keep: NDArray[np.bool_]) -> Instances:
    idx = np.flatnonzero(keep)
    return Instances(
        shape=inst.shape,
        rasters=tuple(inst.rasters[i] for i in idx),
        labels=inst.labels[idx],
        boxes=inst.boxes[idx],
        areas=inst.areas[idx],
        occluded=inst.occluded[idx],
        groups=inst.groups[idx],
        tracks=inst.tracks[idx],
    )


class CocoSink:
    """Writes ``OUT/coco.json`` (COCO instance segmentation) on :meth:`close`.

    Args:
        root: the existing output folder.
        labels: the label map; its classes become the categories ``1..K``.
        provenance: JSON-able facts about the run, stored as the file's ``info``.

    Each :meth:`add` appends its images (one per slice for volumes) and annotations, kept in
    memory as small dicts (the RLE strings are compact). Objects without any pixel are left
    out; :attr:`skipped` counts them and :meth:`close` logs a warning when there were any.
    Image names that could escape a folder (``"../x.png"``, absolute paths) raise
    :class:`~microprep.errors.UnsafeInputError`, as in the other exports.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = CocoSink(Path(d), lm, provenance={})
        ...     sink.add(Targets("a.png", (ImageInfo("a.png", 4, 3),),
        ...                      np.zeros((3, 4), np.uint8), Instances.empty((3, 4)), 2), None)
        ...     sink.close()
        ...     json.loads((Path(d) / "coco.json").read_text())["images"][0]["file_name"]
        'a.png'
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        self.provenance = dict(provenance)
        self.skipped = 0
        self._images: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._num_classes = labels.num_classes

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Add one image or volume. ``pixels`` is not used (COCO refers to images by name).

        Raises:
            UnsafeInputError: an image name could escape a folder.
            ValueError: the targets do not fit together (class index outside the label map,
                image list that does not match the class map, raster outside the image).
        """
        plane_list, skipped = planes(targets)
        self.skipped += skipped
        if skipped:
            logger.debug("%s: %d object(s) without pixels left out", targets.name, skipped)
        for plane in plane_list:
            self._add_plane(plane)

    def _add_plane(self, plane: Plane) -> None:
        check_relative_name(plane.image.name)
        height, width = (int(v) for v in plane.class_map.shape)
        image_id = len(self._images) + 1
        self._images.append(
            {"id": image_id, "file_name": plane.image.name, "width": width, "height": height}
        )
        inst = plane.instances
        labels = inst.labels.tolist()
        boxes = inst.boxes.tolist()
        occluded = inst.occluded.tolist()
        groups = inst.groups.tolist()
        tracks = inst.tracks.tolist()
        for i, raster in enumerate(inst.rasters):
            label = int(labels[i])
            if not 1 <= label < self._num_classes:
                raise ValueError(
                    f"{plane.image.name!r}: class index {label} outside 1..{self._num_classes - 1}"
                )
            counts = rle_counts(raster, height, width)
            area = int(counts[1::2].sum())
            rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
            x0, y0, x1, y1 = boxes[i]
            track = int(tracks[i])
            self._annotations.append(
                {
                    "id": len(self._annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "segmentation": {
                        "size": [height, width],
                        "counts": rle["counts"].decode("ascii"),
                    },
                    "area": area,
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "iscrowd": 0,
                    "attributes": {
                        "occluded": bool(occluded[i]),
                        "group": int(groups[i]),
                        "track_id": None if track < 0 else track,
                    },
                }
            )

    def close(self) -> None:
        """Write ``coco.json`` (compact JSON) and warn about objects left out."""
        categories = [
            {"id": i, "name": label.name, "supercategory": ""}
            for i, label in enumerate(self.labels.classes, start=1)
        ]
        doc = {
            "info": self.provenance,
            "licenses": [],
            "images": self._images,
            "categories": categories,
            "annotations": self._annotations,
        }
        # One dumps + write is several times faster than json.dump's many small writes.
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
        (self.root / "coco.json").write_text(text, encoding="utf-8")
        if self.skipped:
            logger.warning(
                "coco: %d object(s) without any pixel were left out of coco.json", self.skipped
            )
