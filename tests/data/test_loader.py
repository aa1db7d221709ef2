"""make_loader: the same batches with 0 or 2 workers (fork and spawn), epochs, sharding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from microprep.augment import AugmentConfig, parse_noise
from microprep.data import (
    InstanceDataset,
    SegmentationDataset,
    collate_instances,
    make_loader,
    set_epoch,
)
from microprep.errors import UsageError

from .helpers import store_2d

AUGMENT = AugmentConfig(geometry=("flip", "rot90", "rotate"), noise=parse_noise("gaussian"))


@pytest.fixture
def dataset(tmp_path: Path) -> SegmentationDataset:
    return SegmentationDataset(store_2d(tmp_path / "d.zarr"), window=16, augment=AUGMENT, seed=7)


def _epochs(loader: Any, epochs: tuple[int, ...]) -> list[list[dict[str, Any]]]:
    out = []
    for epoch in epochs:
        set_epoch(loader, epoch)
        out.append(list(loader))
    return out


def _same(a: list[list[dict[str, Any]]], b: list[list[dict[str, Any]]]) -> None:
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert len(epoch_a) == len(epoch_b)
        for x, y in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(x["index"], y["index"])
            assert torch.equal(x["image"], y["image"])
            assert torch.equal(x["target"], y["target"])
            assert torch.equal(x["valid"], y["valid"])
            assert x["node"] == y["node"]


def test_batches_follow_seed_and_epoch(dataset: SegmentationDataset) -> None:
    loader = make_loader(dataset, batch_size=4, shuffle=True, seed=1)
    (first, second) = _epochs(loader, (0, 1))
    assert len(first) == 4 and first[0]["image"].shape == (4, 1, 16, 16)
    order = [torch.cat([b["index"] for b in epoch]).tolist() for epoch in (first, second)]
    assert sorted(order[0]) == sorted(order[1]) == list(range(len(dataset)))
    assert order[0] != order[1]
    assert dataset.epoch == 1
    replay = make_loader(dataset, batch_size=4, shuffle=True, seed=1)
    _same(_epochs(replay, (0, 1)), [first, second])
    ordered = make_loader(dataset, batch_size=5, shuffle=False, seed=1, drop_last=True)
    batches = list(ordered)
    assert len(batches) == 3 and batches[0]["index"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(UsageError):
        make_loader(dataset, batch_size=0, shuffle=False, seed=0)


def test_two_fork_workers_give_the_same_batches(dataset: SegmentationDataset) -> None:
    expected = _epochs(make_loader(dataset, batch_size=3, shuffle=True, seed=2), (0, 1))
    loader = make_loader(
        dataset, batch_size=3, shuffle=True, seed=2, workers=2, multiprocessing_context="fork"
    )
    assert loader.persistent_workers
    # the epoch reaches the persistent workers
    _same(_epochs(loader, (0, 1)), expected)
    del loader


@pytest.mark.slow
def test_two_spawn_workers_give_the_same_batches(dataset: SegmentationDataset) -> None:
    expected = _epochs(make_loader(dataset, batch_size=4, shuffle=True, seed=3), (2, 3))
    loader = make_loader(
        dataset, batch_size=4, shuffle=True, seed=3, workers=2, multiprocessing_context="spawn"
    )
    _same(_epochs(loader, (2, 3)), expected)
    del loader


def test_instance_batches_with_workers(tmp_path: Path) -> None:
    ds = InstanceDataset(store_2d(tmp_path / "d.zarr"), window=16, augment=AUGMENT, min_area=1)

    def run(workers: int) -> list[Any]:
        loader = make_loader(
            ds,
            batch_size=2,
            shuffle=True,
            seed=0,
            workers=workers,
            collate_fn=collate_instances,
            multiprocessing_context="fork" if workers else None,
        )
        set_epoch(loader, 1)
        return list(loader)

    single, multi = run(0), run(2)
    assert len(single) == len(multi) == 8
    for (images_a, targets_a), (images_b, targets_b) in zip(single, multi, strict=True):
        assert isinstance(images_a, list) and len(images_a) == 2
        for a, b in zip(images_a, images_b, strict=True):
            assert torch.equal(a, b)
        for a, b in zip(targets_a, targets_b, strict=True):
            assert set(a) == set(b)
            assert all(torch.equal(a[key], b[key]) for key in a)


def test_distributed_shards_are_disjoint(dataset: SegmentationDataset) -> None:
    seen = []
    for rank in (0, 1):
        loader = make_loader(
            dataset, batch_size=2, shuffle=True, seed=4, distributed=True, num_replicas=2, rank=rank
        )
        set_epoch(loader, 5)
        seen.append(torch.cat([b["index"] for b in loader]).tolist())
    assert len(seen[0]) == len(seen[1]) == len(dataset) // 2
    assert sorted(seen[0] + seen[1]) == list(range(len(dataset)))
