"""Updating a splits file after the store was rebuilt with more (or fewer) nodes.

:func:`update_splits` keeps every node of the old splits in its old split (its old regions,
for region splits) and assigns only what is new, each by its own hash
(:func:`~microprep.splits.assign.node_hash` of its name and the old seed): below the val
fraction -> val, below val + test -> test, else train. New nodes therefore get the requested
fractions only on average (on a few new nodes the shares can be off by one or two), but no
old node ever moves, whatever arrives later. Nodes gone from the store are dropped.

Region splits of a node that grew (a volume with more slices, a larger image) keep every old
region as it is and assign only the new extent (see :func:`grow_regions`); a node that shrank,
or whose old regions are not blocks along the split's axis, is refused.

Example:
    >>> from microprep.splits.assign import split_shapes
    >>> old = split_shapes({"a": (4, 4), "b": (4, 4), "c": (4, 4)}, val=0.3, test=0.3)
    >>> new, change = update_splits(old, {"a": (4, 4), "b": (4, 4), "d": (4, 4)})
    >>> change.removed, [node for node, _ in change.added]
    (('c',), ['d'])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from microprep.splits.assign import _AXES, _cut, _node_rng, node_hash
from microprep.splits.regions import SPLIT_NAMES, Region, SplitError, Splits, check_disjoint

__all__ = ["Growth", "SplitsChange", "grow_regions", "update_splits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Growth:
    """A node of region splits that grew: its extent in the old regions, its new shape, and
    the regions added for the new extent, as ``(split, region)``."""

    node: str
    old: tuple[int, ...]
    new: tuple[int, ...]
    regions: tuple[tuple[str, Region], ...]


@dataclass(frozen=True, slots=True)
class SplitsChange:
    """What :func:`update_splits` changed.

    Attributes:
        added: ``(node, split)`` of every new node (``"all"`` for region splits).
        removed: nodes of the old splits that the store no longer has.
        kept: nodes that kept their old split (regions).
        grown: region splits only: the nodes that grew, with the regions added for them.
    """

    added: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]
    kept: int
    grown: tuple[Growth, ...] = ()


def _old_regions(old: Splits) -> dict[str, list[tuple[str, Region]]]:
    regions: dict[str, list[tuple[str, Region]]] = {}
    for split in SPLIT_NAMES:
        for region in old[split]:
            regions.setdefault(region.node, []).append((split, region))
    return regions


def _hash_split(key: str, old: Splits) -> str:
    """The split of one new unit by thresholding its stable hash at the old fractions."""
    value = node_hash(key, old.seed)
    if value < old.val_fraction:
        return "val"
    if value < old.val_fraction + old.test_fraction:
        return "test"
    return "train"


def grow_regions(
    name: str, regions: Sequence[tuple[str, Region]], shape: tuple[int, ...], old: Splits
) -> list[tuple[str, Region]]:
    """The regions to add to a node of region splits that grew from its old regions' extent to
    ``shape``; the old regions stay as they are and keep their splits.

    The rule (region splits are blocks along one axis, each spanning the whole node across
    the others):

    * across the other axes, every old block is continued over the new extent in its own
      split (new boxes beside it), so blocks of different splits stay apart by the old gap;
    * along the split's axis, the new extent beyond the old end is cut like a new node: the
      first ``gap`` pixels are left out, the rest gets one block per requested split (rounding
      rule, order drawn from the node name, the old end and the seed) when it is long enough,
      else goes whole to one split by the stable hash of ``NAME@OLD_END`` (as new nodes do).

    Raises:
        SplitError: the node shrank along some axis, has other axes than before, or its old
            regions are not blocks spanning it across the other axes.

    Example:
        >>> from microprep.splits.assign import split_shapes
        >>> old = split_shapes({"v": (20, 4, 4)}, val=0.2, test=0.2, by="region", gap=1)
        >>> grown = grow_regions("v", [(s, r) for s, rs in old.items() for r in rs],
        ...                      (40, 4, 4), old)
        >>> for split, region in grown:
        ...     print(split, region)
        val v[21:24, 0:4, 0:4]
        train v[25:36, 0:4, 0:4]
        test v[37:40, 0:4, 0:4]
    """
    extent = tuple(max(r.stop[i] for _, r in regions) for i in range(len(regions[0][1].stop)))
    if len(shape) != len(extent):
        raise SplitError(
            f"node {name!r} now has {len(shape)} axes but its old regions have {len(extent)}: "
            "its region splits cannot be kept; split again without --update"
        )
    if any(s < e for s, e in zip(shape, extent, strict=True)):
        raise SplitError(
            f"node {name!r} is now {list(shape)} px but its old regions cover {list(extent)} "
            "px: it shrank, so its old regions cannot be kept; split again without --update"
        )
    axes = _AXES.get(len(shape), ())
    region_axis = old.region_axis or "z"
    axis_name = "y" if (region_axis == "z" and len(shape) == 2) else region_axis
    if axis_name not in axes:
        raise SplitError(f"node {name!r} has axes {', '.join(axes)}, no {region_axis!r} axis")
    axis = axes.index(axis_name)
    across = [i for i in range(len(shape)) if i != axis]
    # the old regions as slabs: per range along the axis, one split, covering the node across
    # the other axes (a slab continued by an earlier update is several regions)
    slabs: dict[tuple[int, int], list[tuple[str, Region]]] = {}
    for split, region in regions:
        slabs.setdefault((region.start[axis], region.stop[axis]), []).append((split, region))
    section = math.prod(extent[i] for i in across)
    for (a, b), members in slabs.items():
        covered = sum(r.size for _, r in members) // (b - a)
        if len({split for split, _ in members}) > 1 or covered != section:
            split, region = members[0]
            raise SplitError(
                f"node {name!r} grew from {list(extent)} to {list(shape)} px but its old "
                f"{split} region {region} is not a block spanning the node across the axes "
                f"other than {axis_name}: its regions cannot be grown; split again without "
                "--update"
            )
    out: list[tuple[str, Region]] = []
    for (a, b), members in slabs.items():  # continue each old slab across the grown axes
        for k, i in enumerate(across):
            if shape[i] == extent[i]:
                continue
            start, stop = [0] * len(shape), list(extent)
            start[axis], stop[axis] = a, b
            for j in across[:k]:
                stop[j] = shape[j]
            start[i], stop[i] = extent[i], shape[i]
            out.append((members[0][0], Region(name, tuple(start), tuple(stop))))
    begin = extent[axis] + old.gap
    if begin < shape[axis]:  # the new extent along the split's axis
        length = shape[axis] - begin
        part = tuple(length if i == axis else s for i, s in enumerate(shape))
        rng = _node_rng(f"{name}@{extent[axis]}", old.seed)
        try:
            blocks = _cut(
                name, part, old.val_fraction, old.test_fraction, region_axis, old.gap, rng
            )
        except SplitError:  # too short for a block per split: one split for all of it
            whole = Region(name, (0,) * len(part), part)
            blocks = [(_hash_split(f"{name}@{extent[axis]}", old), whole)]
        for split, block in blocks:
            start, stop = list(block.start), list(block.stop)
            start[axis] += begin
            stop[axis] += begin
            out.append((split, Region(name, tuple(start), tuple(stop))))
    return out


def update_splits(
    old: Splits, shapes: Mapping[str, tuple[int, ...]]
) -> tuple[Splits, SplitsChange]:
    """New splits for the nodes ``shapes`` (name -> spatial shape) that keep ``old``'s.

    The old splits' ``by``, seed, fractions, axis and gap are used. Region splits of a node
    that grew get regions for the new extent (:func:`grow_regions`), listed in
    :attr:`SplitsChange.grown`.

    Raises:
        SplitError: ``old`` was split by subset, or (region splits) a kept node shrank or
            cannot be grown.
    """
    if old.by not in ("image", "volume", "region"):
        raise SplitError(
            f"--update works on splits made --by image, volume or region, not {old.by!r}: "
            "split by subset again instead"
        )
    before = _old_regions(old)
    out: dict[str, list[Region]] = {name: [] for name in SPLIT_NAMES}
    added: list[tuple[str, str]] = []
    grown: list[Growth] = []
    kept = 0
    for name, raw_shape in shapes.items():
        shape = tuple(int(s) for s in raw_shape)
        regions = before.get(name)
        if regions is not None:
            kept += 1
            if old.by != "region":  # whole nodes: the node, at its new shape, in its old split
                for split, _ in regions:
                    out[split].append(Region(name, (0,) * len(shape), shape))
                continue
            for split, region in regions:
                out[split].append(region)
            extent = tuple(max(r.stop[i] for _, r in regions) for i in range(len(shape)))
            if extent != shape:
                new = grow_regions(name, regions, shape, old)
                for split, region in new:
                    out[split].append(region)
                grown.append(Growth(name, extent, shape, tuple(new)))
                logger.info("node %s grew from %s to %s: %d regions added", name, extent,
                            shape, len(new))  # fmt: skip
            continue
        if old.by == "region":
            axis = old.region_axis or "z"
            rng = _node_rng(name, old.seed)
            cut = _cut(name, shape, old.val_fraction, old.test_fraction, axis, old.gap, rng)
            for split, region in cut:
                out[split].append(region)
            added.append((name, "all"))
            continue
        split = _hash_split(name, old)
        out[split].append(Region(name, (0,) * len(shape), shape))
        added.append((name, split))
    removed = tuple(name for name in before if name not in shapes)
    splits = Splits(
        train=tuple(out["train"]),
        val=tuple(out["val"]),
        test=tuple(out["test"]),
        by=old.by,
        seed=old.seed,
        val_fraction=old.val_fraction,
        test_fraction=old.test_fraction,
        region_axis=old.region_axis,
        gap=old.gap,
        dataset=old.dataset,
    )
    check_disjoint(splits)
    change = SplitsChange(added=tuple(added), removed=removed, kept=kept, grown=tuple(grown))
    return splits, change
