"""The Mask R-CNN network: torchvision's ResNet-50 FPN model, built offline, for gray or RGB input.

:func:`build_model` never downloads anything: torchvision's pretrained weights are not asked
for (``weights=None``, ``weights_backbone=None``); starting weights come from a *local* file
(:func:`~microprep_maskrcnn.weights.load_local_weights`, re-exported here), for example a
COCO-pretrained Mask R-CNN or an ImageNet ResNet-50 saved beforehand on a machine with network
access.

**Input.** A list of ``(C, h, w)`` float32 tensors with values in about ``[0, 1]`` (the training
data is normalised to that range before it reaches the model). ``C`` is ``in_channels``:

* ``in_channels=1`` (gray microscopy): the model's transform repeats the channel three times,
  so a gray value ``v`` becomes the RGB pixel ``(v, v, v)``, then normalises with the ImageNet
  mean and std (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), which is what every torchvision
  backbone was pretrained with. The convolutional stem stays the pretrained 3-channel one.
* ``in_channels=3``: passed through, same normalisation.

An image with another channel count is refused (``ValueError``) instead of being silently
broadcast. ``image_mean`` / ``image_std`` override the normalisation (three values each).

**Scale.** ``min_size`` / ``max_size`` are the sizes the transform resizes to: pass the crop
size (``min_size = min(crop)``, ``max_size = max(crop)``), so training crops and prediction tiles
of that size keep their pixel scale (torchvision's own 800 / 1333 would enlarge a 256 px crop
three times over). See :mod:`microprep.predict.instances` for prediction on larger images.

Example:
    >>> model = build_model(num_classes=3, min_size=64, max_size=64)  # doctest: +SKIP
    >>> model.eval()(torch.rand(2, 1, 64, 64).unbind(0))[0].keys()  # doctest: +SKIP
    dict_keys(['boxes', 'labels', 'scores', 'masks'])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torchvision.models import resnet50  # type: ignore[import-untyped]
from torchvision.models.detection import MaskRCNN  # type: ignore[import-untyped]
from torchvision.models.detection.backbone_utils import (  # type: ignore[import-untyped]
    _resnet_fpn_extractor,
)
from torchvision.models.detection.faster_rcnn import (  # type: ignore[import-untyped]
    FastRCNNConvFCHead,
    RPNHead,
    _default_anchorgen,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads  # type: ignore[import-untyped]
from torchvision.models.detection.transform import (  # type: ignore[import-untyped]
    GeneralizedRCNNTransform,
)
from torchvision.ops import misc as misc_nn_ops  # type: ignore[import-untyped]

from microprep.errors import UsageError
from microprep_maskrcnn.ignore import enable_ignore
from microprep_maskrcnn.weights import LoadReport, WeightsError, load_local_weights

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VARIANTS",
    "ChannelTransform",
    "LoadReport",
    "WeightsError",
    "build_model",
    "detector_forward",
    "load_local_weights",
]

#: ``v1``: the original Mask R-CNN ResNet-50 FPN; ``v2``: the improved recipe (BatchNorm in the
#: FPN and heads, two-conv RPN head), as torchvision's ``maskrcnn_resnet50_fpn[_v2]``.
VARIANTS: tuple[str, str] = ("v1", "v2")
#: Normalisation applied after gray input is repeated to RGB: the backbones' pretraining values.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ChannelTransform(GeneralizedRCNNTransform):  # type: ignore[misc]
    """torchvision's detection transform for ``in_channels`` 1 (gray, repeated to RGB) or 3.

    Resizing, batching and post-processing are torchvision's; :meth:`normalize` checks the
    channel count and repeats a single channel three times before normalising, and
    :meth:`resize` also resizes a target's ``valid`` mask (nearest neighbour) to the resized
    image, for :mod:`microprep_maskrcnn.ignore`.
    """

    def __init__(self, *, in_channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_channels = in_channels

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """``(C, h, w)`` float image -> normalised ``(3, h, w)``; ``C`` must be ``in_channels``."""
        if image.dim() != 3 or image.shape[0] != self.in_channels:
            raise ValueError(
                f"the model takes (C, h, w) images with C = in_channels = {self.in_channels}, "
                f"got an image of shape {tuple(image.shape)}"
            )
        if self.in_channels == 1:
            image = image.expand(3, -1, -1)
        out: torch.Tensor = super().normalize(image)
        return out

    def resize(
        self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """torchvision's resize; a target's ``valid`` ``(h, w)`` follows the image."""
        resized, target = super().resize(image, target)
        if target is not None and "valid" in target:
            valid = target["valid"]
            size = tuple(resized.shape[-2:])
            if tuple(valid.shape[-2:]) != size:
                scaled = nn.functional.interpolate(valid[None, None].float(), size=size)
                target["valid"] = scaled[0, 0] > 0.5
        return resized, target


def build_model(
    *,
    num_classes: int,
    in_channels: int = 1,
    variant: Literal["v1", "v2"] | str = "v1",
    min_size: int,
    max_size: int | None = None,
    weights: str | Path | None = None,
    trainable_backbone_layers: int = 3,
    box_detections_per_img: int = 100,
    frozen_batch_norm: bool | None = None,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    **options: Any,
) -> MaskRCNN:
    """A torchvision Mask R-CNN (ResNet-50 FPN) built without touching the network.

    Args:
        num_classes: classes *including* background: the store's ``len(classes)``.
        in_channels: 1 (gray; repeated to RGB inside the model) or 3.
        variant: ``"v1"`` or ``"v2"`` (see :data:`VARIANTS`).
        min_size: the size (px) of the shorter image side after the model's resize; pass the
            shorter side of the training crop so crops are not rescaled.
        max_size: the cap (px) of the longer side (default ``min_size``); pass the longer side
            of the crop.
        weights: a local weights file (see :mod:`microprep_maskrcnn.weights`), or None to
            start from random weights. With weights, ``v1`` uses frozen batch norm in the
            backbone (as torchvision does for pretrained backbones) and only the last
            ``trainable_backbone_layers`` ResNet stages train; without weights every layer
            trains and ``trainable_backbone_layers`` is ignored.
        trainable_backbone_layers: 0..5, used with ``weights`` only.
        box_detections_per_img: at most this many detections per image (eval mode).
        frozen_batch_norm: ``v1`` only: frozen batch norm in the backbone (True) or ordinary
            batch norm (False); None: frozen exactly when ``weights`` are given. Pass the value
            a trained model was built with to rebuild it without its starting weights file
            (its state dict has the same entries then).
        image_mean: per-channel normalisation mean (3 values; default :data:`IMAGENET_MEAN`).
        image_std: per-channel normalisation std (3 values; default :data:`IMAGENET_STD`).
        options: further keyword arguments of ``torchvision.models.detection.MaskRCNN``
            (``box_score_thresh``, ``rpn_post_nms_top_n_train``, ...).

    Returns:
        The ``MaskRCNN`` module in training mode, on the CPU. In training, negative anchors
        and proposals mostly on pixels a target marks not ``valid`` are discarded
        (:mod:`microprep_maskrcnn.ignore`).

    Raises:
        UsageError: an unknown variant, ``num_classes < 2``, ``in_channels`` other than 1 or 3,
            non-positive sizes or ``trainable_backbone_layers`` outside 0..5.
        WeightsError: see :func:`~microprep_maskrcnn.weights.load_local_weights`.

    Example:
        >>> m = build_model(num_classes=2, min_size=64, weights=None)  # doctest: +SKIP
        >>> m.roi_heads.box_predictor.cls_score.out_features  # doctest: +SKIP
        2
    """
    if variant not in VARIANTS:
        raise UsageError(f"unknown Mask R-CNN variant {variant!r}; choose {' or '.join(VARIANTS)}")
    if num_classes < 2:
        raise UsageError(
            f"num_classes is {num_classes}: it counts background, so a store with one class "
            "needs num_classes=2"
        )
    if in_channels not in (1, 3):
        raise UsageError(f"in_channels must be 1 (gray) or 3 (RGB), got {in_channels}")
    max_size = min_size if max_size is None else max_size
    if min_size <= 0 or max_size < min_size:
        raise UsageError(f"need 0 < min_size <= max_size, got {min_size} and {max_size}")
    if not 0 <= trainable_backbone_layers <= 5:
        raise UsageError(f"trainable_backbone_layers must be 0..5, got {trainable_backbone_layers}")
    mean = _three("image_mean", image_mean, IMAGENET_MEAN)
    std = _three("image_std", image_std, IMAGENET_STD)
    pretrained = weights is not None
    frozen = pretrained if frozen_batch_norm is None else bool(frozen_batch_norm)
    trainable = trainable_backbone_layers if pretrained else 5
    kwargs: dict[str, Any] = {
        "min_size": min_size,
        "max_size": max_size,
        "image_mean": mean,
        "image_std": std,
        "box_detections_per_img": box_detections_per_img,
        **options,
    }
    if variant == "v1":
        norm = misc_nn_ops.FrozenBatchNorm2d if frozen else nn.BatchNorm2d
        backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=norm), trainable)
        model = MaskRCNN(backbone, num_classes=num_classes, **kwargs)
    else:
        backbone = _resnet_fpn_extractor(
            resnet50(weights=None), trainable, norm_layer=nn.BatchNorm2d
        )
        anchors = _default_anchorgen()
        model = MaskRCNN(
            backbone,
            num_classes=num_classes,
            rpn_anchor_generator=anchors,
            rpn_head=RPNHead(
                backbone.out_channels, anchors.num_anchors_per_location()[0], conv_depth=2
            ),
            box_head=FastRCNNConvFCHead(
                (backbone.out_channels, 7, 7), [256] * 4, [1024], norm_layer=nn.BatchNorm2d
            ),
            mask_head=MaskRCNNHeads(backbone.out_channels, [256] * 4, 1, norm_layer=nn.BatchNorm2d),
            **kwargs,
        )
    old = model.transform
    model.transform = ChannelTransform(
        in_channels=in_channels,
        min_size=old.min_size,
        max_size=old.max_size,
        image_mean=old.image_mean,
        image_std=old.image_std,
        size_divisible=old.size_divisible,
        fixed_size=old.fixed_size,
        _skip_resize=old._skip_resize,
    )
    enable_ignore(model)
    if weights is not None:
        load_local_weights(model, weights)
    logger.debug(
        "built Mask R-CNN %s: %d classes, %d input channel(s), size %d..%d",
        variant,
        num_classes,
        in_channels,
        min_size,
        max_size,
    )
    return model


def _three(name: str, values: Sequence[float] | None, default: tuple[float, ...]) -> list[float]:
    out = [float(v) for v in (default if values is None else values)]
    if len(out) != 3:
        raise UsageError(f"{name} needs 3 values (one per RGB channel), got {len(out)}")
    return out


def detector_forward(
    model: nn.Module, *, device: str | torch.device | None = None
) -> Callable[[Sequence[NDArray[np.float32]]], list[dict[str, NDArray[Any]]]]:
    """Wrap ``model`` as the numpy ``forward`` that :func:`microprep.predict.instances
    .predict_instances_tiled` calls.

    The returned function takes ``(C, h, w)`` float32 arrays, runs the model in eval mode
    without gradients on ``device`` (default: where the model's parameters are) and returns per
    image ``boxes`` (n, 4) float32 xyxy, ``labels`` (n,) int64, ``scores`` (n,) float32 and
    ``masks`` (n, h, w) float32 probabilities, on the CPU as numpy arrays.

    Example:
        >>> forward = detector_forward(build_model(num_classes=2, min_size=64))  # doctest: +SKIP
        >>> forward([np.zeros((1, 64, 64), np.float32)])[0]["masks"].shape  # doctest: +SKIP
        (0, 64, 64)
    """
    target = torch.device(device) if device is not None else next(model.parameters()).device

    def forward(tiles: Sequence[NDArray[np.float32]]) -> list[dict[str, NDArray[Any]]]:
        model.eval()
        batch = [torch.from_numpy(np.ascontiguousarray(t, np.float32)).to(target) for t in tiles]
        with torch.inference_mode():
            outputs = model(batch)
        return [
            {
                "boxes": o["boxes"].float().cpu().numpy(),
                "labels": o["labels"].cpu().numpy().astype(np.int64),
                "scores": o["scores"].float().cpu().numpy(),
                "masks": o["masks"][:, 0].float().cpu().numpy(),
            }
            for o in outputs
        ]

    return forward
