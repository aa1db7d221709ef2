"""Verifying a whole dataset store: every chunk of every array read and checked.

:func:`verify_store` reads each chunk file of each node once through
:class:`~microprep.store.integrity.CheckedStore` (its CRC-32C checked, then decoded) and lists
every chunk that is missing or damaged, one :class:`~microprep.errors.StoreDamageError` each;
it goes on past damage so that one run finds all of it. ``prep info --verify`` and
``open_dataset(..., verify=True)`` use it.

Example:
    >>> result = verify_store("dataset.zarr")  # doctest: +SKIP
    >>> result.ok, result.chunks  # doctest: +SKIP
    (True, 84)
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from microprep.errors import StoreDamageError, StoreError
from microprep.progress import lines_wanted, with_progress_lines
from microprep.store.integrity import integrity_of, missing_node_error, open_root

__all__ = ["VerifyResult", "verify_store"]

logger = logging.getLogger(__name__)

#: Decoded bytes read at once: a chunk file (or shard) larger than this is read chunk by chunk.
READ_BYTES = 64 << 20
#: Damaged chunks listed in messages (the count is always given).
SHOWN = 20


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What :func:`verify_store` found: chunk files checked and the damage, in store order."""

    path: Path
    nodes: int
    chunks: int
    damage: tuple[StoreDamageError, ...]

    @property
    def ok(self) -> bool:
        """True when no chunk is missing or damaged."""
        return not self.damage

    def lines(self, limit: int = SHOWN) -> list[str]:
        """One line per damaged chunk, at most ``limit``, then one line for the rest."""
        shown = [str(d) for d in self.damage[:limit]]
        if len(self.damage) > limit:
            shown.append(f"{self.path}: ... and {len(self.damage) - limit} more damaged chunks")
        return shown

    def summary(self) -> str:
        """One line: what was checked and how many chunks are damaged."""
        if self.ok:
            return (
                f"{self.path}: verified {self.chunks:,} chunks of {self.nodes} nodes: "
                "all present and matching their checksums"
            )
        return (
            f"{self.path}: {len(self.damage)} of {self.chunks:,} chunks are missing or damaged; "
            "the store cannot be trusted: convert the export again"
        )

    def raise_for_damage(self) -> None:
        """Raise a :class:`~microprep.errors.StoreError` listing the damage, if any."""
        if self.ok:
            return
        if len(self.damage) == 1:
            raise self.damage[0]
        raise StoreError("\n".join([self.summary(), *self.lines()]))


def _file_regions(array: Any) -> Iterator[tuple[str, list[tuple[slice, ...]]]]:
    """Per chunk file of ``array`` (a shard counts as one): its key and the regions to read.

    A file whose decoded size is at most :data:`READ_BYTES` is one region; a larger shard is
    read one inner chunk at a time.
    """
    shape = tuple(int(n) for n in array.shape)
    if not shape or 0 in shape:
        return
    inner = tuple(int(c) for c in array.chunks)
    outer = tuple(int(s) for s in (array.shards or inner))
    itemsize = array.dtype.itemsize
    grid = [range(math.ceil(n / c)) for n, c in zip(shape, outer, strict=True)]
    for index in itertools.product(*grid):
        start = [i * c for i, c in zip(index, outer, strict=True)]
        stop = [min(s + c, n) for s, c, n in zip(start, outer, shape, strict=True)]
        key = "c/" + "/".join(map(str, index))
        size = itemsize * math.prod(b - a for a, b in zip(start, stop, strict=True))
        if size <= READ_BYTES or outer == inner:
            yield key, [tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
            continue
        steps = [range(a, b, c) for a, b, c in zip(start, stop, inner, strict=True)]
        yield (
            key,
            [
                tuple(slice(a, min(a + c, b)) for a, c, b in zip(origin, inner, stop, strict=True))
                for origin in itertools.product(*steps)
            ],
        )


def _check_file(
    path: Path, node: str, name: str, array: Any, key: str, regions: list[tuple[slice, ...]]
) -> StoreDamageError | None:
    """Read every region of one chunk file; the first damage found, or None."""
    for region in regions:
        try:
            array[region]
        except StoreDamageError as exc:
            return exc
        except (RuntimeError, ValueError, OSError) as exc:  # a codec error past the checksum
            return StoreDamageError(
                path, node=node, array=name, chunk=key, reason=f"cannot be decoded: {exc}"
            )
    return None


def verify_store(
    path: str | Path, *, attrs: dict[str, Any] | None = None, progress: bool = False
) -> VerifyResult:
    """Read and check every chunk of the finished dataset store at ``path``.

    Args:
        path: the store folder.
        attrs: its root attributes when already read (:func:`~microprep.store.read_root_attrs`).
        progress: a progress bar on a terminal, progress lines otherwise.

    Returns:
        A :class:`VerifyResult`; damage is listed, not raised (see
        :meth:`VerifyResult.raise_for_damage`).

    Raises:
        StoreError: not a finished store, or one written before checksums (``format_version``
            1), which cannot be verified.
    """
    from microprep.store.read import read_root_attrs

    path = Path(path)
    attrs = read_root_attrs(path) if attrs is None else attrs
    if integrity_of(attrs) is None:
        raise StoreError(
            f"{path} cannot be verified: it was written before chunk checksums (format_version "
            f"{attrs.get('format_version')}, microprep {attrs.get('version', '?')}); convert the "
            "export again for a verifiable store"
        )
    root: Any = open_root(path, attrs)
    nodes = list(attrs["nodes"])
    damage: list[StoreDamageError] = []
    present: dict[str, list[tuple[str, Any]]] = {}
    total = 0
    for node in nodes:
        gone = missing_node_error(path, node)
        if gone is not None:
            damage.append(gone)
            continue
        arrays = sorted(root[node].arrays(), key=lambda item: item[0])
        present[node] = arrays
        total += sum(math.prod(_files_per_axis(a)) for _, a in arrays)
    bar = tqdm(total=total, desc="verify", unit="chunk", disable=None if progress else True)
    checked = 0
    lines = with_progress_lines(
        list(present), what="verified", total=len(present), enabled=lines_wanted(progress)
    )
    with bar:
        for node in lines:
            for name, array in present[node]:
                for key, regions in _file_regions(array):
                    found = _check_file(path, node, name, array, key, regions)
                    if found is not None:
                        damage.append(found)
                    checked += 1
                    bar.update(1)
    logger.info("%s: verified %d chunk files, %d damaged", path, checked, len(damage))
    return VerifyResult(path, len(nodes), checked, tuple(damage))


def _files_per_axis(array: Any) -> tuple[int, ...]:
    shape = tuple(int(n) for n in array.shape)
    outer = tuple(int(s) for s in (array.shards or array.chunks))
    return tuple(math.ceil(n / c) for n, c in zip(shape, outer, strict=True))
