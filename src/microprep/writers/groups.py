"""Which instances are written as several pieces (for tools without groups).

Example:
    >>> import numpy as np
    >>> from microprep.writers.shapes import OutShape
    >>> pts = np.zeros((3, 2))
    >>> split_groups([OutShape("polygon", "pore", 1, pts, 0, group=g) for g in (1, 2, 2, 0, 0)])
    {2}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from microprep.writers.shapes import OutShape

__all__ = ["split_groups"]


def split_groups(shapes: Iterable[OutShape]) -> set[int]:
    """The groups (instances) of ``shapes`` written as more than one piece (group 0: none)."""
    counts = Counter(s.group for s in shapes if s.group)
    return {group for group, n in counts.items() if n > 1}
