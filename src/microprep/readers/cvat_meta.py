"""The ``<meta>`` block of CVAT XML 1.1 exports: label declarations and task frame numbering.

Task, job and project exports are all understood: the labels come from the first ``<task>``,
``<job>`` or ``<project>`` child of ``<meta>`` (for projects, the project's ``<labels>``).

Example:
    >>> from lxml import etree
    >>> meta = etree.fromstring(
    ...     "<meta><task><labels><label><name>pore</name><color>#ff0000</color>"
    ...     "<type>polygon</type></label></labels></task></meta>"
    ... )
    >>> parse_meta(meta, "a.xml").labels[0].name
    'pore'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from microprep.errors import FormatError, GeometryError
from microprep.model import AttributeSpec, LabelSpec
from microprep.readers.image_sizes import MAX_IMAGE_SIDE
from microprep.readers.names import check_label_name
from microprep.readers.xmlsafe import line_of

_STEP_RE = re.compile(r"step\s*=\s*(\d+)")


@dataclass(frozen=True, slots=True)
class CvatMeta:
    """What ``<meta>`` says: declared labels and, for video tasks, the frame numbering."""

    labels: tuple[LabelSpec, ...] = ()
    mode: str | None = None
    size: int | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    step: int = 1
    original_size: tuple[int, int] | None = None


def parse_side(value: str | None, what: str, *, file: str, line: int | None, where: str) -> int:
    """An image side in pixels: an integer in ``1..MAX_IMAGE_SIDE``.

    Raises FormatError when missing or not an integer, GeometryError when out of range; ``what``,
    ``file``, ``line`` and ``where`` go into the message.
    """
    if value is None:
        raise FormatError(f"missing {what}", file=file, line=line, where=where)
    try:
        side = int(value)
    except ValueError as exc:
        raise FormatError(
            f"{what} {value[:40]!r} is not an integer", file=file, line=line, where=where
        ) from exc
    if not 1 <= side <= MAX_IMAGE_SIDE:
        raise GeometryError(
            f"{what} {side} is outside 1..{MAX_IMAGE_SIDE}", file=file, line=line, where=where
        )
    return side


def _text_int(parent: etree._Element, name: str, file: str) -> int | None:
    child = parent.find(name)
    if child is None:
        return None
    text = (child.text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise FormatError(
            f"<{name}> {text[:40]!r} is not an integer", file=file, line=line_of(child)
        ) from exc


def _parse_labels(labels: etree._Element, file: str) -> tuple[LabelSpec, ...]:
    out: list[LabelSpec] = []
    seen: set[tuple[str, str | None]] = set()
    for lab in labels.iterchildren("label"):
        name = lab.findtext("name") or ""
        if not name:
            raise FormatError("label without a <name>", file=file, line=line_of(lab))
        check_label_name(name, file=file, line=line_of(lab), where="<meta> <label>")
        parent = lab.findtext("parent") or None
        if (name, parent) in seen:
            raise FormatError(
                f"label {name!r} is declared twice", file=file, line=line_of(lab), where="<meta>"
            )
        seen.add((name, parent))
        attrs = []
        for attr in lab.iterfind("attributes/attribute"):
            attr_name = attr.findtext("name") or ""
            if not attr_name:
                raise FormatError(
                    "attribute without a <name>",
                    file=file,
                    line=line_of(attr),
                    where=f"<label> {name!r}",
                )
            check_label_name(
                attr_name,
                file=file,
                what="attribute",
                line=line_of(attr),
                where=f"<label> {name!r}",
            )
            values = tuple(v for v in (attr.findtext("values") or "").split("\n") if v)
            attrs.append(
                AttributeSpec(
                    name=attr_name,
                    input_type=attr.findtext("input_type") or "text",
                    values=values,
                    default=attr.findtext("default_value") or "",
                    mutable=(attr.findtext("mutable") or "").strip().lower() in ("true", "1"),
                )
            )
        out.append(
            LabelSpec(
                name=name,
                color=lab.findtext("color") or None,
                type=lab.findtext("type") or "any",
                attributes=tuple(attrs),
                parent=parent,
            )
        )
    return tuple(out)


def parse_meta(meta: etree._Element, file: str) -> CvatMeta:
    """The labels (declaration order, skeleton elements with ``parent``) and frame numbering.

    Raises FormatError for labels without a name, labels declared twice, or unparseable numbers
    and ``frame_filter`` values (only ``step=K`` is understood).
    """
    owner = next((c for c in meta if c.tag in ("task", "project", "job")), None)
    if owner is None:
        return CvatMeta()
    labels_elem = owner.find("labels")
    labels = () if labels_elem is None else _parse_labels(labels_elem, file)
    step = 1
    ffilter = owner.find("frame_filter")
    text = "" if ffilter is None else (ffilter.text or "").strip()
    if text:
        match = _STEP_RE.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise FormatError(
                f"unsupported frame_filter {text[:40]!r} (expected 'step=K', K >= 1)",
                file=file,
                line=None if ffilter is None else line_of(ffilter),
            )
        step = int(match.group(1))
    original = owner.find("original_size")
    size_wh = None
    if original is not None:
        w = parse_side(
            original.findtext("width"),
            "original width",
            file=file,
            line=line_of(original),
            where="<original_size>",
        )
        h = parse_side(
            original.findtext("height"),
            "original height",
            file=file,
            line=line_of(original),
            where="<original_size>",
        )
        size_wh = (w, h)
    return CvatMeta(
        labels=labels,
        mode=(owner.findtext("mode") or "").strip() or None,
        size=_text_int(owner, "size", file),
        start_frame=_text_int(owner, "start_frame", file) or 0,
        stop_frame=_text_int(owner, "stop_frame", file),
        step=step,
        original_size=size_wh,
    )
