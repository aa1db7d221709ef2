"""The user's own augmentation pipeline on dataset samples: :class:`WindowTransform`.

``SegmentationDataset(..., transform=...)`` and ``InstanceDataset(..., transform=...)`` take an
albumentations pipeline (``A.Compose``, one transform, or one loaded with ``A.load``) or any
callable with albumentations' dict interface: called with keyword arguments, it returns a dict
with the same keys. It runs on 2D windows, after microprep's own augmentation and
normalisation, before the image is turned channels-first. It receives:

* ``image``: float32 ``(H, W, C)``, normalised (mostly in ``[0, 1]``, the range albumentations
  expects of float images; its pixel transforms clip to it);
* ``mask`` (segmentation): the class map, uint8 ``(H, W)`` (uint16 beyond 255 classes), 0 where
  the window holds no valid pixels;
* ``masks``: uint8 ``(N + 2, H, W)``: the N instance masks (instances; none for segmentation),
  then two validity markers (1 and 2 on valid pixels, 0 elsewhere). A pixel is valid after the
  pipeline when both markers still hold their value, so areas brought in from outside the
  window by any constant fill (``fill_mask``, 0 or 255 or anything else) are not valid;
* ``bboxes``: the N boxes (none for segmentation), ``pascal_voc`` float32 ``(N, 4)``
  ``x_min, y_min, x_max, y_max`` in pixels, passed to plain callables, and to albumentations
  pipelines only when they declare ``bbox_params`` (then converted to its format, with the
  class labels in each of its ``label_fields``).

What comes back must keep the window's height, width and channel count (samples are batched).
Instances whose mask is empty afterwards (moved out of the window) are dropped, and the boxes
are recomputed from the masks (the returned ``bboxes`` are not used), so boxes, masks, labels
and ``valid`` always agree. Pipelines of albumentations are drawn from a generator seeded by
``(seed, index, epoch)``, like microprep's own augmentation: a sample is the same in any
worker; a plain callable draws its own randomness.

Example:
    >>> import numpy as np
    >>> flip = WindowTransform(lambda **d: {**d, "image": d["image"][:, ::-1],
    ...                                     "mask": d["mask"][:, ::-1],
    ...                                     "masks": d["masks"][:, :, ::-1]})
    >>> image = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> labels, valid = np.array([[0, 1, 2], [0, 1, 2]]), np.ones((2, 3), bool)
    >>> out = flip.segmentation(image, labels, valid, rng=np.random.default_rng(0))
    >>> out[0].tolist(), out[1].tolist()
    ([[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]], [[2, 1, 0], [2, 1, 0]])
"""

from __future__ import annotations

import copy
import json
import logging
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import UsageError

__all__ = [
    "WindowTransform",
    "boxes_from_masks",
    "load_pipeline",
    "transform_rng",
    "window_transform",
]

logger = logging.getLogger(__name__)

#: The albumentations release the feature is built and tested against.
ALBUMENTATIONS = "albumentations==2.0.8"


def transform_rng(*, seed: int, index: int, epoch: int) -> np.random.Generator:
    """The generator of the user pipeline on sample ``index`` in ``epoch``: a child of
    microprep's own augmentation seed ``(seed, index, epoch)``, independent of its draws.

    Example:
        >>> a = transform_rng(seed=0, index=3, epoch=1).integers(1000)
        >>> bool(a == transform_rng(seed=0, index=3, epoch=1).integers(1000))
        True
    """
    parent = np.random.SeedSequence([int(seed), int(index), int(epoch)])
    return np.random.default_rng(parent.spawn(1)[0])


def boxes_from_masks(masks: NDArray[Any]) -> NDArray[np.float64]:
    """``(N, 4)`` boxes ``x_min, y_min, x_max, y_max`` (exclusive max) of ``(N, H, W)`` masks;
    an empty mask gets zeros.

    Example:
        >>> m = np.zeros((1, 4, 5), np.uint8); m[0, 1:3, 2:5] = 1
        >>> boxes_from_masks(m).tolist()
        [[2.0, 1.0, 5.0, 3.0]]
    """
    out = np.zeros((len(masks), 4), np.float64)
    for k, mask in enumerate(masks):
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        if rows.any():
            y = np.flatnonzero(rows)
            x = np.flatnonzero(cols)
            out[k] = (x[0], y[0], x[-1] + 1, y[-1] + 1)
    return out


def _is_albumentations(transform: Any) -> bool:
    return type(transform).__module__.split(".")[0] == "albumentations"


def _import_albumentations(what: str) -> Any:
    try:
        import albumentations
    except ImportError as exc:
        raise UsageError(
            f"{what} needs the albumentations package, which is not installed: "
            f"pip install '{ALBUMENTATIONS}'"
        ) from exc
    return albumentations


def load_pipeline(path: str | Path, *, key: str = "data.albumentations") -> Any:
    """An albumentations pipeline saved with ``A.save`` (``.json``, or ``.yaml`` / ``.yml``).

    Raises:
        UsageError: albumentations is not installed, the file is missing, or it does not hold
            a pipeline albumentations can load (naming ``key``, the file and the reason).
    """
    path = Path(path)
    albumentations = _import_albumentations(f"{key}: {path}")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise UsageError(
            f"{key}: {path}: {what}; give a pipeline file written by albumentations' "
            "A.save(pipeline, 'pipeline.json')"
        )
    data_format = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    try:
        pipeline = albumentations.load(str(path), data_format=data_format)
    except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"{key}: {path}: not an albumentations {data_format} pipeline ({reason}); write "
            "it with A.save(pipeline, path)"
        ) from exc
    except Exception as exc:  # YAML and pydantic errors of the file's content
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{key}: {path}: cannot load the pipeline: {reason}") from exc
    logger.info("%s: loaded %s", path, type(pipeline).__name__)
    return pipeline


class WindowTransform:
    """A user pipeline (albumentations or a callable with its dict interface) applied to 2D
    windows, keeping instances, boxes and the valid mask consistent (see the module docstring).

    An albumentations pipeline is copied, so seeding it per sample leaves the caller's alone.

    Raises:
        UsageError: ``transform`` is not callable.
    """

    def __init__(self, transform: Callable[..., Mapping[str, Any]]) -> None:
        if not callable(transform):
            raise UsageError(
                f"transform must be an albumentations pipeline or a callable taking image=, "
                f"mask=, masks= and returning a dict, got {type(transform).__name__}"
            )
        self.albumentations = _is_albumentations(transform)
        self.transform = copy.deepcopy(transform) if self.albumentations else transform

    def __repr__(self) -> str:
        return f"WindowTransform({self.transform!r})"

    def _bbox_params(self) -> Any | None:
        processors = getattr(self.transform, "processors", None)
        if not isinstance(processors, dict):
            return None
        processor = processors.get("bboxes")
        return None if processor is None else processor.params

    def _boxes_in(
        self, boxes: NDArray[Any], labels: NDArray[Any], shape: tuple[int, int]
    ) -> dict[str, Any]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not self.albumentations:
            return {"bboxes": boxes}
        params = self._bbox_params()
        if params is None:
            return {}
        from albumentations.core.bbox_utils import (
            convert_bboxes_from_albumentations,
            normalize_bboxes,
        )

        size = {"height": shape[0], "width": shape[1]}
        out: dict[str, Any] = {
            "bboxes": convert_bboxes_from_albumentations(
                normalize_bboxes(boxes, size), params.format, size
            )
        }
        for name in params.label_fields or ():
            out[name] = np.asarray(labels).tolist()
        return out

    def _call(self, data: dict[str, Any], rng: np.random.Generator) -> Mapping[str, Any]:
        if self.albumentations and hasattr(self.transform, "set_random_state"):
            py_random = random.Random(int(rng.integers(2**63)))
            self.transform.set_random_state(rng, py_random)
        try:
            out = self.transform(**data)
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(
                f"the transform {type(self.transform).__name__} failed on a window of shape "
                f"{data['image'].shape}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, Mapping) or "image" not in out or "masks" not in out:
            raise UsageError(
                f"the transform {type(self.transform).__name__} must return a dict with "
                "'image' and 'masks' (and 'mask' for segmentation), like albumentations"
            )
        return out

    def _image_out(self, out: Mapping[str, Any], image: NDArray[Any]) -> NDArray[np.float32]:
        result = np.asarray(out["image"], np.float32)
        if result.ndim == 2:
            result = result[..., None]
        want = (*image.shape[:2], 1 if image.ndim == 2 else image.shape[2])
        if result.shape != want:
            raise UsageError(
                f"the transform {type(self.transform).__name__} turned a window of shape "
                f"{want} (height, width, channels) into {result.shape}: it must keep the "
                "window's size and channels (crop or resize back to the window)"
            )
        return result[..., 0] if image.ndim == 2 else result

    def _masks_out(self, out: Mapping[str, Any], n: int, shape: tuple[int, ...]) -> NDArray[Any]:
        masks = np.asarray(out["masks"])
        if masks.shape != (n + 2, *shape):
            raise UsageError(
                f"the transform {type(self.transform).__name__} returned masks of shape "
                f"{masks.shape}, expected {(n + 2, *shape)}: it must move every mask it is "
                "given, the two validity markers at the end included"
            )
        return masks

    @staticmethod
    def _markers(valid: NDArray[np.bool_]) -> NDArray[np.uint8]:
        one = valid.astype(np.uint8)
        return np.stack([one, one * 2])

    @staticmethod
    def _valid(masks: NDArray[Any]) -> NDArray[np.bool_]:
        return np.asarray((masks[-2] == 1) & (masks[-1] == 2))

    def segmentation(
        self,
        image: NDArray[Any],
        labels: NDArray[Any],
        valid: NDArray[np.bool_],
        *,
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.float32], NDArray[Any], NDArray[np.bool_]]:
        """``(image (H, W[, c]) float32, labels (H, W), valid (H, W))`` after the pipeline;
        labels are 0 where not valid."""
        shape = labels.shape
        dtype = np.uint8 if int(labels.max(initial=0)) < 256 else np.uint16
        data: dict[str, Any] = {
            "image": np.ascontiguousarray(image if image.ndim == 3 else image[..., None]),
            "mask": np.where(valid, labels, 0).astype(dtype),
            "masks": self._markers(valid),
            **self._boxes_in(np.zeros((0, 4)), np.zeros(0, np.int64), shape),
        }
        out = self._call(data, rng)
        pixels = self._image_out(out, image)
        if "mask" not in out:
            raise UsageError(
                f"the transform {type(self.transform).__name__} must return the 'mask' it is given"
            )
        mask = np.asarray(out["mask"])
        if mask.shape != shape:
            raise UsageError(
                f"the transform {type(self.transform).__name__} returned a mask of shape "
                f"{mask.shape}, expected {shape}"
            )
        new_valid = self._valid(self._masks_out(out, 0, shape))
        new_labels = np.where(new_valid, mask, 0).astype(labels.dtype)
        return pixels, new_labels, new_valid

    def instances(
        self,
        image: NDArray[Any],
        masks: NDArray[Any],
        labels: NDArray[np.int64],
        valid: NDArray[np.bool_],
        *,
        rng: np.random.Generator,
    ) -> tuple[
        NDArray[np.float32],
        NDArray[np.float64],
        NDArray[np.int64],
        NDArray[np.uint8],
        NDArray[np.bool_],
    ]:
        """``(image, boxes (N', 4), labels (N',), masks (N', H, W) uint8, valid (H, W))``
        after the pipeline: instances with an empty mask are dropped, boxes recomputed."""
        shape = valid.shape
        n = len(masks)
        stacked = np.concatenate(
            [np.asarray(masks, np.uint8).reshape(n, *shape), self._markers(valid)]
        )
        data: dict[str, Any] = {
            "image": np.ascontiguousarray(image if image.ndim == 3 else image[..., None]),
            "masks": stacked,
            **self._boxes_in(boxes_from_masks(masks), labels, shape),
        }
        out = self._call(data, rng)
        pixels = self._image_out(out, image)
        moved = self._masks_out(out, n, shape)
        new_valid = self._valid(moved)
        kept = (moved[:n] > 0).astype(np.uint8)
        present = kept.reshape(n, -1).any(axis=1)
        kept = kept[present]
        return pixels, boxes_from_masks(kept), labels[present], kept, new_valid


def window_transform(
    transform: Callable[..., Mapping[str, Any]] | None, dataset: Any
) -> WindowTransform | None:
    """``transform`` wrapped for ``dataset`` (None stays None).

    Raises:
        UsageError: the dataset serves volumes (the pipeline works on 2D windows), or
            ``transform`` is not callable.
    """
    if transform is None:
        return None
    if dataset.ndim != 2:
        raise UsageError(
            f"{dataset.path}: transform= works on 2D windows and this store holds volumes; "
            "use augment= (microprep's own 3D geometry and noise) instead"
        )
    return WindowTransform(transform)
