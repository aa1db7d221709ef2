"""Data parallelism through ``torchrun``: process group set-up, model wrapping, reductions.

``torchrun --nproc_per_node N -m microprep.cli.main train ...`` starts N processes with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init_distributed` joins them into one
process group (NCCL on CUDA, gloo on the CPU), the model is wrapped in
``DistributedDataParallel`` and each process reads its own share of the training windows
through a ``DistributedSampler``. Rank 0 alone writes the run directory. Without ``torchrun``
everything here is a no-op.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from microprep.training.job import DistInfo, dist_info

__all__ = [
    "DistInfo",
    "barrier",
    "broadcast",
    "dist_info",
    "init_distributed",
    "mean_over_ranks",
    "shutdown",
    "unwrap",
    "wrap",
]


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group when ``info`` says there is more than one process."""
    if not info.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)


def shutdown() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` under torchrun, else unchanged."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a ``DistributedDataParallel`` wrapper."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def mean_over_ranks(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all processes (``value`` itself when not distributed)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if dist.is_initialized():
        dist.barrier()
