"""Writing the dataset store: :class:`ZarrSink` (one zarr v3 group per image or volume).

The layout is documented in ``docs/store-layout.md``; :mod:`microprep.store.read` opens it.
Arrays are written with the zarr API directly (Zstd level 1 then a CRC-32C per chunk, every
chunk stored, large arrays sharded: :mod:`microprep.store.integrity`); the
dimension names stored with every array let xarray read each node as a ``Dataset``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import LocalStore, MemoryStore

from microprep.errors import StoreError
from microprep.model import ImageInfo, LabelMap
from microprep.store.bands import BandWriter
from microprep.store.layout import (
    ATTRS_KEY,
    COMPRESSORS,
    DESCRIPTIONS,
    FORMAT_VERSION,
    INTEGRITY,
    jsonable,
    node_name,
    package_version,
    spatial_chunking,
    validate_attrs,
)
from microprep.targets.bands import BandedTargets
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)


class ZarrSink:
    """The dataset store writer: one group per image or volume under ``root``.

    Args:
        root: the store folder. It is created, or must be empty (a folder from
            :func:`microprep.outputs.atomic_output` is).
        labels: the label map; class names and colours go into the root attributes.
        provenance: facts about the run. ``source`` (the export's name) and ``sha256`` (its
            hex digest, or None) are required; ``source_format`` (or ``format``) and
            ``options`` (a JSON-able mapping) are optional.

    :meth:`add` writes one node per :class:`~microprep.targets.types.Targets`; :meth:`close`
    lists the nodes in the root attributes, consolidates the metadata and marks the store
    complete, last. A store that was never closed is refused by
    :func:`microprep.store.open_dataset`.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> t = Targets("a.png", (ImageInfo("a.png", 4, 3),), np.zeros((3, 4), np.uint8),
        ...             Instances.empty((3, 4)), lm.num_classes)
        >>> sink = ZarrSink(Path(tempfile.mkdtemp()) / "d.zarr", lm,
        ...                 provenance={"source": "a.xml", "sha256": None})
        >>> sink.add(t, None)
        >>> sink.close()
        >>> sink.nodes
        ('a.png',)
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        missing = [key for key in ("source", "sha256") if key not in provenance]
        if missing:
            raise StoreError(f"provenance for the store lacks {', '.join(map(repr, missing))}")
        self._attrs: dict[str, Any] = {
            "version": package_version(),
            "format_version": FORMAT_VERSION,
            "integrity": dict(INTEGRITY),
            "classes": list(labels.class_names),
            "colors": [list(c) for c in labels.colors()],
            "source": str(provenance["source"]),
            "source_sha256": jsonable(provenance["sha256"], "provenance['sha256']"),
            "source_format": jsonable(
                provenance.get("source_format", provenance.get("format")),
                "provenance['source_format']",
            ),
            "options": jsonable(dict(provenance.get("options") or {}), "provenance['options']"),
            **_class_attrs(labels, provenance),
            "nodes": [],
            "complete": False,
        }
        self._nodes: list[str] = []
        self._taken: set[str] = set()
        self._closed = False
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise StoreError(f"cannot write a store at {self.root}: it exists and is not empty")
        try:
            self._group = zarr.create_group(
                store=LocalStore(self.root), zarr_format=3, attributes={ATTRS_KEY: self._attrs}
            )
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot create the store at {self.root}: {exc}") from exc

    @property
    def nodes(self) -> tuple[str, ...]:
        """Group names of the nodes written so far, in order."""
        return tuple(self._nodes)

    def __enter__(self) -> ZarrSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write one node: the targets of one image or volume, and its pixels if given.

        Args:
            targets: class map ``(H, W)`` / ``(Z, H, W)`` and instances of that shape.
            pixels: ``(H, W)``, ``(H, W, C)``, ``(Z, H, W)`` or ``(Z, H, W, C)`` in any numeric
                dtype (stored as is), or None to store the targets only.

        Raises:
            StoreError: after :meth:`close`, or when shapes do not fit together.
        """
        if self._closed:
            raise StoreError(f"{self.root}: the store is closed; nodes can no longer be added")
        class_map = np.asarray(targets.class_map)
        shape = tuple(int(n) for n in class_map.shape)
        where = f"{self.root}: image {targets.name!r}"
        _check_targets(targets, class_map, where)
        volume = class_map.ndim == 3
        spatial_dims = ["z", "y", "x"] if volume else ["y", "x"]
        if pixels is not None:
            pixels = _check_pixels(np.asarray(pixels), shape, where)
        instances = targets.instances

        name = node_name(targets.name, self._taken)
        attrs = _node_attrs(targets.name, targets.images, shape)

        chunks, shards = spatial_chunking(shape)
        n = len(instances)
        specs: list[_ArraySpec] = []
        if pixels is not None:
            channels = tuple(pixels.shape[class_map.ndim :])
            dims = spatial_dims + (["c"] if channels else [])
            specs.append(
                _ArraySpec("image", pixels, dims, (*chunks, *channels), _with(shards, (), channels))
            )
        specs.append(_ArraySpec("labels", class_map, spatial_dims, chunks, shards))
        specs.append(
            _ArraySpec(
                "instances",
                instances.layers,  # computed when written: one full-size array at a time
                ["layer", *spatial_dims],
                (1, *chunks),
                _with(shards, (1,), ()),
            )
        )
        for key, table in _tables(targets, n, len(shape), where).items():
            dims = ["instance", "box_coord"] if table.ndim == 2 else ["instance"]
            specs.append(_ArraySpec(key, table, dims, (max(n, 1), *table.shape[1:]), None))
        # The node is built in memory, then its files are written in one go: zarr's per-array
        # overhead is mostly round trips through its I/O threads, which a memory store avoids.
        staged: dict[str, Any] = {}
        try:
            group = zarr.create_group(store=MemoryStore(staged), zarr_format=3, attributes=attrs)
            for spec in specs:
                _write_array(group, spec)
            _persist(staged, self.root / name)
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"{where}: cannot write node {name!r}: {exc}") from exc
        self._nodes.append(name)
        logger.debug("%s: wrote node %r (%d instances)", self.root, name, n)

    def banded_writer(
        self, banded: BandedTargets, pixels: NDArray[np.generic] | None
    ) -> BandWriter:
        """Start one node written band by band (see :mod:`microprep.store.bands`); the
        writer's ``close`` finishes it. The node equals what :meth:`add` writes."""
        if self._closed:
            raise StoreError(f"{self.root}: the store is closed; nodes can no longer be added")
        name = node_name(banded.name, self._taken)
        where = f"{self.root}: image {banded.name!r}"
        if pixels is not None:
            pixels = _check_pixels(np.asarray(pixels), banded.shape, where)
        attrs = _node_attrs(banded.name, banded.images, banded.shape)
        tables = _tables(banded, len(banded.instances), 2, where)
        writer = BandWriter(self.root / name, banded, pixels, attrs, tables, where)
        self._nodes.append(name)
        return writer

    def close(self) -> None:
        """List the nodes in the root attributes, consolidate metadata, then mark complete.

        A second call does nothing.

        Raises:
            StoreError: the attributes do not match the schema, or writing fails.
        """
        if self._closed:
            return
        attrs = {**self._attrs, "nodes": list(self._nodes)}
        final = {**attrs, "complete": True}
        validate_attrs(final, where=str(self.root))
        try:
            self._group.attrs.update({ATTRS_KEY: attrs})
            with warnings.catch_warnings():
                # zarr warns that consolidated metadata is not in the v3 spec yet; xarray and
                # zarr-python read it, other readers ignore it.
                warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
                consolidated = zarr.consolidate_metadata(self._group.store)
            consolidated.attrs.update({ATTRS_KEY: final})
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.root}: cannot finish the store: {exc}") from exc
        self._closed = True
        logger.info("%s: store complete, %d nodes", self.root, len(self._nodes))


def _node_attrs(name: str, images: Sequence[ImageInfo], shape: tuple[int, ...]) -> dict[str, Any]:
    """A node's attributes: its name, kind, size, frames and subsets."""
    volume = len(shape) == 3
    attrs: dict[str, Any] = {
        "name": name,
        "kind": "volume" if volume else "image",
        "width": shape[-1],
        "height": shape[-2],
    }
    if volume:
        attrs["depth"] = shape[0]
        attrs["frames"] = [image.name for image in images]
    subsets = [image.subset for image in images]
    if len(set(subsets)) == 1 and subsets[0] is not None:
        attrs["subset"] = subsets[0]
    elif len(set(subsets)) > 1:
        attrs["subsets"] = subsets
    return attrs


def _class_attrs(labels: LabelMap, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``ignore_index`` (when the label map has ignore or region labels) and ``class_mapping``
    (the :mod:`microprep.classes` step's provenance, when one was applied)."""
    out: dict[str, Any] = {}
    if labels.ignore_index is not None:
        out["ignore_index"] = labels.ignore_index
    if provenance.get("class_mapping") is not None:
        out["class_mapping"] = jsonable(
            dict(provenance["class_mapping"]), "provenance['class_mapping']"
        )
    return out


def _check_targets(targets: Targets, class_map: NDArray[Any], where: str) -> None:
    if class_map.ndim not in (2, 3):
        raise StoreError(f"{where}: class map has shape {class_map.shape}, not (H, W) or (Z, H, W)")
    if class_map.dtype.kind != "u":
        raise StoreError(f"{where}: class map has dtype {class_map.dtype}, not unsigned integer")
    if tuple(targets.instances.shape) != class_map.shape:
        raise StoreError(
            f"{where}: instances have shape {tuple(targets.instances.shape)} but the class map "
            f"{class_map.shape}"
        )


def _check_pixels(pixels: NDArray[Any], shape: tuple[int, ...], where: str) -> NDArray[Any]:
    if pixels.dtype.kind not in "biuf":
        raise StoreError(f"{where}: pixels have dtype {pixels.dtype}, not a numeric type")
    if pixels.ndim not in (len(shape), len(shape) + 1) or pixels.shape[: len(shape)] != shape:
        raise StoreError(
            f"{where}: pixels have shape {pixels.shape} but the targets {shape} "
            "(expected the same leading axes, plus an optional channel axis)"
        )
    return pixels


@dataclass(frozen=True, slots=True)
class _ArraySpec:
    """One array of a node: ``data`` is the array or a function that computes it."""

    key: str
    data: NDArray[Any] | Callable[[], NDArray[Any]]
    dims: list[str]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None


def _with(
    shards: tuple[int, ...] | None, lead: tuple[int, ...], trail: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Spatial ``shards`` with non-spatial leading / trailing axes added (None stays None)."""
    return None if shards is None else (*lead, *shards, *trail)


def _persist(staged: Mapping[str, Any], folder: Path) -> None:
    """Write the keys of a zarr memory store as the files of a local store rooted at ``folder``.

    A zarr v3 local store keeps key ``a/b/c`` in the file ``a/b/c``; the node's own
    ``zarr.json`` is written last, so a half-written node is not a group.
    """
    keys = sorted(staged, key=lambda k: (k == "zarr.json", k))
    made: set[Path] = set()
    for key in keys:
        path = folder.joinpath(*key.split("/"))
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(staged[key].to_bytes())


def _write_array(group: zarr.Group, spec: _ArraySpec) -> None:
    data = spec.data() if callable(spec.data) else spec.data
    group.create_array(
        spec.key,
        data=np.ascontiguousarray(data),
        chunks=spec.chunks,
        shards=spec.shards,
        compressors=COMPRESSORS,
        fill_value=False if data.dtype == np.bool_ else 0,
        dimension_names=spec.dims,
        attributes={"description": DESCRIPTIONS[spec.key]},
        # Every chunk is stored, also those of only the fill value: the store's manifest is
        # that rule (microprep.store.integrity), and checking chunks for emptiness costs more
        # than writing the few empty ones.
        config={"write_empty_chunks": True},
    )


def _tables(
    targets: Targets | BandedTargets, n: int, ndim: int, where: str
) -> dict[str, NDArray[Any]]:
    """The per-instance arrays, checked to hold one row per instance."""
    instances = targets.instances
    tables: dict[str, tuple[Any, Any, tuple[int, ...]]] = {
        "instance_label": (instances.labels, np.int64, (n,)),
        "instance_box": (instances.boxes, np.float64, (n, 2 * ndim)),
        "instance_area": (instances.areas, np.int64, (n,)),
        "instance_occluded": (instances.occluded, np.bool_, (n,)),
        "instance_group": (instances.groups, np.int64, (n,)),
        "instance_track": (instances.tracks, np.int64, (n,)),
    }
    out: dict[str, NDArray[Any]] = {}
    for key, (values, dtype, shape) in tables.items():
        arr = np.asarray(values, dtype=dtype)
        if arr.size == 0 and n == 0:
            arr = arr.reshape(shape)
        if arr.shape != shape:
            raise StoreError(f"{where}: {key} has shape {arr.shape}, expected {shape}")
        out[key] = arr
    return out
