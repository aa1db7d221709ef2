"""Write the sample micrographs' annotations also as VIA 2 JSON, VIA CSV and Labelbox NDJSON.

Usage::

    python sample_data/export_formats.py [--out sample_data]

Reads ``cvat/annotations.xml`` (the reference export) with microprep and writes, under ``--out``:

* ``via/via_project.json``: a VIA 2 project (``_via_img_metadata`` + ``_via_attributes`` with a
  ``class`` dropdown listing the labels in the CVAT order);
* ``via/via_export.csv``: the VIA 2 CSV export of the same regions;
* ``labelbox/export.ndjson``: a Labelbox NDJSON v2 export, with the mask objects' pixels in
  ``labelbox/masks/<feature id>.png`` (the exports themselves only carry URLs).

Each format gets the shapes it can express: VIA has no masks, Labelbox no ellipses, neither has
tags or rotated boxes (a rotated box is written as the polygon of its corners, which rasterizes
identically). Neither has z_order, so shapes are written in painting order (z_order, then file
order): the class maps then agree pixel for pixel with the CVAT export's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from microprep.model import AnnotatedImage, Shape, box_corners
from microprep.readers import read_annotations

#: Shape kinds each format can express (after rotated boxes become polygons).
VIA_KINDS = frozenset({"box", "polygon", "polyline", "points", "ellipse"})
LABELBOX_KINDS = frozenset({"box", "polygon", "polyline", "points", "mask"})


def painting_order(shapes: Iterable[Shape], kinds: frozenset[str]) -> list[Shape]:
    """The shapes a format can express, in the order they are painted into class maps."""
    return sorted((s for s in shapes if s.kind in kinds), key=lambda s: (s.z_order, s.order))


def _xy(points: np.ndarray) -> tuple[list[float], list[float]]:
    return [float(v) for v in points[:, 0]], [float(v) for v in points[:, 1]]


def via_regions(shape: Shape) -> list[dict[str, Any]]:
    """VIA 2 ``shape_attributes`` for one shape (points become one region each)."""
    if shape.kind == "box" and shape.rotation % 360 == 0:
        (x0, y0), (x1, y1) = shape.points
        return [{"name": "rect", "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}]
    if shape.kind == "box":
        xs, ys = _xy(box_corners(shape.points, shape.rotation))
        return [{"name": "polygon", "all_points_x": xs, "all_points_y": ys}]
    if shape.kind == "ellipse":
        (cx, cy), (rx, ry) = shape.points
        theta = math.radians(shape.rotation)
        return [{"name": "ellipse", "cx": cx, "cy": cy, "rx": rx, "ry": ry, "theta": theta}]
    if shape.kind in ("polygon", "polyline"):
        xs, ys = _xy(shape.points)
        return [{"name": shape.kind, "all_points_x": xs, "all_points_y": ys}]
    return [{"name": "point", "cx": float(x), "cy": float(y)} for x, y in shape.points]


def write_via(items: list[AnnotatedImage], labels: list[str], images: Path, out: Path) -> None:
    """``via_project.json`` and ``via_export.csv`` for ``items`` (image sizes from ``images``)."""
    out.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, Any] = {}
    rows: list[list[str]] = []
    for item in items:
        size = (images / item.image.name).stat().st_size
        regions = [
            {"shape_attributes": attrs, "region_attributes": {"class": s.label}}
            for s in painting_order(item.shapes, VIA_KINDS)
            for attrs in via_regions(s)
        ]
        metadata[f"{item.image.name}{size}"] = {
            "filename": item.image.name,
            "size": size,
            "regions": regions,
            "file_attributes": {},
        }
        for i, region in enumerate(regions):
            rows.append(
                [
                    item.image.name,
                    str(size),
                    "{}",
                    str(len(regions)),
                    str(i),
                    json.dumps(region["shape_attributes"]),
                    json.dumps(region["region_attributes"]),
                ]
            )
        if not regions:
            rows.append([item.image.name, str(size), "{}", "0", "0", "{}", "{}"])
    project = {
        "_via_settings": {"project": {"name": "micrographs"}},
        "_via_img_metadata": metadata,
        "_via_attributes": {
            "region": {
                "class": {
                    "type": "dropdown",
                    "description": "",
                    "options": {name: "" for name in labels},
                    "default_options": {},
                }
            },
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(metadata),
    }
    (out / "via_project.json").write_text(json.dumps(project, indent=1) + "\n", encoding="utf-8")
    with (out / "via_export.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "#filename",
                "file_size",
                "file_attributes",
                "region_count",
                "region_id",
                "region_shape_attributes",
                "region_attributes",
            ]
        )
        writer.writerows(rows)


def labelbox_objects(
    shape: Shape, feature: str, item: AnnotatedImage, masks: Path
) -> list[dict[str, Any]]:
    """Labelbox v2 objects for one shape; a mask's pixels go to ``masks/<feature id>.png``."""
    base = {
        "feature_id": feature,
        "feature_schema_id": f"schema-{shape.label}",
        "name": shape.label,
    }
    if shape.kind == "box" and shape.rotation % 360 == 0:
        (x0, y0), (x1, y1) = shape.points
        box = {"top": y0, "left": x0, "height": y1 - y0, "width": x1 - x0}
        return [{**base, "annotation_kind": "ImageBoundingBox", "bounding_box": box}]
    if shape.kind in ("box", "polygon"):
        pts = box_corners(shape.points, shape.rotation) if shape.kind == "box" else shape.points
        polygon = [{"x": float(x), "y": float(y)} for x, y in pts]
        return [{**base, "annotation_kind": "ImagePolygon", "polygon": polygon}]
    if shape.kind == "polyline":
        line = [{"x": float(x), "y": float(y)} for x, y in shape.points]
        return [{**base, "annotation_kind": "ImagePolyline", "line": line}]
    if shape.kind == "points":
        return [
            {
                **base,
                "feature_id": f"{feature}-{i}",
                "annotation_kind": "ImagePoint",
                "point": {"x": float(x), "y": float(y)},
            }
            for i, (x, y) in enumerate(shape.points)
        ]
    # mask: the full-size PNG lies in the local masks folder; the export only has a URL
    assert shape.bitmap is not None
    full = np.zeros((item.image.height, item.image.width), dtype=np.uint8)
    left, top = (round(v) for v in shape.points[0])
    h, w = shape.bitmap.shape
    full[top : top + h, left : left + w][shape.bitmap] = 255
    Image.fromarray(full).save(masks / f"{feature}.png")
    url = f"https://api.labelbox.example/masks/{feature}"
    return [{**base, "annotation_kind": "ImageSegmentationMask", "mask": {"url": url}}]


def write_labelbox(items: list[AnnotatedImage], out: Path) -> None:
    """``export.ndjson`` (one data row per image) and ``masks/`` for ``items``."""
    masks = out / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, item in enumerate(items):
        objects = [
            obj
            for k, s in enumerate(painting_order(item.shapes, LABELBOX_KINDS))
            for obj in labelbox_objects(s, f"feat-{i:02d}-{k:03d}", item, masks)
        ]
        row = {
            "data_row": {"id": f"row-{i:02d}", "external_id": item.image.name},
            "media_attributes": {
                "height": item.image.height,
                "width": item.image.width,
                "mime_type": "image/png",
            },
            "projects": {
                "proj-1": {
                    "name": "micrographs",
                    "labels": [
                        {
                            "label_kind": "Default",
                            "annotations": {
                                "objects": objects,
                                "classifications": [],
                                "relationships": [],
                            },
                        }
                    ],
                }
            },
        }
        lines.append(json.dumps(row))
    (out / "export.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def export_all(out: Path) -> int:
    """Write the VIA and Labelbox exports under ``out``; returns the number of images."""
    for sub in ("via", "labelbox"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    annotations = read_annotations(out / "cvat" / "annotations.xml")
    items = list(annotations)
    labels = [label.name for label in annotations.labels.classes]
    write_via(items, labels, out / "micrographs", out / "via")
    write_labelbox(items, out / "labelbox")
    return len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    count = export_all(args.out)
    print(f"wrote VIA and Labelbox exports of {count} images under {args.out}")


if __name__ == "__main__":
    main()
