"""A predicted volume as a Labelbox MAL import for a video data row: one frame per slice.

A semantic prediction of a stack or volume (``(Z, H, W)`` class map) is written as one NDJSON
line per volume, a video segmentation mask (labelbox-python's ``VideoMaskAnnotation`` of
``MaskFrame`` and ``MaskInstance``, serialised by ``NDVideoMasks`` in
``labelbox/data/serialization/ndjson/objects.py``; the NDJSON form is the one of the SDK's test
``tests/data/serialization/ndjson/test_dicom.py``, ``video_mask_annotation_ndjson``)::

    {"uuid": "<a fresh uuid4>", "dataRow": {"globalKey": "stack.tif"},
     "masks": {"frames": [{"index": 1, "imBytes": "<base64 PNG>"}, ...],
               "instances": [{"colorRGB": [255, 0, 0], "name": "pore"}, ...]}}

Slice ``z`` is frame ``z + 1``: Labelbox numbers video frames from 1 (the SDK's examples use
``MaskFrame(index=1, ...)``, video keyframes start at ``"frame": 1``, and the composite mask of
an image is ``.../index/1``). Each frame is an RGB PNG (a composite mask) whose pixels of an
instance's ``colorRGB`` belong to the ontology's mask tool named ``name``; black is background.
The PNG goes into ``imBytes`` (base64), so nothing needs hosting (``imBytes`` for video masks:
labelbox-python pull request 1277, "add support to image bytes as a source for raster video
mask import"). One instance per class (the semantic form), so the class maps are written
exactly, voxel for voxel. Labelbox video has no polygons (its video segments hold boxes, points
and lines only), so masks are the only exact form. Slices without foreground get no frame.

The colour of a class is its prediction colour, unless that is black or taken by another class;
then the first free colour of a fixed list is used.

Example:
    >>> v = np.zeros((2, 3, 3), np.uint8); v[1, 1, 1] = 1
    >>> data, n = labelbox_video_ndjson([("v.tif", v)], classes=("background", "pore"),
    ...                                 colors=((0, 0, 0), (255, 0, 0)))
    >>> line = json.loads(data)
    >>> n, line["dataRow"], [f["index"] for f in line["masks"]["frames"]]
    (1, {'globalKey': 'v.tif'}, [2])
    >>> line["masks"]["instances"]
    [{'colorRGB': [255, 0, 0], 'name': 'pore'}]
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["instance_colors", "labelbox_video_ndjson"]

logger = logging.getLogger(__name__)

Color = tuple[int, int, int]


def _spare_colors() -> Iterator[Color]:
    """Distinct non-black colours, saturated ones first."""
    for step in (255, 128, 64, 192, 32, 96, 160, 224):
        for rgb in itertools.product((0, step), repeat=3):
            if any(rgb):
                yield (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    for value in range(1, 256**3):  # pragma: no cover - more than 56 classes
        yield (value >> 16, (value >> 8) & 255, value & 255)


def instance_colors(classes: Sequence[str], colors: Sequence[Sequence[int]]) -> list[Color]:
    """One distinct, non-black ``colorRGB`` per class (index 0, the background, is black).

    Example:
        >>> instance_colors(("bg", "a", "b"), ((0, 0, 0), (0, 0, 0), (9, 9, 9)))
        [(0, 0, 0), (0, 0, 255), (9, 9, 9)]
    """
    out: list[Color] = [(0, 0, 0)]
    wanted = [tuple(int(v) for v in c[:3]) for c in colors]
    used: set[Color] = {(0, 0, 0)}
    spare = _spare_colors()
    for label in range(1, len(classes)):
        color = wanted[label] if label < len(wanted) else (0, 0, 0)
        rgb: Color = (color[0], color[1], color[2])
        if rgb in used or not any(rgb):
            # the prediction's colours are always wanted first: a free colour not among them
            rgb = next(c for c in spare if c not in used and c not in wanted)
        used.add(rgb)
        out.append(rgb)
    return out


def _png(rgb: NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _line(
    name: str, volume: NDArray[Any], classes: Sequence[str], palette: NDArray[np.uint8]
) -> tuple[str | None, int]:
    """The MAL line of one volume (None when it has no foreground) and its masks (frame, class)."""
    frames: list[dict[str, Any]] = []
    present: set[int] = set()
    masks = 0
    for z in range(int(volume.shape[0])):
        labels = np.unique(volume[z])
        labels = labels[labels != 0]
        if labels.size == 0:
            continue
        present.update(int(v) for v in labels)
        masks += int(labels.size)
        frames.append({"index": z + 1, "imBytes": _png(palette[volume[z]])})
    if not frames:
        return None, 0
    instances = [
        {"colorRGB": [int(v) for v in palette[label]], "name": classes[label]}
        for label in sorted(present)
    ]
    record = {
        "uuid": str(uuid.uuid4()),
        "dataRow": {"globalKey": name},
        "masks": {"frames": frames, "instances": instances},
    }
    return json.dumps(record, separators=(",", ":")), masks


def labelbox_video_ndjson(
    volumes: Iterable[tuple[str, NDArray[Any]]],
    *,
    classes: Sequence[str],
    colors: Sequence[Sequence[int]],
) -> tuple[bytes, int]:
    """The MAL import NDJSON of the ``(name, (Z, H, W) class map)`` volumes (module docstring),
    and the number of masks written (one per class and frame it appears in)."""
    palette = np.array(instance_colors(classes, colors), np.uint8)
    lines = []
    total = 0
    for name, volume in volumes:
        line, masks = _line(name, np.asarray(volume), classes, palette)
        logger.debug("%s: %d masks over %d slices", name, masks, volume.shape[0])
        if line is not None:
            lines.append(line)
        total += masks
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8"), total
