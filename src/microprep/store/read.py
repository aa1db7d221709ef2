"""Opening the dataset store: :func:`open_dataset` and the thin :class:`Dataset` view.

Everything is lazy: arrays are dask-backed until ``.values`` / ``.compute()``; only
:meth:`Dataset.instances` reads one node's instance layers to rebuild its objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from microprep.errors import StoreError
from microprep.store.integrity import integrity_of, missing_node_error, open_store
from microprep.store.layout import ATTRS_KEY, READ_FORMAT_VERSIONS, validate_attrs
from microprep.targets.types import Instances, Raster

logger = logging.getLogger(__name__)


class Dataset:
    """A finished store, opened lazily: the nodes as ``xarray.Dataset`` objects plus metadata.

    Attributes:
        path: the store folder.
        tree: the whole store as an ``xarray.DataTree`` (dask-backed).
        attrs: the ``microprep`` root attributes (see ``schemas/store-attrs.schema.json``).

    Nodes are addressed by position, by group name or by image name.

    Example:
        >>> ds = open_dataset("dataset.zarr")  # doctest: +SKIP
        >>> ds.classes  # doctest: +SKIP
        ('background', 'bubble', 'precipitate')
        >>> node = ds[0]  # doctest: +SKIP
        >>> node["labels"].dims, node.attrs["name"]  # doctest: +SKIP
        (('y', 'x'), 'grid 1/a.png')
        >>> ds.instances("grid_1_a.png").boxes[:1]  # doctest: +SKIP
        array([[ 2.5,  3. , 10. ,  9.5]])
    """

    def __init__(self, path: Path, tree: xr.DataTree, attrs: dict[str, Any]) -> None:
        self.path = Path(path)
        self.tree = tree
        self.attrs = attrs
        self._by_image_name: dict[str, str] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names by class index, ``"background"`` first."""
        return tuple(self.attrs["classes"])

    @property
    def colors(self) -> tuple[tuple[int, int, int], ...]:
        """RGB colour per class index, background first."""
        return tuple((int(r), int(g), int(b)) for r, g, b in self.attrs["colors"])

    @property
    def verifiable(self) -> bool:
        """Whether the store has chunk checksums (False: written before them, format 1)."""
        return integrity_of(self.attrs) is not None

    @property
    def nodes(self) -> tuple[str, ...]:
        """Group names of the nodes, in the order they were written."""
        return tuple(self.attrs["nodes"])

    def __len__(self) -> int:
        return len(self.attrs["nodes"])

    def __iter__(self) -> Iterator[xr.Dataset]:
        for name in self.nodes:
            yield self[name]

    def node_name(self, key: str | int) -> str:
        """The group name for ``key``: a position, a group name or an image name.

        A string is looked up among the group names first, then among the image names.

        Raises:
            IndexError: a position out of range.
            KeyError: no node of that group or image name.
        """
        nodes = self.nodes
        if isinstance(key, int | np.integer):
            return nodes[int(key)]
        if key in nodes:
            return key
        if self._by_image_name is None:
            self._by_image_name = {str(self.tree[n].attrs.get("name")): n for n in nodes}
        try:
            return self._by_image_name[key]
        except KeyError:
            raise KeyError(f"{self.path}: no node or image called {key!r}") from None

    def __getitem__(self, key: str | int) -> xr.Dataset:
        """One node as a lazy ``xarray.Dataset`` (variables and ``attrs`` as stored)."""
        return self.tree[self.node_name(key)].to_dataset()

    def instances(self, key: str | int) -> Instances:
        """Rebuild the objects of one node from its instance layers and tables.

        Each raster is cropped to the tight bounding box of its pixels; an object without
        pixels gets an empty raster at the origin. Overlapping objects come back whole.

        Raises:
            StoreError: the layers hold ids beyond the instance tables (a damaged store).
        """
        node = self[key]
        n = int(node.sizes.get("instance", 0))
        layers = np.asarray(node["instances"].values)
        rasters = rasters_from_layers(layers, n, where=f"{self.path}: node {key!r}")
        ndim = layers.ndim - 1
        return Instances(
            shape=tuple(int(s) for s in layers.shape[1:]),
            rasters=rasters,
            labels=np.asarray(node["instance_label"].values, np.int64),
            boxes=np.asarray(node["instance_box"].values, np.float64).reshape(n, 2 * ndim),
            areas=np.asarray(node["instance_area"].values, np.int64),
            occluded=np.asarray(node["instance_occluded"].values, np.bool_),
            groups=np.asarray(node["instance_group"].values, np.int64),
            tracks=np.asarray(node["instance_track"].values, np.int64),
        )

    def close(self) -> None:
        """Close the underlying files."""
        self.tree.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        shown = ", ".join(self.nodes[:3]) + (", ..." if len(self) > 3 else "")
        return (
            f"<microprep.Dataset {str(self.path)!r}: {len(self)} nodes [{shown}], "
            f"classes {list(self.classes)}, source {self.attrs.get('source')!r}>"
        )


def rasters_from_layers(layers: NDArray[Any], n: int, *, where: str) -> tuple[Raster, ...]:
    """Per instance id ``1..n``, its pixels in ``layers`` ``(L, *shape)`` as a tight raster.

    Example:
        >>> layers = np.array([[[1, 1, 0], [0, 2, 2]]], np.uint32)
        >>> [(r.origin, r.mask.tolist()) for r in rasters_from_layers(layers, 2, where="x")]
        [((0, 0), [[True, True]]), ((1, 1), [[True, True]])]
    """
    spatial = layers.shape[1:]
    ndim = len(spatial)
    big = np.iinfo(np.int64).max
    lo = np.full((n + 1, ndim), big, np.int64)
    hi = np.full((n + 1, ndim), -1, np.int64)
    in_layer = np.zeros((len(layers), n + 1), bool)
    for index, layer in enumerate(layers):
        flat = layer.reshape(-1)
        hits = np.flatnonzero(flat)
        if not hits.size:
            continue
        ids = flat[hits].astype(np.int64)
        if int(ids.max()) > n:
            raise StoreError(
                f"{where}: instance id {int(ids.max())} in the layers, but {n} instances"
            )
        # group the pixels by id (stable: each group stays in raster order)
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        starts = np.flatnonzero(np.diff(ids, prepend=-1))
        present = ids[starts]
        for axis, coords in enumerate(np.unravel_index(hits[order], spatial)):
            lo[present, axis] = np.minimum(lo[present, axis], np.minimum.reduceat(coords, starts))
            hi[present, axis] = np.maximum(hi[present, axis], np.maximum.reduceat(coords, starts))
        in_layer[index, present] = True
    rasters = []
    for i in range(1, n + 1):
        if hi[i, 0] < 0:
            rasters.append(Raster((0,) * ndim, np.zeros((0,) * ndim, bool)))
            continue
        box = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo[i], hi[i], strict=True))
        mask = np.zeros(tuple(s.stop - s.start for s in box), bool)
        for layer_index in np.flatnonzero(in_layer[:, i]):
            mask |= layers[layer_index][box] == i
        rasters.append(Raster(tuple(int(a) for a in lo[i]), mask))
    return tuple(rasters)


def read_root_attrs(path: Path) -> dict[str, Any]:
    """The ``microprep`` root attributes of the store at ``path``, checked.

    Raises:
        StoreError: missing path, not a (microprep) store, unknown format version, incomplete
            store, or attributes that do not match the schema.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist")
    meta_file = path / "zarr.json"
    if not path.is_dir() or not meta_file.is_file():
        hint = " (it looks like a zarr v2 store)" if (path / ".zgroup").exists() else ""
        raise StoreError(f"{path} is not a microprep store: no zarr.json{hint}")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path} is not a microprep store: unreadable zarr.json: {exc}") from exc
    attributes = meta.get("attributes") if isinstance(meta, dict) else None
    attrs = attributes.get(ATTRS_KEY) if isinstance(attributes, dict) else None
    if not isinstance(attrs, dict):
        raise StoreError(
            f"{path} is a zarr store but not a microprep store (no '{ATTRS_KEY}' root attributes)"
        )
    version = attrs.get("format_version")
    if version not in READ_FORMAT_VERSIONS:
        known = " and ".join(map(str, READ_FORMAT_VERSIONS))
        raise StoreError(
            f"{path} has store format_version {version!r}; this microprep "
            f"({attrs.get('version', '?')} wrote it) reads format_version {known} only: "
            "use a matching microprep version or convert the export again"
        )
    if attrs.get("complete") is not True:
        raise StoreError(f"{path} is incomplete (an interrupted write?): convert the export again")
    validate_attrs(attrs, where=str(path))
    return attrs


def open_dataset(path: str | Path, *, verify: bool = False) -> Dataset:
    """Open a finished store lazily.

    Chunks are read through :class:`~microprep.store.integrity.CheckedStore`: a missing or
    damaged chunk raises :class:`~microprep.errors.StoreDamageError` when it is read.

    Args:
        path: the store folder (``dataset.zarr``).
        verify: read every chunk first and check it against its checksum
            (:func:`~microprep.store.verify.verify_store`); slow on large stores.

    Returns:
        A :class:`Dataset`; node arrays are dask-backed and read on demand.

    Raises:
        StoreError: see :func:`read_root_attrs`; also when xarray cannot open the store, a
            listed node is missing, or ``verify`` finds damage (or the store, written before
            checksums, cannot be verified).

    Example:
        >>> ds = open_dataset("dataset.zarr")  # doctest: +SKIP
        >>> len(ds), ds[0]["labels"].dtype  # doctest: +SKIP
        (6, dtype('uint8'))
    """
    path = Path(path)
    attrs = read_root_attrs(path)
    for name in attrs["nodes"]:
        gone = missing_node_error(path, name)
        if gone is not None:
            raise gone
    if verify:
        from microprep.store.verify import verify_store

        verify_store(path, attrs=attrs).raise_for_damage()
    try:
        # xarray's zarr engine takes a zarr store object too (its hints list paths only)
        store = open_store(path, attrs)
        tree = xr.open_datatree(store, engine="zarr", chunks={})  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from exc
    missing = [name for name in attrs["nodes"] if name not in tree.children]
    if missing:
        tree.close()
        raise StoreError(f"{path}: nodes listed in the root attributes are missing: {missing[:5]}")
    logger.debug("opened %s: %d nodes", path, len(attrs["nodes"]))
    return Dataset(path, tree, attrs)
