"""What a dataset store holds, for ``prep info``: nodes, classes, pixels, objects and splits.

:func:`store_info` reads the root attributes, every node's shape and object table, and counts
the pixels of every class in the class maps (read in bands of rows, so memory stays bounded
whatever the node's size). A splits file beside the store (``prep split``) is summarised too.

Example:
    >>> info = store_info("dataset.zarr")  # doctest: +SKIP
    >>> print(info.table())  # doctest: +SKIP
    >>> info.class_pixels["bubble"]  # doctest: +SKIP
    35211
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from microprep.errors import StoreDamageError, StoreError
from microprep.splits import SPLIT_NAMES, default_splits_path, load_splits
from microprep.store.integrity import integrity_of, missing_node_error, open_root
from microprep.store.read import read_root_attrs

__all__ = ["NodeInfo", "StoreInfo", "store_info"]

#: Pixels per band when counting classes (uint8 labels: 16 MiB).
BAND_PIXELS = 1 << 24


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node: its group name, image name, spatial shape, pixel dtype (None: no pixels),
    object count and class pixel counts (by class index)."""

    node: str
    name: str
    shape: tuple[int, ...]
    dtype: str | None
    objects: int
    pixels: tuple[int, ...]


@dataclass
class StoreInfo:
    """The summary of one dataset store (see :func:`store_info`)."""

    path: Path
    attrs: dict[str, Any]
    nodes: list[NodeInfo] = field(default_factory=list)
    splits: dict[str, Any] | None = None
    #: objects per class name (from the object tables), all nodes
    class_objects: dict[str, int] = field(default_factory=dict)
    #: chunk files read and checked by ``verify`` (None: not verified)
    verified_chunks: int | None = None

    @property
    def verifiable(self) -> bool:
        """Whether the store has chunk checksums (False: written before them, format 1)."""
        return integrity_of(self.attrs) is not None

    @property
    def classes(self) -> list[str]:
        """Class names by index, background first."""
        return list(self.attrs["classes"])

    @property
    def class_pixels(self) -> dict[str, int]:
        """Pixels (voxels) of every class, all nodes."""
        totals = np.zeros(len(self.classes), np.int64)
        for node in self.nodes:
            totals += np.asarray(node.pixels, np.int64)
        return {name: int(n) for name, n in zip(self.classes, totals.tolist(), strict=True)}

    def table(self) -> str:
        """A text report: the store, one line per node, the classes, the splits."""
        a = self.attrs
        kinds = {len(n.shape) for n in self.nodes}
        what = "volumes" if kinds == {3} else "images" if kinds == {2} else "images and volumes"
        sha = a.get("source_sha256")
        lines = [
            f"{self.path}: {len(self.nodes)} nodes ({what}), {len(self.classes) - 1} classes",
            f"  source {a.get('source')} ({a.get('source_format')}), "
            f"sha256 {str(sha)[:12] + '...' if sha else '-'}, microprep {a.get('version')}",
            f"  {self._integrity_line()}",
            "",
            f"  {'node':<28} {'shape':>16} {'dtype':>8} {'objects':>8}",
        ]
        for n in self.nodes:
            shape = "x".join(str(s) for s in n.shape)
            lines.append(f"  {n.node:<28} {shape:>16} {n.dtype or '-':>8} {n.objects:>8,}")
        pixels = self.class_pixels
        total = max(1, sum(pixels.values()))
        objects = self.class_objects
        lines += ["", f"  {'#':>2} {'class':<16} {'pixels':>14} {'share':>8} {'objects':>8}"]
        for k, name in enumerate(self.classes):
            count = "-" if k == 0 else f"{objects.get(name, 0):,}"
            share = f"{100 * pixels[name] / total:.2f}%"
            lines.append(f"  {k:>2} {name:<16} {pixels[name]:>14,} {share:>8} {count:>8}")
        if self.splits is not None:
            s = self.splits
            lines += ["", f"  splits {s['file']} (by {s['by']}, seed {s['seed']}):"]
            for split in SPLIT_NAMES:
                part = s["splits"][split]
                lines.append(
                    f"    {split:<6} {part['regions']:>5} regions {part['pixels']:>14,} px "
                    f"{part['share'] * 100:>7.2f}%"
                )
        return "\n".join(lines)

    def _integrity_line(self) -> str:
        if not self.verifiable:
            return (
                f"checksums: none (format_version {self.attrs.get('format_version')}, written "
                "before checksums): damage cannot be detected and the store cannot be verified; "
                "convert the export again"
            )
        if self.verified_chunks is None:
            return "checksums: crc32c on every chunk (prep info --verify reads and checks them all)"
        return f"checksums: crc32c; verified {self.verified_chunks:,} chunk files, no damage"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data: the store, its nodes, per-class pixels and objects, the splits."""
        return {
            "path": str(self.path),
            "source": self.attrs.get("source"),
            "source_format": self.attrs.get("source_format"),
            "source_sha256": self.attrs.get("source_sha256"),
            "format_version": self.attrs.get("format_version"),
            "verifiable": self.verifiable,
            "verified_chunks": self.verified_chunks,
            "classes": self.classes,
            "nodes": [
                {
                    "node": n.node,
                    "name": n.name,
                    "shape": list(n.shape),
                    "dtype": n.dtype,
                    "objects": n.objects,
                    "class_pixels": list(n.pixels),
                }
                for n in self.nodes
            ],
            "class_pixels": self.class_pixels,
            "class_objects": dict(self.class_objects),
            "splits": self.splits,
        }


def _count_classes(labels: Any, num_classes: int, ignore: int | None = None) -> tuple[int, ...]:
    """Pixels per class of a zarr class map, read in bands along its first axis (pixels of
    the ``ignore`` value, not annotated, are not counted)."""
    shape = tuple(int(s) for s in labels.shape)
    per_row = max(1, math.prod(shape[1:]))
    chunk = int(labels.chunks[0]) if getattr(labels, "chunks", None) else 1
    rows = max(chunk, BAND_PIXELS // per_row // chunk * chunk)
    counts = np.zeros(num_classes, np.int64)
    for start in range(0, shape[0], rows):
        band = np.asarray(labels[start : start + rows]).reshape(-1)
        if ignore is not None:
            band = band[band != ignore]
        found = np.bincount(band, minlength=num_classes)
        if len(found) > num_classes:
            raise StoreError(f"class index {len(found) - 1} in a map of {num_classes} classes")
        counts += found
    return tuple(int(c) for c in counts.tolist())


def _other_store_kind(path: Path) -> str | None:
    """``"a crops store (prep crop)"`` or ``"a prediction store (prep predict)"``, else None."""
    from microprep.crops.write import CROPS_ATTRS_KEY
    from microprep.predict.write import PREDICTION_KEY

    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    attributes = meta.get("attributes") if isinstance(meta, dict) else None
    if not isinstance(attributes, dict):
        return None
    if CROPS_ATTRS_KEY in attributes:
        return "a crops store (prep crop)"
    if PREDICTION_KEY in attributes:
        return "a prediction store (prep predict)"
    return None


def _splits_summary(path: Path, sizes: dict[str, int]) -> dict[str, Any] | None:
    file = default_splits_path(path)
    if not file.is_file():
        return None
    splits = load_splits(file)
    total = max(1, sum(sizes.values()))
    return {
        "file": str(file),
        "by": splits.by,
        "seed": splits.seed,
        "splits": {
            name: {
                "regions": len(splits[name]),
                "pixels": sum(r.size for r in splits[name]),
                "share": sum(r.size for r in splits[name]) / total,
            }
            for name in SPLIT_NAMES
        },
    }


def store_info(path: str | Path, *, progress: bool = False, verify: bool = False) -> StoreInfo:
    """Summarise the finished dataset store at ``path`` (also an ``AUG.zarr``).

    Reads every class map once (in bands of about :data:`BAND_PIXELS` pixels) to count the
    pixels of every class; objects are counted from the stored object tables. Chunks are read
    through :class:`~microprep.store.integrity.CheckedStore`, so the chunks read are checked.

    With ``verify``, every chunk of the store is read and checked first
    (:func:`~microprep.store.verify.verify_store`); the damage found is raised together.

    Raises:
        StoreError: not a finished microprep dataset store, an unreadable node, or a class
            index outside the store's classes; :class:`~microprep.errors.StoreDamageError`
            when a node folder or a chunk read is missing or damaged; with ``verify``, a store
            without checksums or with damage (every damaged chunk listed, at most
            :data:`~microprep.store.verify.SHOWN`).
    """
    path = Path(path)
    try:
        attrs = read_root_attrs(path)
    except StoreError:
        other = _other_store_kind(path)
        if other is None:
            raise
        raise StoreError(
            f"{path} is {other}; prep info reads dataset stores (and AUG.zarr)"
        ) from None
    info = StoreInfo(path, attrs)
    if verify:
        from microprep.store.verify import verify_store

        result = verify_store(path, attrs=attrs, progress=progress)
        result.raise_for_damage()
        info.verified_chunks = result.chunks
    num_classes = len(attrs["classes"])
    for name in attrs["nodes"]:
        gone = missing_node_error(path, name)
        if gone is not None:
            raise gone
    root: Any = open_root(path, attrs)
    objects = np.zeros(num_classes, np.int64)
    sizes: dict[str, int] = {}
    for name in tqdm(attrs["nodes"], unit="node", disable=None if progress else True):
        try:
            group = root[name]
            labels = group["labels"]
            shape = tuple(int(s) for s in labels.shape)
            dtype = str(group["image"].dtype) if "image" in group else None
            object_labels = np.asarray(group["instance_label"][...], np.int64)
            pixels = _count_classes(labels, num_classes, attrs.get("ignore_index"))
        except StoreDamageError:
            raise
        except (KeyError, OSError, ValueError, RuntimeError) as exc:
            # RuntimeError: a codec error in a store without checksums (format_version 1)
            raise StoreError(f"{path}: cannot read node {name!r}: {exc}") from exc
        except StoreError as exc:
            raise StoreError(f"{path}: node {name!r}: {exc}") from exc
        objects += np.bincount(object_labels, minlength=num_classes)[:num_classes]
        sizes[name] = math.prod(shape)
        image_name = str(dict(group.attrs).get("name", name))
        info.nodes.append(NodeInfo(name, image_name, shape, dtype, int(object_labels.size), pixels))
    info.class_objects = {c: int(n) for c, n in zip(info.classes, objects.tolist(), strict=True)}
    info.splits = _splits_summary(path, sizes)
    return info
