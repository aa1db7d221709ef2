"""VIA classes: the class attribute, each region's label and attributes, and the label map.

VIA has no class: it is one region attribute, chosen by :func:`choose_label_attribute` (the
rules are in :mod:`microprep.readers.via`). :class:`RegionBuilder` then turns the regions into
Shapes with their labels and other attributes, counts the regions it skips, and builds the
label map.

Example:
    >>> from microprep.readers.via.regions import ViaRegion
    >>> region = ViaRegion({"name": "point", "cx": 1, "cy": 2}, {"c": "pore"}, 0, "a.json", (), 0)
    >>> choose_label_attribute(None, [region], None, "a.json")
    'c'
    >>> builder = RegionBuilder("a.json", None, "c", v3=False)
    >>> [[s.label for s in shapes] for shapes in builder.shapes([region], 1)]
    [['pore']]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from microprep.errors import FormatError, UsageError
from microprep.model import LabelMap, LabelSpec, Shape
from microprep.readers.jsonsafe import describe, json_text
from microprep.readers.names import check_label_name
from microprep.readers.via.regions import AttrDecl, Place, ViaRegion
from microprep.readers.via.shapes import via2_shape
from microprep.readers.via.via3_shapes import via3_shape

_CLASS_KINDS: Final = ("dropdown", "radio")
_OPTION_KINDS: Final = ("dropdown", "radio", "image")

#: The class of every region when the regions carry no class attribute and no ``label`` is given.
DEFAULT_LABEL: Final = "object"


def _quoted(names: list[str]) -> str:
    return ", ".join(json.dumps(n, ensure_ascii=False) for n in names) or "none"


def _candidates_message(file: str, names: list[str], why: str) -> UsageError:
    return UsageError(
        f"{file}: {why}; region attributes that could hold the class: {_quoted(names)}. "
        "Pass --label-attribute NAME to choose the one that holds the class"
    )


def _has_value(value: Any) -> bool:
    """True for a value that can name a class when none is chosen: a non-blank string."""
    return type(value) is str and bool(value.strip())


def choose_label_attribute(
    decls: dict[str, AttrDecl] | None,
    regions: list[ViaRegion],
    requested: str | None,
    file: str,
) -> str | None:
    """The key of the region attribute that holds the class (see the rules of the VIA reader).

    Returns None when nothing is requested and no attribute can hold a class: no declared
    dropdown / radio, and no region with a non-empty text value (regions without attributes, or
    only empty, number, checkbox, object or array values). Their class is then the
    ``label`` option, else :data:`DEFAULT_LABEL`.

    Raises:
        UsageError: the requested attribute does not exist or is a checkbox; several
            candidates (the message lists them).
    """
    used: dict[str, bool] = {}  # key -> some region holds a value that can name a class
    for region in regions:
        for name, value in region.attrs.items():
            if not used.get(name):
                used[name] = _has_value(value)
    decls = decls or {}
    names = {d.name: k for k, d in decls.items()}
    if requested is not None:
        known = requested in decls or requested in used
        key = names.get(requested, requested if known else None)
        if key is None:
            if not regions and not decls:
                return requested
            listed = [*names, *(k for k in used if k not in decls)]
            raise _candidates_message(file, listed, f"no region attribute {json.dumps(requested)}")
        if key in decls and decls[key].kind == "checkbox":
            raise UsageError(
                f"{file}: region attribute {json.dumps(requested)} is a checkbox; "
                "it cannot hold the class (pass another --label-attribute NAME)"
            )
        return key
    declared = [k for k, d in decls.items() if d.kind in _CLASS_KINDS]
    if regions:
        # only the declared attributes that some region fills in (declared and never used is
        # as good as not declared)
        declared = [k for k in declared if used.get(k)]
    if len(declared) == 1:
        return declared[0]
    if len(declared) > 1:
        raise _candidates_message(
            file, [decls[k].name for k in declared], "several dropdown/radio region attributes"
        )
    found = [k for k, ok in used.items() if ok and decls.get(k, _TEXT).kind != "checkbox"]
    if len(found) == 1:
        return found[0]
    if not found:
        return None
    shown = [decls[k].name if k in decls else k for k in found]
    raise _candidates_message(file, shown, "several region attributes")


_TEXT: Final = AttrDecl("", "", "text")


def _text(value: Any) -> str:
    """An attribute value as a string: text as it is, checkbox objects and arrays as the chosen
    items joined by ``","``, anything else as JSON."""
    if type(value) is str:
        return value
    if isinstance(value, dict) and all(type(v) is bool for v in value.values()):
        return ",".join(k for k, v in value.items() if v)
    if isinstance(value, list) and all(type(v) is str for v in value):
        return ",".join(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _attributes(
    attrs: dict[str, Any], skip: str | None, decls: dict[str, AttrDecl]
) -> dict[str, str]:
    """The region attributes other than the class, as strings (VIA 3: names and option text)."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if key == skip:
            continue
        decl = decls.get(key)
        if decl is None:
            out[key] = _text(value)
        elif decl.options and type(value) is str:
            parts = value.split(",") if decl.kind == "checkbox" else [value]
            out[decl.name] = ",".join(decl.options.get(p, p) for p in parts if p)
        else:
            out[decl.name] = _text(value)
    return out


class RegionBuilder:
    """Regions to Shapes: labels, attributes, skip counters, the label map.

    ``key`` is the class attribute (None: the regions carry none); ``fallback`` the class of
    regions without a class value (None: they are skipped and counted). With ``key`` None and
    ``fallback`` None, every region is read as :data:`DEFAULT_LABEL`.
    """

    def __init__(
        self,
        file: str,
        decls: dict[str, AttrDecl] | None,
        key: str | None,
        *,
        v3: bool,
        fallback: str | None = None,
    ) -> None:
        self.file = file
        self.v3 = v3
        self.part = "av" if v3 else "region_attributes"
        self.decls = decls or {}
        self.key = key
        decl = self.decls.get(key) if key is not None else None
        with_options = decl is not None and bool(decl.options) and decl.kind in _OPTION_KINDS
        self.options = decl.options if decl is not None and with_options else None
        self.attr_name = decl.name if decl is not None else key
        #: the default class was used: no class attribute and no ``fallback`` given
        self.defaulted = key is None and fallback is None
        self.fallback = DEFAULT_LABEL if self.defaulted else fallback
        self.used: dict[str, Place] = {}
        self.unlabelled = 0
        self.fell_back = 0
        self.unsupported: Counter[str] = Counter()

    def label(self, region: ViaRegion, part: str) -> str | None:
        """The class of ``region`` (option ids mapped to text); None when missing or empty."""
        value = region.attrs.get(self.key) if self.key is not None else None
        if type(value) is str:
            text = value
        elif value is None:
            return None
        elif type(value) in (int, float):
            text = str(value)
        else:
            # a checkbox object or an array: one chosen item is the class, none is no value
            chosen = _text(value) if isinstance(value, dict | list) else None
            if chosen == "":
                return None
            if chosen is None or "," in chosen or chosen.startswith(("{", "[")):
                raise region.error(
                    FormatError,
                    f"the class attribute {json.dumps(self.attr_name)} holds "
                    f"{describe(value)}, not one class name",
                    part,
                    [self.key or ""],
                )
            text = chosen
        if self.options is not None:
            text = self.options.get(text, text)
        return text if text.strip() else None

    def shapes(self, regions: list[ViaRegion], n_images: int) -> list[list[Shape]]:
        """The Shapes of each image (regions in file order; skipped ones counted)."""
        out: list[list[Shape]] = [[] for _ in range(n_images)]
        part, v3 = self.part, self.v3
        build: Callable[..., Shape | None] = via3_shape if v3 else via2_shape
        order = 0
        for region in regions:
            label = self.label(region, part)
            if label is None:
                if self.fallback is None:
                    self.unlabelled += 1
                    continue
                label = self.fallback
                self.fell_back += 1
            attrs = region.attrs
            if label not in self.used:
                self._check_name(label, region, part, [self.key or ""], "label")
            for key in attrs:
                self._check_name(str(key), region, part, [str(key)], "attribute")
            extra = _attributes(attrs, self.key, self.decls) if attrs else {}
            shape = build(region.shape, label, extra, order, region)
            if shape is None:
                name = region.shape[0] if v3 else region.shape.get("name")
                self.unsupported[f"shape id {name}" if v3 else f"shape {json_text(name)}"] += 1
                continue
            if label not in self.used:
                self.used[label] = region
            out[region.image].append(shape)
            order += 1
        return out

    def _check_name(
        self, name: str, region: ViaRegion, part: str, parts: list[str | int], what: str
    ) -> None:
        check_label_name(
            name, file=self.file, what=what, line=region.line, where=region.where(part, parts)
        )

    def label_map(self, warnings: list[str]) -> LabelMap:
        """Declared options first, then labels in order of first use (warning if undeclared)."""
        declared = list(dict.fromkeys(self.options.values())) if self.options else []
        for name in declared:
            where = f"the options of the class attribute {json.dumps(self.attr_name)}"
            check_label_name(name, file=self.file, where=where)
        labels = [LabelSpec(name) for name in declared]
        for name, place in self.used.items():
            if name in declared:
                continue
            if self.options is not None and name != self.fallback:
                where = place.where(self.part, [self.key or ""])
                at = f"{self.file}:{place.line}" if place.line is not None else self.file
                warnings.append(
                    f"{at}: {where}: label {json.dumps(name)} is not an option of the class "
                    f"attribute {json.dumps(self.attr_name)}; added to the label map"
                )
            labels.append(LabelSpec(name, declared=self.options is None or name == self.fallback))
        return LabelMap(tuple(labels))

    def skip_warnings(self, warnings: list[str]) -> None:
        """Append one warning per kind of skipped region, and one for the default class."""
        if self.defaulted and self.fell_back:
            warnings.append(
                f"{self.file}: the regions carry no class attribute: {self.fell_back} region(s) "
                f"read as one class {json.dumps(DEFAULT_LABEL)} (pass --label NAME to name it, "
                "or --label-attribute NAME to read the class from a region attribute)"
            )
        if self.unlabelled:
            warnings.append(
                f"{self.file}: {self.unlabelled} region(s) without a value for the class "
                f"attribute {json.dumps(self.attr_name)} were skipped (pass --label NAME to "
                "give them a class)"
            )
        for what, count in sorted(self.unsupported.items()):
            warnings.append(f"{self.file}: {count} region(s) with unsupported {what} skipped")
