"""Writing one store node band by band of rows (images larger than the memory budget).

:class:`BandWriter` creates the node's arrays empty (same shapes, dtypes, chunks, shards,
codecs and attributes as :meth:`~microprep.store.write.ZarrSink.add` gives them), writes the
``labels`` and ``instances`` rows of each :class:`~microprep.targets.bands.Band` as it comes,
and the per-object tables (and the pixels, which are held whole) at once. The arrays are not
sharded (one file per chunk), so writing a band never decodes a whole shard; readers see the
same arrays. Unlike ``add``, which
stages a node in memory and writes its files in one go, the arrays go straight to the node's
folder, so memory stays at one band; band heights are multiples of the chunk (or shard) rows
where the budget allows, so each chunk is written once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import LocalStore

from microprep.errors import StoreError
from microprep.store.layout import COMPRESSORS, DESCRIPTIONS, spatial_chunking
from microprep.targets.bands import Band, BandedTargets

logger = logging.getLogger(__name__)


class BandWriter:
    """One node of a :class:`~microprep.store.write.ZarrSink`, written band by band."""

    def __init__(
        self,
        folder: Path,
        banded: BandedTargets,
        pixels: NDArray[Any] | None,
        attrs: Mapping[str, Any],
        tables: Mapping[str, NDArray[Any]],
        where: str,
    ) -> None:
        self.where = where
        # unsharded: a band rewrites whole chunks of 512 rows, never a shard of 4096 rows
        # (zarr decodes a whole shard to change part of it: 64 MB of instance ids)
        chunks, shards = spatial_chunking(banded.shape)[0], None
        n = len(banded.instances)
        try:
            group = zarr.create_group(
                store=LocalStore(folder), zarr_format=3, attributes=dict(attrs)
            )
            if pixels is not None:
                channels = tuple(pixels.shape[2:])
                _array(
                    group, "image", ["y", "x"] + (["c"] if channels else []),
                    data=np.ascontiguousarray(pixels), chunks=(*chunks, *channels),
                    shards=None if shards is None else (*shards, *channels),
                )  # fmt: skip
            self.labels = _array(
                group, "labels", ["y", "x"], shape=banded.shape, dtype=banded.dtype,
                chunks=chunks, shards=shards,
            )  # fmt: skip
            self.instances = _array(
                group, "instances", ["layer", "y", "x"],
                shape=(banded.num_layers, *banded.shape), dtype=np.uint32,
                chunks=(1, *chunks), shards=None if shards is None else (1, *shards),
            )  # fmt: skip
            for key, table in tables.items():
                dims = ["instance", "box_coord"] if table.ndim == 2 else ["instance"]
                _array(group, key, dims, data=table, chunks=(max(n, 1), *table.shape[1:]))
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"{where}: cannot write node {folder.name!r}: {exc}") from exc

    def write(self, band: Band) -> None:
        """Write the rows of ``band``."""
        rows = slice(band.top, band.top + band.class_map.shape[0])
        try:
            self.labels[rows, :] = band.class_map
            self.instances[:, rows, :] = band.layers
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"{self.where}: cannot write rows {rows.start}..: {exc}") from exc

    def close(self) -> None:
        """Nothing left to write: every band went straight to its files."""
        logger.debug("%s: node written in bands", self.where)


def _array(
    group: zarr.Group,
    key: str,
    dims: list[str],
    *,
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None = None,
    data: NDArray[Any] | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: Any = None,
) -> zarr.Array[Any]:
    kind = np.dtype(dtype if data is None else data.dtype)
    return group.create_array(
        key,
        data=data,
        shape=None if data is not None else shape,
        dtype=None if data is not None else kind,
        chunks=chunks,
        shards=shards,
        compressors=COMPRESSORS,
        fill_value=False if kind == np.bool_ else 0,
        dimension_names=dims,
        attributes={"description": DESCRIPTIONS[key]},
        config={"write_empty_chunks": True},
    )
