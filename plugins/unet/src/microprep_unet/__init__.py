"""microprep-unet: a 2D/3D residual U-Net and its losses for microprep dataset stores.

The network (:class:`UNet`) maps ``(B, C, *spatial)`` float32 images to ``(B, K, *spatial)``
class logits; the losses (:func:`cross_entropy`, :func:`soft_dice`, :func:`jaccard2`,
:class:`CombinedLoss`) compare logits with class-index targets ``(B, *spatial)`` from a store's
``labels`` variable, with an optional mask of valid pixels. The trainer registers itself in the
``microprep.trainers`` entry-point group as ``unet``.

Example:
    >>> import torch
    >>> from microprep_unet import CombinedLoss, UNet, parse_loss
    >>> net = UNet(in_channels=1, num_classes=2, depth=2, base_filters=4)
    >>> logits = net(torch.zeros(1, 1, 8, 8))
    >>> total, parts = CombinedLoss(parse_loss("ce+dice"))(logits, torch.zeros(1, 8, 8).long())
    >>> total.ndim
    0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from microprep_unet.losses import (
        LOSS_TERMS,
        WEIGHT_METHODS,
        CombinedLoss,
        class_weights,
        cross_entropy,
        jaccard2,
        parse_loss,
        soft_dice,
    )
    from microprep_unet.model import (
        NORMS,
        UPSAMPLINGS,
        ResidualBlock,
        ShapeError,
        UNet,
        count_parameters,
    )

# The names load on first use (PEP 562), so that importing the package, for example for its
# torch-free ``predict_options``, does not import torch.
_HOMES = {
    **dict.fromkeys(
        ("LOSS_TERMS", "WEIGHT_METHODS", "CombinedLoss", "class_weights", "cross_entropy",
         "jaccard2", "parse_loss", "soft_dice"),
        "microprep_unet.losses",
    ),
    **dict.fromkeys(
        ("NORMS", "UPSAMPLINGS", "ResidualBlock", "ShapeError", "UNet", "count_parameters"),
        "microprep_unet.model",
    ),
}  # fmt: skip

__all__ = [
    "LOSS_TERMS",
    "NORMS",
    "UPSAMPLINGS",
    "WEIGHT_METHODS",
    "CombinedLoss",
    "ResidualBlock",
    "ShapeError",
    "UNet",
    "class_weights",
    "count_parameters",
    "cross_entropy",
    "jaccard2",
    "parse_loss",
    "soft_dice",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
