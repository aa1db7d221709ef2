"""A reproducible DataLoader for the datasets: :func:`make_loader` and :func:`set_epoch`.

The loader's order comes from a sampler seeded with ``seed + epoch`` (torch's
``DistributedSampler``; with ``distributed=False`` it is one replica, so it simply shuffles the
whole dataset), and the samples themselves depend only on ``(seed, epoch, index)`` (see
:mod:`microprep.data.base`). So a run gives the same batches with 0 or N workers, ``fork`` or
``spawn``, and an epoch can be replayed after a restart. Call :func:`set_epoch` before each
epoch: it sets the epoch of the sampler and of the dataset.

Example:
    >>> from microprep.data import SegmentationDataset  # doctest: +SKIP
    >>> ds = SegmentationDataset("dataset.zarr", split="train", window=256)  # doctest: +SKIP
    >>> loader = make_loader(ds, batch_size=8, shuffle=True, seed=0, workers=4)  # doctest: +SKIP
    >>> for epoch in range(10):  # doctest: +SKIP
    ...     set_epoch(loader, epoch)
    ...     for batch in loader:
    ...         ...
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Subset

from microprep.errors import UsageError

__all__ = ["make_loader", "seed_worker", "set_epoch"]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``numpy`` and ``random`` in a worker from torch's worker seed
    (derived from the loader's generator and the worker id), for code that uses the global
    generators. The datasets here do not: their draws come from per-sample generators."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 (the global generator is what is being seeded)
    random.seed(seed)


def make_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    workers: int = 0,
    drop_last: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    distributed: bool = False,
    multiprocessing_context: str | None = None,
    pin_memory: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> DataLoader[Any]:
    """A DataLoader over ``dataset`` whose batches depend only on ``seed`` and the epoch.

    Args:
        dataset: a map-style dataset (e.g. :class:`SegmentationDataset`).
        batch_size: samples per batch.
        shuffle: draw a new order every epoch (from ``seed + epoch``).
        seed: seeds the order and the loader's generator (worker seeds).
        workers: worker processes (0: load in this process); workers are persistent.
        drop_last: drop the last incomplete batch (and, distributed, the uneven tail).
        collate_fn: e.g. :func:`~microprep.data.instances.collate_instances` for detection.
        distributed: shard the samples over the processes of ``torch.distributed`` (each
            gets ``len / world_size`` of them).
        multiprocessing_context: ``"fork"``, ``"spawn"`` or ``"forkserver"`` for the workers.
        pin_memory: pin batches for faster copies to the GPU.
        num_replicas, rank: with ``distributed``: the world size and this rank (default: from
            the initialised process group).

    Returns:
        A ``torch.utils.data.DataLoader``; call :func:`set_epoch` before each epoch.

    Raises:
        UsageError: a non-positive batch size or negative worker count.
    """
    if int(batch_size) < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size!r}")
    if int(workers) < 0:
        raise UsageError(f"workers must be 0 or more, got {workers!r}")
    sampler: DistributedSampler[Any]
    if distributed:
        sampler = DistributedSampler(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
    else:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = {
            "persistent_workers": True,
            "worker_init_fn": seed_worker,
            "multiprocessing_context": multiprocessing_context,
        }
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        sampler=sampler,
        num_workers=int(workers),
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        **extra,
    )


def _datasets(dataset: Any) -> list[Any]:
    if isinstance(dataset, Subset):
        return _datasets(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [d for part in dataset.datasets for d in _datasets(part)]
    return [dataset]


def set_epoch(loader: DataLoader[Any], epoch: int) -> None:
    """Set ``epoch`` on the loader's sampler and dataset (inside ``Subset`` /
    ``ConcatDataset`` too), before iterating the loader for that epoch."""
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(int(epoch))
    for dataset in _datasets(loader.dataset):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(int(epoch))
