"""Batched augmentation with torch, on a GPU when present (torch is imported lazily).

For training loops that move whole batches to the device first: the noise kinds that act on
pixels (gaussian, poisson, salt-and-pepper, contrast) and the Gaussian blur on a batch
``(B, C, H, W)`` (or ``(B, H, W)``) tensor, and the 8 symmetries of the square applied to an
image batch and its label batch together. Parameters and units are those of
:mod:`microprep.augment.noise`; the range is the dtype's for ``uint8`` / ``int16`` / ``int32``
tensors and ``[0, 1]`` for float tensors (batches are normalised before training).

Draws come from a ``torch.Generator`` on the tensor's device, one per batch: a run is
reproducible for the same generator seed and device, but the values differ from the numpy
path (same distributions). Poisson counts use ``torch.poisson`` (exact sampling).

Example:
    >>> import torch  # doctest: +SKIP
    >>> batch = torch.full((4, 1, 64, 64), 0.5, device="cuda")  # doctest: +SKIP
    >>> g = torch.Generator(device="cuda").manual_seed(0)  # doctest: +SKIP
    >>> noisy = batch_noise(batch, parse_noise("poisson:dose=30"), generator=g)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

from microprep.augment.pipeline import NoiseSpec
from microprep.errors import UsageError

__all__ = ["BATCH_KINDS", "batch_d4", "batch_noise", "torch_available"]

#: Noise kinds :func:`batch_noise` supports.
BATCH_KINDS = ("gaussian", "poisson", "salt_and_pepper", "contrast", "blur")


def torch_available() -> bool:
    """Whether torch can be imported."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise UsageError(
            "the batched augmentation needs torch: pip install 'microprep[train]'"
        ) from exc


def _range(torch: Any, tensor: Any) -> tuple[float, float]:
    if tensor.dtype.is_floating_point:
        return 0.0, 1.0
    info = torch.iinfo(tensor.dtype)
    return float(info.min), float(info.max)


def batch_noise(batch: Any, specs: Sequence[NoiseSpec], *, generator: Any = None) -> Any:
    """Apply ``specs`` in order to every image of ``batch`` (a tensor, any device).

    Args:
        batch: ``(B, C, H, W)`` or ``(B, H, W)``; uint8 / integer or float (range [0, 1]).
        specs: noise kinds (see :data:`BATCH_KINDS` and :func:`microprep.augment.parse_noise`).
        generator: a ``torch.Generator`` on the batch's device, or None (torch's default).

    Returns:
        A new tensor of the same shape, dtype and device.

    Raises:
        UsageError: a kind outside :data:`BATCH_KINDS`, or torch is missing.
    """
    torch = _torch()
    bad = [s.kind for s in specs if s.kind not in BATCH_KINDS]
    if bad:
        raise UsageError(f"batched noise has no {', '.join(bad)}; use {', '.join(BATCH_KINDS)}")
    low, high = _range(torch, batch)
    span = high - low
    x = (batch.to(torch.float32) - low) / span  # relative intensities in [0, 1]
    for spec in specs:
        p = dict(spec.params)
        if spec.kind == "gaussian":
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + noise * float(p["sigma"])
        elif spec.kind == "poisson":
            dose = float(p["dose"])
            x = torch.poisson(x.clamp(min=0.0) * dose, generator=generator) / dose
        elif spec.kind == "salt_and_pepper":
            amount, ratio = float(p["amount"]), float(p["salt_ratio"])
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = torch.where(u < amount * ratio, torch.ones_like(x), x)
            x = torch.where((u >= amount * ratio) & (u < amount), torch.zeros_like(x), x)
        elif spec.kind == "contrast":
            y = x.clamp(0.0, 1.0) ** float(p["gamma"])
            x = y * float(p["gain"]) + float(p["bias"])
        elif spec.kind == "blur":
            x = _blur(torch, x, float(p["sigma"]))
        x = x.clamp(0.0, 1.0)
    out = x * span + low
    if not batch.dtype.is_floating_point:
        out = torch.floor(out + 0.5).clamp(low, high)
    return out.to(batch.dtype)


def _blur(torch: Any, x: Any, sigma: float) -> Any:
    """Separable Gaussian blur over the last two axes (reflected borders)."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    grid = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(grid**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-2], shape[-1])
    functional = importlib.import_module("torch.nn.functional")
    flat = functional.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = functional.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = functional.conv2d(flat, kernel.view(1, 1, -1, 1))
    return flat.reshape(shape)


def batch_d4(tensors: Sequence[Any], k: int) -> list[Any]:
    """Element ``k`` (0..7) of the square's symmetries on the last two axes of every tensor.

    The same element as :func:`microprep.augment.geometry2d.d4` (``k & 3`` counter-clockwise
    quarter turns, then a left-right flip when ``k >= 4``), so images ``(B, C, H, W)`` and
    labels ``(B, H, W)`` move together; values are moved, never interpolated.
    """
    torch = _torch()
    if not 0 <= k < 8:
        raise UsageError(f"D4 element {k}: must be 0..7")
    out = []
    for tensor in tensors:
        moved = torch.rot90(tensor, k & 3, dims=(-2, -1))
        if k >= 4:
            moved = torch.flip(moved, dims=(-1,))
        out.append(moved)
    return out
