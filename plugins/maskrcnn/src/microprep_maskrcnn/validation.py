"""Validation of a Mask R-CNN on the windows of a loader: COCO AP of boxes and masks, and loss.

:func:`evaluate_detector` runs the model in eval mode over a loader of
:class:`~microprep.data.InstanceDataset` batches (``(images, targets)`` from
:func:`~microprep.data.collate_instances`) and scores its detections with pycocotools'
``COCOeval`` (:func:`microprep.evaluate.coco.evaluate_instances`, given in-memory dicts):

* **ground truth**: one COCO image per window, ``id = image_id + 1`` (the dataset index, so
  every window is one image), with its objects as annotations (mask as compressed RLE, box
  ``[x, y, w, h]`` from the target's box, area = mask pixels). Windows without objects stay in
  as images without annotations: detections there count as false positives. Pixels the
  target marks not ``valid`` (not annotated, padding) are left out as ``prep evaluate`` does
  (:mod:`microprep.evaluate.coco_truth`): objects mostly there are ``iscrowd``, detections
  mostly there are dropped.
* **detections**: those scoring at least ``score_threshold``, masks thresholded at
  ``mask_threshold`` (0.5) and RLE-encoded, boxes from the model.
* **loss**: the model's training loss on the same batches, with batch norm layers in eval mode
  so validation never changes the running statistics.

Example:
    >>> scores = evaluate_detector(model, val_loader, torch.device("cpu"), precision,
    ...                            classes=("background", "pore"))  # doctest: +SKIP
    >>> sorted(scores)  # doctest: +SKIP
    ['bbox_ap', 'bbox_ap50', 'bbox_ap75', 'loss', 'segm_ap', 'segm_ap50', 'segm_ap75']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from torch import nn

from microprep.evaluate.coco import evaluate_instances
from microprep.evaluate.coco_truth import IGNORED_FRACTION, ORIGIN_KEY
from microprep.training.runtime import Precision

__all__ = ["METRICS", "detection_records", "encode_masks", "evaluate_detector", "window_truth"]

logger = logging.getLogger(__name__)

#: The keys :func:`evaluate_detector` returns (``loss`` too when asked for).
METRICS = ("segm_ap", "segm_ap50", "segm_ap75", "bbox_ap", "bbox_ap50", "bbox_ap75")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def encode_masks(masks: NDArray[Any]) -> list[dict[str, Any]]:
    """COCO compressed RLE (``{"size": [H, W], "counts": str}``) of ``(N, H, W)`` masks
    (nonzero = inside).

    Example:
        >>> m = np.zeros((1, 2, 3), np.uint8); m[0, 1, 1:] = 1
        >>> encode_masks(m)[0]["size"]
        [2, 3]
    """
    array = np.asarray(masks)
    if not len(array):
        return []
    fortran = np.asfortranarray(np.moveaxis(array != 0, 0, -1).astype(np.uint8))
    out = []
    for rle in coco_mask.encode(fortran):
        counts = rle["counts"]
        out.append(
            {
                "size": [int(v) for v in rle["size"]],
                "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
            }
        )
    return out


def _xywh(boxes: NDArray[Any]) -> list[list[float]]:
    """``x_min, y_min, x_max, y_max`` rows as COCO ``[x, y, w, h]`` lists."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in b.tolist()]


def window_truth(
    target: Mapping[str, torch.Tensor], *, height: int, width: int, first_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO image and annotations of one window's target.

    Args:
        target: an :class:`~microprep.data.InstanceTarget` (``boxes`` (N, 4) xyxy px,
            ``labels`` (N,), ``masks`` (N, H, W) uint8, ``image_id``, optionally ``valid``
            (H, W) bool: the image gets the RLE of the invalid pixels under
            ``"microprep"`` / ``"ignore"``, objects mostly there ``iscrowd`` 1).
        height, width: the window's size in pixels.
        first_id: the id of the first annotation.

    Returns:
        ``(image, annotations)``; the image id is ``image_id + 1``.
    """
    image_id = int(target["image_id"]) + 1
    image = {
        "id": image_id,
        "file_name": f"window {image_id - 1}",
        "width": width,
        "height": height,
    }
    masks = target["masks"].detach().cpu().numpy()
    labels = target["labels"].detach().cpu().numpy().reshape(-1)
    boxes = _xywh(target["boxes"].detach().cpu().numpy())
    ignored = None
    if "valid" in target:
        ignored = ~target["valid"].detach().cpu().numpy().astype(bool)
        if ignored.any():
            [rle] = encode_masks(ignored[None])
            image[ORIGIN_KEY] = {"name": image["file_name"], "ignore": rle}
        else:
            ignored = None
    annotations = []
    for k, rle in enumerate(encode_masks(masks)):
        area = int(np.count_nonzero(masks[k]))
        crowd = ignored is not None and (
            np.count_nonzero(ignored & (masks[k] != 0)) > IGNORED_FRACTION * area
        )
        annotations.append(
            {
                "id": first_id + k,
                "image_id": image_id,
                "category_id": int(labels[k]),
                "segmentation": rle,
                "area": float(area),
                "bbox": boxes[k],
                "iscrowd": int(crowd),
            }
        )
    return image, annotations


def detection_records(
    output: Mapping[str, torch.Tensor],
    *,
    image_id: int,
    score_threshold: float = 0.05,
    mask_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """COCO result records of one window's detections (torchvision's eval-mode output:
    ``boxes`` (n, 4) xyxy, ``labels``, ``scores``, ``masks`` (n, 1, H, W) probabilities)."""
    scores = output["scores"].detach().float().cpu().numpy().reshape(-1)
    keep = np.flatnonzero(scores >= score_threshold)
    if not keep.size:
        return []
    masks = output["masks"].detach().float().cpu().numpy()[keep]
    masks = masks[:, 0] if masks.ndim == 4 else masks
    labels = output["labels"].detach().cpu().numpy().reshape(-1)[keep]
    boxes = _xywh(output["boxes"].detach().float().cpu().numpy()[keep])
    return [
        {
            "image_id": int(image_id),
            "category_id": int(labels[k]),
            "bbox": boxes[k],
            "score": float(scores[keep[k]]),
            "segmentation": rle,
        }
        for k, rle in enumerate(encode_masks(masks > mask_threshold))
    ]


def _loss(
    model: nn.Module, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
) -> float:
    """The training loss on one batch, batch norm frozen (running statistics untouched)."""
    model.train()
    for module in model.modules():
        if isinstance(module, _NORMS):
            module.eval()
    try:
        losses = model(images, targets)
    finally:
        model.eval()
    return float(sum(v.float() for v in losses.values()))


def evaluate_detector(
    model: nn.Module,
    loader: Iterable[tuple[Sequence[torch.Tensor], Sequence[Mapping[str, torch.Tensor]]]],
    device: torch.device,
    precision: Precision,
    *,
    classes: Sequence[str],
    score_threshold: float = 0.05,
    mask_threshold: float = 0.5,
    max_detections: int = 100,
    loss: bool = True,
) -> dict[str, float]:
    """COCO AP of ``model``'s detections on the windows of ``loader`` (see the module doc).

    Args:
        model: a torchvision detection model (eval mode: detections; train mode: losses).
        loader: batches ``(images, targets)``; ``images`` ``(C, H, W)`` float32 tensors.
        device: where the model is. precision: the run's autocast.
        classes: class names by index, background first.
        score_threshold: detections below are left out. mask_threshold: mask probability
            above which a pixel is the object's.
        max_detections: detections per window counted (the highest scored).
        loss: also return the mean training loss over the batches as ``"loss"``.

    Returns:
        ``{"segm_ap", "segm_ap50", "segm_ap75", "bbox_ap", "bbox_ap50", "bbox_ap75"[, "loss"]}``;
        COCO mAP (IoU 0.50:0.95), AP50 and AP75. ``nan`` when the windows hold no objects.
    """
    images_info: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    losses: list[float] = []
    model.eval()
    for images, targets in loader:
        batch = [image.to(device, non_blocking=True) for image in images]
        with precision.autocast():
            outputs = model(batch)
        for image, target, output in zip(batch, targets, outputs, strict=True):
            info, anns = window_truth(
                target,
                height=int(image.shape[-2]),
                width=int(image.shape[-1]),
                first_id=len(annotations) + 1,
            )
            images_info.append(info)
            annotations.extend(anns)
            records.extend(
                detection_records(
                    output,
                    image_id=info["id"],
                    score_threshold=score_threshold,
                    mask_threshold=mask_threshold,
                )
            )
        if loss:
            moved = [{k: v.to(device) for k, v in t.items()} for t in targets]
            with precision.autocast():
                losses.append(_loss(model, batch, moved))
    truth = {
        "images": images_info,
        "categories": [{"id": i, "name": str(c)} for i, c in enumerate(classes) if i > 0],
        "annotations": annotations,
    }
    out = dict.fromkeys(METRICS, math.nan)
    if images_info:
        report = evaluate_instances(records, truth, max_detections=max_detections)
        for kind in ("segm", "bbox"):
            scores = report.scores[kind]
            out.update(
                {f"{kind}_ap": scores.map, f"{kind}_ap50": scores.ap50, f"{kind}_ap75": scores.ap75}
            )
    if not annotations:
        logger.warning("the validation windows hold no objects: COCO AP is undefined (nan)")
    if loss:
        out["loss"] = float(np.mean(losses)) if losses else math.nan
    return out
