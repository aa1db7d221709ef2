"""CVAT for images 1.1 XML, for "Upload annotations" into a CVAT task (or project).

Layout (what CVAT's own exporter writes and its importer reads)::

    <annotations>
      <version>1.1</version>
      <meta>...</meta>                  with --like: the export's own <meta>, copied as is
      <image id="0" name="a.png" width="W" height="H" [subset="Train" task_id="5"]>
        <polygon label="pore" source="auto" occluded="0" points="x,y;x,y;..." z_order="2"
                 [group_id="1"]>
          <attribute name="score">0.9731</attribute>
        </polygon>
        <mask label="pore" source="auto" occluded="0" rle="0,3,1" left="4" top="2" width="2"
              height="2" z_order="0"/>
      </image>
    </annotations>

The importer matches ``<image>`` by name (and id), finds labels by name, and takes the
``<attribute>`` values of attributes the label declares. So with ``--like`` the image ids,
names, sizes and subsets, the ``task_id`` of each image of a project export, and the whole
``<meta>`` (labels, colours, attribute specs, task and project ids) come from the original
export, and the ``score`` attribute is written only where
the label declares an attribute ``score``. Without ``--like`` the ``<meta>`` declares each class
with its prediction colour and a ``score`` text attribute, and images get ids ``0..`` in order.

Example:
    >>> from microprep.writers.shapes import ImageShapes, OutShape
    >>> s = OutShape("polygon", "pore", 1, np.array([[0.0, 0], [2, 0], [2, 1]]), 0, score=0.5)
    >>> xml = cvat_xml([ImageShapes("a.png", 4, 4, (s,))], classes=("background", "pore"),
    ...                colors=((0, 0, 0), (255, 0, 0))).decode()
    >>> 'points="0.00,0.00;2.00,0.00;2.00,1.00"' in xml, '<attribute name="score">' in xml
    (True, True)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from lxml import etree

from microprep.archive import is_archive, open_archive
from microprep.errors import FormatError
from microprep.writers.like import Like
from microprep.writers.shapes import ImageShapes, OutShape
from microprep.writers.vectorize import encode_cvat_rle

__all__ = ["cvat_xml", "label_meta", "like_export"]

#: An ``<image>`` of an export: ``(subset, id, name)``.
ImageKey = tuple[str | None, int | None, str]

logger = logging.getLogger(__name__)


def _export_xml(path: Path) -> bytes:
    if is_archive(path):
        with open_archive(path) as archive:
            if archive.annotations is None:
                raise FormatError("the archive holds no annotations.xml", file=path)
            return archive.read(archive.annotations)
    return path.read_bytes()


def _iterparse(data: bytes, tags: tuple[str, ...]) -> Any:
    return etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        tag=tags,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
    )


def like_export(path: Path) -> tuple[bytes, dict[ImageKey, str]]:
    """The ``<meta>`` element of a CVAT export (XML file or export archive), as bytes, and
    the ``task_id`` of each ``<image>`` that has one (a project export), keyed by the image's
    ``(subset, id, name)``.

    Raises:
        FormatError: no ``<meta>`` or unreadable XML.
    """
    meta: bytes | None = None
    tasks: dict[ImageKey, str] = {}
    try:
        for _, elem in _iterparse(_export_xml(path), ("meta", "image")):
            if elem.tag == "meta":
                meta = meta or bytes(etree.tostring(elem, encoding="utf-8"))
            else:
                task = elem.get("task_id")
                if task:
                    key = (elem.get("subset") or None, _int(elem.get("id")), elem.get("name", ""))
                    tasks[key] = task
            elem.clear()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise FormatError(f"cannot read the <meta> of the export: {exc}", file=path) from exc
    if meta is None:
        raise FormatError("the export has no <meta> element", file=path)
    return meta, tasks


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def label_meta(classes: Sequence[str], colors: Sequence[Sequence[int]]) -> str:
    """The ``<labels>`` of a fresh ``<meta>``: each class, its colour and a ``score`` text
    attribute."""
    labels = []
    for name, color in zip(classes[1:], colors[1:], strict=True):
        hex_color = "#{:02x}{:02x}{:02x}".format(*color[:3])
        labels.append(
            f"<label><name>{escape(name)}</name><color>{hex_color}</color><type>any</type>"
            "<attributes><attribute><name>score</name><mutable>False</mutable>"
            "<input_type>text</input_type><default_value></default_value><values></values>"
            "</attribute></attributes></label>"
        )
    return f"<labels>{''.join(labels)}</labels>"


def _meta(classes: Sequence[str], colors: Sequence[Sequence[int]]) -> str:
    return (
        "<meta><task><name>predictions</name><mode>annotation</mode>"
        f"{label_meta(classes, colors)}</task></meta>"
    )


def _score_labels(like: Like | None, classes: Sequence[str]) -> set[str]:
    """The labels that get a ``score`` attribute."""
    if like is None:
        return set(classes[1:])
    return {
        label.name
        for label in like.labels.labels
        if any(a.name == "score" for a in label.attributes)
    }


def _shape_xml(shape: OutShape, scored: set[str]) -> str:
    common = f'label={quoteattr(shape.label)} source="auto" occluded="0"'
    extra = f' z_order="{shape.z_order}"'
    if shape.group:
        extra += f' group_id="{shape.group}"'
    body = ""
    if shape.score is not None and shape.label in scored:
        body = f'<attribute name="score">{shape.score:.4f}</attribute>'
    if shape.kind == "mask":
        assert shape.bitmap is not None  # set for every mask shape
        h, w = shape.bitmap.shape
        return (
            f'<mask {common} rle="{encode_cvat_rle(shape.bitmap)}" left="{shape.left}" '
            f'top="{shape.top}" width="{w}" height="{h}"{extra}>{body}</mask>'
        )
    flat = np.asarray(shape.points, np.float64).reshape(-1).tolist()
    text = ";".join(["%.2f,%.2f"] * (len(flat) // 2)) % tuple(flat)
    return f'<polygon {common} points="{text}"{extra}>{body}</polygon>'


def cvat_xml(
    images: Iterable[ImageShapes],
    *,
    classes: Sequence[str],
    colors: Sequence[Sequence[int]],
    like: Like | None = None,
) -> bytes:
    """The CVAT for images 1.1 XML of ``images`` (module docstring)."""
    scored = _score_labels(like, classes)
    tasks: dict[ImageKey, str] = {}
    if like is not None:
        meta_bytes, tasks = like_export(like.path)
        meta = meta_bytes.decode("utf-8")
    else:
        meta = _meta(classes, colors)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n']
    parts.append(meta + "\n")
    for index, image in enumerate(images):
        name, image_id, subset, task = image.name, index, None, None
        if like is not None:
            info = like.images[image.name]
            name, subset = info.name, info.subset
            image_id = info.id if info.id is not None else index
            task = tasks.get((info.subset, info.id, info.name))
        attrs = f'id="{image_id}" name={quoteattr(name)} width="{image.width}" '
        attrs += f'height="{image.height}"'
        if subset is not None:
            attrs += f" subset={quoteattr(subset)}"
        if task is not None:
            attrs += f" task_id={quoteattr(task)}"
        parts.append(f"<image {attrs}>\n")
        parts.extend(_shape_xml(shape, scored) + "\n" for shape in image.shapes)
        parts.append("</image>\n")
    parts.append("</annotations>\n")
    return "".join(parts).encode("utf-8")
