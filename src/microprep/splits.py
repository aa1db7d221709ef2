"""Train / validation / test splits of a dataset store, made before cropping.

A split assigns *regions* of the store's nodes to ``train``, ``val`` and ``test``. A
:class:`Region` is a box of one node in its own pixel (voxel) index space: ``start`` and
``stop`` per spatial axis, ``(y, x)`` for images and ``(z, y, x)`` for volumes, ``stop``
exclusive. Splitting happens on sources (or on disjoint blocks of one source), never on crops,
so no validation window can be an overlapping or augmented copy of a training window.

``by``:

* ``"image"`` / ``"volume"``: every node is one unit and goes whole into one split (the two
  names are the same rule; use the one that reads right for the store).
* ``"region"``: every node is cut along one axis into one contiguous block per split (``z`` for
  volumes, ``y`` for images unless ``region_axis`` names another axis), with ``gap`` pixels left
  out between neighbouring blocks so that windows near a border cannot straddle two splits. The
  order of the blocks along the axis is drawn per node from the seed.

**Rounding rule.** For ``n`` units (nodes, or pixels along the cut axis after the gaps) the
validation share is ``round(n * val)`` and the test share ``round(n * test)`` (half to even), each
raised to 1 when its fraction is above 0; train gets the rest and must get at least 1. When the
units are too few for that, :class:`SplitError` says how many are needed.

Splits are written next to the store (``DATASET.zarr.splits.json``), never into it: the store is
not changed after conversion. The file is described by ``schemas/splits.schema.json``.

Example:
    >>> s = split_shapes({"a": (4, 4), "b": (4, 4), "c": (4, 4)}, val=0.3, test=0.3, seed=1)
    >>> sorted(len(s[name]) for name in SPLIT_NAMES)
    [1, 1, 1]
    >>> check_disjoint(s)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from jsonschema import Draft202012Validator

from microprep.errors import StoreError, UsageError
from microprep.schemas import load_schema

if TYPE_CHECKING:
    from microprep.store_read import Dataset

logger = logging.getLogger(__name__)

#: The split names, in this order everywhere (files, reports).
SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
#: How to split: whole nodes (``image``, ``volume``) or blocks of each node (``region``).
BY_CHOICES: tuple[str, str, str] = ("image", "volume", "region")
#: The JSON Schema of a splits file.
SCHEMA_NAME = "splits.schema.json"
#: Version of the splits file format.
FORMAT_VERSION = 1

By = Literal["image", "volume", "region"]
_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


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
        seed: the same seed gives the same splits.
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
    rng = np.random.default_rng(seed)
    names = list(shapes)
    out: dict[str, list[Region]] = {name: [] for name in SPLIT_NAMES}
    if not names:
        raise SplitError("the dataset has no nodes to split")
    if by in ("image", "volume"):
        counts = _shares(len(names), val, test, what="nodes")
        order = rng.permutation(len(names))
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
) -> Splits:
    """Split the nodes of a dataset store into train, val and test.

    Args:
        dataset: an open :class:`~microprep.store.Dataset` or the store's path.
        val, test: fractions of the units (nodes, or pixels along the cut axis) in ``[0, 1)``.
        by: ``"image"`` / ``"volume"`` (whole nodes) or ``"region"`` (blocks of every node).
        seed: the same seed (and store) gives the same splits.
        region_axis: axis of volumes to cut for ``by="region"`` (images: ``y`` for ``"z"``).
        gap: pixels left out between neighbouring blocks for ``by="region"``.

    Returns:
        A :class:`Splits`, checked with :func:`check_disjoint`.

    Raises:
        SplitError: see :func:`split_shapes`. StoreError: the store cannot be opened.

    Example:
        >>> s = make_splits("d.zarr", val=0.15, test=0.15, by="image", seed=0)  # doctest: +SKIP
        >>> [len(s[name]) for name in SPLIT_NAMES]  # doctest: +SKIP
        [4, 1, 1]
    """
    from microprep.store_read import Dataset, open_dataset

    if isinstance(dataset, Dataset):
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
            opened, val=val, test=test, by=by, seed=seed, region_axis=region_axis, gap=gap
        )


def check_disjoint(splits: Splits, *, gap: int = 0) -> None:
    """Refuse splits that share pixels (or come closer than ``gap`` px) across splits.

    A validation range inside the training range of the same node is a leak, not a split.

    Raises:
        SplitError: naming the first two offending regions and their splits.

    Example:
        >>> a, b = Region("v", (0, 0), (10, 4)), Region("v", (5, 0), (20, 4))
        >>> check_disjoint(Splits(train=(a,), val=(b,), test=()))
        Traceback (most recent call last):
        ...
        microprep.splits.SplitError: train region v[0:10, 0:4] overlaps val region v[5:20, 0:4]
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


def default_splits_path(dataset: str | Path) -> Path:
    """Where the splits of a store go by default: ``DATASET.zarr.splits.json`` beside it."""
    path = Path(dataset)
    return path.with_name(path.name + ".splits.json")


def splits_to_json(splits: Splits) -> dict[str, Any]:
    """The JSON object of a splits file (see ``schemas/splits.schema.json``)."""
    return {
        "format": "microprep-splits",
        "format_version": FORMAT_VERSION,
        "dataset": splits.dataset,
        "by": splits.by,
        "seed": splits.seed,
        "fractions": {"val": splits.val_fraction, "test": splits.test_fraction},
        "region_axis": splits.region_axis,
        "gap": splits.gap,
        "splits": {
            name: [{"node": r.node, "start": list(r.start), "stop": list(r.stop)} for r in regions]
            for name, regions in splits.items()
        },
    }


def splits_from_json(data: Any, *, where: str = "<splits>") -> Splits:
    """Parse and check a splits object (schema, then :func:`check_disjoint`).

    Raises:
        SplitError: the object does not match the schema, or the splits overlap.
    """
    validator = Draft202012Validator(load_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise SplitError(f"{where}: does not match {SCHEMA_NAME} at {at}: {first.message}")
    regions: dict[str, tuple[Region, ...]] = {}
    for name in SPLIT_NAMES:
        parsed = []
        for index, item in enumerate(data["splits"][name]):
            region = Region(item["node"], tuple(item["start"]), tuple(item["stop"]))
            if len(region.start) != len(region.stop) or any(
                a >= b for a, b in zip(region.start, region.stop, strict=True)
            ):
                raise SplitError(
                    f"{where}: splits/{name}/{index}: start {list(region.start)} and stop "
                    f"{list(region.stop)} must have the same length and start < stop"
                )
            parsed.append(region)
        regions[name] = tuple(parsed)
    splits = Splits(
        train=regions["train"],
        val=regions["val"],
        test=regions["test"],
        by=data["by"],
        seed=data["seed"],
        val_fraction=float(data["fractions"]["val"]),
        test_fraction=float(data["fractions"]["test"]),
        region_axis=data["region_axis"],
        gap=data["gap"],
        dataset=data["dataset"],
    )
    try:
        check_disjoint(splits)
    except SplitError as exc:
        raise SplitError(f"{where}: {exc}") from exc
    return splits


def _dumps(data: dict[str, Any]) -> str:
    """The splits JSON, one key per line and one region per line (readable and diffable)."""
    lines = ["{"]
    for key, value in data.items():
        if key != "splits":
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "splits": {')
    for k, name in enumerate(SPLIT_NAMES):
        regions = [json.dumps(r, ensure_ascii=False) for r in data["splits"][name]]
        body = ",\n".join(f"    {r}" for r in regions)
        end = "," if k < len(SPLIT_NAMES) - 1 else ""
        lines.append(
            f"   {json.dumps(name)}: [\n{body}\n   ]{end}"
            if regions
            else f"   {json.dumps(name)}: []{end}"
        )
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save_splits(splits: Splits, path: str | Path) -> Path:
    """Write ``splits`` as JSON to ``path`` atomically (a temp file beside it, then a rename).

    Returns:
        The path written.

    Raises:
        SplitError: the splits overlap. StoreError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> s = Splits(train=(Region("a", (0, 0), (4, 4)),), val=(), test=())
        >>> target = Path(tempfile.mkdtemp()) / "d.zarr.splits.json"
        >>> load_splits(save_splits(s, target)) == s
        True
    """
    check_disjoint(splits)
    path = Path(path)
    text = _dumps(splits_to_json(splits))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write the splits file {path}: {exc}") from exc
    logger.info("wrote %s", path)
    return path


def load_splits(path: str | Path) -> Splits:
    """Read a splits file written by :func:`save_splits`, checked against the schema.

    Raises:
        SplitError: not valid JSON, not matching the schema, or overlapping splits.
        StoreError: the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read the splits file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SplitError(f"{path}: not valid JSON: {exc}") from exc
    return splits_from_json(data, where=str(path))


def summarize(splits: Splits) -> list[tuple[str, int, int]]:
    """Per split ``(name, regions, pixels)`` for reports."""
    return [(name, len(regions), sum(r.size for r in regions)) for name, regions in splits.items()]


__all__ = [
    "BY_CHOICES",
    "SPLIT_NAMES",
    "Region",
    "SplitError",
    "Splits",
    "check_against",
    "check_disjoint",
    "default_splits_path",
    "load_splits",
    "make_splits",
    "node_shapes",
    "save_splits",
    "split_shapes",
    "splits_from_json",
    "splits_to_json",
    "summarize",
]
