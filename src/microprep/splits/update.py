"""Updating a splits file after the store was rebuilt with more (or fewer) nodes.

:func:`update_splits` keeps every node of the old splits in its old split (its old regions,
for region splits) and assigns only the nodes that are new, each by its own hash
(:func:`~microprep.splits.assign.node_hash` of its name and the old seed): below the val
fraction -> val, below val + test -> test, else train. New nodes therefore get the requested
fractions only on average (on a few new nodes the shares can be off by one or two), but no
old node ever moves, whatever arrives later. Nodes gone from the store are dropped.

Region splits keep a node's old blocks only while its shape is unchanged (the last block
ends where the node ends); a node that grew or shrank is refused, since its old blocks no
longer cover it: split it again without ``--update``.

Example:
    >>> from microprep.splits.assign import split_shapes
    >>> old = split_shapes({"a": (4, 4), "b": (4, 4), "c": (4, 4)}, val=0.3, test=0.3)
    >>> new, change = update_splits(old, {"a": (4, 4), "b": (4, 4), "d": (4, 4)})
    >>> change.removed, [node for node, _ in change.added]
    (('c',), ['d'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from microprep.splits.assign import _cut, _node_rng, node_hash
from microprep.splits.regions import SPLIT_NAMES, Region, SplitError, Splits, check_disjoint

__all__ = ["SplitsChange", "update_splits"]


@dataclass(frozen=True, slots=True)
class SplitsChange:
    """What :func:`update_splits` changed.

    Attributes:
        added: ``(node, split)`` of every new node (``"all"`` for region splits).
        removed: nodes of the old splits that the store no longer has.
        kept: nodes that kept their old split (regions).
    """

    added: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]
    kept: int


def _old_regions(old: Splits) -> dict[str, list[tuple[str, Region]]]:
    regions: dict[str, list[tuple[str, Region]]] = {}
    for split in SPLIT_NAMES:
        for region in old[split]:
            regions.setdefault(region.node, []).append((split, region))
    return regions


def update_splits(
    old: Splits, shapes: Mapping[str, tuple[int, ...]]
) -> tuple[Splits, SplitsChange]:
    """New splits for the nodes ``shapes`` (name -> spatial shape) that keep ``old``'s.

    The old splits' ``by``, seed, fractions, axis and gap are used.

    Raises:
        SplitError: ``old`` was split by subset, or (region splits) a kept node changed shape.
    """
    if old.by not in ("image", "volume", "region"):
        raise SplitError(
            f"--update works on splits made --by image, volume or region, not {old.by!r}: "
            "split by subset again instead"
        )
    before = _old_regions(old)
    out: dict[str, list[Region]] = {name: [] for name in SPLIT_NAMES}
    added: list[tuple[str, str]] = []
    kept = 0
    for name, raw_shape in shapes.items():
        shape = tuple(int(s) for s in raw_shape)
        regions = before.get(name)
        if regions is not None:
            extent = tuple(max(r.stop[i] for _, r in regions) for i in range(len(shape)))
            if old.by == "region" and extent != shape:
                raise SplitError(
                    f"node {name!r} is now {list(shape)} px but its old regions cover "
                    f"{list(extent)} px: region splits of a node that changed shape cannot be "
                    "updated; split again without --update"
                )
            for split, region in regions:
                whole = Region(name, (0,) * len(shape), shape)
                out[split].append(region if old.by == "region" else whole)
            kept += 1
            continue
        if old.by == "region":
            axis = old.region_axis or "z"
            rng = _node_rng(name, old.seed)
            cut = _cut(name, shape, old.val_fraction, old.test_fraction, axis, old.gap, rng)
            for split, region in cut:
                out[split].append(region)
            added.append((name, "all"))
            continue
        value = node_hash(name, old.seed)
        if value < old.val_fraction:
            split = "val"
        elif value < old.val_fraction + old.test_fraction:
            split = "test"
        else:
            split = "train"
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
    return splits, SplitsChange(added=tuple(added), removed=removed, kept=kept)
