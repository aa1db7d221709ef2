"""The prediction store ``PRED.zarr``: one zarr v3 group per predicted image or volume.

Layout (see ``docs/predict.md``)::

    PRED.zarr/
    ├── zarr.json                root attrs["microprep_prediction"]: kind, classes, colors,
    │                            run, version, format_version, nodes, complete
    ├── grid_1_a.png/            one group per input (group name: sanitized image name, as in
    │   │                        the dataset store); attrs: name, kind, shape, source
    │   ├── labels          (y, x) / (z, y, x)             class index, uint8 (uint16 past 256)
    │   ├── probabilities   (class, y, x) / (class, z, y, x)  float16 or float32, optional
    │   └── uncertainty     (y, x) / (z, y, x)             float16 0..1, optional (below)
    └── ...

With ``uncertainty`` (``prep predict --uncertainty``) each group also has an ``uncertainty``
array: the entropy of the blended class probabilities divided by ``log(K)`` (0: one class
certain, 1: all ``K`` classes equally likely; 0 everywhere when ``K == 1``), and the group
attributes gain ``uncertainty_mean`` (its mean over the pixels: the per-image score that
``prep rank`` sorts by); the root attributes record ``uncertainty: "entropy"`` (instance
stores: ``"score"``, see :mod:`microprep.predict.instances_write`). Every group records
``class_pixels`` (predicted pixels per class).

Arrays carry zarr ``dimension_names`` (so xarray reads each group as a ``Dataset``), are
compressed like the dataset store (Zstd level 1) and chunked ``(512, 512)`` / ``(32, 128, 128)``;
large arrays are sharded with shards one chunk deep along the first axis, so rows arrive in
whole shards. :class:`PredictionWriter` writes rows as they are finished (in order), buffering
at most one chunk row, and marks the store complete last, like the dataset store.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()) / "p.zarr"
    >>> writer = PredictionWriter(root, classes=["background", "pore"], colors=[[0, 0, 0],
    ...                           [255, 0, 0]], kind="semantic")
    >>> node = writer.begin("a b.png", (3, 4), probabilities=None)
    >>> writer.write_rows(node, 0, 3, np.zeros((2, 3, 4), np.float32)).shape
    (3, 4)
    >>> writer.finish_node(node); writer.close()
    >>> read_prediction_attrs(root)["nodes"]
    ['a_b.png']
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import LocalStore

from microprep.errors import StoreError, UsageError
from microprep.store.layout import (
    COMPRESSORS,
    jsonable,
    node_name,
    package_version,
    spatial_chunking,
)
from microprep.targets.types import class_dtype

__all__ = [
    "FORMAT_VERSION",
    "PREDICTION_KEY",
    "UNCERTAINTY_DESCRIPTION",
    "NodeWriter",
    "PredictionWriter",
    "normalized_entropy",
    "read_prediction_attrs",
]

logger = logging.getLogger(__name__)

#: Key of the prediction's object in the root group attributes.
PREDICTION_KEY = "microprep_prediction"
#: Version of the prediction store layout.
FORMAT_VERSION = 1
_PROB_DTYPES = {"float16": np.float16, "float32": np.float32}
#: The ``description`` attribute of the ``uncertainty`` array of semantic predictions.
UNCERTAINTY_DESCRIPTION = "entropy of the class probabilities / log(K): 0 certain .. 1 uniform"
_DESCRIPTIONS = {
    "labels": "predicted class index per pixel: 0 background, 1..K the classes (root attrs)",
    "probabilities": "blended class probabilities per pixel, class axis first",
}


def normalized_entropy(probs: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """Per-pixel entropy of class probabilities ``(K, *spatial)``, divided by ``log(K)``.

    0 where one class has all the probability, 1 where all ``K`` are equal; zeros for
    ``K == 1``. Probabilities are clipped to ``[0, 1]`` and each pixel's are renormalised.

    Example:
        >>> normalized_entropy(np.array([[1.0, 0.5], [0.0, 0.5]])).round(3).tolist()
        [0.0, 1.0]
    """
    p = np.clip(np.asarray(probs, dtype=np.float32), 0.0, 1.0)
    k = p.shape[0]
    if k < 2:
        return np.zeros(p.shape[1:], np.float32)
    total = p.sum(axis=0, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / k), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    entropy = -terms.sum(axis=0) / np.log(k)
    result: NDArray[np.float32] = (np.clip(entropy, 0.0, 1.0) + 0.0).astype(np.float32)  # no -0
    return result


def read_prediction_attrs(path: str | Path) -> dict[str, Any]:
    """The ``microprep_prediction`` root attributes of a prediction store, checked.

    Raises:
        StoreError: missing path, not a prediction store, unknown format version, or
            incomplete (an interrupted write).
    """
    path = Path(path)
    meta = path / "zarr.json"
    if not meta.is_file():
        raise StoreError(f"{path} is not a prediction store: no zarr.json")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable zarr.json: {exc}") from exc
    attributes = data.get("attributes") if isinstance(data, dict) else None
    attrs = attributes.get(PREDICTION_KEY) if isinstance(attributes, dict) else None
    if not isinstance(attrs, dict):
        raise StoreError(
            f"{path} is not a prediction store (no '{PREDICTION_KEY}' root attributes)"
        )
    if attrs.get("format_version") != FORMAT_VERSION:
        raise StoreError(
            f"{path} has prediction format_version {attrs.get('format_version')!r}; this "
            f"microprep reads format_version {FORMAT_VERSION}"
        )
    if attrs.get("complete") is not True:
        raise StoreError(f"{path} is incomplete (an interrupted write?): predict again")
    return attrs


@dataclass(slots=True)
class NodeWriter:
    """One group being written: its arrays and the rows buffered until a chunk row is full."""

    name: str
    group: str
    shape: tuple[int, ...]
    labels: Any
    probabilities: Any | None
    step: int
    written: int = 0
    pending_labels: list[NDArray[Any]] = field(default_factory=list)
    pending_probs: list[NDArray[Any]] = field(default_factory=list)
    pending_rows: int = 0
    class_pixels: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    zgroup: Any = None
    uncertainty: Any | None = None
    pending_uncertainty: list[NDArray[Any]] = field(default_factory=list)
    uncertainty_sum: float = 0.0
    last_uncertainty: NDArray[np.float32] | None = None


def _prediction_chunking(
    spatial: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """The dataset store's chunks; shards (if any) only one chunk deep along the first axis."""
    chunks, shards = spatial_chunking(spatial)
    if shards is not None:
        shards = (chunks[0], *shards[1:])
        if shards == chunks:
            shards = None
    return chunks, shards


class PredictionWriter:
    """Writes a prediction store under ``root`` (an empty or missing folder).

    Args:
        root: the store folder; use the temporary folder of
            :func:`microprep.outputs.atomic_output` so a failed run leaves nothing behind.
        classes: class names by index, background first.
        colors: ``[r, g, b]`` per class.
        kind: ``"semantic"`` (or ``"instances"`` for instance predictions).
        run: facts about the run (model, window, ...): JSON-able, stored under ``run``.
        uncertainty: also write each group's ``uncertainty`` array and ``uncertainty_mean``.

    Call :meth:`begin` per input, :meth:`write_rows` with finished rows in order,
    :meth:`finish_node`, then :meth:`close` (which marks the store complete, last).
    """

    def __init__(
        self,
        root: Path,
        *,
        classes: Sequence[str],
        colors: Sequence[Sequence[int]],
        kind: str,
        run: Mapping[str, Any] | None = None,
        uncertainty: bool = False,
    ) -> None:
        self.root = Path(root)
        self.uncertainty = bool(uncertainty)
        if len(colors) != len(classes):
            raise UsageError(f"{len(classes)} classes but {len(colors)} colours")
        self.classes = [str(c) for c in classes]
        self._attrs: dict[str, Any] = {
            "version": package_version(),
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "classes": self.classes,
            "colors": [[int(v) for v in c[:3]] for c in colors],
            "run": jsonable(dict(run or {}), "run"),
            "nodes": [],
            "complete": False,
        }
        if self.uncertainty:
            self._attrs["uncertainty"] = "entropy"
        self._nodes: list[str] = []
        self._taken: set[str] = set()
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise StoreError(f"cannot write a prediction store at {self.root}: it is not empty")
        try:
            self._group = zarr.create_group(
                store=LocalStore(self.root),
                zarr_format=3,
                attributes={PREDICTION_KEY: self._attrs},
            )
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot create the prediction store at {self.root}: {exc}") from exc

    @property
    def nodes(self) -> tuple[str, ...]:
        """Group names written so far."""
        return tuple(self._nodes)

    def begin(
        self,
        name: str,
        shape: Sequence[int],
        *,
        probabilities: str | None,
        attrs: Mapping[str, Any] | None = None,
    ) -> NodeWriter:
        """Create the group and arrays of one input of spatial ``shape`` ``(H, W)``/``(Z, H, W)``.

        Args:
            name: the image name (stored as the group's ``name``; the group name is sanitized).
            shape: spatial shape in pixels.
            probabilities: ``"float16"``, ``"float32"`` or None (no probabilities array).
            attrs: more group attributes (JSON-able).
        """
        spatial = tuple(int(s) for s in shape)
        if len(spatial) not in (2, 3):
            raise UsageError(f"{name!r}: shape {spatial} is not (H, W) or (Z, H, W)")
        if probabilities is not None and probabilities not in _PROB_DTYPES:
            raise UsageError(f"probabilities dtype must be float16 or float32, got {probabilities}")
        group_name = node_name(name, self._taken)
        dims = ["y", "x"] if len(spatial) == 2 else ["z", "y", "x"]
        chunks, shards = _prediction_chunking(spatial)
        k = len(self.classes)
        group_attrs = {
            "name": name,
            "kind": "image" if len(spatial) == 2 else "volume",
            "shape": list(spatial),
            **jsonable(dict(attrs or {}), f"{name}: attrs"),
        }
        try:
            group = self._group.create_group(group_name, attributes=group_attrs)
            labels = group.create_array(
                "labels",
                shape=spatial,
                dtype=class_dtype(k),
                chunks=chunks,
                shards=shards,
                compressors=COMPRESSORS,
                fill_value=0,
                dimension_names=dims,
                attributes={"description": _DESCRIPTIONS["labels"]},
                config={"write_empty_chunks": True},
            )
            probs = None
            if probabilities is not None:
                probs = group.create_array(
                    "probabilities",
                    shape=(k, *spatial),
                    dtype=_PROB_DTYPES[probabilities],
                    chunks=(1, *chunks),
                    shards=None if shards is None else (1, *shards),
                    compressors=COMPRESSORS,
                    fill_value=0,
                    dimension_names=["class", *dims],
                    attributes={"description": _DESCRIPTIONS["probabilities"]},
                    config={"write_empty_chunks": True},
                )
            uncertainty = None
            if self.uncertainty:
                uncertainty = group.create_array(
                    "uncertainty",
                    shape=spatial,
                    dtype=np.float16,
                    chunks=chunks,
                    shards=shards,
                    compressors=COMPRESSORS,
                    fill_value=0,
                    dimension_names=dims,
                    attributes={"description": UNCERTAINTY_DESCRIPTION},
                    config={"write_empty_chunks": True},
                )
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"{self.root}: cannot create the group for {name!r}: {exc}") from exc
        step = (shards or chunks)[0]
        return NodeWriter(
            name,
            group_name,
            spatial,
            labels,
            probs,
            step,
            class_pixels=np.zeros(k, np.int64),
            zgroup=group,
            uncertainty=uncertainty,
        )

    def write_rows(
        self, node: NodeWriter, start: int, stop: int, probs: NDArray[np.floating[Any]]
    ) -> NDArray[np.unsignedinteger[Any]]:
        """Write rows ``start:stop`` from their probabilities ``(K, stop - start, *rest)``.

        Rows must come in order, each once. The class map is the argmax over classes (ties
        go to the lower class index). With uncertainty, the rows' :func:`normalized_entropy`
        is written too and left in ``node.last_uncertainty``.

        Returns:
            The rows' class map ``(stop - start, *rest)``.
        """
        if start != node.written + node.pending_rows:
            raise UsageError(
                f"{node.name!r}: rows {start}:{stop} come out of order (expected row "
                f"{node.written + node.pending_rows})"
            )
        labels: NDArray[np.unsignedinteger[Any]] = np.argmax(probs, axis=0).astype(
            node.labels.dtype
        )
        node.class_pixels += np.bincount(labels.reshape(-1), minlength=len(self.classes))[
            : len(self.classes)
        ]
        node.pending_labels.append(labels)
        if node.probabilities is not None:
            node.pending_probs.append(probs.astype(node.probabilities.dtype))
        if node.uncertainty is not None:
            entropy = normalized_entropy(probs)
            node.uncertainty_sum += float(entropy.sum(dtype=np.float64))
            node.pending_uncertainty.append(entropy.astype(np.float16))
            node.last_uncertainty = entropy
        node.pending_rows += stop - start
        self._flush(node, final=stop >= node.shape[0])
        return labels

    def _flush(self, node: NodeWriter, *, final: bool) -> None:
        """Write the buffered rows up to the last whole chunk (shard) row, or all if final."""
        end = node.written + node.pending_rows
        cut = end if final else (end // node.step) * node.step
        if cut <= node.written:
            return
        n = cut - node.written
        labels = np.concatenate(node.pending_labels, axis=0)
        probs = np.concatenate(node.pending_probs, axis=1) if node.pending_probs else None
        unc = np.concatenate(node.pending_uncertainty) if node.pending_uncertainty else None
        try:
            node.labels[node.written : cut] = labels[:n]
            if probs is not None and node.probabilities is not None:
                node.probabilities[:, node.written : cut] = probs[:, :n]
            if unc is not None and node.uncertainty is not None:
                node.uncertainty[node.written : cut] = unc[:n]
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.root}: cannot write {node.name!r}: {exc}") from exc
        node.pending_labels = [labels[n:]] if n < len(labels) else []
        node.pending_probs = [probs[:, n:]] if probs is not None and n < len(labels) else []
        node.pending_uncertainty = [unc[n:]] if unc is not None and n < len(labels) else []
        node.pending_rows -= n
        node.written = cut

    def finish_node(self, node: NodeWriter) -> None:
        """Check that every row was written, record the node's class pixels (and mean
        uncertainty) in its attributes and add the group to the store's node list."""
        self._flush(node, final=True)
        if node.written != node.shape[0]:
            raise StoreError(
                f"{self.root}: {node.name!r} got rows 0:{node.written} of {node.shape[0]}"
            )
        extra: dict[str, Any] = {"class_pixels": [int(v) for v in node.class_pixels]}
        if node.uncertainty is not None:
            pixels = int(np.prod(node.shape))
            extra["uncertainty_mean"] = node.uncertainty_sum / pixels if pixels else 0.0
        if node.zgroup is not None:
            try:
                node.zgroup.attrs.update(extra)
            except (OSError, ValueError) as exc:
                raise StoreError(f"{self.root}: cannot finish {node.name!r}: {exc}") from exc
        self._nodes.append(node.group)

    def close(self) -> None:
        """List the nodes, consolidate the metadata, then mark the store complete (last)."""
        attrs = {**self._attrs, "nodes": list(self._nodes)}
        try:
            self._group.attrs.update({PREDICTION_KEY: attrs})
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
                consolidated = zarr.consolidate_metadata(self._group.store)
            consolidated.attrs.update({PREDICTION_KEY: {**attrs, "complete": True}})
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.root}: cannot finish the prediction store: {exc}") from exc
        logger.info("%s: prediction store complete, %d nodes", self.root, len(self._nodes))
