"""What changed between two conversions into the same store: the report of ``prep convert``.

When ``prep convert`` replaces an existing dataset store (a corrected export of the same task,
converted into the old store's place), :func:`snapshot` records, before the old store is
replaced, each node's size, object count and a digest of its annotations, and
:func:`compare` lists what changed: images added, removed, resized, and images whose
annotations changed (with the object counts before and after).

The digest is a BLAKE2b over the stored chunk files of the node's annotation arrays
(``labels``, ``instances`` and the per-object tables; the pixels are left out), read as bytes,
not decoded: the store writes them deterministically (same content, same bytes, given the same
microprep version), so equal digests mean equal annotations. Between versions whose encoding
differs, every image would show as changed: the report says only "annotations changed" then,
never loses a real change.

Example:
    >>> old = {"a.png": NodeFacts((8, 8), 2, "x"), "b.png": NodeFacts((8, 8), 1, "y")}
    >>> new = {"a.png": NodeFacts((8, 8), 3, "z"), "c.png": NodeFacts((4, 4), 0, "w")}
    >>> for line in compare(old, new).lines():
    ...     print(line)
    1 image(s) added: c.png
    1 image(s) removed: b.png
    1 image(s) with changed annotations: a.png (objects 2 -> 3)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microprep.store.layout import ATTRS_KEY

__all__ = ["NodeFacts", "StoreChanges", "compare", "snapshot"]

logger = logging.getLogger(__name__)

_ANNOTATION_ARRAYS = (
    "labels",
    "instances",
    "instance_label",
    "instance_box",
    "instance_area",
    "instance_occluded",
    "instance_group",
    "instance_track",
)
_SHOWN = 5  # image names listed per line


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """One node of a store: its spatial ``shape``, ``objects`` (instances) and ``digest``."""

    shape: tuple[int, ...]
    objects: int
    digest: str


@dataclass(frozen=True, slots=True)
class StoreChanges:
    """Images ``added``, ``removed``, ``resized`` (name, old shape, new shape) and
    ``changed`` (name, old objects, new objects) between two stores."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    resized: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    changed: tuple[tuple[str, int, int], ...]

    def lines(self) -> list[str]:
        """One line per kind of change (none: ``["no images changed"]``)."""

        def names(items: list[str]) -> str:
            more = f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
            return ", ".join(items[:_SHOWN]) + more

        out = []
        if self.added:
            out.append(f"{len(self.added)} image(s) added: {names(list(self.added))}")
        if self.removed:
            out.append(f"{len(self.removed)} image(s) removed: {names(list(self.removed))}")
        if self.resized:
            shown = [f"{n} ({'x'.join(map(str, a))} -> {'x'.join(map(str, b))})"
                     for n, a, b in self.resized]  # fmt: skip
            out.append(f"{len(self.resized)} image(s) resized: {names(shown)}")
        if self.changed:
            shown = [f"{n} (objects {a} -> {b})" for n, a, b in self.changed]
            out.append(f"{len(self.changed)} image(s) with changed annotations: {names(shown)}")
        return out or ["no images changed"]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(store: str | Path) -> dict[str, NodeFacts] | None:
    """Facts per node name of the complete dataset store ``store``; None when ``store`` is
    missing or not a readable, complete dataset store (nothing to compare with)."""
    root = Path(store)
    try:
        attrs = _json(root / "zarr.json")["attributes"][ATTRS_KEY]
        if attrs.get("complete") is not True:
            return None
        facts: dict[str, NodeFacts] = {}
        for group in attrs["nodes"]:
            node = root / group
            meta = _json(node / "zarr.json")["attributes"]
            shape = tuple(int(meta[k]) for k in ("depth", "height", "width") if k in meta)
            digest = hashlib.blake2b(digest_size=16)
            objects = 0
            for array in _ANNOTATION_ARRAYS:
                folder = node / array
                if not folder.is_dir():
                    continue
                if array == "instance_label":
                    objects = int(_json(folder / "zarr.json")["shape"][0])
                for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                    digest.update(file.relative_to(node).as_posix().encode() + b"\0")
                    digest.update(file.read_bytes())
            facts[str(meta.get("name", group))] = NodeFacts(shape, objects, digest.hexdigest())
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        logger.info("%s: no change report (not a readable store: %s)", root, exc)
        return None
    return facts


def compare(old: dict[str, NodeFacts], new: dict[str, NodeFacts]) -> StoreChanges:
    """What changed from ``old`` to ``new`` (:func:`snapshot` results), in ``new``'s order."""
    both = [name for name in new if name in old]
    return StoreChanges(
        added=tuple(name for name in new if name not in old),
        removed=tuple(name for name in old if name not in new),
        resized=tuple(
            (name, old[name].shape, new[name].shape)
            for name in both
            if old[name].shape != new[name].shape
        ),
        changed=tuple(
            (name, old[name].objects, new[name].objects)
            for name in both
            if old[name].shape == new[name].shape and old[name].digest != new[name].digest
        ),
    )
