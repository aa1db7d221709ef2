"""Random windows per epoch (``samples_per_epoch``): reproducible, new every epoch, inside the
split's regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microprep.augment import AugmentConfig
from microprep.data import SegmentationDataset
from microprep.errors import UsageError
from microprep.splits import Region, Splits

from .helpers import store_2d, store_3d

SPLITS = Splits(
    train=(Region("a.png", (0, 0), (25, 50)), Region("b.png", (0, 0), (20, 24))),
    val=(Region("a.png", (27, 0), (40, 50)),),
    test=(),
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return store_2d(tmp_path / "d.zarr")


def _origins(ds: SegmentationDataset) -> list[tuple[str, tuple[int, ...]]]:
    return [(ds[i]["node"], ds[i]["origin"]) for i in range(len(ds))]


def test_samples_per_epoch_sets_the_sample_count(store: Path) -> None:
    grid = SegmentationDataset(store, split="train", splits=SPLITS, window=8)
    drawn = SegmentationDataset(store, split="train", splits=SPLITS, window=8, samples_per_epoch=41)
    assert len(drawn) == 41 and len(grid) == 37
    assert drawn[40]["image"].shape == (1, 8, 8)
    with pytest.raises(IndexError):
        drawn[41]
    with pytest.raises(UsageError, match="samples_per_epoch"):
        SegmentationDataset(store, window=8, samples_per_epoch=0)


def test_windows_differ_between_epochs_and_repeat_for_a_seed(store: Path) -> None:
    kw = {"split": "train", "splits": SPLITS, "window": 8, "samples_per_epoch": 20}
    one, two = SegmentationDataset(store, seed=3, **kw), SegmentationDataset(store, seed=3, **kw)
    first = _origins(one)
    assert first == _origins(two)
    one.set_epoch(1)
    assert _origins(one) != first
    two.set_epoch(1)
    assert _origins(one) == _origins(two)
    assert _origins(SegmentationDataset(store, seed=4, **kw)) != first
    # the same window gives the same pixels: the sample is a function of (seed, epoch, index)
    assert torch.equal(one[5]["image"], two[5]["image"])
    # off the grid: with a stride of 8 grid origins are multiples of 8
    many = {o for e in range(3) for _, o in (one.set_epoch(e) or _origins(one))}
    assert any(v % 8 for o in many for v in o)


def test_random_windows_stay_inside_the_split_regions(store: Path) -> None:
    ds = SegmentationDataset(
        store, split="train", splits=SPLITS, window=8, samples_per_epoch=200, seed=1
    )
    nodes = set()
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            spec = ds.window_at(i)
            nodes.add(spec.node)
            region = next(r for r in SPLITS.train if r.node == spec.node)
            assert spec.stop == region.stop
            for o, a, b in zip(spec.origin, region.start, region.stop, strict=True):
                assert a <= o and o + 8 <= b
    assert nodes == {"a.png", "b.png"}
    # the val region (rows 27..40 of a.png) is never touched by a training window
    assert all(
        ds.window_at(i).origin[0] + 8 <= 25
        for i in range(len(ds))
        if ds.window_at(i).node == "a.png"
    )


def test_with_min_foreground_windows_stay_near_foreground(store: Path) -> None:
    ds = SegmentationDataset(
        store, split="train", splits=SPLITS, window=8, samples_per_epoch=50,
        min_foreground=0.3, seed=0,
    )  # fmt: skip
    for i in range(len(ds)):
        spec = ds.window_at(i)
        assert spec.node == "a.png"  # b.png has no foreground
        assert 0 <= spec.origin[0] <= 25 - 8 and 0 <= spec.origin[1] <= 50 - 8
    assert sum(int((ds[i]["target"] > 0).any()) for i in range(len(ds))) > 25


def test_random_windows_with_augmentation_and_volumes(tmp_path: Path) -> None:
    path = store_3d(tmp_path / "v.zarr")
    aug = AugmentConfig(geometry=("flip", "rot90"), recipe="microscopy")
    ds = SegmentationDataset(path, window=(4, 8, 8), samples_per_epoch=6, augment=aug, seed=2)
    sample = ds[3]
    assert sample["image"].shape == (1, 4, 8, 8) and sample["target"].shape == (4, 8, 8)
    spec = ds.window_at(3)
    assert all(
        0 <= o <= s - w for o, s, w in zip(spec.origin, (12, 20, 24), (4, 8, 8), strict=True)
    )
    again = SegmentationDataset(path, window=(4, 8, 8), samples_per_epoch=6, augment=aug, seed=2)
    assert np.array_equal(sample["image"].numpy(), again[3]["image"].numpy())
