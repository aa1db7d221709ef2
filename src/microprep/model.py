"""The common annotation model: what every reader produces and every target consumes.

Conventions (decided once, see docs/data-model.md):

* Coordinates are ``float64`` in pixel units. Pixel (row ``r``, col ``c``) covers
  ``[c, c+1) x [r, r+1)``; its centre is ``(c + 0.5, r + 0.5)``. Nothing is truncated to int.
* ``rotation`` is in degrees, about the shape's centre, clockwise as seen on screen (image y axis
  points down), which is CVAT's convention. Readers of other formats convert to it.
* ``Shape.points`` is an ``(N, 2)`` array of ``(x, y)`` whose meaning depends on the kind:

  ========== ======================================================================
  kind       points
  ========== ======================================================================
  box        ``[[x_min, y_min], [x_max, y_max]]`` before rotation (max exclusive)
  polygon    the vertices, not repeated at the end
  polyline   the vertices
  points     each point
  ellipse    ``[[cx, cy], [rx, ry]]``: centre and the two radii before rotation
  mask       ``[[left, top], [left + w, top + h]]``; the pixels are in ``bitmap``
  skeleton   the points of its elements, in element order (see ``elements``)
  tag        empty: a tag labels the whole image
  ========== ======================================================================

Example:
    >>> import numpy as np
    >>> s = Shape(kind="box", label="pore", points=np.array([[2.0, 3.0], [5.5, 7.0]]))
    >>> s.extent()
    (2.0, 3.0, 5.5, 7.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

LabelRole = Literal["class", "ignore", "region"]
ShapeKind = Literal["box", "polygon", "polyline", "points", "ellipse", "mask", "tag", "skeleton"]
SHAPE_KINDS: tuple[str, ...] = get_args(ShapeKind)

#: Shapes drawn into class maps and instance masks (tags label whole images).
SPATIAL_KINDS: frozenset[str] = frozenset(SHAPE_KINDS) - {"tag"}

#: Colours for labels that declare none (RGB), cycled in label order.
DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """A declared attribute of a label (CVAT ``<attribute>`` in ``<labels>``).

    ``input_type`` is the tool's word for the widget (``select``, ``radio``, ``checkbox``,
    ``number``, ``text``); ``values`` the allowed values in order.
    """

    name: str
    input_type: str = "text"
    values: tuple[str, ...] = ()
    default: str = ""
    mutable: bool = False


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """One label of the label map.

    ``color`` is ``"#rrggbb"`` or None (a default colour from :data:`DEFAULT_PALETTE` is used).
    ``type`` is the declared shape type (CVAT: ``any``, ``rectangle``, ``polygon``, ``skeleton``,
    ...). ``parent`` is set for the element labels of a skeleton; those are not classes.
    ``declared`` is False for labels added because shapes used them without a declaration.
    ``role`` is ``"class"`` for a class, ``"ignore"`` for a label whose shapes mark pixels that
    are not annotated, ``"region"`` for a label whose shapes mark the annotated region of an
    image (see :mod:`microprep.classes`); only classes get a class index.
    """

    name: str
    color: str | None = None
    type: str = "any"
    attributes: tuple[AttributeSpec, ...] = ()
    parent: str | None = None
    declared: bool = True
    role: LabelRole = "class"


@dataclass(frozen=True, slots=True)
class LabelMap:
    """The labels in declaration order. Classes are the labels without a parent.

    Class indices: 0 is background, classes are ``1..K`` in declaration order.

    Example:
        >>> lm = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate")))
        >>> lm.index("precipitate")
        2
        >>> lm.class_names
        ('background', 'bubble', 'precipitate')
    """

    labels: tuple[LabelSpec, ...] = ()

    @property
    def classes(self) -> tuple[LabelSpec, ...]:
        """The labels that are classes (no parent, role ``class``), in order; index ``i`` is
        class ``i + 1``."""
        return tuple(
            label for label in self.labels if label.parent is None and label.role == "class"
        )

    @property
    def ignore_index(self) -> int | None:
        """The class-map value of pixels that are not annotated: 255 (65535 past 255 classes)
        when the map has ``ignore`` or ``region`` labels, else None.

        Example:
            >>> LabelMap((LabelSpec("grain"), LabelSpec("void", role="ignore"))).ignore_index
            255
        """
        if not any(label.role != "class" for label in self.labels):
            return None
        return 255 if self.num_classes <= 255 else 65535

    def names_with_role(self, role: LabelRole) -> frozenset[str]:
        """Names of the labels with ``role`` (``"ignore"``: pixels not annotated)."""
        return frozenset(label.name for label in self.labels if label.role == role)

    @property
    def class_names(self) -> tuple[str, ...]:
        """``("background", name_1, ..., name_K)``."""
        return ("background", *(label.name for label in self.classes))

    @property
    def num_classes(self) -> int:
        """K + 1: the classes plus background (the channel count of one-hot targets)."""
        return len(self.classes) + 1

    def index(self, name: str) -> int:
        """Class index of ``name`` (1..K). Raises ``KeyError`` for unknown or element labels."""
        for i, label in enumerate(self.classes, start=1):
            if label.name == name:
                return i
        raise KeyError(name)

    def colors(self) -> list[tuple[int, int, int]]:
        """RGB colour per class index, background first (black)."""
        out: list[tuple[int, int, int]] = [(0, 0, 0)]
        for i, label in enumerate(self.classes):
            out.append(parse_color(label.color) or DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)])
        return out

    def get(self, name: str) -> LabelSpec | None:
        """The label called ``name``, or None."""
        for label in self.labels:
            if label.name == name:
                return label
        return None

    def with_label(self, label: LabelSpec) -> LabelMap:
        """A copy with ``label`` appended."""
        return LabelMap((*self.labels, label))


def parse_color(color: str | None) -> tuple[int, int, int] | None:
    """``"#rrggbb"`` to an RGB tuple; None for anything else."""
    if not color or len(color) != 7 or not color.startswith("#"):
        return None
    try:
        return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """One image (or one frame / slice of a stack).

    ``name`` is the name in the export, possibly with folders (``"grid 1/a b.png"``).
    ``width`` and ``height`` are in pixels. ``frame`` is the frame number for frames of a video
    or slice stack (absolute, as in the export); ``id`` is the export's own id when it has one.
    """

    name: str
    width: int
    height: int
    id: int | None = None
    frame: int | None = None
    subset: str | None = None


def _frozen(points: NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.array(points, dtype=np.float64, copy=True).reshape(-1, 2)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """One annotated shape. See the module docstring for what ``points`` holds per kind.

    ``order`` is the shape's position in the file (0-based, over the whole file), the tie-break
    after ``z_order`` when shapes overlap. ``group`` is the export's group id (0: no group).
    ``track_id``/``frame`` are set for shapes that come from a track; ``keyframe`` is False for
    frames that the tool interpolated. ``bitmap`` is the ``(h, w)`` bool mask of ``mask`` shapes.
    ``elements`` holds a skeleton's points as ``points`` shapes labelled with element labels.
    """

    kind: ShapeKind
    label: str
    points: NDArray[np.float64]
    rotation: float = 0.0
    z_order: int = 0
    occluded: bool = False
    group: int = 0
    source: str = "manual"
    attributes: Mapping[str, str] = field(default_factory=dict)
    order: int = 0
    track_id: int | None = None
    frame: int | None = None
    keyframe: bool = True
    bitmap: NDArray[np.bool_] | None = None
    elements: tuple[Shape, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _frozen(self.points))

    def extent(self) -> tuple[float, float, float, float]:
        """Geometric extent ``(x_min, y_min, x_max, y_max)`` in pixel units, rotation included.

        Boxes give their (rotated) corners' extent, ellipses their exact rotated extent,
        polylines/points/skeletons their vertices'. Tags have no extent (all NaN).
        """
        p = self.points
        if self.kind == "tag" or len(p) == 0:
            return (math.nan, math.nan, math.nan, math.nan)
        if self.kind == "ellipse":
            (cx, cy), (rx, ry) = p
            c, s = cos_sin(self.rotation)
            hw = math.hypot(rx * c, ry * s)
            hh = math.hypot(rx * s, ry * c)
            return (cx - hw, cy - hh, cx + hw, cy + hh)
        if self.kind == "box" and self.rotation % 360.0 != 0.0:
            p = box_corners(p, self.rotation)
        return (
            float(p[:, 0].min()),
            float(p[:, 1].min()),
            float(p[:, 0].max()),
            float(p[:, 1].max()),
        )


def cos_sin(degrees: float) -> tuple[float, float]:
    """``(cos, sin)`` of an angle in degrees, exact for multiples of 90 degrees (so a box
    turned by 180 degrees has exactly the corners of the unturned box, not corners off by
    1e-16 that move pixel centres lying on an edge to the other side).

    Example:
        >>> cos_sin(180.0), cos_sin(-90.0)
        ((-1.0, 0.0), (0.0, -1.0))
    """
    turn = float(degrees) % 360.0
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    if turn in exact:
        return exact[turn]
    t = math.radians(degrees)
    return math.cos(t), math.sin(t)


def box_corners(points: NDArray[np.float64], rotation: float) -> NDArray[np.float64]:
    """The 4 corners (x, y) of a box ``[[x1, y1], [x2, y2]]`` rotated by ``rotation`` degrees.

    Rotation is about the centre, clockwise on screen (y down), CVAT's convention.
    """
    (x1, y1), (x2, y2) = points
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
    c, s = cos_sin(rotation)
    d = corners - (cx, cy)
    return np.column_stack((cx + c * d[:, 0] - s * d[:, 1], cy + s * d[:, 0] + c * d[:, 1]))


@dataclass(frozen=True, slots=True)
class AnnotatedImage:
    """One image and its shapes, in file order."""

    image: ImageInfo
    shapes: tuple[Shape, ...]


@dataclass(frozen=True, slots=True)
class StackInfo:
    """Frame numbering of a video or slice-stack export.

    Frame numbers in the export are absolute: frame ``f`` is the
    ``(f - start_frame) // step``-th frame of the source (``step`` from ``frame_filter``).
    """

    start_frame: int = 0
    stop_frame: int | None = None
    step: int = 1

    def relative(self, frame: int) -> int:
        """The 0-based position of absolute frame number ``frame`` in the stack."""
        return (frame - self.start_frame) // self.step


@dataclass(frozen=True, slots=True, eq=False)
class AnnotationSet:
    """A whole export in the common model.

    ``images`` lists every image (frames in frame order for stacks) with its size; iterating the
    set yields an :class:`AnnotatedImage` per image, in the same order. For streaming readers the
    iteration re-reads the file, so memory stays bounded by one image's shapes.

    ``warnings`` are the readers' non-fatal findings (undeclared labels added, shapes skipped),
    one line each. ``stack`` is set for video / slice-stack exports.
    """

    source: Path
    format: str
    labels: LabelMap
    images: tuple[ImageInfo, ...]
    load: Callable[[], Iterator[AnnotatedImage]]
    warnings: tuple[str, ...] = ()
    stack: StackInfo | None = None

    def __iter__(self) -> Iterator[AnnotatedImage]:
        return self.load()

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def from_items(
        items: Iterable[AnnotatedImage],
        *,
        labels: LabelMap,
        source: Path | str = "<memory>",
        format: str = "memory",
        warnings: Iterable[str] = (),
        stack: StackInfo | None = None,
    ) -> AnnotationSet:
        """An in-memory set, handy for tests and for readers that must hold everything."""
        materialized = tuple(items)
        return AnnotationSet(
            source=Path(source),
            format=format,
            labels=labels,
            images=tuple(item.image for item in materialized),
            load=lambda: iter(materialized),
            warnings=tuple(warnings),
            stack=stack,
        )
