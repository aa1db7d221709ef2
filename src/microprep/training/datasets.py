"""The shared ``data`` keys of a training configuration, turned into dataset arguments.

Every trainer reads ``data.noise`` / ``data.geometry`` (on-the-fly augmentation), the splits
file and the train/validation strides the same way; this module is that one way.

Example:
    >>> augment_config({"noise": None, "geometry": "flip"}).geometry
    ('flip',)
    >>> train_stride(128, None), train_stride([64, 64, 64], None), train_stride(128, 32)
    (64, [32, 32, 32], 32)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from microprep.augment import AugmentConfig, parse_geometry, parse_noise
from microprep.errors import UsageError
from microprep.splits import default_splits_path

T = TypeVar("T")


def augment_config(data: Mapping[str, Any]) -> AugmentConfig | None:
    """The augmentation of ``data.noise`` and ``data.geometry`` (None when both are empty)."""
    noise = parse_noise(data["noise"]) if data.get("noise") else ()
    geometry = parse_geometry(data["geometry"]) if data.get("geometry") else ()
    if not noise and not geometry:
        return None
    return AugmentConfig(noise=noise, geometry=geometry)


def splits_file(dataset: Path, data: Mapping[str, Any]) -> Path | None:
    """The splits file the run uses (None when it trains and validates on no split).

    Raises:
        UsageError: a split is asked for but there is no splits file (run ``prep split``).
    """
    if data["train_split"] is None and data["val_split"] is None:
        return None
    path = Path(data["splits"]) if data["splits"] else default_splits_path(dataset)
    if not path.is_file():
        raise UsageError(
            f"{path}: no splits file; run `prep split {dataset}` first, or set "
            "data.train_split and data.val_split to null to train on the whole store"
        )
    return path


def train_stride(window: int | list[int], stride: int | list[int] | None) -> int | list[int]:
    """The training stride: ``stride``, or half the window when it is None."""
    if stride is not None:
        return stride
    if isinstance(window, list):
        return [max(1, w // 2) for w in window]
    return max(1, window // 2)


def train_and_val(
    data: Mapping[str, Any], build: Callable[[str | None, bool], T]
) -> tuple[T, T | None]:
    """``(train, val)`` datasets from ``build(split, train)``; val is None when
    ``data.val_split`` is null (the run then monitors the training loss)."""
    train = build(data["train_split"], True)
    val = build(data["val_split"], False) if data["val_split"] is not None else None
    return train, val
