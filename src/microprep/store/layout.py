"""Names, chunking and attributes of the dataset store's layout (docs/store-layout.md).

Shared by the writer (:mod:`microprep.store.write`) and the reader (:mod:`microprep.store.read`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from zarr.codecs import Crc32cCodec, ZstdCodec

from microprep.errors import StoreError
from microprep.schemas import load_schema

#: Version of the store layout written here (2: chunk checksums and the ``integrity`` record).
FORMAT_VERSION = 2
#: Versions this microprep reads; 1 (no checksums) opens but cannot be verified.
READ_FORMAT_VERSIONS = (1, 2)
#: The ``integrity`` record of the root attributes (:mod:`microprep.store.integrity`): every
#: chunk ends with its CRC-32C, and every chunk of every array is stored.
INTEGRITY: dict[str, str] = {"checksum": "crc32c", "chunks": "all"}
#: Key of microprep's object in the root group attributes.
ATTRS_KEY = "microprep"
#: JSON Schema of the ``microprep`` root attributes (``schemas/``).
SCHEMA_NAME = "store-attrs.schema.json"

#: Chunk shapes of spatial axes: ``(y, x)`` for images, ``(z, y, x)`` for volumes.
CHUNKS_2D = (512, 512)
CHUNKS_3D = (32, 128, 128)
#: Arrays of more chunks than this are sharded (chunks grouped into fewer, larger files).
MAX_UNSHARDED_CHUNKS = 64
#: At most this many chunks per axis go into one shard file.
SHARD_CHUNKS_2D = (8, 8)
SHARD_CHUNKS_3D = (4, 8, 8)

#: Chunk encoding after the bytes codec: zstd, then a CRC-32C of the compressed bytes.
COMPRESSORS = (ZstdCodec(level=1), Crc32cCodec())
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NODE_NAME = 120
#: Names a node group may not take (case-insensitively): the root metadata file.
_RESERVED_NAMES = frozenset({"zarr.json"})

DESCRIPTIONS = {
    "image": "pixels of the image file(s), dtype as in the file",
    "labels": "class index per pixel: 0 background, 1..K the classes (root attrs: classes); "
    "the root attrs' ignore_index (255) where not annotated",
    "instances": "instance id per pixel (1..N, 0 none); overlapping objects on further layers",
    "instance_label": "class index (1..K) of each instance",
    "instance_box": "box per instance: x_min, y_min[, z_min], x_max, y_max[, z_max]; pixel "
    "units, exclusive max",
    "instance_area": "pixel (voxel) count of each instance",
    "instance_occluded": "occluded flag of each instance",
    "instance_group": "group id of each instance in the export (0: none)",
    "instance_track": "track id of each instance (-1: none)",
}


def package_version() -> str:
    """Version of the installed microprep (``"0.0.0"`` when running from a bare source tree)."""
    import microprep

    return str(microprep.__version__)


def node_name(name: str, taken: set[str]) -> str:
    """A group name for image ``name``: safe characters only, unique in ``taken``, then added.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``; a leading ``.`` or ``__`` becomes one
    ``_``; collisions (compared case-insensitively, for case-insensitive file systems) get a
    ``-2``, ``-3``, ... suffix. ``taken`` holds lower-cased names and is updated.

    Example:
        >>> taken: set[str] = set()
        >>> node_name("grid 1/a b.png", taken), node_name("grid_1_a_b.png", taken)
        ('grid_1_a_b.png', 'grid_1_a_b.png-2')
    """
    base = _UNSAFE_CHARS.sub("_", name)[:_MAX_NODE_NAME]
    if base.startswith("."):
        base = "_" + base[1:]
    base = re.sub(r"^__+", "_", base) or "node"
    candidate, k = base, 1
    while candidate.lower() in taken or candidate.lower() in _RESERVED_NAMES:
        k += 1
        candidate = f"{base}-{k}"
    taken.add(candidate.lower())
    return candidate


def spatial_chunking(
    spatial: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """``(chunks, shards)`` for spatial axes ``(H, W)`` or ``(Z, H, W)``.

    Chunks are :data:`CHUNKS_2D` / :data:`CHUNKS_3D` clipped to the shape. Arrays of more than
    :data:`MAX_UNSHARDED_CHUNKS` chunks are sharded, up to :data:`SHARD_CHUNKS_2D` /
    :data:`SHARD_CHUNKS_3D` chunks per shard file, so that large volumes are not thousands of
    files; smaller arrays (``shards`` None) keep one file per chunk, which zarr writes faster.

    Example:
        >>> spatial_chunking((2048, 2048))
        ((512, 512), None)
        >>> spatial_chunking((200, 2048, 2048))
        ((32, 128, 128), (128, 1024, 1024))
    """
    base, per_shard = (
        (CHUNKS_2D, SHARD_CHUNKS_2D) if len(spatial) == 2 else (CHUNKS_3D, SHARD_CHUNKS_3D)
    )
    chunks = tuple(max(1, min(b, n)) for b, n in zip(base, spatial, strict=True))
    counts = [math.ceil(n / c) for c, n in zip(chunks, spatial, strict=True)]
    if math.prod(counts) <= MAX_UNSHARDED_CHUNKS:
        return chunks, None
    shards = tuple(c * min(k, m) for c, k, m in zip(chunks, per_shard, counts, strict=True))
    return chunks, (None if shards == chunks else shards)


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(SCHEMA_NAME))


def validate_attrs(attrs: Any, *, where: str) -> None:
    """Check a store's ``microprep`` root attributes against the schema.

    Raises:
        StoreError: naming the first mismatch and where it is.
    """
    errors = sorted(_validator().iter_errors(attrs), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise StoreError(
            f"{where}: the '{ATTRS_KEY}' root attributes do not match {SCHEMA_NAME} at {at}: "
            f"{first.message}"
        )
    if len(attrs["colors"]) != len(attrs["classes"]):
        raise StoreError(
            f"{where}: the '{ATTRS_KEY}' root attributes list {len(attrs['classes'])} classes "
            f"but {len(attrs['colors'])} colours"
        )


def jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON data (Paths and numpy values converted); StoreError otherwise."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), where)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(items)]
    raise StoreError(f"{where} is a {type(value).__name__}, which cannot be stored as JSON")
