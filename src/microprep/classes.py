"""Control over the classes: order, rename / merge, drop, ignore, annotated regions.

One step on the model, applied the same way after every reader and before validation
(docs/classes.md): :func:`apply_classes` takes an :class:`~microprep.model.AnnotationSet` and
:class:`ClassOptions` and returns a new set whose label map and shapes follow them.

In this order, for every shape of every image:

1. ``mapping`` renames labels (``{"Bubble": "bubble", "void": "bubble"}``); two labels mapped to
   one name merge into one class.
2. Shapes whose label (after mapping) is in ``drop`` are left out.
3. Labels in ``ignore`` get the role ``"ignore"``: their shapes mark pixels that are not
   annotated (class-map value :attr:`~microprep.model.LabelMap.ignore_index`, 255); labels in
   ``regions`` get the role ``"region"``: their shapes mark the annotated region of their image,
   every pixel outside all of them is ignored. Neither is a class nor an object.
4. ``classes`` (from a ``classes.txt``: :func:`read_classes_file`) fixes the class order;
   classes listed there that no shape uses are kept (empty classes). A class of the export
   that the file does not list is an error naming every such label.

Names in ``drop``, ``ignore`` and ``regions`` and in the classes file are names *after*
mapping. Names that the export does not use are accepted (the same options serve several
exports), and logged.

Example:
    >>> import numpy as np
    >>> from microprep.model import AnnotatedImage, ImageInfo, LabelMap, LabelSpec, Shape
    >>> box = Shape(kind="box", label="Void", points=np.array([[0.0, 0.0], [2.0, 2.0]]))
    >>> raw = AnnotationSet.from_items(
    ...     [AnnotatedImage(ImageInfo("a.png", 4, 4), (box,))],
    ...     labels=LabelMap((LabelSpec("grain"), LabelSpec("Void"))),
    ... )
    >>> opts = ClassOptions(classes=("bubble", "grain"), mapping=parse_map("Void=bubble"))
    >>> mapped = apply_classes(raw, opts)
    >>> mapped.labels.class_names, [s.label for item in mapped for s in item.shapes]
    (('background', 'bubble', 'grain'), ['bubble'])
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from microprep.errors import InputError, UsageError
from microprep.model import (
    AnnotatedImage,
    AnnotationSet,
    LabelMap,
    LabelRole,
    LabelSpec,
    Shape,
)

__all__ = [
    "BACKGROUND",
    "ClassOptions",
    "apply_classes",
    "images_without_region",
    "parse_map",
    "read_classes_file",
    "region_warning",
    "split_names",
]

log = logging.getLogger(__name__)

#: The name of class 0, first line of every classes file.
BACKGROUND = "background"


@dataclass(frozen=True, slots=True)
class ClassOptions:
    """What :func:`apply_classes` does (module docstring). The default changes nothing.

    ``classes``: class names in order, background left out (None: the export's order).
    ``mapping``: ``(old, new)`` label pairs. ``drop``, ``ignore``, ``regions``: label names
    (after mapping). ``classes_file``: where ``classes`` came from, for the provenance.
    """

    classes: tuple[str, ...] | None = None
    mapping: tuple[tuple[str, str], ...] = ()
    drop: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    classes_file: str | None = None

    def __post_init__(self) -> None:
        olds = [old for old, _ in self.mapping]
        twice = sorted({old for old in olds if olds.count(old) > 1})
        if twice:
            raise UsageError(f"--map names {', '.join(map(repr, twice))} more than once")
        roles = {"--drop": self.drop, "--ignore": self.ignore, "--annotated-region": self.regions}
        for a, first in roles.items():
            for b, second in roles.items():
                both = sorted(first & second)
                if a < b and both:
                    raise UsageError(f"{', '.join(map(repr, both))} given to both {a} and {b}")
        for name, names in roles.items():
            if BACKGROUND in names:
                raise UsageError(f"{name}: {BACKGROUND!r} is class 0, not a label of the export")
        if any(new == BACKGROUND for _, new in self.mapping):
            raise UsageError(
                f"--map: {BACKGROUND!r} is class 0 and takes no shapes; --drop leaves a label's "
                "shapes out"
            )
        if self.classes is not None:
            seen = [c for c in self.classes]
            dup = sorted({c for c in seen if seen.count(c) > 1})
            if dup:
                raise UsageError(f"the classes file lists {', '.join(map(repr, dup))} twice")
            special = sorted(set(self.classes) & (self.ignore | self.regions))
            if special:
                raise UsageError(
                    f"{', '.join(map(repr, special))}: an --ignore or --annotated-region label "
                    "is not a class; take it out of the classes file"
                )

    @property
    def active(self) -> bool:
        """True when the options change anything."""
        return bool(
            self.classes is not None or self.mapping or self.drop or self.ignore or self.regions
        )

    def rename(self, label: str) -> str:
        """``label`` after ``mapping``."""
        return dict(self.mapping).get(label, label)

    def provenance(self, labels: LabelMap) -> dict[str, Any]:
        """What the store records (root attribute ``class_mapping``): the options and, per class
        of the result, the export labels that went into it."""
        sources: dict[str, list[str]] = {}
        for spec in labels.labels:
            if spec.parent is None:
                sources.setdefault(self.rename(spec.name), []).append(spec.name)
        return {
            "classes_file": self.classes_file,
            "map": dict(self.mapping),
            "drop": sorted(self.drop),
            "ignore": sorted(self.ignore),
            "annotated_region": sorted(self.regions),
            "sources": sources,
        }


def split_names(values: Iterable[str]) -> frozenset[str]:
    """Names from repeated options and comma lists (``("a,b", "c")`` -> ``{a, b, c}``).

    Example:
        >>> sorted(split_names(["void, crack", "dust"]))
        ['crack', 'dust', 'void']
    """
    return frozenset(n.strip() for value in values for n in value.split(",") if n.strip())


def parse_map(text: str | Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``"Bubble=bubble,void=bubble"`` (or several such strings) to ``(old, new)`` pairs.

    Raises:
        UsageError: an item without ``=``, or with an empty side.

    Example:
        >>> parse_map("Bubble=bubble, void=bubble")
        (('Bubble', 'bubble'), ('void', 'bubble'))
    """
    values = [text] if isinstance(text, str) else list(text)
    pairs = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            old, sep, new = item.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise UsageError(f"--map: {item.strip()!r} is not OLD=NEW (e.g. Bubble=bubble)")
            pairs.append((old.strip(), new.strip()))
    return tuple(pairs)


def read_classes_file(path: Path) -> tuple[str, ...]:
    """The class names of a ``classes.txt`` (one a line, ``background`` first), background
    left out: the file ``prep convert --to masks`` writes. Blank lines at the end are allowed.

    Raises:
        InputError: naming the file and line: no ``background`` first line, blank or
            duplicate names, no class at all.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the classes file: {exc}", file=path) from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or lines[0].strip() != BACKGROUND:
        raise InputError(
            f"line 1 must be {BACKGROUND!r} (class 0), then one class name a line",
            file=path,
            line=1,
        )
    names: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        name = line.strip()
        if not name:
            raise InputError("blank line: one class name a line", file=path, line=number)
        if name in names or name == BACKGROUND:
            raise InputError(f"class {name!r} is listed twice", file=path, line=number)
        names.append(name)
    if not names:
        raise InputError("the file lists no class after 'background'", file=path, line=1)
    return tuple(names)


def _role(name: str, options: ClassOptions) -> LabelRole:
    if name in options.ignore:
        return "ignore"
    return "region" if name in options.regions else "class"


def _label_map(labels: LabelMap, options: ClassOptions, source: Path) -> LabelMap:
    classes: dict[str, LabelSpec] = {}
    elements: list[LabelSpec] = []
    for spec in labels.labels:
        if spec.parent is not None:
            elements.append(replace(spec, parent=options.rename(spec.parent)))
            continue
        name = options.rename(spec.name)
        if name in options.drop or name in classes:
            continue
        classes[name] = replace(spec, name=name, role=_role(name, options))
    order = [name for name, spec in classes.items() if spec.role == "class"]
    if options.classes is not None:
        missing = [name for name in order if name not in options.classes]
        if missing:
            where = options.classes_file or "the classes file"
            raise UsageError(
                f"{source}: label(s) {', '.join(map(repr, missing))} are not in {where} "
                f"({', '.join(options.classes)}); add them, rename them with --map or leave "
                "them out with --drop"
            )
        order = list(options.classes)
    specs = [classes.get(name) or LabelSpec(name) for name in order]
    specs += [spec for spec in classes.values() if spec.role != "class"]
    for name in sorted((options.ignore | options.regions) - set(classes)):
        specs.append(LabelSpec(name, role=_role(name, options)))
    unused = sorted(
        (options.drop | options.ignore | options.regions | {old for old, _ in options.mapping})
        - {options.rename(s.name) for s in labels.labels}
        - {s.name for s in labels.labels}
    )
    if unused:
        log.info("%s: no label %s in the export", source, ", ".join(map(repr, unused)))
    return LabelMap((*specs, *elements))


def _shape(shape: Shape, options: ClassOptions) -> Shape | None:
    label = options.rename(shape.label)
    if label in options.drop:
        return None
    return shape if label == shape.label else replace(shape, label=label)


def apply_classes(annotations: AnnotationSet, options: ClassOptions) -> AnnotationSet:
    """``annotations`` with the label map and shapes that ``options`` ask for (module docs).

    The shapes are mapped lazily, image by image, as the set is iterated, so a streaming
    reader stays streaming. Returns ``annotations`` itself when the options change nothing.

    Raises:
        UsageError: a class label of the export is missing from ``options.classes`` (naming
            every such label and the classes).
    """
    if not options.active:
        return annotations
    labels = _label_map(annotations.labels, options, annotations.source)

    def load() -> Iterator[AnnotatedImage]:
        for item in annotations:
            shapes = tuple(s for s in (_shape(shape, options) for shape in item.shapes) if s)
            yield AnnotatedImage(item.image, shapes)

    return replace(annotations, labels=labels, load=load)


def images_without_region(items: Iterable[AnnotatedImage], labels: LabelMap) -> list[str]:
    """Names of the images that have no shape of a ``region`` label, when the label map has
    region labels (``--annotated-region``): every pixel of those images is ignored."""
    regions = labels.names_with_role("region")
    if not regions:
        return []
    return [item.image.name for item in items if not any(s.label in regions for s in item.shapes)]


def region_warning(names: list[str], labels: LabelMap) -> str | None:
    """The warning line for images without an annotated region, or None when there are none."""
    if not names:
        return None
    shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
    regions = ", ".join(sorted(labels.names_with_role("region")))
    return (
        f"{len(names)} image(s) have no annotated region ({regions}) and are ignored "
        f"entirely: {shown}"
    )
