"""Assigning nodes, or blocks of nodes, to train, val and test by the rounding rule.

See :mod:`microprep.splits` for the ``by`` choices and the rounding rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from microprep.splits.regions import (
    BY_CHOICES,
    SPLIT_NAMES,
    By,
    Region,
    SplitError,
    Splits,
    check_disjoint,
)

if TYPE_CHECKING:
    from microprep.store.read import Dataset

__all__ = ["make_splits", "node_hash", "node_shapes", "split_shapes"]

_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


def _shares(n: int, val: float, test: float, *, what: str) -> tuple[int, int, int]:
    """``(train, val, test)`` counts of ``n`` units by the documented rounding rule."""
    n_val = max(round(n * val), 1 if val > 0 else 0)
    n_test = max(round(n * test), 1 if test > 0 else 0)
    n_train = n - n_val - n_test
    if n_train < 1:
        needed = 1 + (val > 0) + (test > 0)
        raise SplitError(
            f"too few {what} to split: {n} available, at least {needed} needed for "
            f"train{', val' if val > 0 else ''}{', test' if test > 0 else ''} "
            f"(val={val}, test={test}); lower the fractions or use another --by"
        )
    return n_train, n_val, n_test


def node_hash(name: str, seed: int) -> float:
    """A stable number in ``[0, 1)`` for a node name and a seed (BLAKE2b of ``seed:name``).

    The same name and seed give the same number on every machine and in every run; it does
    not depend on the other nodes of the store.

    Example:
        >>> node_hash("a.png", 0) == node_hash("a.png", 0), node_hash("a.png", 0) < 1
        (True, True)
    """
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _node_rng(name: str, seed: int) -> np.random.Generator:
    """A random generator of its own per node, seeded from its name and the seed."""
    return np.random.default_rng(int(node_hash(name, seed) * 2**53))


def _check_request(val: float, test: float, by: str, gap: int) -> None:
    for name, value in (("val", val), ("test", test)):
        if not 0 <= value < 1:
            raise SplitError(f"the {name} fraction must be in [0, 1), got {value}")
    if val + test >= 1:
        raise SplitError(f"val + test must be below 1 so train keeps data, got {val + test:g}")
    if by not in BY_CHOICES:
        raise SplitError(f"by={by!r} is not one of {', '.join(BY_CHOICES)}")
    if gap < 0:
        raise SplitError(f"gap must be 0 or more pixels, got {gap}")


def split_shapes(
    shapes: Mapping[str, tuple[int, ...]],
    *,
    val: float,
    test: float,
    by: By | str = "image",
    seed: int = 0,
    region_axis: str = "z",
    gap: int = 0,
    dataset: str | None = None,
) -> Splits:
    """Split nodes given by their spatial shapes (the pure core of :func:`make_splits`).

    Args:
        shapes: node name -> spatial shape, ``(H, W)`` for images or ``(Z, H, W)`` for volumes,
            in pixels; the order is kept in the result.
        val, test: fractions in ``[0, 1)``, ``val + test < 1``.
        by: ``"image"``, ``"volume"`` (whole nodes) or ``"region"`` (blocks of every node).
        seed: the same seed gives the same splits; with the node name it makes each node's
            hash (:func:`node_hash`): whole nodes go to val by lowest hash, then test, then
            train, cut at the counts of the rounding rule; blocks are ordered per node.
        region_axis: for ``by="region"``: the axis of volumes to cut (``"z"``, ``"y"`` or
            ``"x"``); images are cut along ``y`` when it is ``"z"``.
        gap: for ``by="region"``: pixels left out between neighbouring blocks.
        dataset: recorded in the result.

    Raises:
        SplitError: bad fractions, too few units, an axis the node does not have.

    Example:
        >>> s = split_shapes({"v": (100, 8, 8)}, val=0.1, test=0.1, by="region", gap=2)
        >>> sorted(r.stop[0] - r.start[0] for _, regions in s.items() for r in regions)
        [10, 10, 76]
    """
    _check_request(val, test, by, gap)
    names = list(shapes)
    out: dict[str, list[Region]] = {name: [] for name in SPLIT_NAMES}
    if not names:
        raise SplitError("the dataset has no nodes to split")
    if by in ("image", "volume"):
        counts = _shares(len(names), val, test, what="nodes")
        # val takes the nodes of the lowest hashes, then test, then train: each node's place
        # depends only on its own name and the seed, and the counts stay exact
        order = sorted(range(len(names)), key=lambda i: (node_hash(names[i], seed), names[i]))
        bounds = np.cumsum((0, *counts))
        chosen: dict[str, set[int]] = {
            split: {int(i) for i in order[bounds[k] : bounds[k + 1]]}
            for k, split in enumerate(SPLIT_NAMES)
        }
        for index, name in enumerate(names):
            shape = tuple(int(s) for s in shapes[name])
            for split in SPLIT_NAMES:
                if index in chosen[split]:
                    out[split].append(Region(name, (0,) * len(shape), shape))
        axis_name: str | None = None
    else:
        axis_name = region_axis
        for name in names:
            shape = tuple(int(s) for s in shapes[name])
            rng = _node_rng(name, seed)
            for split, region in _cut(name, shape, val, test, region_axis, gap, rng):
                out[split].append(region)
    splits = Splits(
        train=tuple(out["train"]),
        val=tuple(out["val"]),
        test=tuple(out["test"]),
        by=str(by),
        seed=int(seed),
        val_fraction=float(val),
        test_fraction=float(test),
        region_axis=axis_name,
        gap=int(gap),
        dataset=dataset,
    )
    check_disjoint(splits)
    return splits


def _cut(
    name: str,
    shape: tuple[int, ...],
    val: float,
    test: float,
    region_axis: str,
    gap: int,
    rng: np.random.Generator,
) -> list[tuple[str, Region]]:
    """One node cut into one block per requested split, in a seeded order, gaps between."""
    axes = _AXES.get(len(shape))
    if axes is None:
        raise SplitError(f"node {name!r} has {len(shape)} spatial axes; 2 or 3 are supported")
    axis_name = "y" if (region_axis == "z" and len(shape) == 2) else region_axis
    if axis_name not in axes:
        raise SplitError(
            f"node {name!r} has axes {', '.join(axes)}; it cannot be cut along {region_axis!r}"
        )
    axis = axes.index(axis_name)
    requested = [s for s, f in zip(SPLIT_NAMES, (1.0, val, test), strict=True) if f > 0]
    usable = shape[axis] - gap * (len(requested) - 1)
    if usable < len(requested):
        raise SplitError(
            f"node {name!r} is {shape[axis]} px along {axis_name}: too short for "
            f"{len(requested)} blocks with a gap of {gap} px between them; lower --gap or "
            "split by image/volume"
        )
    counts = dict(
        zip(SPLIT_NAMES, _shares(usable, val, test, what=f"pixels along {axis_name}"), strict=True)
    )
    order = [requested[int(i)] for i in rng.permutation(len(requested))]
    out = []
    position = 0
    for split in order:
        start = [0] * len(shape)
        stop = list(shape)
        start[axis], stop[axis] = position, position + counts[split]
        out.append((split, Region(name, tuple(start), tuple(stop))))
        position += counts[split] + gap
    return out


def node_shapes(dataset: Dataset) -> dict[str, tuple[int, ...]]:
    """Spatial shape per node of a store, from the node attributes: ``(H, W)`` / ``(Z, H, W)``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name in dataset.nodes:
        attrs = dataset.tree[name].attrs
        hw = (int(attrs["height"]), int(attrs["width"]))
        shapes[name] = (int(attrs["depth"]), *hw) if attrs.get("kind") == "volume" else hw
    return shapes


def make_splits(
    dataset: Dataset | str | Path,
    *,
    val: float,
    test: float,
    by: By | str,
    seed: int,
    region_axis: str = "z",
    gap: int = 0,
    subset_map: Mapping[str, str] | None = None,
) -> Splits:
    """Split the nodes of a dataset store into train, val and test.

    Args:
        dataset: an open :class:`~microprep.store.Dataset` or the store's path.
        val, test: fractions of the units (nodes, or pixels along the cut axis) in ``[0, 1)``.
        by: ``"image"`` / ``"volume"`` (whole nodes) or ``"region"`` (blocks of every node).
        seed: the same seed (and store) gives the same splits.
        region_axis: axis of volumes to cut for ``by="region"`` (images: ``y`` for ``"z"``).
        gap: pixels left out between neighbouring blocks for ``by="region"``.
        subset_map: for ``by="subset"`` (the nodes' own subsets become the splits, fractions
            unused): subset name -> split, see :mod:`microprep.splits.subsets`.

    Returns:
        A :class:`Splits`, checked with :func:`check_disjoint`.

    Raises:
        SplitError: see :func:`split_shapes`. StoreError: the store cannot be opened.

    Example:
        >>> s = make_splits("d.zarr", val=0.15, test=0.15, by="image", seed=0)  # doctest: +SKIP
        >>> [len(s[name]) for name in SPLIT_NAMES]  # doctest: +SKIP
        [4, 1, 1]
    """
    from microprep.store.read import Dataset, open_dataset

    if isinstance(dataset, Dataset):
        if by == "subset":
            from microprep.splits.subsets import node_subsets, split_by_subsets

            return split_by_subsets(
                node_subsets(dataset), subset_map=subset_map, seed=seed, dataset=str(dataset.path)
            )
        return split_shapes(
            node_shapes(dataset),
            val=val,
            test=test,
            by=by,
            seed=seed,
            region_axis=region_axis,
            gap=gap,
            dataset=str(dataset.path),
        )
    with open_dataset(dataset) as opened:
        return make_splits(
            opened,
            val=val,
            test=test,
            by=by,
            seed=seed,
            region_axis=region_axis,
            gap=gap,
            subset_map=subset_map,
        )
