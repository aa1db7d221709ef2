"""Starting weights for the Mask R-CNN from a *local* file: :func:`load_local_weights`.

Nothing is downloaded. The file is read with ``torch.load(weights_only=True)`` (no code in it
can run) and may hold a whole Mask R-CNN state dict (for example torchvision's COCO-pretrained
one saved beforehand, or a training checkpoint nesting one) or a ResNet-50 state dict (ImageNet
weights for the backbone). Tensors are loaded wherever names and shapes match; what was skipped
or is missing is logged and returned as a :class:`LoadReport`.

Example:
    >>> from microprep_maskrcnn.model import build_model  # doctest: +SKIP
    >>> model = build_model(num_classes=3, min_size=256)  # doctest: +SKIP
    >>> load_local_weights(model, "maskrcnn_coco.pth").kind  # doctest: +SKIP
    'maskrcnn'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microprep.errors import UsageError

logger = logging.getLogger(__name__)

__all__ = ["PREDICTOR_PREFIXES", "LoadReport", "WeightsError", "load_local_weights"]

#: Keys of the class-specific output layers (their shape depends on the number of classes).
PREDICTOR_PREFIXES = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
#: Keys under which a checkpoint file may nest the model's state dict.
_NESTED_KEYS = ("model", "state_dict", "model_state_dict", "model_state")


class WeightsError(UsageError):
    """A local weights file that is missing, unreadable, or holds nothing this model can use."""


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
