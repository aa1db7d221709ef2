"""Regions and splits: :class:`Region`, :class:`Splits`, :class:`SplitError` and the leak checks.

A :class:`Region` is a box of one node in its own pixel (voxel) index space: ``start`` and
``stop`` per spatial axis, ``(y, x)`` for images and ``(z, y, x)`` for volumes, ``stop``
exclusive. :func:`check_disjoint` refuses splits that share pixels across splits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from microprep.errors import UsageError

__all__ = [
    "BY_CHOICES",
    "SPLIT_NAMES",
    "Region",
    "SplitError",
    "Splits",
    "check_against",
    "check_disjoint",
    "summarize",
]

#: The split names, in this order everywhere (files, reports).
SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
#: How to split: whole nodes (``image``, ``volume``) or blocks of each node (``region``).
BY_CHOICES: tuple[str, str, str] = ("image", "volume", "region")

By = Literal["image", "volume", "region"]


class SplitError(UsageError):
    """Splits that cannot be made (too few units, bad fractions) or that overlap (a leak)."""


@dataclass(frozen=True, slots=True)
class Region:
    """A box of one node: ``start`` (inclusive) to ``stop`` (exclusive) per spatial axis.

    Axes are ``(y, x)`` for images and ``(z, y, x)`` for volumes, in pixels (voxels).

    Example:
        >>> a = Region("stack", (0, 0, 0), (10, 64, 64))
        >>> a.overlaps(Region("stack", (9, 0, 0), (20, 64, 64))), a.size
        (True, 40960)
    """

    node: str
    start: tuple[int, ...]
    stop: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of pixels (voxels) in the region."""
        return int(np.prod([b - a for a, b in zip(self.start, self.stop, strict=True)]))

    def distance(self, other: Region) -> int | None:
        """Pixels between two regions of the same node along the axis where they are furthest
        apart (0: they touch or overlap); None for regions of different nodes."""
        if other.node != self.node or len(other.start) != len(self.start):
            return None
        gaps = [
            max(b0 - a1, a0 - b1, 0)
            for a0, a1, b0, b1 in zip(self.start, self.stop, other.start, other.stop, strict=True)
        ]
        return max(gaps)

    def overlaps(self, other: Region) -> bool:
        """True when both regions are of the same node and share at least one pixel."""
        if other.node != self.node or len(other.start) != len(self.start):
            return False
        return all(
            max(a0, b0) < min(a1, b1)
            for a0, a1, b0, b1 in zip(self.start, self.stop, other.start, other.stop, strict=True)
        )

    def __str__(self) -> str:
        spans = ", ".join(f"{a}:{b}" for a, b in zip(self.start, self.stop, strict=True))
        return f"{self.node}[{spans}]"


@dataclass(frozen=True, slots=True)
class Splits:
    """Regions per split, and how they were made.

    ``train``, ``val``, ``test``: the regions of each split (tuples, in node order). ``by``,
    ``seed``, ``val_fraction``, ``test_fraction``, ``region_axis`` (``None`` unless
    ``by="region"``) and ``gap`` (pixels) record the request; ``dataset`` the store path (or
    None). Index by split name: ``splits["val"]``.
    """

    train: tuple[Region, ...]
    val: tuple[Region, ...]
    test: tuple[Region, ...]
    by: str = "image"
    seed: int = 0
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    region_axis: str | None = None
    gap: int = 0
    dataset: str | None = field(default=None)

    def __getitem__(self, name: str) -> tuple[Region, ...]:
        if name not in SPLIT_NAMES:
            raise KeyError(f"no split {name!r}; the splits are {', '.join(SPLIT_NAMES)}")
        regions: tuple[Region, ...] = getattr(self, name)
        return regions

    def items(self) -> Iterator[tuple[str, tuple[Region, ...]]]:
        """``(split name, regions)`` for train, val, test."""
        for name in SPLIT_NAMES:
            yield name, self[name]

    def split_of(self, node: str) -> list[str]:
        """The splits that hold (part of) ``node``, in split order."""
        return [name for name, regions in self.items() if any(r.node == node for r in regions)]


def check_disjoint(splits: Splits, *, gap: int = 0) -> None:
    """Refuse splits that share pixels (or come closer than ``gap`` px) across splits.

    A validation range inside the training range of the same node is a leak, not a split.

    Raises:
        SplitError: naming the first two offending regions and their splits.

    Example:
        >>> a, b = Region("v", (0, 0), (10, 4)), Region("v", (5, 0), (20, 4))
        >>> try:
        ...     check_disjoint(Splits(train=(a,), val=(b,), test=()))
        ... except SplitError as exc:
        ...     print(f"SplitError: {exc}")
        SplitError: train region v[0:10, 0:4] overlaps val region v[5:20, 0:4]
    """
    by_node: dict[str, list[tuple[str, Region]]] = {}
    for name, regions in splits.items():
        for region in regions:
            by_node.setdefault(region.node, []).append((name, region))
    for entries in by_node.values():
        for i, (split_a, a) in enumerate(entries):
            for split_b, b in entries[i + 1 :]:
                if split_a == split_b:
                    continue
                if a.overlaps(b):
                    raise SplitError(f"{split_a} region {a} overlaps {split_b} region {b}")
                distance = a.distance(b)
                if gap and distance is not None and distance < gap:
                    raise SplitError(
                        f"{split_a} region {a} and {split_b} region {b} are {distance} px "
                        f"apart, closer than the gap of {gap} px"
                    )


def check_against(splits: Splits, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse regions of nodes that are not in ``shapes`` or that reach outside their node.

    Raises:
        SplitError: naming the region.
    """
    for name, regions in splits.items():
        for region in regions:
            shape = shapes.get(region.node)
            if shape is None:
                raise SplitError(f"{name} region {region}: the store has no node {region.node!r}")
            if len(shape) != len(region.start) or any(
                not 0 <= a < b <= s
                for a, b, s in zip(region.start, region.stop, shape, strict=True)
            ):
                raise SplitError(
                    f"{name} region {region} does not fit node {region.node!r} of shape {shape}"
                )


def summarize(splits: Splits) -> list[tuple[str, int, int]]:
    """Per split ``(name, regions, pixels)`` for reports."""
    return [(name, len(regions), sum(r.size for r in regions)) for name, regions in splits.items()]
