"""``prep export``: feed the nodes of a finished store (converted or augmented) to sinks; a crops
store (``prep crop``) is refused in one line naming the store it was cut from.

Each node becomes one :class:`~microprep.targets.types.Targets` (class map and objects as
stored) with its pixels, fed to the sinks of the asked kinds exactly as ``prep convert`` feeds
them. The store's splits file (``DATASET.zarr.splits.json``, or ``splits``) tells the
training-set exports which cases are ``train``, ``val`` and ``test``; a prediction store
(``predictions``) adds each node's predicted class map to the ``ome-zarr`` output.

Example:
    >>> export_store(Path("dataset.zarr"), Path("nnunet"), ("nnunet",))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from microprep.errors import StoreError, UsageError
from microprep.exports import Sink
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.outputs import atomic_output
from microprep.registry import SinkKind, resolve, sink_kinds
from microprep.store import Dataset, open_dataset
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = ["ExportSummary", "export_kinds", "export_store", "label_map_of", "node_splits"]


@dataclass(slots=True)
class ExportSummary:
    """What an export wrote: node count, splits used, the output folder."""

    out: Path
    kinds: tuple[str, ...]
    nodes: int = 0
    splits: dict[str, int] = field(default_factory=dict)


def export_kinds() -> list[SinkKind]:
    """The kinds ``prep export`` writes: every registered output kind but the store itself."""
    return [kind for kind in sink_kinds() if not kind.store]


def label_map_of(ds: Dataset) -> LabelMap:
    """The store's classes (with their colours) as a label map; its ignore index kept.

    Example:
        >>> class Fake:
        ...     attrs = {"classes": ["background", "pore"], "colors": [[0, 0, 0], [255, 0, 0]]}
        >>> label_map_of(Fake()).colors()  # type: ignore[arg-type]
        [(0, 0, 0), (255, 0, 0)]
    """
    classes = ds.attrs["classes"][1:]
    colors = ds.attrs["colors"][1:]
    specs = [
        LabelSpec(name, color="#{:02x}{:02x}{:02x}".format(*map(int, rgb)))
        for name, rgb in zip(classes, colors, strict=True)
    ]
    if ds.attrs.get("ignore_index") is not None:
        specs.append(LabelSpec("(not annotated)", role="ignore"))
    return LabelMap(tuple(specs))


def node_splits(ds: Dataset, splits_path: Path | None) -> dict[str, str]:
    """Group name -> split, from ``splits_path`` or the store's default splits file.

    Raises:
        UsageError: a node is in more than one split (a split ``--by region``): the trainers'
            folders take whole images.
    """
    from microprep.splits import default_splits_path, load_splits

    path = splits_path if splits_path is not None else default_splits_path(ds.path)
    if splits_path is None and not path.is_file():
        return {}
    splits = load_splits(path)
    out: dict[str, str] = {}
    for name, regions in splits.items():
        for region in regions:
            if out.get(region.node, name) != name:
                raise UsageError(
                    f"{path}: node {region.node!r} is in both {out[region.node]!r} and "
                    f"{name!r} (split by region); exports take whole images: split with "
                    "--by image or --by volume"
                )
            out[region.node] = name
    return out


def _targets(ds: Dataset, node: str, num_classes: int) -> Targets:
    data = ds[node]
    attrs = data.attrs
    name = str(attrs.get("name", node))
    class_map = np.asarray(data["labels"].values)
    subset = attrs.get("subset")
    subsets = attrs.get("subsets")
    if class_map.ndim == 3:
        frames = attrs.get("frames") or [f"{name}/{z}" for z in range(class_map.shape[0])]
        images = tuple(
            ImageInfo(
                str(f),
                class_map.shape[2],
                class_map.shape[1],
                subset=subsets[i] if subsets else subset,
            )
            for i, f in enumerate(frames)
        )
    else:
        images = (ImageInfo(name, class_map.shape[1], class_map.shape[0], subset=subset),)
    return Targets(name, images, class_map, ds.instances(node), num_classes)


def _predicted(predictions: Path, node: str, shape: tuple[int, ...]) -> NDArray[Any]:
    try:
        arr = np.asarray(zarr.open_array(predictions / node / "labels", mode="r")[...])
    except (OSError, KeyError, ValueError, FileNotFoundError) as exc:
        raise StoreError(f"{predictions}: no predicted labels for node {node!r}: {exc}") from exc
    if arr.shape != shape:
        raise StoreError(
            f"{predictions}: node {node!r} has predicted labels of shape {arr.shape}, "
            f"the store's labels {shape}"
        )
    return arr


def _refuse_crops(dataset: Path) -> None:
    """A crops store (``prep crop``) holds windows, not whole images: refused in one line."""
    try:
        attrs = zarr.open_group(dataset, mode="r").attrs.asdict()
    except Exception:  # not a zarr group: open_dataset says what is wrong
        return
    crops = attrs.get("microprep_crops")
    if isinstance(crops, dict):
        source = crops.get("source_store") or "the store it was cut from"
        raise UsageError(
            f"{dataset} is a crops store (prep crop): its windows are no images to export; "
            f"export the store it was cut from ({source}) instead"
        )


def export_store(
    dataset: Path,
    out: Path,
    kinds: Sequence[str],
    *,
    splits: Path | None = None,
    pixel_size: tuple[Any, ...] | None = None,
    predictions: Path | None = None,
) -> ExportSummary:
    """Write the nodes of the store ``dataset`` as the exports ``kinds`` into ``out``.

    ``out`` is replaced only by a complete output. Without ``pixel_size``, the one the store
    recorded at conversion (``attrs["options"]["pixel_size"]``) is used. ``predictions`` (a
    prediction store of the same nodes) is for ``ome-zarr`` only.

    Raises:
        UsageError: unknown kinds, predictions without ome-zarr, region splits, a crops store.
        StoreError: an unreadable store or prediction store.
    """
    chosen = resolve(tuple(kinds), export_kinds, "export kind")
    if predictions is not None and "ome-zarr" not in kinds:
        raise UsageError("--predictions adds predicted labels to the ome-zarr output only")
    ordered = tuple(kind.name for kind in chosen)
    summary = ExportSummary(out=Path(out), kinds=ordered)
    _refuse_crops(Path(dataset))
    with open_dataset(dataset) as ds:
        if predictions is not None:
            from microprep.predict.write import read_prediction_attrs

            missing = [n for n in ds.nodes if n not in read_prediction_attrs(predictions)["nodes"]]
            if missing:
                raise StoreError(f"{predictions}: no prediction for node(s) {missing[:5]}")
        labels = label_map_of(ds)
        by_node = node_splits(ds, splits)
        names = {node: str(ds.tree[node].attrs.get("name", node)) for node in ds.nodes}
        if pixel_size is None:
            pixel_size = (ds.attrs.get("options") or {}).get("pixel_size")
        provenance: dict[str, Any] = {
            "source": Path(dataset).name,
            "sha256": None,
            "pixel_size": pixel_size,
            "splits": {names[node]: split for node, split in by_node.items()},
        }
        with atomic_output(Path(out)) as tmp:
            sinks: list[Sink] = [
                kind.factory(tmp, labels, provenance=provenance) for kind in chosen
            ]
            for node in ds.nodes:
                targets = _targets(ds, node, labels.num_classes)
                data = ds[node]
                pixels = np.asarray(data["image"].values) if "image" in data else None
                for kind, sink in zip(ordered, sinks, strict=True):
                    if kind == "ome-zarr" and predictions is not None:
                        predicted = _predicted(predictions, node, targets.class_map.shape)
                        sink.add(targets, pixels, predicted=predicted)  # type: ignore[call-arg]
                    else:
                        sink.add(targets, pixels)
                summary.nodes += 1
                split = by_node.get(node, "")
                if split:
                    summary.splits[split] = summary.splits.get(split, 0) + 1
            for sink in sinks:
                sink.close()
    logger.info("%s: exported %d node(s) as %s", out, summary.nodes, ", ".join(ordered))
    return summary
