"""Where a run trains and validates: data.train_split, data.val_split, data.val_dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microprep.errors import UsageError
from microprep.training.datasets import DataSource, data_sources, splits_file, train_and_val


def _data(**kw: Any) -> dict[str, Any]:
    base = {"train_split": "train", "val_split": "val", "splits": None, "val_dataset": None}
    return {**base, **kw}


def _stores(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    for store in (a, b):
        store.mkdir()
        Path(f"{store}.splits.json").write_text("{}")
    return a, b


def test_one_store_two_splits(tmp_path: Path) -> None:
    a, _ = _stores(tmp_path)
    train, val = data_sources(a, _data())
    splits = Path(f"{a}.splits.json")
    assert train == DataSource(a, "train", splits) and val == DataSource(a, "val", splits)
    assert data_sources(a, _data(val_split=None))[1] is None  # no validation
    whole = data_sources(a, _data(train_split=None, val_split=None))
    assert whole == (DataSource(a, None, None), None)
    assert splits_file(a, _data()) == splits


def test_a_second_store_validates(tmp_path: Path) -> None:
    a, b = _stores(tmp_path)
    Path(f"{a}.splits.json").unlink()  # an AUG.zarr has no splits file
    train, val = data_sources(a, _data(train_split=None, val_dataset=str(b)))
    assert train == DataSource(a, None, None)
    assert val == DataSource(b, "val", Path(f"{b}.splits.json"))
    # with val_dataset, a null val_split validates on all of it
    assert data_sources(a, _data(train_split=None, val_split=None, val_dataset=str(b)))[1] == (
        DataSource(b, None, None)
    )
    assert splits_file(a, _data(train_split=None, val_dataset=str(b))) is None
    with pytest.raises(UsageError, match="no splits file"):
        data_sources(a, _data(val_dataset=str(b)))  # a train split of a store without one


class _Set:
    def __init__(self, classes: tuple[str, ...]) -> None:
        self.classes = classes


def test_the_validation_store_must_have_the_same_classes(tmp_path: Path) -> None:
    a, b = _stores(tmp_path)

    def build(source: DataSource, train: bool) -> _Set:
        return _Set(("background", "pore") if source.store == a else ("background", "crack"))

    with pytest.raises(UsageError, match="has classes"):
        train_and_val(a, _data(val_dataset=str(b)), build)
    train, val = train_and_val(a, _data(), build)
    assert val is not None and val.classes == train.classes
