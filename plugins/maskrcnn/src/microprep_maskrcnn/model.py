"""The Mask R-CNN network: torchvision's ResNet-50 FPN model, built offline, for gray or RGB input.

:func:`build_model` never downloads anything: torchvision's pretrained weights are not asked
for (``weights=None``, ``weights_backbone=None``); starting weights come from a *local* file
(:func:`load_local_weights`), for example a COCO-pretrained Mask R-CNN or an ImageNet ResNet-50
saved beforehand on a machine with network access.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
#: Keys of the class-specific output layers (their shape depends on the number of classes).
PREDICTOR_PREFIXES = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
#: Keys under which a checkpoint file may nest the model's state dict.
_NESTED_KEYS = ("model", "state_dict", "model_state_dict", "model_state")


class WeightsError(UsageError):
    """A local weights file that is missing, unreadable, or holds nothing this model can use."""


class ChannelTransform(GeneralizedRCNNTransform):  # type: ignore[misc]
    """torchvision's detection transform for ``in_channels`` 1 (gray, repeated to RGB) or 3.

    Resizing, batching and post-processing are torchvision's; only :meth:`normalize` differs:
    it checks the channel count and repeats a single channel three times before normalising.
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
        weights: a local weights file (see :func:`load_local_weights`), or None to start from
            random weights. With weights, ``v1`` uses frozen batch norm in the backbone (as
            torchvision does for pretrained backbones) and only the last
            ``trainable_backbone_layers`` ResNet stages train; without weights every layer
            trains and ``trainable_backbone_layers`` is ignored.
        trainable_backbone_layers: 0..5, used with ``weights`` only.
        box_detections_per_img: at most this many detections per image (eval mode).
        image_mean: per-channel normalisation mean (3 values; default :data:`IMAGENET_MEAN`).
        image_std: per-channel normalisation std (3 values; default :data:`IMAGENET_STD`).
        options: further keyword arguments of ``torchvision.models.detection.MaskRCNN``
            (``box_score_thresh``, ``rpn_post_nms_top_n_train``, ...).

    Returns:
        The ``MaskRCNN`` module in training mode, on the CPU.

    Raises:
        UsageError: an unknown variant, ``num_classes < 2``, ``in_channels`` other than 1 or 3,
            non-positive sizes or ``trainable_backbone_layers`` outside 0..5.
        WeightsError: see :func:`load_local_weights`.

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
        norm = misc_nn_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
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


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What :func:`load_local_weights` did with a weights file.

    ``kind``: ``"maskrcnn"`` (a whole Mask R-CNN state dict) or ``"backbone"`` (a ResNet-50).
    ``loaded``: model keys filled from the file. ``skipped``: ``(key, file shape, model
    shape)`` of entries whose shape does not fit (the class-specific predictor layers of a
    model trained on other classes). ``missing``: model keys the file does not have (for a
    backbone file, only backbone keys are counted). ``unexpected``: file keys the model lacks.
    """

    path: Path
    kind: str
    loaded: tuple[str, ...]
    skipped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def summary(self) -> str:
        """One line: counts of loaded, skipped, missing and unexpected entries."""
        return (
            f"{self.path}: {self.kind} weights, {len(self.loaded)} tensors loaded, "
            f"{len(self.skipped)} skipped (shape), {len(self.missing)} missing, "
            f"{len(self.unexpected)} unused"
        )


def load_local_weights(model: nn.Module, path: str | Path) -> LoadReport:
    """Load a local weights file into ``model`` wherever names and shapes match.

    The file is read with ``torch.load(weights_only=True)`` (no code runs) onto the CPU. It
    may hold:

    * a Mask R-CNN state dict (for example torchvision's COCO-pretrained one, 91 classes), or
      a checkpoint that nests one under ``"model"`` / ``"state_dict"`` / ``"model_state_dict"``;
      a ``module.`` prefix (DataParallel) is removed. Entries whose shape differs, such as the
      class-specific box and mask predictors of another class count, are skipped;
    * a ResNet-50 state dict (``conv1.weight``, ``layer1.0...``): loaded into the backbone,
      its ``fc`` classifier ignored.

    What was skipped is logged (INFO), entries the model expects but the file lacks too.

    Raises:
        WeightsError: the file is missing, a folder, unreadable as a weights-only torch file,
            holds no state dict, or nothing in it fits the model.

    Example:
        >>> torch.save(model.state_dict(), "w.pt")  # doctest: +SKIP
        >>> new = build_model(num_classes=5, min_size=64)  # doctest: +SKIP
        >>> [key for key, *_ in load_local_weights(new, "w.pt").skipped][:1]  # doctest: +SKIP
        ['roi_heads.box_predictor.cls_score.weight']
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, not a weights file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds for a damaged or foreign file
        raise WeightsError(
            f"{path}: cannot be read as a torch weights file (weights only): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    state = _state_dict(data, path)
    own = model.state_dict()
    kind, state = _classify(state, path)
    loadable: dict[str, torch.Tensor] = {}
    skipped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    unexpected: list[str] = []
    for key, tensor in state.items():
        if key not in own:
            if not key.endswith("num_batches_tracked"):
                unexpected.append(key)
        elif tuple(tensor.shape) != tuple(own[key].shape):
            skipped.append((key, tuple(tensor.shape), tuple(own[key].shape)))
        else:
            loadable[key] = tensor
    scope = "backbone.body." if kind == "backbone" else ""
    missing = [
        key
        for key in own
        if key.startswith(scope) and key not in state and not key.endswith("num_batches_tracked")
    ]
    if not loadable:
        raise WeightsError(
            f"{path}: none of its {len(state)} tensors fits this model (a different "
            "architecture or variant?)"
        )
    model.load_state_dict(loadable, strict=False)
    report = LoadReport(
        path=path,
        kind=kind,
        loaded=tuple(loadable),
        skipped=tuple(skipped),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
    )
    logger.info("%s", report.summary())
    for key, have, want in skipped:
        logger.info("%s: skipped %s: shape %s in the file, %s in the model", path, key, have, want)
    other = [k for k in missing if not k.startswith(PREDICTOR_PREFIXES)]
    if other:
        logger.warning(
            "%s: %d model tensors are not in the file and keep their initial values (first: %s)",
            path,
            len(other),
            ", ".join(other[:3]),
        )
    return report


def _state_dict(data: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, possibly nested in a checkpoint; ``module.`` removed."""
    for _depth in range(3):
        if not isinstance(data, Mapping):
            break
        tensors = {str(k): v for k, v in data.items() if isinstance(k, str) and torch.is_tensor(v)}
        if tensors:
            return {k.removeprefix("module."): v for k, v in tensors.items()}
        nested = next((data[k] for k in _NESTED_KEYS if isinstance(data.get(k), Mapping)), None)
        if nested is None:
            break
        data = nested
    raise WeightsError(
        f"{path}: holds no state dict (expected a mapping of names to tensors, or a checkpoint "
        f"with one under {', '.join(map(repr, _NESTED_KEYS))})"
    )


def _classify(state: dict[str, torch.Tensor], path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """``("maskrcnn", state)`` or ``("backbone", state with keys moved into the backbone)``."""
    if any(k.startswith(("backbone.", "roi_heads.", "rpn.")) for k in state):
        return "maskrcnn", state
    if "conv1.weight" in state and any(k.startswith("layer1.") for k in state):
        moved = {f"backbone.body.{k}": v for k, v in state.items() if not k.startswith("fc.")}
        return "backbone", moved
    first = ", ".join(list(state)[:3])
    raise WeightsError(
        f"{path}: neither a Mask R-CNN nor a ResNet-50 state dict (first keys: {first})"
    )


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
