"""Splits from the annotators' own subsets (``prep split --by subset``).

An export may put each image in a subset (CVAT: ``<image subset="Train">``, a project's task
subsets). ``prep convert`` keeps it per node of the store: ``subset`` when all the node's images
share one, else ``subsets`` (one per frame of a volume). Here each subset becomes a split:

* the names ``train``/``training``, ``val``/``validation``/``valid`` and ``test``/``testing``
  are matched case-insensitively;
* ``subset_map`` names the others (``{"Holdout": "test"}``; keys matched case-insensitively,
  values a split name or one of the names above); it also overrides the names above;
* a node without a subset, or a subset that maps to no split, is a :class:`SplitError` naming
  the node and its image; the training split must not be empty.

A node goes whole into its split; a volume whose frames are in different subsets is cut into
runs of consecutive frames (``z`` ranges), one region per run. The recorded fractions are the
shares of pixels that val and test got.

Example:
    >>> s = split_by_subsets(
    ...     {"a": ((4, 4), "Train", "a.png"), "b": ((4, 4), "Validation", "b.png"),
    ...      "c": ((4, 4), "Holdout", "c.png")},
    ...     subset_map=parse_subset_map("Holdout=test"),
    ... )
    >>> [(name, [r.node for r in regions]) for name, regions in s.items()]
    [('train', ['a']), ('val', ['b']), ('test', ['c'])]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import TYPE_CHECKING

from microprep.splits.regions import SPLIT_NAMES, Region, SplitError, Splits, check_disjoint

if TYPE_CHECKING:
    from microprep.store.read import Dataset

__all__ = ["SUBSET_NAMES", "node_subsets", "parse_subset_map", "split_by_subsets", "subset_split"]

logger = logging.getLogger(__name__)

#: Subset names (lower case) that mean a split without a ``--subset-map``.
SUBSET_NAMES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "valid": "val",
    "test": "test",
    "testing": "test",
}

#: A node's subset: one name (or None) for the whole node, or one per frame of a volume.
NodeSubset = str | None | Sequence[str | None]


def parse_subset_map(text: str | None) -> dict[str, str]:
    """``"Validation=val,Holdout=test"`` as ``{"validation": "val", "holdout": "test"}``.

    Keys are subset names (compared case-insensitively); values are split names or their
    usual spellings (``training``, ``validation``, ...).

    Raises:
        SplitError: an entry without ``=``, an empty name, or a value that is not a split.
    """
    out: dict[str, str] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        subset, sep, split = entry.partition("=")
        subset, split = subset.strip(), split.strip()
        if not sep or not subset or not split:
            raise SplitError(
                f"--subset-map entry {entry.strip()!r} is not SUBSET=SPLIT (e.g. Holdout=test)"
            )
        target = SUBSET_NAMES.get(split.casefold())
        if target is None:
            raise SplitError(
                f"--subset-map entry {entry.strip()!r}: {split!r} is not a split "
                f"({', '.join(SPLIT_NAMES)})"
            )
        out[subset.casefold()] = target
    return out


def subset_split(subset: str, subset_map: Mapping[str, str] | None = None) -> str | None:
    """The split of ``subset`` (``subset_map`` first, then :data:`SUBSET_NAMES`), or None."""
    key = subset.strip().casefold()
    if subset_map and key in subset_map:
        return subset_map[key]
    return SUBSET_NAMES.get(key)


def node_subsets(dataset: Dataset) -> dict[str, tuple[tuple[int, ...], NodeSubset, str]]:
    """Per node of a store: its spatial shape, its subset(s) and its image name."""
    from microprep.splits.assign import node_shapes

    shapes = node_shapes(dataset)
    out: dict[str, tuple[tuple[int, ...], NodeSubset, str]] = {}
    for name, shape in shapes.items():
        attrs = dataset.tree[name].attrs
        subsets: NodeSubset = attrs.get("subsets")
        if subsets is None:
            subsets = attrs.get("subset")
        out[name] = (shape, subsets, str(attrs.get("name", name)))
    return out


def _split_of(
    node: str, image: str, subset: str | None, subset_map: Mapping[str, str] | None
) -> str:
    who = f"image {image!r}" if image == node else f"node {node!r} (image {image!r})"
    if subset is None or not str(subset).strip():
        raise SplitError(
            f"{who} has no subset; give every image a subset in the export, or split --by image"
        )
    split = subset_split(str(subset), subset_map)
    if split is None:
        raise SplitError(
            f"{who}: subset {subset!r} maps to no split (train, val, test); name it in "
            f"--subset-map, e.g. --subset-map '{subset}=test'"
        )
    return split


def split_by_subsets(
    nodes: Mapping[str, tuple[tuple[int, ...], NodeSubset, str]],
    *,
    subset_map: Mapping[str, str] | None = None,
    seed: int = 0,
    dataset: str | None = None,
) -> Splits:
    """Splits from the subsets of the nodes (see the module docstring).

    Args:
        nodes: node name -> ``(spatial shape, subset(s), image name)``, as
            :func:`node_subsets` gives them; a volume's subsets may be one per frame.
        subset_map: subset name (case-folded) -> split, from :func:`parse_subset_map`.
        seed: recorded in the result (nothing is drawn).
        dataset: recorded in the result.

    Raises:
        SplitError: a node without a subset, a subset that maps to no split, per-frame subsets
            that do not match the node's depth, no node in train.
    """
    if not nodes:
        raise SplitError("the dataset has no nodes to split")
    out: dict[str, list[Region]] = {name: [] for name in SPLIT_NAMES}
    for node, entry in nodes.items():
        shape, subsets, image = tuple(int(s) for s in entry[0]), entry[1], entry[2]
        if subsets is None or isinstance(subsets, str):
            split = _split_of(node, image, subsets, subset_map)
            out[split].append(Region(node, (0,) * len(shape), shape))
            continue
        per_frame = list(subsets)
        if len(shape) != 3 or len(per_frame) != shape[0]:
            raise SplitError(
                f"node {node!r} (image {image!r}) has {len(per_frame)} frame subsets for "
                f"a node of shape {shape}"
            )
        splits = [
            _split_of(node, f"{image}, frame {z}", s, subset_map) for z, s in enumerate(per_frame)
        ]
        z = 0
        for split, run in groupby(splits):
            n = len(list(run))
            out[split].append(Region(node, (z, 0, 0), (z + n, shape[1], shape[2])))
            z += n
    if not out["train"]:
        raise SplitError(
            "no image is in a training subset (train/training or one mapped to train by "
            "--subset-map); nothing to train on"
        )
    pixels = {name: sum(r.size for r in regions) for name, regions in out.items()}
    total = sum(pixels.values())
    splits_ = Splits(
        train=tuple(out["train"]),
        val=tuple(out["val"]),
        test=tuple(out["test"]),
        by="subset",
        seed=int(seed),
        val_fraction=pixels["val"] / total,
        test_fraction=pixels["test"] / total,
        region_axis=None,
        gap=0,
        dataset=dataset,
    )
    check_disjoint(splits_)
    return splits_
