"""Synthetic microscopy scenes and a CVAT 1.1 XML writer.

The sample data and the stress benchmark are built from the same pieces:

* small shape records (:class:`Ellipse`, :class:`Polygon`, :class:`Box`, :class:`Polyline`,
  :class:`Points`, :class:`Mask`, :class:`Tag`) whose coordinates are floats in pixel units,
  already rounded to the 2 decimals that the XML carries;
* rasterisers that follow the pixel-centre rule (pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``
  and belongs to a shape when its centre ``(c + 0.5, r + 0.5)`` is inside), so the rendered images
  agree with the annotations to the pixel;
* renderers for TEM-like micrographs and a tomography-like slice stack, which draw the image
  intensities from the very shapes that are written to the annotation files;
* a streaming writer for CVAT for images 1.1 and CVAT for video 1.1 XML (lxml).

Rotation is in degrees, clockwise on screen (y axis down), about the shape's centre: CVAT's
convention. Only numpy, scipy and lxml are needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree
from numpy.typing import NDArray
from scipy import ndimage

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Timestamps written into the exports' meta block (fixed, so the files are reproducible).
CREATED = "2024-05-14 09:30:00.000000+00:00"
DUMPED = "2024-05-14 10:02:11.000000+00:00"


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ShapeBase:
    """What every CVAT shape carries besides its geometry."""

    label: str
    z_order: int = 0
    occluded: bool = False
    group_id: int = 0
    source: str = "manual"
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Ellipse(ShapeBase):
    """Ellipse with centre ``(cx, cy)``, radii ``rx``, ``ry`` and clockwise ``rotation``."""

    cx: float
    cy: float
    rx: float
    ry: float
    rotation: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Polygon(ShapeBase):
    """Closed polygon; ``points`` is ``(N, 2)`` of ``(x, y)``, not repeated at the end."""

    points: FloatArray


@dataclass(frozen=True, kw_only=True)
class Polyline(ShapeBase):
    """Open polyline; ``points`` is ``(N, 2)`` of ``(x, y)``."""

    points: FloatArray


@dataclass(frozen=True, kw_only=True)
class Points(ShapeBase):
    """A set of points; ``points`` is ``(N, 2)`` of ``(x, y)``."""

    points: FloatArray


@dataclass(frozen=True, kw_only=True)
class Box(ShapeBase):
    """Box ``[xtl, xbr) x [ytl, ybr)`` before rotation, rotated clockwise about its centre."""

    xtl: float
    ytl: float
    xbr: float
    ybr: float
    rotation: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Mask(ShapeBase):
    """Bitmap ``(h, w)`` whose pixel ``(r, c)`` is image pixel ``(top + r, left + c)``."""

    left: int
    top: int
    bitmap: BoolArray


@dataclass(frozen=True, kw_only=True)
class Tag(ShapeBase):
    """Image-level label (no geometry)."""


Shape = Ellipse | Polygon | Polyline | Points | Box | Mask | Tag


@dataclass(frozen=True)
class AttributeDef:
    """A declared label attribute (CVAT ``<attribute>`` inside ``<labels>``)."""

    name: str
    input_type: str
    values: tuple[str, ...]
    default: str
    mutable: bool = False


@dataclass(frozen=True)
class LabelDef:
    """A declared label: name, ``#rrggbb`` colour, CVAT shape type and attributes."""

    name: str
    color: str
    type: str = "any"
    attributes: tuple[AttributeDef, ...] = ()


@dataclass
class ImageAnnotations:
    """One ``<image>`` of a CVAT for images export."""

    id: int
    name: str
    width: int
    height: int
    shapes: list[Shape]
    subset: str = "default"


@dataclass(frozen=True)
class TrackFrame:
    """One frame of a track: the shape on that frame and CVAT's per-frame flags."""

    frame: int
    shape: Shape
    outside: bool = False
    keyframe: bool = True


@dataclass
class Track:
    """One ``<track>`` of a CVAT for video export."""

    id: int
    label: str
    frames: list[TrackFrame]
    source: str = "manual"
    group_id: int = 0


def round2(values: FloatArray | Sequence[float]) -> FloatArray:
    """``values`` as float64 rounded to the 2 decimals written into the XML."""
    return np.round(np.asarray(values, dtype=np.float64), 2)


def r2(value: float) -> float:
    """``value`` rounded to 2 decimals."""
    return round(float(value), 2)


# --------------------------------------------------------------------------------------------
# Rasterisation (pixel-centre rule)
# --------------------------------------------------------------------------------------------


def _window(
    x_min: float, y_min: float, x_max: float, y_max: float, height: int, width: int
) -> tuple[slice, slice, FloatArray, FloatArray] | None:
    """Rows/cols whose centres can fall in ``[x_min, x_max] x [y_min, y_max]``, and the centres."""
    c0 = max(math.floor(x_min - 0.5), 0)
    c1 = min(math.ceil(x_max - 0.5) + 1, width)
    r0 = max(math.floor(y_min - 0.5), 0)
    r1 = min(math.ceil(y_max - 0.5) + 1, height)
    if c0 >= c1 or r0 >= r1:
        return None
    xs = np.arange(c0, c1, dtype=np.float64) + 0.5
    ys = np.arange(r0, r1, dtype=np.float64) + 0.5
    return slice(r0, r1), slice(c0, c1), xs[None, :], ys[:, None]


def ellipse_radius(
    cx: float, cy: float, rx: float, ry: float, rotation: float, xs: FloatArray, ys: FloatArray
) -> FloatArray:
    """Normalised radius of points ``(xs, ys)``: ``<= 1`` inside the rotated ellipse."""
    t = math.radians(rotation)
    c, s = math.cos(t), math.sin(t)
    dx, dy = xs - cx, ys - cy
    u = c * dx + s * dy
    v = -s * dx + c * dy
    return np.sqrt((u / rx) ** 2 + (v / ry) ** 2)


def ellipse_extent(
    cx: float, cy: float, rx: float, ry: float, rotation: float
) -> tuple[float, float, float, float]:
    """Exact ``(x_min, y_min, x_max, y_max)`` of a rotated ellipse."""
    t = math.radians(rotation)
    hw = math.hypot(rx * math.cos(t), ry * math.sin(t))
    hh = math.hypot(rx * math.sin(t), ry * math.cos(t))
    return cx - hw, cy - hh, cx + hw, cy + hh


def box_corners(box: Box) -> FloatArray:
    """The 4 corners ``(x, y)`` of a (rotated) box, clockwise from top-left before rotation."""
    cx, cy = (box.xtl + box.xbr) / 2.0, (box.ytl + box.ybr) / 2.0
    corners = np.array(
        [[box.xtl, box.ytl], [box.xbr, box.ytl], [box.xbr, box.ybr], [box.xtl, box.ybr]],
        dtype=np.float64,
    )
    t = math.radians(box.rotation)
    c, s = math.cos(t), math.sin(t)
    d = corners - (cx, cy)
    return np.column_stack((cx + c * d[:, 0] - s * d[:, 1], cy + s * d[:, 0] + c * d[:, 1]))


def polygon_inside(points: FloatArray, xs: FloatArray, ys: FloatArray) -> BoolArray:
    """Even-odd point-in-polygon test of the grid ``xs`` (1, W) x ``ys`` (H, 1)."""
    pts = np.asarray(points, dtype=np.float64)
    inside = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    xj, yj = pts[-1]
    for xi, yi in pts:
        if yi != yj:
            crosses = (yi > ys) != (yj > ys)
            x_cross = (xj - xi) * (ys - yi) / (yj - yi) + xi
            inside ^= crosses & (xs < x_cross)
        xj, yj = xi, yi
    return inside


def rasterize(shape: Shape, height: int, width: int) -> BoolArray:
    """Area of ``shape`` as an ``(height, width)`` bool mask (pixel-centre rule).

    Polylines, points and tags have no area: their mask is empty.
    """
    out = np.zeros((height, width), dtype=bool)
    if isinstance(shape, Ellipse):
        win = _window(
            *ellipse_extent(shape.cx, shape.cy, shape.rx, shape.ry, shape.rotation), height, width
        )
        if win is not None:
            rows, cols, xs, ys = win
            rho = ellipse_radius(shape.cx, shape.cy, shape.rx, shape.ry, shape.rotation, xs, ys)
            out[rows, cols] = rho <= 1.0
    elif isinstance(shape, Box) and shape.rotation % 360.0 == 0.0:
        win = _window(shape.xtl, shape.ytl, shape.xbr, shape.ybr, height, width)
        if win is not None:
            rows, cols, xs, ys = win
            out[rows, cols] = (
                (xs >= shape.xtl) & (xs < shape.xbr) & (ys >= shape.ytl) & (ys < shape.ybr)
            )
    elif isinstance(shape, Box | Polygon):
        pts = box_corners(shape) if isinstance(shape, Box) else shape.points
        win = _window(
            pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max(), height, width
        )
        if win is not None:
            rows, cols, xs, ys = win
            out[rows, cols] = polygon_inside(pts, xs, ys)
    elif isinstance(shape, Mask):
        h, w = shape.bitmap.shape
        r0, c0 = max(shape.top, 0), max(shape.left, 0)
        r1, c1 = min(shape.top + h, height), min(shape.left + w, width)
        if r0 < r1 and c0 < c1:
            out[r0:r1, c0:c1] = shape.bitmap[
                r0 - shape.top : r1 - shape.top, c0 - shape.left : c1 - shape.left
            ]
    return out


def polyline_band(points: FloatArray, width_px: float, height: int, width: int) -> BoolArray:
    """Pixels whose centre is within ``width_px / 2`` of the polyline ``points`` (``(N, 2)``).

    Flat caps at the two ends, round joins at the inner vertices (a buffered line string).
    """
    half = width_px / 2.0
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    band = np.zeros((height, width), dtype=bool)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        if length == 0.0:
            continue
        along = ((xs - x0) * dx + (ys - y0) * dy) / length
        across = np.abs((xs - x0) * dy - (ys - y0) * dx) / length
        band |= (along >= 0.0) & (along <= length) & (across <= half)
    for x, y in points[1:-1]:
        band |= np.hypot(xs - x, ys - y) <= half
    return band


def disks(points: FloatArray, radius: float, height: int, width: int) -> BoolArray:
    """Pixels whose centre is within ``radius`` of any of ``points``."""
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    out = np.zeros((height, width), dtype=bool)
    for x, y in points:
        out |= np.hypot(xs - x, ys - y) <= radius
    return out


def rle_encode(bitmap: BoolArray) -> list[int]:
    """CVAT mask RLE: row-major run lengths, the first run counting background (0) pixels."""
    flat = np.asarray(bitmap, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs.insert(0, 0)
    return [int(v) for v in runs]


def rle_decode(runs: Sequence[int], height: int, width: int) -> BoolArray:
    """Inverse of :func:`rle_encode`."""
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, np.asarray(runs, dtype=np.int64))
    return flat.reshape(height, width)


def tight_mask(
    bitmap: BoolArray,
    left: int,
    top: int,
    *,
    label: str,
    z_order: int = 0,
    attributes: Mapping[str, str] | None = None,
) -> Mask:
    """A :class:`Mask` of ``bitmap`` placed at ``(left, top)``, cropped to its set pixels."""
    rows = np.flatnonzero(bitmap.any(axis=1))
    cols = np.flatnonzero(bitmap.any(axis=0))
    crop = bitmap[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    return Mask(
        label=label,
        z_order=z_order,
        attributes=dict(attributes or {}),
        left=left + int(cols[0]),
        top=top + int(rows[0]),
        bitmap=crop,
    )


def star_polygon(
    rng: np.random.Generator,
    *,
    cx: float,
    cy: float,
    radius: float,
    vertices: int,
    roughness: float = 0.25,
    elongation: float = 1.0,
    angle: float = 0.0,
) -> FloatArray:
    """A random star-convex blob (smooth radial noise), vertices in screen-clockwise order."""
    theta = np.sort(rng.uniform(0.0, 2.0 * np.pi, vertices))
    theta = 0.6 * theta + 0.4 * np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    rad = np.ones(vertices)
    for k in (2, 3, 4):
        rad += roughness / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    rad = radius * np.clip(rad, 0.35, None)
    x = rad * np.cos(theta) * elongation
    y = rad * np.sin(theta) / elongation
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    return np.column_stack((cx + c * x - s * y, cy + s * x + c * y))


# --------------------------------------------------------------------------------------------
# CVAT 1.1 XML
# --------------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _points_text(points: FloatArray) -> str:
    return ";".join(f"{x:.2f},{y:.2f}" for x, y in np.asarray(points, dtype=np.float64))


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def labels_element(labels: Sequence[LabelDef]) -> etree._Element:
    """The ``<labels>`` block of a task's meta."""
    root = etree.Element("labels")
    for label in labels:
        el = _sub(root, "label")
        _sub(el, "name", label.name)
        _sub(el, "color", label.color)
        _sub(el, "type", label.type)
        attrs = _sub(el, "attributes")
        for attr in label.attributes:
            a = _sub(attrs, "attribute")
            _sub(a, "name", attr.name)
            _sub(a, "mutable", str(attr.mutable))
            _sub(a, "input_type", attr.input_type)
            _sub(a, "default_value", attr.default)
            _sub(a, "values", "\n".join(attr.values))
    return root


def meta_element(
    *,
    task_id: int,
    name: str,
    size: int,
    mode: str,
    labels: Sequence[LabelDef],
    original_size: tuple[int, int] | None = None,
) -> etree._Element:
    """The ``<meta>`` block of a CVAT 1.1 task export.

    ``mode`` is ``"annotation"`` (images) or ``"interpolation"`` (video / slice stack);
    ``original_size`` is ``(width, height)``, written for video exports.
    """
    meta = etree.Element("meta")
    task = _sub(meta, "task")
    _sub(task, "id", str(task_id))
    _sub(task, "name", name)
    _sub(task, "size", str(size))
    _sub(task, "mode", mode)
    _sub(task, "overlap", "0")
    _sub(task, "bugtracker", "")
    _sub(task, "created", CREATED)
    _sub(task, "updated", DUMPED)
    _sub(task, "subset", "default")
    _sub(task, "start_frame", "0")
    _sub(task, "stop_frame", str(size - 1))
    _sub(task, "frame_filter", "")
    segment = _sub(_sub(task, "segments"), "segment")
    _sub(segment, "id", str(task_id))
    _sub(segment, "start", "0")
    _sub(segment, "stop", str(size - 1))
    owner = _sub(task, "owner")
    _sub(owner, "username", "annotator")
    _sub(owner, "email", "")
    _sub(task, "assignee", "")
    task.append(labels_element(labels))
    if original_size is not None:
        orig = _sub(task, "original_size")
        _sub(orig, "width", str(original_size[0]))
        _sub(orig, "height", str(original_size[1]))
    _sub(meta, "dumped", DUMPED)
    return meta


_TAGS: dict[type, str] = {
    Ellipse: "ellipse",
    Polygon: "polygon",
    Polyline: "polyline",
    Points: "points",
    Box: "box",
    Mask: "mask",
    Tag: "tag",
}


def shape_element(shape: Shape, *, track_frame: TrackFrame | None = None) -> etree._Element:
    """One shape as a CVAT 1.1 element (attribute order as CVAT writes it).

    Inside a track (``track_frame`` given) the element carries ``frame``, ``outside``,
    ``occluded`` and ``keyframe`` instead of ``label``/``source``.
    """
    tag = _TAGS[type(shape)]
    el = etree.Element(tag)
    a = el.attrib
    if isinstance(shape, Tag):
        a["label"] = shape.label
        a["source"] = shape.source
    else:
        if track_frame is None:
            a["label"] = shape.label
            a["source"] = shape.source
            a["occluded"] = str(int(shape.occluded))
        else:
            a["frame"] = str(track_frame.frame)
            a["outside"] = str(int(track_frame.outside))
            a["occluded"] = str(int(shape.occluded))
            a["keyframe"] = str(int(track_frame.keyframe))
        if isinstance(shape, Box):
            a["xtl"], a["ytl"] = _fmt(shape.xtl), _fmt(shape.ytl)
            a["xbr"], a["ybr"] = _fmt(shape.xbr), _fmt(shape.ybr)
            if shape.rotation:
                a["rotation"] = _fmt(shape.rotation)
        elif isinstance(shape, Ellipse):
            a["cx"], a["cy"] = _fmt(shape.cx), _fmt(shape.cy)
            a["rx"], a["ry"] = _fmt(shape.rx), _fmt(shape.ry)
            if shape.rotation:
                a["rotation"] = _fmt(shape.rotation)
        elif isinstance(shape, Mask):
            h, w = shape.bitmap.shape
            a["rle"] = ", ".join(str(v) for v in rle_encode(shape.bitmap))
            a["left"], a["top"] = str(shape.left), str(shape.top)
            a["width"], a["height"] = str(w), str(h)
        else:
            a["points"] = _points_text(shape.points)
        a["z_order"] = str(shape.z_order)
    if shape.group_id and track_frame is None:
        a["group_id"] = str(shape.group_id)
    for name, value in shape.attributes.items():
        attr = _sub(el, "attribute", value)
        attr.attrib["name"] = name
    return el


def image_element(image: ImageAnnotations) -> etree._Element:
    """One ``<image>`` with its shapes, in order."""
    el = etree.Element("image")
    el.attrib.update(
        {
            "id": str(image.id),
            "name": image.name,
            "width": str(image.width),
            "height": str(image.height),
            "subset": image.subset,
        }
    )
    for shape in image.shapes:
        el.append(shape_element(shape))
    return el


def track_element(track: Track) -> etree._Element:
    """One ``<track>`` with a shape element per written frame."""
    el = etree.Element("track")
    el.attrib.update({"id": str(track.id), "label": track.label, "source": track.source})
    if track.group_id:
        el.attrib["group_id"] = str(track.group_id)
    for tf in track.frames:
        el.append(shape_element(tf.shape, track_frame=tf))
    return el


class CvatXmlWriter:
    """Writes a CVAT 1.1 XML export element by element (memory bounded by one element).

    Use :func:`cvat_xml` to get one; :meth:`write` takes ``<image>`` or ``<track>`` elements.
    """

    def __init__(self, xf: etree.xmlfile) -> None:
        self._xf = xf

    def write(self, element: etree._Element) -> None:
        """Append one top-level element (indented like ``pretty_print``)."""
        etree.indent(element, space="  ", level=1)
        self._xf.write("\n  ")
        self._xf.write(element)


@contextmanager
def cvat_xml(path: Path | str, meta: etree._Element) -> Iterator[CvatXmlWriter]:
    """Open ``path`` for a CVAT 1.1 export: declaration, ``<annotations>``, version and meta.

    Example:
        >>> import tempfile
        >>> meta = meta_element(task_id=1, name="t", size=0, mode="annotation", labels=())
        >>> with tempfile.TemporaryDirectory() as d, cvat_xml(Path(d) / "a.xml", meta) as w:
        ...     pass
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("annotations"):
            version = etree.Element("version")
            version.text = "1.1"
            xf.write("\n  ")
            xf.write(version)
            writer = CvatXmlWriter(xf)
            writer.write(meta)
            yield writer
            xf.write("\n")
    with Path(path).open("ab") as f:
        f.write(b"\n")


def write_cvat_images(
    path: Path | str,
    images: Sequence[ImageAnnotations],
    *,
    labels: Sequence[LabelDef],
    task_name: str,
    task_id: int = 1,
) -> None:
    """Write a CVAT for images 1.1 export of ``images``."""
    meta = meta_element(
        task_id=task_id, name=task_name, size=len(images), mode="annotation", labels=labels
    )
    with cvat_xml(path, meta) as writer:
        for image in images:
            writer.write(image_element(image))


def write_cvat_video(
    path: Path | str,
    tracks: Sequence[Track],
    *,
    labels: Sequence[LabelDef],
    task_name: str,
    size: int,
    width: int,
    height: int,
    task_id: int = 2,
) -> None:
    """Write a CVAT for video 1.1 export (tracks only) of a ``size``-frame stack."""
    meta = meta_element(
        task_id=task_id,
        name=task_name,
        size=size,
        mode="interpolation",
        labels=labels,
        original_size=(width, height),
    )
    with cvat_xml(path, meta) as writer:
        for track in tracks:
            writer.write(track_element(track))


# --------------------------------------------------------------------------------------------
# Micrograph scenes
# --------------------------------------------------------------------------------------------

MICROGRAPH_LABELS: tuple[LabelDef, ...] = (
    LabelDef(
        "bubble",
        "#e6194b",
        "ellipse",
        (AttributeDef("contrast", "select", ("dark", "bright"), "dark"),),
    ),
    LabelDef(
        "precipitate",
        "#3cb44b",
        "any",
        (AttributeDef("phase", "select", ("alpha", "beta"), "alpha"),),
    ),
    LabelDef(
        "grain",
        "#ffe119",
        "rectangle",
        (AttributeDef("twinned", "checkbox", ("false",), "false"),),
    ),
    LabelDef("dislocation", "#4363d8", "any"),
)


#: Width of the dislocation lines and radius of the dots at their ends in the images, in pixels
#: (the defaults of ``prep convert --line-width`` and ``--point-radius``).
LINE_WIDTH = 3.0
POINT_RADIUS = 3.0


class _Placer:
    """Rejection sampling of object centres that keep clear of objects placed before."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng = rng
        self.size = size
        self.discs: list[tuple[float, float, float]] = []

    def free(self, x: float, y: float, r: float, gap: float = 3.0) -> bool:
        return all(math.hypot(x - a, y - b) > r + c + gap for a, b, c in self.discs)

    def place(self, r: float, *, margin: float = 0.0, tries: int = 200) -> tuple[float, float]:
        """A centre at least ``margin`` inside the image (negative: may stick out)."""
        x = y = self.size / 2.0
        for _ in range(tries):
            x, y = self.rng.uniform(margin, self.size - margin, 2)
            if self.free(x, y, r):
                break
        self.discs.append((x, y, r))
        return float(x), float(y)

    def on_border(self, r: float, *, inset: float, tries: int = 200) -> tuple[float, float]:
        """A centre ``inset`` pixels inside a random image edge (negative: outside it)."""
        x = y = 0.0
        for _ in range(tries):
            along = self.rng.uniform(r + 5, self.size - r - 5)
            side = int(self.rng.integers(4))
            across = inset if side < 2 else self.size - inset
            x, y = (along, across) if side % 2 == 0 else (across, along)
            if self.free(x, y, r):
                break
        self.discs.append((x, y, r))
        return float(x), float(y)


def _clip_points(points: FloatArray, size: int) -> FloatArray:
    """Clamp each vertex into the image (for polylines, which may not fold back)."""
    return round2(np.clip(points, 0.0, float(size)))


def clip_convex(points: FloatArray, size: int) -> FloatArray:
    """A convex polygon cut to the image ``[0, size]^2`` (Sutherland-Hodgman), 2 decimals.

    Cutting, unlike clamping each vertex, keeps the polygon simple (no edges folded back along
    the border), which is how an annotation tool leaves a shape drawn past the image edge.
    """
    poly = [tuple(p) for p in np.asarray(points, dtype=np.float64)]
    edges = ((0, 0.0, 1.0), (0, float(size), -1.0), (1, 0.0, 1.0), (1, float(size), -1.0))
    for axis, bound, sign in edges:
        out: list[tuple[float, float]] = []
        for i, cur in enumerate(poly):
            prev = poly[i - 1]
            cur_in = sign * (cur[axis] - bound) >= 0
            prev_in = sign * (prev[axis] - bound) >= 0
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
        poly = out
    clipped = round2(np.array(poly).reshape(-1, 2))
    keep = np.any(clipped != np.roll(clipped, 1, axis=0), axis=1)
    return clipped[keep]


def shift_inside(points: FloatArray, size: int) -> FloatArray:
    """Translate ``points`` so that they lie inside ``[0, size]^2`` (when they fit), 2 decimals."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    shift = np.maximum(0.0, -lo) - np.maximum(0.0, hi - size)
    return round2(points + shift)


def _needle(
    x: float, y: float, length: float, width: float, angle: float, facets: int = 10
) -> FloatArray:
    """A faceted lens-shaped needle (elongated polygon) centred at ``(x, y)``."""
    t = np.linspace(0.0, 2.0 * np.pi, facets, endpoint=False) + np.pi / facets
    u = length / 2.0 * np.cos(t)
    v = width / 2.0 * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.7
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    return np.column_stack((x + c * u - s * v, y + s * u + c * v))


def micrograph_scene(rng: np.random.Generator, index: int, size: int = 512) -> list[Shape]:
    """The shapes of micrograph number ``index`` (0-based), in file order.

    Every image has grains (boxes, z 0), precipitates (polygons and ellipses, z 1) and bubbles
    (ellipses, z 2). Fixed extras per index make sure each CVAT feature appears at least once:
    group ids (0, 3), RLE masks (1, 4), dislocation polylines with end points (1, 2, 5), a tag (0),
    rotated and border-cut grains (2, 5), bubbles occluded by a precipitate (0, 3).
    """
    placer = _Placer(rng, size)
    grains: list[Shape] = []
    precipitates: list[Shape] = []
    bubbles: list[Shape] = []
    lines: list[Shape] = []
    tags: list[Shape] = []
    group = 0

    # Grains: large boxes at the bottom of the stack.
    n_grains = 2 if index in (2, 5) else 1
    for g in range(n_grains):
        w, h = rng.uniform(90, 170), rng.uniform(70, 140)
        rotated = index == 2 or (index not in (5,) and rng.random() < 0.4)
        rotation = r2(rng.uniform(10, 80)) if rotated and g == 0 else 0.0
        if index == 5 and g == 0:  # cut by the right border
            x0, y0 = size - w * 0.6, rng.uniform(40, size - h - 40)
        else:
            x0, y0 = rng.uniform(30, size - w - 30), rng.uniform(30, size - h - 30)
        xtl, ytl = r2(max(x0, 0.0)), r2(max(y0, 0.0))
        xbr, ybr = r2(min(x0 + w, size)), r2(min(y0 + h, size))
        twinned = "true" if rng.random() < 0.3 else "false"
        grains.append(
            Box(
                label="grain",
                xtl=xtl,
                ytl=ytl,
                xbr=xbr,
                ybr=ybr,
                rotation=rotation,
                z_order=0,
                attributes={"twinned": twinned},
            )
        )

    def phase() -> dict[str, str]:
        return {"phase": "beta" if rng.random() < 0.35 else "alpha"}

    # Precipitates.
    n_prec = int(rng.integers(4, 8))
    for p in range(n_prec):
        kind = ("needle", "ellipse", "plate")[p % 3]
        if kind == "needle":
            length, width = rng.uniform(40, 80), rng.uniform(8, 13)
            if p == 0:  # cut by the image border
                x, y = placer.on_border(length / 2, inset=rng.uniform(0, length / 4))
            else:
                x, y = placer.place(length / 2, margin=20)
            pts = clip_convex(_needle(x, y, length, width, rng.uniform(0, 180)), size)
            precipitates.append(
                Polygon(label="precipitate", points=pts, z_order=1, attributes=phase())
            )
        elif kind == "ellipse":
            rx, ry = rng.uniform(16, 30), rng.uniform(6, 10)
            x, y = placer.place(rx, margin=20)
            precipitates.append(
                Ellipse(
                    label="precipitate",
                    cx=r2(x),
                    cy=r2(y),
                    rx=r2(rx),
                    ry=r2(ry),
                    rotation=r2(rng.uniform(1, 179)),
                    z_order=1,
                    attributes=phase(),
                )
            )
        else:
            radius = rng.uniform(12, 20)
            x, y = placer.place(radius, margin=20)
            pts = star_polygon(
                rng,
                cx=x,
                cy=y,
                radius=radius,
                vertices=int(rng.integers(7, 11)),
                roughness=0.35,
                elongation=rng.uniform(1.0, 1.5),
                angle=rng.uniform(0, 180),
            )
            precipitates.append(
                Polygon(
                    label="precipitate",
                    points=shift_inside(pts, size),
                    z_order=1,
                    attributes=phase(),
                )
            )

    if index in (0, 3):  # a bent precipitate drawn as two grouped polygons
        group += 1
        length, width = rng.uniform(40, 55), rng.uniform(9, 12)
        x, y = placer.place(length, margin=70)
        a1 = rng.uniform(0, 180)
        a2 = a1 + rng.choice([-50.0, 50.0])
        ex = x + length / 2 * math.cos(math.radians(a1))
        ey = y + length / 2 * math.sin(math.radians(a1))
        x2 = ex + (length / 2 - width / 2) * math.cos(math.radians(a2))
        y2 = ey + (length / 2 - width / 2) * math.sin(math.radians(a2))
        for cx, cy, a in ((x, y, a1), (x2, y2, a2)):
            pts = clip_convex(_needle(cx, cy, length, width, a), size)
            precipitates.append(
                Polygon(
                    label="precipitate",
                    points=pts,
                    z_order=1,
                    group_id=group,
                    attributes={"phase": "alpha"},
                )
            )

    if index in (1, 4):  # an irregular precipitate annotated with the brush: an RLE mask
        radius = rng.uniform(16, 22)
        x, y = placer.place(radius + 4, margin=40)
        x0, y0 = int(x - radius * 1.6), int(y - radius * 1.6)
        side = int(radius * 3.2) + 1
        blob = star_polygon(rng, cx=x - x0, cy=y - y0, radius=radius, vertices=40, roughness=0.5)
        grid = np.arange(side, dtype=np.float64) + 0.5
        bitmap = polygon_inside(blob, grid[None, :], grid[:, None])
        bitmap = ndimage.binary_opening(bitmap, iterations=1)
        bitmap[side // 2 - 1 : side // 2 + 2, 2:6] = False  # a notch only a brush makes
        precipitates.append(
            tight_mask(bitmap, x0, y0, label="precipitate", z_order=1, attributes={"phase": "beta"})
        )

    # Bubbles: small round ellipses above the precipitates.
    n_bub = int(rng.integers(7, 13))
    bright_share = 0.7 if index == 4 else 0.25
    for b in range(n_bub):
        r = rng.uniform(5, 15)
        if b == 0:  # cut by the image border
            x, y = placer.on_border(r, inset=rng.uniform(-0.3 * r, 0.6 * r))
        else:
            x, y = placer.place(r, margin=r + 2)
        e = rng.uniform(0, 0.12)
        contrast = "bright" if rng.random() < bright_share else "dark"
        rotation = r2(rng.uniform(0, 180)) if e > 0.03 else 0.0
        bubbles.append(
            Ellipse(
                label="bubble",
                cx=r2(x),
                cy=r2(y),
                rx=r2(r * (1 + e)),
                ry=r2(r * (1 - e)),
                rotation=rotation,
                z_order=2,
                attributes={"contrast": contrast},
            )
        )

    if index in (0, 3):  # a bubble partly hidden under a precipitate (lower z, occluded)
        host = next(s for s in precipitates if isinstance(s, Ellipse))
        r = rng.uniform(8, 11)
        t = math.radians(host.rotation)
        x = host.cx - math.sin(t) * (host.ry + r * 0.4)
        y = host.cy + math.cos(t) * (host.ry + r * 0.4)
        bubbles.append(
            Ellipse(
                label="bubble",
                cx=r2(x),
                cy=r2(y),
                rx=r2(r),
                ry=r2(r),
                z_order=0,
                occluded=True,
                attributes={"contrast": "dark"},
            )
        )
    if index in (2, 4):  # a bubble sitting on a precipitate (higher z)
        host = precipitates[0]
        if isinstance(host, Polygon):
            cx, cy = host.points.mean(axis=0)
        else:
            assert isinstance(host, Ellipse)
            cx, cy = host.cx, host.cy
        r = rng.uniform(6, 8)
        bubbles.append(
            Ellipse(
                label="bubble",
                cx=r2(cx + 3),
                cy=r2(cy - 2),
                rx=r2(r),
                ry=r2(r * 0.92),
                rotation=r2(rng.uniform(0, 180)),
                z_order=2,
                attributes={"contrast": "bright"},
            )
        )

    if index in (1, 2, 5):  # a dislocation line with its two end points
        n = int(rng.integers(4, 7))
        x, y = rng.uniform(60, size - 60, 2)
        heading = rng.uniform(0, 2 * np.pi)
        pts = [(x, y)]
        for _ in range(n - 1):
            heading += rng.normal(0, 0.35)
            x, y = x + 25 * math.cos(heading), y + 25 * math.sin(heading)
            pts.append((x, y))
        line = _clip_points(np.array(pts), size)
        lines.append(Polyline(label="dislocation", points=line, z_order=3))
        lines.append(Points(label="dislocation", points=line[[0, -1]], z_order=3))

    if index == 0:
        tags.append(Tag(label="precipitate", attributes={"phase": "beta"}))

    return [*tags, *grains, *precipitates, *bubbles, *lines]


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> FloatArray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return np.asarray(f / (f.std() + 1e-12), dtype=np.float64)


def micrograph_background(rng: np.random.Generator, height: int, width: int) -> FloatArray:
    """Illumination: mean level, tilted gradient, vignetting and low-frequency variation."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy = (yy + 0.5) / height * 2 - 1
    xx = (xx + 0.5) / width * 2 - 1
    a = rng.uniform(0, 2 * np.pi)
    level = rng.uniform(0.5, 0.6)
    grad = 0.07 * (math.cos(a) * xx + math.sin(a) * yy)
    return level + grad - 0.04 * (xx**2 + yy**2) + 0.025 * smooth_field(rng, (height, width), 40)


def render_micrograph(
    shapes: Sequence[Shape], rng: np.random.Generator, *, height: int, width: int
) -> FloatArray:
    """A TEM-like image (float, about 0..1) drawn from ``shapes``.

    Shapes are painted in (z_order, file order): the top shape decides each pixel, as in the
    semantic maps. Bubbles get a Fresnel fringe just outside their edge (bright around dark
    bubbles, dark around bright ones), precipitates are dark with faint moiré fringes, grains
    shift the background level, dislocations are dark lines (:data:`LINE_WIDTH` wide) ending in
    dark dots (:data:`POINT_RADIUS`). Then a small blur (the microscope's point spread),
    amorphous texture, shot noise and read noise.
    """
    bg = micrograph_background(rng, height, width)
    img = bg.copy()
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    order = sorted(range(len(shapes)), key=lambda i: (shapes[i].z_order, i))
    for i in order:
        shape = shapes[i]
        if isinstance(shape, Tag):
            continue
        if isinstance(shape, Polyline | Points):
            if isinstance(shape, Polyline):
                line = polyline_band(shape.points, LINE_WIDTH, height, width)
            else:
                line = disks(shape.points, POINT_RADIUS, height, width)
            img = np.where(line, bg * 0.6, img)
            continue
        inside = rasterize(shape, height, width)
        if shape.label == "grain":
            factor = 0.8 if shape.attributes.get("twinned") == "true" else 1.2
            img = np.where(inside, bg * factor, img)
        elif shape.label == "precipitate":
            t = rng.uniform(0, np.pi)
            period = rng.uniform(4.0, 6.0)
            fringes = 0.03 * np.sin(2 * np.pi * (xx * math.cos(t) + yy * math.sin(t)) / period)
            img = np.where(inside, bg * 0.5 + fringes, img)
        elif shape.label == "bubble" and isinstance(shape, Ellipse):
            rho = ellipse_radius(shape.cx, shape.cy, shape.rx, shape.ry, shape.rotation, xx, yy)
            dist = (rho - 1.0) * math.sqrt(shape.rx * shape.ry)
            dark = shape.attributes.get("contrast", "dark") == "dark"
            fringe = np.exp(-((dist - 1.0) ** 2) / (2 * 0.7**2)) * (dist > 0)
            img = img + (0.14 if dark else -0.14) * fringe
            core = bg * (0.62 if dark else 1.38) - (0.05 if dark else -0.05) * np.clip(
                1 - rho**2, 0, 1
            )
            img = np.where(inside, core, img)
        else:
            img = np.where(inside, bg * 0.7, img)
    img = ndimage.gaussian_filter(img, 0.6)
    img = img + 0.015 * smooth_field(rng, (height, width), 1.2)
    dose = 400.0
    img = rng.poisson(np.clip(img, 0, None) * dose) / dose
    img = img + rng.normal(0.0, 0.008, img.shape)
    return np.asarray(img, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Slice stack (tomography-like volume)
# --------------------------------------------------------------------------------------------

STACK_LABELS: tuple[LabelDef, ...] = (
    LabelDef("fibre", "#f58231", "polygon"),
    LabelDef("pore", "#911eb4", "ellipse"),
)


def _interpolate(keys: dict[int, FloatArray], frames: range) -> dict[int, FloatArray]:
    """Linear interpolation of per-keyframe parameter vectors, rounded to 2 decimals."""
    ks = sorted(keys)
    out: dict[int, FloatArray] = {}
    for f in frames:
        if f in keys:
            out[f] = round2(keys[f])
            continue
        k0 = max(k for k in ks if k < f)
        k1 = min(k for k in ks if k > f)
        w = (f - k0) / (k1 - k0)
        out[f] = round2((1 - w) * keys[k0] + w * keys[k1])
    return out


def stack_tracks(rng: np.random.Generator, *, frames: int = 32, size: int = 128) -> list[Track]:
    """Tracks of a slice stack: straight fibres crossing the volume and spherical pores.

    Fibres are polygons on every frame (keyframes every 8 frames, linear interpolation between,
    which is exact for a straight tube). Pores are ellipses on the frames where the sphere's
    cross-section is at least 1.5 px in radius, keyframes every other frame, then one
    ``outside`` frame. The last pore track holds two pores: it goes outside and reappears later.
    """
    tracks: list[Track] = []
    fibre_paths: list[tuple[FloatArray, FloatArray, float]] = []
    key_frames = [0, 8, 16, 24, frames - 1]
    zs = np.arange(frames, dtype=np.float64)[:, None]

    def fibre_clear(p0: FloatArray, v: FloatArray, reach: float) -> bool:
        for q0, w, other in fibre_paths:
            gap = np.hypot(*((p0 + v * zs) - (q0 + w * zs)).T)
            if gap.min() < reach + other * 1.7 + 3:
                return False
        return True

    for fid in range(4):
        radius = rng.uniform(4.0, 6.5)
        p0 = np.full(2, size / 2.0)
        v = np.zeros(2)
        for _ in range(1000):
            p0 = rng.uniform(18, size - 18, 2)
            speed = rng.uniform(0.7, 1.3)
            a = rng.uniform(0, 2 * np.pi)
            v = speed * np.array([math.cos(a), math.sin(a)])
            p1 = p0 + v * (frames - 1)
            if np.all((p1 > 18) & (p1 < size - 18)) and fibre_clear(p0, v, radius * 1.7):
                break
        fibre_paths.append((p0, v, radius))
        major = radius * math.sqrt(1 + float(v @ v))
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ang = math.atan2(v[1], v[0])
        u, w = major * np.cos(t), radius * np.sin(t)
        local = np.column_stack(
            (math.cos(ang) * u - math.sin(ang) * w, math.sin(ang) * u + math.cos(ang) * w)
        )
        keys = {f: (local + p0 + v * f).ravel() for f in key_frames}
        geo = _interpolate(keys, range(frames))
        track_frames = [
            TrackFrame(
                frame=f,
                shape=Polygon(label="fibre", points=geo[f].reshape(-1, 2), z_order=fid),
                keyframe=f in keys,
            )
            for f in range(frames)
        ]
        tracks.append(Track(id=fid, label="fibre", frames=track_frames))

    pores: list[tuple[float, float, float, int, int]] = []

    def pore_clear(x: float, y: float, r: float, z0: int, z1: int) -> bool:
        for p0, v, fr in fibre_paths:
            for z in range(z0, z1 + 1):
                c = p0 + v * z
                if math.hypot(x - c[0], y - c[1]) < fr * 1.8 + r + 3:
                    return False
        return all(
            math.hypot(x - px, y - py) > r + pr + 3 or z1 < pz0 or z0 > pz1
            for px, py, pr, pz0, pz1 in pores
        )

    def pore_frames(first: int) -> list[TrackFrame]:
        radius = rng.uniform(4.0, 6.5)
        half = math.sqrt(radius**2 - 1.5**2)
        zc = first + half
        z0, z1 = first, min(math.floor(zc + half), frames - 1)
        x = y = size / 2.0
        for _ in range(1000):
            x, y = (float(c) for c in rng.uniform(12, size - 12, 2))
            if pore_clear(x, y, radius, z0, z1):
                break
        pores.append((x, y, radius, z0, z1))
        aspect = rng.uniform(1.0, 1.15)
        rotation = r2(rng.uniform(0, 180))
        keys: dict[int, FloatArray] = {}
        for f in range(z0, z1 + 1):
            if (f - z0) % 2 == 0 or f == z1:
                rr = math.sqrt(max(radius**2 - (f - zc) ** 2, 1.5**2))
                keys[f] = np.array([x, y, rr * aspect, rr / aspect])
        geo = _interpolate(keys, range(z0, z1 + 1))
        out = []
        for f in range(z0, z1 + 1):
            cx, cy, rx, ry = (float(c) for c in geo[f])
            shape = Ellipse(label="pore", cx=cx, cy=cy, rx=rx, ry=ry, rotation=rotation, z_order=3)
            out.append(TrackFrame(frame=f, shape=shape, keyframe=f in keys))
        if z1 + 1 < frames:
            out.append(TrackFrame(frame=z1 + 1, shape=out[-1].shape, outside=True))
        return out

    for start in (2, 6, 11, 16, 21):
        tracks.append(Track(id=len(tracks), label="pore", frames=pore_frames(start)))
    # One track, two pores: outside after the first, back (outside="0") on a later keyframe.
    tracks.append(Track(id=len(tracks), label="pore", frames=[*pore_frames(0), *pore_frames(23)]))
    return tracks


def render_slice(
    frame: int,
    tracks: Sequence[Track],
    background: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """One tomography-like slice drawn from the tracks' shapes on ``frame``.

    Fibres are bright, pores dark with a faint bright rim (edge enhancement); shapes are
    painted in (z_order, track order); then a small blur and Gaussian noise.
    """
    height, width = background.shape
    img = background.copy()
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    visible: list[tuple[int, int, Shape]] = []
    for ti, track in enumerate(tracks):
        for tf in track.frames:
            if tf.frame == frame and not tf.outside:
                visible.append((tf.shape.z_order, ti, tf.shape))
    for _, _, shape in sorted(visible, key=lambda t: (t[0], t[1])):
        inside = rasterize(shape, height, width)
        if shape.label == "fibre":
            img = np.where(inside, background * 1.55, img)
        else:
            assert isinstance(shape, Ellipse)
            rho = ellipse_radius(shape.cx, shape.cy, shape.rx, shape.ry, shape.rotation, xx, yy)
            dist = (rho - 1.0) * math.sqrt(shape.rx * shape.ry)
            img = img + 0.08 * np.exp(-((dist - 0.8) ** 2) / 0.5) * (dist > 0)
            img = np.where(inside, background * 0.3, img)
    img = ndimage.gaussian_filter(img, 0.5)
    return np.asarray(img + rng.normal(0.0, 0.035, img.shape), dtype=np.float64)


def stack_background(rng: np.random.Generator, frames: int, size: int) -> FloatArray:
    """A smooth 3D matrix density (frames, size, size) around 0.45."""
    return 0.45 + 0.03 * smooth_field(rng, (frames, size, size), 8.0)
