"""Reader for COCO instances files (``instances_train2017.json``, CVAT's and microprep's COCO).

A COCO instances file is one JSON object with ``images``, ``annotations`` and ``categories``
(cocodataset.org, "Data format", object detection). Rules (docs/coco.md):

* **Classes.** Every category is a class, in order of category id (ids may come in any order
  and have gaps); two categories with one name, or one id twice, are an error.
* **Images.** ``file_name`` is the image name (folders kept, ``..`` and absolute paths refused);
  ``width`` and ``height`` are required. Annotations find their image by ``image_id``.
* **Shapes.** ``segmentation`` as polygons (``[[x1, y1, x2, y2, ...], ...]``) gives one polygon
  shape per polygon; the polygons of one annotation share a group id, so they form one object.
  RLE (``{"size": [h, w], "counts": "..."}`` compressed, or ``counts`` as a list) gives one mask
  shape cropped to its pixels. A missing, null or empty segmentation gives a box from ``bbox``
  (``[x, y, width, height]``); without either the annotation is an error.
* **iscrowd.** A crowd annotation (``iscrowd: 1``, usually RLE) is read as its shape with the
  attribute ``iscrowd="1"``: its pixels are its category's in the class maps (map it with
  ``--ignore`` after a rename if crowd regions should not be trained on).
* ``attributes`` (CVAT writes ``occluded`` and the label attributes there): ``occluded`` sets
  ``Shape.occluded`` and puts the shape under the others where they overlap (``z_order`` -1;
  COCO has no drawing order, the others keep file order at ``z_order`` 0); the others become
  string attributes (microprep's own ``group`` and ``track_id`` are left out).
  ``Shape.order`` numbers the shapes in file order.

The file is refused, with the JSON path, as the other JSON readers refuse theirs
(:mod:`microprep.readers.jsonsafe`: NaN, duplicate keys, nesting, huge numbers).

Example:
    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "instances.json"
    >>> _ = p.write_text(json.dumps({
    ...     "images": [{"id": 7, "file_name": "a.png", "width": 8, "height": 8}],
    ...     "categories": [{"id": 3, "name": "pore"}, {"id": 1, "name": "grain"}],
    ...     "annotations": [{"id": 1, "image_id": 7, "category_id": 3,
    ...                      "segmentation": [[1, 1, 5, 1, 5, 5]], "bbox": [1, 1, 4, 4]}]}))
    >>> ds = read_coco(p)
    >>> ds.labels.class_names, [(s.kind, s.label) for item in ds for s in item.shapes]
    (('background', 'grain', 'pore'), [('polygon', 'pore')])
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microprep.errors import FormatError, GeometryError, InputError
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.paths import check_relative_name
from microprep.readers.coco_rle import RleError, crop_mask, string_counts
from microprep.readers.jsonsafe import MAX_COORDINATE, coordinate, describe, json_path, loads
from microprep.readers.options import ReadOptions

__all__ = ["detect", "read_coco"]

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 65536
_KEYS = ("images", "annotations", "categories")
_NUMBER = (int, float)
_SKIPPED_ATTRIBUTES = frozenset({"occluded", "group", "track_id"})


def detect(path: Path) -> bool:
    """True when ``path`` looks like a COCO instances file (never raises).

    A JSON object naming ``images``, ``annotations`` and ``categories`` as array keys in its
    first and last 64 KB; in a larger file, whose middle holds the long arrays, ``images``
    with ``file_name`` entries and ``categories`` or ``category_id`` are enough.
    """
    try:
        with open(path, "rb") as stream:
            head = stream.read(_SNIFF_BYTES)
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(max(len(head), size - _SNIFF_BYTES))
            tail = stream.read()
    except (OSError, ValueError):
        return False
    text = head.decode("utf-8", errors="ignore")
    if not text.lstrip("\ufeff \t\r\n").startswith("{"):
        return False
    both = text + tail.decode("utf-8", errors="ignore")
    if all(re.search(rf'"{key}"\s*:\s*\[', both) for key in _KEYS):
        return True
    return (
        size > 2 * _SNIFF_BYTES
        and re.search(r'"images"\s*:\s*\[', text) is not None
        and '"file_name"' in text
        and ('"categories"' in both or '"category_id"' in both)
    )


class _Reader:
    """Builds the model from the parsed document, naming the JSON path of every error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = str(path)

    def error(self, message: str, where: Sequence[str | int], cls: type[InputError] = FormatError
              ) -> InputError:  # fmt: skip
        return cls(message, file=self.file, where=json_path(where))

    def array(self, value: Any, where: Sequence[str | int]) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"expected an array, got {describe(value)}", where)
        return value

    def obj(self, value: Any, where: Sequence[str | int]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"expected an object, got {describe(value)}", where)
        return value

    def integer(self, value: Any, where: Sequence[str | int], *, positive: bool = False) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int or (positive and value <= 0):
            what = "a positive integer" if positive else "an integer"
            raise self.error(f"expected {what}, got {describe(value)}", where)
        return value

    def field(self, item: dict[str, Any], key: str, where: list[str | int]) -> Any:
        if key not in item:
            raise self.error(f"missing key {json.dumps(key)}", where)
        return item[key]

    # -- categories and images -------------------------------------------------------------

    def labels(self, categories: list[Any]) -> tuple[LabelMap, dict[int, str]]:
        by_id: dict[int, tuple[str, int]] = {}
        seen: dict[str, int] = {}
        for i, raw in enumerate(categories):
            where: list[str | int] = ["categories", i]
            cat = self.obj(raw, where)
            cid = self.integer(self.field(cat, "id", where), [*where, "id"])
            name = self.field(cat, "name", where)
            if not isinstance(name, str) or not name.strip():
                raise self.error(f"expected a class name, got {describe(name)}", [*where, "name"])
            if cid in by_id:
                raise self.error(f"category id {cid} is used twice", [*where, "id"])
            if name in seen:
                raise self.error(
                    f"category name {name!r} is used twice (ids {seen[name]} and {cid})",
                    [*where, "name"],
                )
            by_id[cid] = (name, i)
            seen[name] = cid
        names = {cid: name for cid, (name, _) in sorted(by_id.items())}
        return LabelMap(tuple(LabelSpec(name) for name in names.values())), names

    def images(self, images: list[Any]) -> tuple[list[ImageInfo], dict[int, int]]:
        infos: list[ImageInfo] = []
        index: dict[int, int] = {}
        names: set[str] = set()
        for i, raw in enumerate(images):
            where: list[str | int] = ["images", i]
            image = self.obj(raw, where)
            iid = self.integer(self.field(image, "id", where), [*where, "id"])
            name = self.field(image, "file_name", where)
            if not isinstance(name, str):
                raise self.error(
                    f"expected a file name, got {describe(name)}", [*where, "file_name"]
                )
            try:
                check_relative_name(name)
            except InputError as exc:
                raise self.error(
                    getattr(exc, "message", str(exc)), [*where, "file_name"], type(exc)
                ) from exc
            width = self.integer(
                self.field(image, "width", where), [*where, "width"], positive=True
            )
            height = self.integer(
                self.field(image, "height", where), [*where, "height"], positive=True
            )
            if iid in index:
                raise self.error(f"image id {iid} is used twice", [*where, "id"])
            if name in names:
                raise self.error(f"image {name!r} is listed twice", [*where, "file_name"])
            index[iid] = len(infos)
            names.add(name)
            infos.append(ImageInfo(name, width, height, id=iid))
        return infos, index

    # -- annotations -----------------------------------------------------------------------

    def points(self, values: Any, where: list[str | int]) -> np.ndarray:
        values = self.array(values, where)
        if not all(type(v) in _NUMBER for v in values):
            for j, v in enumerate(values):
                coordinate(v, file=self.file, path=[*where, j])
        arr = np.array(values, dtype=np.float64)
        if arr.size and float(np.abs(arr).max()) > MAX_COORDINATE:
            j = int(np.argmax(np.abs(arr)))
            coordinate(values[j], file=self.file, path=[*where, j])
        return arr

    def polygons(self, segmentation: list[Any], where: list[str | int]) -> list[np.ndarray]:
        out = []
        for j, raw in enumerate(segmentation):
            flat = self.points(raw, [*where, j])
            if flat.size % 2 or flat.size < 6:
                raise self.error(
                    f"a polygon needs x, y pairs of at least 3 vertices, got {flat.size} numbers",
                    [*where, j],
                    GeometryError,
                )
            out.append(flat.reshape(-1, 2))
        return out

    def rle(
        self, seg: dict[str, Any], image: ImageInfo, where: list[str | int]
    ) -> tuple[int, int, np.ndarray]:
        size = self.array(self.field(seg, "size", where), [*where, "size"])
        if size != [image.height, image.width]:
            raise self.error(
                f"RLE size {json.dumps(size)} is not the image's [height, width] "
                f"[{image.height}, {image.width}]",
                [*where, "size"],
                GeometryError,
            )
        counts = self.field(seg, "counts", where)
        try:
            if isinstance(counts, str):
                runs = string_counts(counts)
            elif isinstance(counts, list) and all(type(c) is int for c in counts):
                runs = counts
            else:
                raise self.error(
                    f"expected an RLE string or an array of integers, got {describe(counts)}",
                    [*where, "counts"],
                )
            return crop_mask(runs, height=image.height, width=image.width)
        except RleError as exc:
            raise self.error(str(exc), [*where, "counts"], GeometryError) from exc

    def attributes(
        self, ann: dict[str, Any], where: list[str | int]
    ) -> tuple[bool, dict[str, str]]:
        raw = ann.get("attributes")
        if raw is None:
            return False, {}
        attrs = self.obj(raw, [*where, "attributes"])
        occluded = attrs.get("occluded", False) is True
        out = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in attrs.items()
            if key not in _SKIPPED_ATTRIBUTES
        }
        return occluded, out

    def shapes(
        self,
        annotations: list[Any],
        images: list[ImageInfo],
        image_index: dict[int, int],
        categories: dict[int, str],
    ) -> list[list[Shape]]:
        per_image: list[list[Shape]] = [[] for _ in images]
        order = 0
        for i, raw in enumerate(annotations):
            where: list[str | int] = ["annotations", i]
            ann = self.obj(raw, where)
            iid = self.integer(self.field(ann, "image_id", where), [*where, "image_id"])
            if iid not in image_index:
                raise self.error(f"image_id {iid} is not the id of an image", [*where, "image_id"])
            cid = self.integer(self.field(ann, "category_id", where), [*where, "category_id"])
            if cid not in categories:
                raise self.error(
                    f"category_id {cid} is not the id of a category", [*where, "category_id"]
                )
            target = per_image[image_index[iid]]
            image = images[image_index[iid]]
            label = categories[cid]
            occluded, attrs = self.attributes(ann, where)
            crowd = ann.get("iscrowd", 0)
            if crowd not in (0, 1, False, True):
                raise self.error(f"expected 0 or 1, got {describe(crowd)}", [*where, "iscrowd"])
            if crowd:
                attrs["iscrowd"] = "1"
            seg = ann.get("segmentation")
            at: list[str | int] = [*where, "segmentation"]
            common: dict[str, Any] = {
                "label": label,
                "occluded": occluded,
                "attributes": attrs,
                "z_order": -1 if occluded else 0,
            }
            if isinstance(seg, dict):
                top, left, bitmap = self.rle(seg, image, at)
                h, w = bitmap.shape
                points = np.array([[left, top], [left + w, top + h]], dtype=np.float64)
                target.append(
                    Shape(kind="mask", points=points, bitmap=bitmap, order=order, **common)
                )
                order += 1
            elif seg:
                parts = self.polygons(self.array(seg, at), at)
                group = len(target) + 1 if len(parts) > 1 else 0
                for part in parts:
                    target.append(
                        Shape(kind="polygon", points=part, group=group, order=order, **common)
                    )
                    order += 1
            else:
                if "bbox" not in ann:
                    raise self.error("no segmentation and no bbox", where, GeometryError)
                box = self.points(ann["bbox"], [*where, "bbox"])
                if box.size != 4 or not (box[2] > 0 and box[3] > 0):
                    raise self.error(
                        f"bbox must be [x, y, width, height] with a positive size, got "
                        f"{json.dumps(ann['bbox'])}",
                        [*where, "bbox"],
                        GeometryError,
                    )
                points = np.array([box[:2], box[:2] + box[2:]])
                target.append(Shape(kind="box", points=points, order=order, **common))
                order += 1
        return per_image


def _load(path: Path) -> Any:
    """The parsed file, hardened as :func:`microprep.readers.jsonsafe.loads`; a refused value
    is reported with its JSON path."""
    from microprep.readers.via.jsonlocate import locate_refusal

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason})", file=path) from exc
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    try:
        return loads(text, file=path)
    except FormatError as exc:
        found = locate_refusal(text) if exc.column is None else None
        if found is None:
            raise
        raise FormatError(found[0], file=path, where=json_path(found[1])) from exc


def read_coco(
    path: str | Path,
    *,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read a COCO instances file into an :class:`AnnotationSet` (format ``coco-instances``).

    ``options`` are not needed (COCO stores sizes and classes); ``on_warning`` gets the
    warnings (none so far: everything unusable is an error).

    Raises:
        FormatError: malformed JSON, a missing key, a wrong type, an unknown id (JSON path
            given), refused numbers.
        UnsafeInputError: a ``file_name`` escaping its folder.
        GeometryError: polygons of fewer than 3 vertices, RLE that does not add up or whose
            size is not the image's, boxes without a size.
    """
    path = Path(path)
    reader = _Reader(path)
    data = reader.obj(_load(path), [])
    for key in _KEYS:
        reader.array(reader.field(data, key, []), [key])
    labels, categories = reader.labels(data["categories"])
    images, index = reader.images(data["images"])
    shapes = reader.shapes(data["annotations"], images, index, categories)
    del data
    logger.debug("%s: %d images, %d shapes", path, len(images), sum(map(len, shapes)))
    _ = on_warning, options  # COCO stores sizes and classes, and nothing here only warns
    items = [
        AnnotatedImage(info, tuple(image_shapes))
        for info, image_shapes in zip(images, shapes, strict=True)
    ]
    return AnnotationSet.from_items(items, labels=labels, source=path, format="coco-instances")
