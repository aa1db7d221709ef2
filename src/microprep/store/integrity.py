"""Damage detection in dataset stores: chunk checksums, the every-chunk rule, a checking reader.

A store of ``format_version`` 2 records ``"integrity": {"checksum": "crc32c", "chunks": "all"}``
in its root attributes (docs/store-layout.md):

- every chunk is encoded ``zstd`` then ``crc32c`` (zarr v3's codec: 4 bytes of CRC-32C after
  the compressed bytes); the index of a sharded array ends with its own CRC-32C (zarr's default);
- every chunk of every array is stored, also chunks of only the fill value (arrays are written
  with ``write_empty_chunks``), so the chunk files a node must have follow from each array's
  shape and chunk (shard) shape: that rule is the store's manifest. It costs nothing to record,
  cannot disagree with the arrays, and a check costs nothing either: the read that opens a chunk
  file finds it missing.

:class:`CheckedStore` is the zarr store microprep reads such stores through: a chunk file that
is missing, or bytes that do not match their checksum, raise
:class:`~microprep.errors.StoreDamageError` naming the store, node, array and chunk, in place of
zarr's silent fill value or a codec error naming nothing. Stores of ``format_version`` 1
(written before checksums) are read as before and cannot be verified.

Example:
    >>> root = open_root("dataset.zarr")  # doctest: +SKIP
    >>> root["a.png"]["labels"][:]  # doctest: +SKIP
    Traceback (most recent call last):
    microprep.errors.StoreDamageError: dataset.zarr: node 'a.png', array 'labels', chunk c/0/1:
    the chunk file is missing (this store keeps every chunk)
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.abc.store import ByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, WrapperStore

from microprep.errors import StoreDamageError
from microprep.store.layout import INTEGRITY

__all__ = [
    "INTEGRITY",
    "CheckedStore",
    "integrity_of",
    "missing_node_error",
    "open_root",
    "open_store",
]

logger = logging.getLogger(__name__)

_EMPTY = 2**64 - 1  # a shard index entry for a chunk that is not stored


def integrity_of(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The ``integrity`` record of a store's root attributes; None for a store written
    before checksums (``format_version`` 1), which cannot be verified."""
    record = attrs.get("integrity")
    return record if isinstance(record, dict) else None


def open_store(path: str | Path, attrs: dict[str, Any]) -> Store:
    """A read-only zarr store for the dataset store at ``path`` with root attributes ``attrs``:
    a :class:`CheckedStore` where the store records its integrity, else a plain local store."""
    local = LocalStore(Path(path), read_only=True)
    if integrity_of(attrs) is None:
        return local
    return CheckedStore(local, root=Path(path))


def open_root(path: str | Path, attrs: dict[str, Any] | None = None) -> zarr.Group:
    """The root group of the dataset store at ``path``, read through :func:`open_store`.

    ``attrs`` (the checked root attributes) are read when not given.
    """
    if attrs is None:
        from microprep.store.read import read_root_attrs

        attrs = read_root_attrs(Path(path))
    return zarr.open_group(open_store(path, attrs), mode="r", zarr_format=3)


def missing_node_error(root: Path, node: str) -> StoreDamageError | None:
    """The error for node ``node`` of the store at ``root`` when its folder is gone, else None."""
    if (root / node / "zarr.json").is_file():
        return None
    return StoreDamageError(
        root, node=node, reason="the node's folder is missing (deleted?); convert the export again"
    )


def _crc_ok(data: NDArray[np.uint8]) -> bool:
    """Whether ``data`` ends with the CRC-32C (little endian) of the bytes before it."""
    if data.size < 4:
        return False
    stored = int.from_bytes(data[-4:].tobytes(), "little")
    return int(google_crc32c.value(np.ascontiguousarray(data[:-4]))) == stored


class _Layout:
    """What checking one array's chunk files needs: checksums inner and in the shard index."""

    def __init__(self, meta: dict[str, Any]) -> None:
        codecs = meta.get("codecs") or []
        first = codecs[0] if codecs else {}
        self.sharded = first.get("name") == "sharding_indexed"
        self.chunks_per_shard: tuple[int, ...] = ()
        self.index_size = 0
        if self.sharded:
            conf = first.get("configuration", {})
            inner = conf.get("chunk_shape", [])
            outer = meta["chunk_grid"]["configuration"]["chunk_shape"]
            self.chunks_per_shard = tuple(o // i for o, i in zip(outer, inner, strict=True))
            index_codecs = [c.get("name") for c in conf.get("index_codecs", [])]
            at_end = conf.get("index_location", "end") == "end"
            if index_codecs and index_codecs[-1] == "crc32c" and at_end:
                self.index_size = 16 * math.prod(self.chunks_per_shard) + 4
            codecs = conf.get("codecs", [])
        self.checksummed = bool(codecs) and codecs[-1].get("name") == "crc32c"

    def problem(self, data: NDArray[np.uint8], byte_range: ByteRequest | None) -> str | None:
        """What is wrong with ``data`` read from one chunk file (``byte_range`` of it), or None."""
        if not self.checksummed:
            return None
        if not self.sharded:
            if byte_range is None and not _crc_ok(data):
                return "the chunk does not match its crc32c checksum (the file is damaged)"
            return None
        if byte_range is None:
            return self._shard_problem(data)
        if isinstance(byte_range, SuffixByteRequest):
            if byte_range.suffix == self.index_size and not _crc_ok(data):
                return "the shard index does not match its checksum (the file is damaged)"
            return None
        if not isinstance(byte_range, RangeByteRequest):
            return None
        if data.size != byte_range.end - byte_range.start or not _crc_ok(data):
            return (
                f"the chunk at bytes {byte_range.start}-{byte_range.end} of the shard does "
                "not match its crc32c checksum (the file is damaged)"
            )
        return None

    def _shard_problem(self, data: NDArray[np.uint8]) -> str | None:
        if not self.index_size:
            return None
        if data.size < self.index_size or not _crc_ok(data[-self.index_size :]):
            return "the shard index does not match its checksum (the file is damaged)"
        body = data.size - self.index_size
        entries = np.frombuffer(data[-self.index_size : -4].tobytes(), "<u8").reshape(-1, 2)
        for k, (offset, length) in enumerate(entries.tolist()):
            if offset == _EMPTY and length == _EMPTY:
                continue
            where = tuple(int(i) for i in np.unravel_index(k, self.chunks_per_shard))
            if offset + length > body or not _crc_ok(data[offset : offset + length]):
                return (
                    f"inner chunk {list(where)} of the shard does not match its crc32c "
                    "checksum (the file is damaged)"
                )
        return None


class CheckedStore(WrapperStore[LocalStore]):
    """A read-only local zarr store that refuses missing and damaged chunk files.

    Keys ``NODE/ARRAY/c/...`` are chunk files of the dataset store at ``root``: one that is
    missing, or whose bytes do not match their CRC-32C, raises
    :class:`~microprep.errors.StoreDamageError` naming node, array and chunk. Other keys
    (metadata) pass through. Pickles as the wrapped store and ``root``.

    Args:
        store: the local store of the dataset store's folder.
        root: the folder, for messages and for the array metadata.
    """

    def __init__(self, store: LocalStore, *, root: Path) -> None:
        super().__init__(store)
        self.root = Path(root)
        self._layouts: dict[str, _Layout] = {}
        self._consolidated: dict[str, Any] | None = None

    def _with_store(self, store: LocalStore) -> CheckedStore:
        return type(self)(store, root=self.root)

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self._store, "root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["store"], root=state["root"])  # type: ignore[misc]

    def _layout(self, node: str, array: str) -> _Layout:
        key = f"{node}/{array}"
        if key not in self._layouts:
            meta = self._array_meta(node, array)
            self._layouts[key] = _Layout(meta)
        return self._layouts[key]

    def _array_meta(self, node: str, array: str) -> dict[str, Any]:
        """The array's metadata: its own zarr.json, else the consolidated copy at the root."""
        own = self.root / node / array / "zarr.json"
        try:
            meta = json.loads(own.read_text(encoding="utf-8"))
            if isinstance(meta, dict):
                return meta
        except (OSError, UnicodeDecodeError, ValueError):
            pass
        if self._consolidated is None:
            try:
                raw = json.loads((self.root / "zarr.json").read_text(encoding="utf-8"))
                self._consolidated = dict(raw["consolidated_metadata"]["metadata"])
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
                self._consolidated = {}
        meta = self._consolidated.get(f"{node}/{array}")
        if not isinstance(meta, dict):
            raise StoreDamageError(
                self.root, node=node, array=array, reason="the array's metadata is missing"
            )
        return meta

    def _missing(self, node: str, array: str, chunk: str) -> StoreDamageError:
        gone = missing_node_error(self.root, node)
        if gone is not None:
            return gone
        if not (self.root / node / array).is_dir():
            return StoreDamageError(
                self.root, node=node, array=array, reason="the array's folder is missing"
            )
        return StoreDamageError(
            self.root,
            node=node,
            array=array,
            chunk=chunk,
            reason="the chunk file is missing (this store keeps every chunk)",
        )

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        """The bytes of ``key``; for a chunk file, checked (StoreDamageError when missing or
        damaged)."""
        buf = await self._store.get(key, prototype, byte_range)
        parts = key.split("/")
        if len(parts) < 4 or parts[2] != "c":
            return buf
        node, array, chunk = parts[0], parts[1], "/".join(parts[2:])
        if buf is None:
            raise self._missing(node, array, chunk)
        problem = self._layout(node, array).problem(buf.as_numpy_array(), byte_range)
        if problem is not None:
            raise StoreDamageError(self.root, node=node, array=array, chunk=chunk, reason=problem)
        return buf
