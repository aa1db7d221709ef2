"""The shared ``data`` keys of a training configuration, turned into dataset arguments.

Every trainer reads ``data.noise`` / ``data.geometry`` (on-the-fly augmentation),
``data.albumentations`` (the user's own pipeline, :func:`train_transform`), the splits
file and the train/validation strides the same way; this module is that one way.

Example:
    >>> augment_config({"noise": None, "geometry": "flip"}).geometry
    ('flip',)
    >>> train_stride(128, None), train_stride([64, 64, 64], None), train_stride(128, 32)
    (64, [32, 32, 32], 32)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from microprep.augment import AugmentConfig, parse_geometry, parse_noise
from microprep.errors import UsageError
from microprep.splits import default_splits_path, load_splits
from microprep.store.read import open_dataset

T = TypeVar("T")


def train_transform(data: Mapping[str, Any]) -> Any | None:
    """The pipeline of ``data.albumentations`` (None when unset), loaded with albumentations.

    Raises:
        UsageError: albumentations is missing, or the file does not hold a pipeline.
    """
    path = data.get("albumentations")
    if not path:
        return None
    from microprep.data.transforms import load_pipeline

    return load_pipeline(Path(path), key="data.albumentations")


#: Training sets of at most this many images / volumes count as small (``data.auto_augment``).
SMALL_DATASET = 8

#: ``data.geometry`` when the configuration does not set it.
DEFAULT_GEOMETRY = "flip,rot90"


def augment_config(data: Mapping[str, Any], *, images: int | None = None) -> AugmentConfig | None:
    """The augmentation of ``data.noise`` and ``data.geometry`` (None when both are empty).

    With ``images`` (how many images / volumes the training split covers), the small-dataset
    rule of ``data.auto_augment`` (default true) applies: at most :data:`SMALL_DATASET` images,
    ``data.noise`` unset and ``data.geometry`` at its default add the ``microscopy`` recipe
    (random contrast, gamma, brightness, Poisson dose, Gaussian noise, blur; see
    :mod:`microprep.augment.microscopy`).

    Example:
        >>> augment_config({"noise": None, "geometry": "flip,rot90"}, images=2).recipe
        'microscopy'
        >>> augment_config({"noise": None, "geometry": "flip,rot90"}, images=20).recipe is None
        True
    """
    noise = parse_noise(data["noise"]) if data.get("noise") else ()
    geometry = parse_geometry(data["geometry"]) if data.get("geometry") else ()
    recipe = None
    if (
        images is not None
        and images <= SMALL_DATASET
        and data.get("auto_augment", True)
        and not data.get("noise")
        and data.get("geometry", DEFAULT_GEOMETRY) == DEFAULT_GEOMETRY
    ):
        recipe = "microscopy"
    if not noise and not geometry and recipe is None:
        return None
    return AugmentConfig(noise=noise, geometry=geometry, recipe=recipe)


def source_images(source: DataSource) -> int:
    """How many images / volumes ``source`` reads (nodes with a region in its split)."""
    if source.split is None or source.splits is None:
        ds = open_dataset(source.store)
        try:
            return len(ds.nodes)
        finally:
            ds.close()
    return len({r.node for r in load_splits(source.splits)[source.split]})


@dataclass(frozen=True)
class DataSource:
    """Where one side of a run reads: a ``store``, a ``split`` of it (None: all of it) and the
    ``splits`` file of that split (None without a split)."""

    store: Path
    split: str | None
    splits: Path | None


def _splits_of(store: Path, given: str | None, split: str | None, key: str) -> Path | None:
    if split is None:
        return None
    path = Path(given) if given else default_splits_path(store)
    if not path.is_file():
        raise UsageError(
            f"{path}: no splits file; run `prep split {store}` first, or set {key} to null "
            "to use the whole store"
        )
    return path


def data_sources(dataset: Path, data: Mapping[str, Any]) -> tuple[DataSource, DataSource | None]:
    """``(train, val)`` sources of a run.

    Training reads ``data.train_split`` of ``dataset``. Validation reads ``data.val_split`` of
    the same store (None: no validation), or of ``data.val_dataset`` when that is set (then a
    null split means all of it, and the splits file is the one beside that store).

    Raises:
        UsageError: a split is asked for but there is no splits file (run ``prep split``).
    """
    dataset = Path(dataset)
    train = DataSource(
        dataset,
        data["train_split"],
        _splits_of(dataset, data["splits"], data["train_split"], "data.train_split"),
    )
    other = data.get("val_dataset")
    if other:
        store = Path(other)
        split = data["val_split"]
        return train, DataSource(store, split, _splits_of(store, None, split, "data.val_split"))
    if data["val_split"] is None:
        return train, None
    splits = _splits_of(dataset, data["splits"], data["val_split"], "data.val_split")
    return train, DataSource(dataset, data["val_split"], splits)


def splits_file(dataset: Path, data: Mapping[str, Any]) -> Path | None:
    """The splits file of the training split (None when the run trains on the whole store).

    Raises:
        UsageError: a split is asked for but there is no splits file (run ``prep split``).
    """
    return data_sources(dataset, data)[0].splits


def train_stride(window: int | list[int], stride: int | list[int] | None) -> int | list[int]:
    """The training stride: ``stride``, or half the window when it is None."""
    if stride is not None:
        return stride
    if isinstance(window, list):
        return [max(1, w // 2) for w in window]
    return max(1, window // 2)


def train_and_val(
    dataset: Path, data: Mapping[str, Any], build: Callable[[DataSource, bool], T]
) -> tuple[T, T | None]:
    """``(train, val)`` datasets from ``build(source, train)`` (see :func:`data_sources`); val
    is None without validation (the run then monitors the training loss).

    Raises:
        UsageError: the validation store's classes differ from the training store's.
    """
    train_source, val_source = data_sources(dataset, data)
    train = build(train_source, True)
    val = build(val_source, False) if val_source is not None else None
    mine, theirs = getattr(train, "classes", None), getattr(val, "classes", None)
    if val is not None and mine is not None and theirs is not None and mine != theirs:
        assert val_source is not None
        raise UsageError(
            f"data.val_dataset {val_source.store} has classes {list(theirs)}, but {dataset} "
            f"has {list(mine)}: validate on a store of the same export (or of its AUG.zarr)"
        )
    return train, val
