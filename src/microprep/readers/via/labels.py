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
from microprep.readers.via.regions import AttrDecl, Place, ViaRegion
from microprep.readers.via.shapes import via2_shape
from microprep.readers.via.via3_shapes import via3_shape

_CLASS_KINDS: Final = ("dropdown", "radio")
_OPTION_KINDS: Final = ("dropdown", "radio", "image")


def _candidates_message(file: str, names: list[str], why: str) -> UsageError:
    listed = ", ".join(repr(n) for n in names) or "none"
    return UsageError(
        f"{file}: {why}; region attributes that could hold the class: {listed}. "
        "Pass --label-attribute NAME (ReadOptions.label_attribute)"
    )


def choose_label_attribute(
    decls: dict[str, AttrDecl] | None,
    regions: list[ViaRegion],
    requested: str | None,
    file: str,
) -> str | None:
    """The key of the region attribute that holds the class (see the rules of the VIA reader).

    Returns None only when there are no regions and nothing is requested or declared.

    Raises:
        UsageError: the requested attribute does not exist or is a checkbox; none or several
            candidates (the message lists them).
    """
    used: dict[str, bool] = {}  # key -> some region holds a non-checkbox value
    for region in regions:
        for name, value in region.attrs.items():
            if not used.get(name):
                used[name] = not isinstance(value, dict | list)
    decls = decls or {}
    names = {d.name: k for k, d in decls.items()}
    if requested is not None:
        known = requested in decls or requested in used
        key = names.get(requested, requested if known else None)
        if key is None:
            if not regions and not decls:
                return requested
            raise _candidates_message(
                file, [*names, *(k for k in used if k not in decls)], f"no attribute {requested!r}"
            )
        if key in decls and decls[key].kind == "checkbox":
            raise UsageError(f"{file}: attribute {requested!r} is a checkbox; it cannot be a class")
        return key
    declared = [k for k, d in decls.items() if d.kind in _CLASS_KINDS]
    if len(declared) == 1:
        return declared[0]
    if len(declared) > 1:
        raise _candidates_message(
            file, [decls[k].name for k in declared], "several dropdown/radio attributes"
        )
    found = [k for k, ok in used.items() if ok and decls.get(k, _TEXT).kind != "checkbox"]
    if len(found) == 1:
        return found[0]
    if not found and not regions:
        return None
    shown = [decls[k].name if k in decls else k for k in found]
    why = "several region attributes" if found else "the regions have no class-like attribute"
    raise _candidates_message(file, shown, why)


_TEXT: Final = AttrDecl("", "", "text")


def _text(value: Any) -> str:
    return value if type(value) is str else json.dumps(value, sort_keys=True)


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
            out[decl.name] = ",".join(decl.options.get(p, p) for p in parts)
        else:
            out[decl.name] = _text(value)
    return out


class RegionBuilder:
    """Regions to Shapes: labels, attributes, skip counters, the label map."""

    def __init__(
        self, file: str, decls: dict[str, AttrDecl] | None, key: str | None, *, v3: bool
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
        self.used: dict[str, Place] = {}
        self.unlabelled = 0
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
            raise region.error(
                FormatError,
                f"the class attribute {self.attr_name!r} holds a {type(value).__name__}, "
                "not a class name",
                part,
                [self.key or ""],
            )
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
                self.unlabelled += 1
                continue
            attrs = region.attrs
            extra = _attributes(attrs, self.key, self.decls) if len(attrs) > 1 else {}
            shape = build(region.shape, label, extra, order, region)
            if shape is None:
                name = region.shape[0] if v3 else region.shape.get("name")
                self.unsupported[f"shape id {name}" if v3 else f"shape {name!r}"] += 1
                continue
            if label not in self.used:
                self.used[label] = region
            out[region.image].append(shape)
            order += 1
        return out

    def label_map(self, warnings: list[str]) -> LabelMap:
        """Declared options first, then labels in order of first use (warning if undeclared)."""
        declared = list(dict.fromkeys(self.options.values())) if self.options else []
        labels = [LabelSpec(name) for name in declared]
        for name, place in self.used.items():
            if name in declared:
                continue
            if self.options is not None:
                where = place.where(self.part, [self.key or ""])
                at = f"{self.file}:{place.line}" if place.line is not None else self.file
                warnings.append(
                    f"{at}: {where}: label {name!r} is not an option of the class attribute "
                    f"{self.attr_name!r}; added to the label map"
                )
            labels.append(LabelSpec(name, declared=self.options is None))
        return LabelMap(tuple(labels))

    def skip_warnings(self, warnings: list[str]) -> None:
        """Append one warning per kind of skipped region."""
        if self.unlabelled:
            warnings.append(
                f"{self.file}: {self.unlabelled} region(s) without a value for the class "
                f"attribute {self.attr_name!r} were skipped"
            )
        for what, count in sorted(self.unsupported.items()):
            warnings.append(f"{self.file}: {count} region(s) with unsupported {what} skipped")
