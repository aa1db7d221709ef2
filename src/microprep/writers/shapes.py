"""A prediction store as annotation shapes, the common input of every writer.

:func:`prediction_shapes` reads ``PRED.zarr`` (semantic or instance predictions, see
``docs/predict.md``) one image at a time and turns it into :class:`ImageShapes`:

* **semantic**: every connected region of a class becomes one polygon traced on pixel edges
  (:mod:`microprep.writers.vectorize`); a region with holes becomes hole-free pieces that tile
  it (the
  tools have no polygon holes). With ``as_mask`` each region is one mask instead.
* **instances**: one shape per instance (its visible pixels, as stored), its score kept,
  ``z_order`` by score (the highest score on top); pieces of one instance (several regions, or
  a region with holes) share a ``group`` id, which is how CVAT keeps the parts of one object.

Example:
    >>> import tempfile
    >>> from microprep.predict.write import PredictionWriter
    >>> root = Path(tempfile.mkdtemp()) / "p.zarr"
    >>> w = PredictionWriter(root, classes=["background", "pore"], colors=[[0, 0, 0],
    ...                      [255, 0, 0]], kind="semantic")
    >>> node = w.begin("a.png", (2, 3), probabilities=None)
    >>> probs = np.zeros((2, 2, 3), np.float32); probs[1, 0, :2] = 1
    >>> _ = w.write_rows(node, 0, 2, probs); w.finish_node(node); w.close()
    >>> pred = prediction_shapes(root)
    >>> image = next(iter(pred.images()))
    >>> image.name, [(s.label, s.points.tolist()) for s in image.shapes]
    ('a.png', [('pore', [[0.0, 0.0], [0.0, 1.0], [2.0, 1.0], [2.0, 0.0]])])
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from numpy.typing import NDArray
from shapely.geometry import Polygon
from zarr.storage import LocalStore

from microprep.errors import StoreError, UsageError
from microprep.predict.instances_read import read_instance_predictions
from microprep.predict.write import read_prediction_attrs
from microprep.targets.raster import fill_rings
from microprep.writers.vectorize import (
    class_regions,
    crop_to_pixels,
    hole_free,
    hole_free_all,
    mask_polygons,
    paint_polygons,
    simplify_polygon,
)

__all__ = ["ImageShapes", "OutShape", "Prediction", "prediction_shapes"]

logger = logging.getLogger(__name__)

ShapeAs = Literal["polygon", "mask"]


@dataclass(frozen=True, slots=True, eq=False)
class OutShape:
    """One shape to write. ``polygon``: ``points`` the ``(N, 2)`` vertices ``(x, y)``.
    ``mask``: ``bitmap`` the ``(h, w)`` bool pixels at ``(top, left)``; ``points`` empty.
    ``region`` numbers the connected region (semantic) or instance the shape comes from."""

    kind: ShapeAs
    label: str
    label_index: int
    points: NDArray[np.float64]
    region: int
    z_order: int = 0
    group: int = 0
    score: float | None = None
    top: int = 0
    left: int = 0
    bitmap: NDArray[np.bool_] | None = None


@dataclass(frozen=True, slots=True)
class ImageShapes:
    """The shapes of one predicted image (``name`` as stored in the prediction)."""

    name: str
    height: int
    width: int
    shapes: tuple[OutShape, ...]


@dataclass(slots=True)
class Prediction:
    """A prediction store opened for writing shapes: ``kind`` (``semantic`` / ``instances``),
    ``classes`` (background first), ``colors`` and ``sizes`` (name -> ``(height, width)``).
    :meth:`images` yields :class:`ImageShapes`; ``changed_pixels`` then holds, per image, the
    pixels that ``simplify`` moved to another class (0 without simplification)."""

    path: Path
    kind: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    sizes: dict[str, tuple[int, int]]
    as_shape: ShapeAs = "polygon"
    simplify: float = 0.0
    score_threshold: float = 0.0
    changed_pixels: dict[str, int] = field(default_factory=dict)

    def images(self) -> Iterator[ImageShapes]:
        """The shapes per image, in store order (read one image at a time)."""
        if self.kind == "instances":
            for name, pred in read_instance_predictions(self.path):
                if name in self.sizes:
                    yield self._instances(name, pred)
            return
        for name, class_map in _class_maps(self.path, self.sizes):
            yield self._semantic(name, class_map)

    def _polygon_shapes(
        self, label: int, polygon: Any, region: int, **extra: Any
    ) -> list[OutShape]:
        simple = simplify_polygon(polygon, self.simplify)
        return [
            OutShape(
                "polygon",
                self.classes[label],
                label,
                np.asarray(piece.exterior.coords, np.float64)[:-1],
                region,
                **extra,
            )
            for piece in hole_free(simple)
        ]

    def _semantic(self, name: str, class_map: NDArray[Any]) -> ImageShapes:
        shapes: list[OutShape] = []
        if self.as_shape == "mask":
            for region_index, region in enumerate(class_regions(class_map)):
                x0, y0, x1, y1 = (int(v) for v in region.polygon.bounds)
                crop = class_map[y0:y1, x0:x1] == region.label
                shapes.append(_mask_shape(self, region, crop, y0, x0, region_index))
        elif self.simplify > 0:
            for region_index, region in enumerate(class_regions(class_map)):
                shapes.extend(self._polygon_shapes(region.label, region.polygon, region_index))
        else:  # exact polygons: the regions with holes are cut in one pass for the whole map
            regions = class_regions(class_map)
            pieces = hole_free_all([region.polygon for region in regions])
            for region_index, (region, cut) in enumerate(zip(regions, pieces, strict=True)):
                shapes.extend(
                    OutShape(
                        "polygon",
                        self.classes[region.label],
                        region.label,
                        np.asarray(piece.exterior.coords, np.float64)[:-1],
                        region_index,
                    )
                    for piece in cut
                )
        if self.simplify > 0 and self.as_shape == "polygon":
            painted = paint_polygons(
                class_map.shape, ((s.label_index, _poly(s.points)) for s in shapes)
            )
            self.changed_pixels[name] = int(np.count_nonzero(painted != class_map))
        else:
            self.changed_pixels[name] = 0
        return ImageShapes(name, int(class_map.shape[0]), int(class_map.shape[1]), tuple(shapes))

    def _instances(self, name: str, pred: Any) -> ImageShapes:
        height, width = pred.shape
        shapes: list[OutShape] = []
        n = len(pred)
        kept = 0
        for i in range(n):
            score = float(pred.scores[i])
            if score < self.score_threshold:
                continue
            kept += 1
            raster = pred.rasters[i]
            label = int(pred.labels[i])
            top, left = (int(v) for v in raster.origin)
            extra: dict[str, Any] = {"z_order": n - i, "group": kept, "score": score}
            if self.as_shape == "mask":
                t, lft, bitmap = crop_to_pixels(raster.mask)
                shapes.append(
                    OutShape(
                        "mask",
                        self.classes[label],
                        label,
                        np.zeros((0, 2)),
                        i,
                        top=top + t,
                        left=left + lft,
                        bitmap=bitmap,
                        **extra,
                    )
                )
                continue
            for polygon in mask_polygons(raster.mask, origin=(top, left)):
                shapes.extend(self._polygon_shapes(label, polygon, i, **extra))
        self.changed_pixels[name] = 0
        return ImageShapes(name, int(height), int(width), tuple(shapes))


def _poly(points: NDArray[np.float64]) -> Polygon:
    return Polygon(points)


def _mask_shape(
    pred: Prediction, region: Any, crop: NDArray[np.bool_], top: int, left: int, index: int
) -> OutShape:
    """A region as one mask: its own pixels only (a region of the same class nested in a
    hole of this one is a region of its own)."""
    rings = [np.asarray(region.polygon.exterior.coords)[:-1]]
    rings += [np.asarray(r.coords)[:-1] for r in region.polygon.interiors]
    own = fill_rings(rings, top, left, crop.shape[0], crop.shape[1]) & crop
    return OutShape(
        "mask", pred.classes[region.label], region.label, np.zeros((0, 2)), index,
        top=top, left=left, bitmap=own,
    )  # fmt: skip


def _class_maps(
    path: Path, wanted: Container[str] | None = None
) -> Iterator[tuple[str, NDArray[Any]]]:
    attrs = read_prediction_attrs(path)
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r", zarr_format=3)
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path}: cannot open the prediction store: {exc}") from exc
    for group in attrs["nodes"]:
        try:
            node = root[group]
            name = str(node.attrs.get("name", group))
            if wanted is not None and name not in wanted:
                continue
            labels = node["labels"] if isinstance(node, zarr.Group) else None
            if not isinstance(labels, zarr.Array):
                raise KeyError("no 'labels' array")
            class_map = np.asarray(labels[...])
        except (KeyError, OSError, ValueError) as exc:
            raise StoreError(f"{path}: group {group!r} is damaged: {exc}") from exc
        if class_map.ndim != 2:
            raise UsageError(
                f"{path}: {name!r} is a volume {class_map.shape}; annotation tools take 2D "
                "images: export its slices from a 2D prediction"
            )
        yield name, class_map


def prediction_shapes(
    path: str | Path,
    *,
    as_shape: ShapeAs = "polygon",
    simplify: float = 0.0,
    score_threshold: float = 0.0,
    only: Sequence[str] | None = None,
    only_from: str = "--only",
) -> Prediction:
    """Open the prediction store ``path`` for writing its shapes (module docstring).

    ``only``: image names to keep (the others are left out); ``only_from`` names where they
    came from, for the error message.

    Raises:
        StoreError: not a complete prediction store (interrupted, damaged, unknown version).
        UsageError: an unknown prediction kind; a name in ``only`` that the store lacks.
    """
    path = Path(path)
    attrs = read_prediction_attrs(path)
    kind = attrs.get("kind")
    if kind not in ("semantic", "instances"):
        raise UsageError(f"{path}: unknown prediction kind {kind!r}")
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r", zarr_format=3)
        sizes: dict[str, tuple[int, int]] = {}
        for group in attrs["nodes"]:
            node_attrs: Any = root[group].attrs
            shape = [int(v) for v in node_attrs["shape"]]
            sizes[str(node_attrs.get("name", group))] = (shape[-2], shape[-1])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: the prediction store is damaged: {exc}") from exc
    if only is not None:
        missing = [name for name in only if name not in sizes]
        if missing:
            shown = ", ".join(repr(n) for n in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise UsageError(
                f"{only_from}: {len(missing)} image(s) not in the prediction store {path}: {shown}"
            )
        wanted = set(only)
        sizes = {name: size for name, size in sizes.items() if name in wanted}
    classes = tuple(str(c) for c in attrs["classes"])
    colors = tuple((int(c[0]), int(c[1]), int(c[2])) for c in attrs["colors"])
    return Prediction(path, kind, classes, colors, sizes, as_shape, simplify, score_threshold)
