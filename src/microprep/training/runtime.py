"""Device choice, mixed precision, seeding and RNG state for reproducible runs.

* :func:`choose_device`: ``auto`` is CUDA when available (``cuda:LOCAL_RANK`` under torchrun),
  else CPU.
* :class:`Precision`: the autocast context and gradient scaler for ``amp`` = ``off``, ``fp16``
  (CUDA only: fp16 on a CPU is refused) or ``bf16`` (CUDA, or CPU where autocast supports it).
* :func:`seed_everything`, :func:`rng_state`, :func:`set_rng_state`: every generator a training
  step draws from (python, numpy, torch CPU and CUDA), saved in checkpoints as tensors and plain
  numbers so that a resumed run continues exactly where the interrupted one stopped.

Example:
    >>> choose_device("cpu").type
    'cpu'
    >>> p = Precision("off", choose_device("cpu"))
    >>> with p.autocast():
    ...     pass
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from microprep.errors import UsageError


def choose_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """The torch device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Raises:
        UsageError: CUDA (or MPS) asked for but not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r}: CUDA is not available on this machine")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("device 'mps': not available on this machine")
        return torch.device("mps")
    return torch.device("cpu")


class Precision:
    """Mixed precision for one device: ``autocast()`` around forward passes, ``scaler``.

    fp16 needs a gradient scaler (to keep small gradients from flushing to zero); bf16 has
    fp32's range and needs none.
    """

    def __init__(self, amp: str, device: torch.device) -> None:
        if amp not in ("off", "fp16", "bf16"):
            raise UsageError(f"amp must be off, fp16 or bf16, not {amp!r}")
        if amp == "fp16" and device.type != "cuda":
            raise UsageError(f"amp fp16 needs a CUDA device (this run uses {device}); use bf16")
        self.amp = amp
        self.device = device
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp)
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to the chosen dtype (nothing when ``amp`` is off)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (all devices); optionally deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Every global generator's state, as tensors and plain numbers (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64)},
        "python_gauss": gauss,
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(v) for v in py["state"]), state["python_gauss"]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
