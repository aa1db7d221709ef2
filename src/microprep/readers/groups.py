"""The pieces of one object in tools without groups: a ``group_id`` attribute.

VIA and Labelbox have no way to join several polygons into one object (CVAT has
``group_id``). ``prep export-annotations`` writes the pieces of an instance whose mask is split
(several parts, or a part with holes cut into hole-free pieces) with the same value of the
region attribute (VIA) or nested text classification (Labelbox) named :data:`GROUP_ATTRIBUTE`.
:func:`regroup` turns that value back into :attr:`Shape.group`, so the pieces read back as one
object, as CVAT groups do. Values are compared as text, per image; a shape that already has a
group keeps it.

Example:
    >>> import numpy as np
    >>> from microprep.model import Shape
    >>> pts = np.zeros((3, 2))
    >>> shapes = [Shape("polygon", "pore", pts, attributes={"group_id": "7"}),
    ...           Shape("polygon", "pore", pts), Shape("polygon", "pore", pts,
    ...           attributes={"group_id": "7"})]
    >>> [s.group for s in regroup(shapes)]
    [1, 0, 1]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from microprep.model import Shape

__all__ = ["GROUP_ATTRIBUTE", "regroup"]

#: The attribute whose value joins the pieces of one object.
GROUP_ATTRIBUTE: Final = "group_id"


def regroup(shapes: Iterable[Shape]) -> tuple[Shape, ...]:
    """``shapes`` (of one image or frame) with ``group`` set from :data:`GROUP_ATTRIBUTE`.

    Group numbers start after the largest group already present, in order of first appearance.
    """
    shapes = tuple(shapes)
    if not any(s.attributes.get(GROUP_ATTRIBUTE) for s in shapes):
        return shapes
    start = max((s.group for s in shapes), default=0)
    numbers: dict[str, int] = {}
    out = []
    for shape in shapes:
        value = shape.attributes.get(GROUP_ATTRIBUTE)
        if value and not shape.group:
            number = numbers.setdefault(str(value), start + len(numbers) + 1)
            shape = dataclasses.replace(shape, group=number)
        out.append(shape)
    return tuple(out)
