"""InstanceDataset with random windows per epoch (``samples_per_epoch``): objects clipped to each
window, boxes tight around the clipped masks, ``valid`` consistent, reproducible per seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microprep.augment import AugmentConfig
from microprep.data import InstanceDataset
from microprep.errors import UsageError

from .helpers import disk, ramp, store_2d

#: The two disks of ``a.png`` in :func:`store_2d` (40 x 50) and their classes.
DISKS = ((disk((40, 50), (12, 14), 6), 1), (disk((40, 50), (28, 36), 7), 2))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return store_2d(tmp_path / "d.zarr")


def _tight(masks: torch.Tensor, boxes: torch.Tensor) -> None:
    for mask, box in zip(masks, boxes, strict=True):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert len(ys) > 0
        tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert box.tolist() == [float(v) for v in tight]


def test_count_and_reproducible_windows_new_every_epoch(store: Path) -> None:
    kw = {"window": 16, "samples_per_epoch": 9, "seed": 2}
    one, two = InstanceDataset(store, **kw), InstanceDataset(store, **kw)
    assert len(one) == 9 and len(InstanceDataset(store, window=16)) != 9
    first = [one.window_at(i) for i in range(9)]
    assert first == [two.window_at(i) for i in range(9)]
    one.set_epoch(1)
    assert [one.window_at(i) for i in range(9)] != first
    with pytest.raises(IndexError):
        one[9]
    with pytest.raises(UsageError, match="samples_per_epoch"):
        InstanceDataset(store, window=16, samples_per_epoch=0)


def test_objects_are_the_disks_clipped_to_each_random_window(store: Path) -> None:
    ds = InstanceDataset(store, window=16, samples_per_epoch=40, seed=0, min_visible=0, min_area=1)
    seen = 0
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            spec = ds.window_at(i)
            y, x = spec.origin
            image, target = ds[i]
            assert image.shape == (1, 16, 16) and target["valid"].shape == (16, 16)
            raw, *_ = ds.read_numpy(i)
            if spec.node == "b.png":
                assert len(target["labels"]) == 0
                assert np.array_equal(raw, ramp((20, 24))[y : y + 16, x : x + 16])
                continue
            assert np.array_equal(raw, ramp((40, 50))[y : y + 16, x : x + 16])
            assert bool(target["valid"].all())
            expected = [
                (m[y : y + 16, x : x + 16], c) for m, c in DISKS if m[y : y + 16, x : x + 16].any()
            ]
            pairs = zip(
                target["masks"].numpy().astype(bool), target["labels"].tolist(), strict=True
            )
            got = sorted(pairs, key=lambda p: p[1])
            assert [c for _, c in got] == [c for _, c in expected]
            for (mask, _), (want, _) in zip(got, expected, strict=True):
                assert np.array_equal(mask, want)
            _tight(target["masks"], target["boxes"])
            assert target["area"].tolist() == [float(m.sum()) for m, _ in expected]
            seen += len(expected)
    assert seen > 10


def test_cut_objects_below_the_thresholds_are_dropped(store: Path) -> None:
    ds = InstanceDataset(store, window=16, samples_per_epoch=60, seed=1, min_visible=0.5)
    for i in range(len(ds)):
        spec = ds.window_at(i)
        if spec.node != "a.png":
            continue
        y, x = spec.origin
        visible = [(m[y : y + 16, x : x + 16].sum(), m.sum(), c) for m, c in DISKS]
        kept = sorted(c for part, full, c in visible if part >= 16 and part >= 0.5 * full)
        assert sorted(ds[i][1]["labels"].tolist()) == kept


def test_augmented_random_windows_keep_targets_consistent(store: Path) -> None:
    aug = AugmentConfig(geometry=("flip", "rot90", "rotate", "zoom"), recipe="microscopy")
    ds = InstanceDataset(store, window=24, samples_per_epoch=30, augment=aug, seed=4, min_area=1)
    again = InstanceDataset(store, window=24, samples_per_epoch=30, augment=aug, seed=4, min_area=1)
    objects = 0
    for i in range(len(ds)):
        image, target = ds[i]
        n = len(target["labels"])
        assert target["masks"].shape == (n, 24, 24) and target["boxes"].shape == (n, 4)
        _tight(target["masks"], target["boxes"])
        # objects lie on valid (real, annotated) pixels only
        assert not (target["masks"].bool() & ~target["valid"]).any()
        assert torch.equal(image, again[i][0])
        objects += n
    assert objects > 5
    assert ds.stats["samples"] == 30
