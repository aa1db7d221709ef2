"""The ``nnunet`` export: an nnU-Net v2 raw dataset (``nnUNet_raw/DatasetXXX_NAME``).

Layout of the output folder (see ``docs/exports.md``)::

    OUT/dataset.json                channel_names, labels, numTraining, file_ending
    OUT/imagesTr/CASE_0000.png      one file per channel (_0000, _0001, ...)
    OUT/labelsTr/CASE.png           class index map: 0 background, 1..K the classes
    OUT/imagesTs/CASE_0000.png      cases of the test split (their labels in labelsTs/)
    OUT/splits_final.json           when cases are split: one fold, train and val cases

2D images are PNG when their pixels are 8- or 16-bit unsigned, else TIFF (the first image
decides for the whole export, as nnU-Net wants one file ending). Volumes are TIFF
``(Z, Y, X)`` with a ``CASE.json`` beside them holding ``{"spacing": [z, y, x]}`` (the pixel
size, from ``--pixel-size`` or the TIFF metadata, and the slice distance when known; else 1),
and ``dataset.json`` names nnU-Net's ``Tiff3DIO`` reader. Unannotated pixels (the class map's
ignore index) become nnU-Net's ``ignore`` label, the highest label value.

Cases of the ``test`` split go to ``imagesTs``; ``train`` and ``val`` cases make the one fold
of ``splits_final.json`` (copy it into the preprocessed dataset folder, where nnU-Net reads it),
so its validation uses the same cases as ``prep split``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import InputError
from microprep.exports.cases import case_name, case_split, need_pixels
from microprep.exports.masks import PNG_COMPRESS_LEVEL
from microprep.model import LabelMap
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = ["NnUNetSink", "nnunet_labels"]


def nnunet_labels(labels: LabelMap) -> dict[str, int]:
    """``dataset.json``'s ``labels``: background 0, the classes 1..K, ``ignore`` K+1 if needed.

    Example:
        >>> from microprep.model import LabelSpec
        >>> nnunet_labels(LabelMap((LabelSpec("pore"), LabelSpec("x", role="ignore"))))
        {'background': 0, 'pore': 1, 'ignore': 2}
    """
    out = {name: i for i, name in enumerate(labels.class_names)}
    if labels.ignore_index is not None:
        out["ignore"] = labels.num_classes
    return out


class NnUNetSink:
    """nnU-Net v2 raw dataset: ``imagesTr``/``labelsTr``/``imagesTs``, ``dataset.json``.

    Args:
        root: the existing (empty) output folder.
        labels: the label map.
        provenance: facts about the run; ``splits`` (image name -> split) and ``pixel_size``
            (``(size, unit)``) are used.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> t = Targets("a.png", (ImageInfo("a.png", 2, 1),), np.array([[0, 1]], np.uint8),
        ...             Instances.empty((1, 2)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = NnUNetSink(Path(d), LabelMap((LabelSpec("pore"),)), provenance={})
        ...     sink.add(t, np.array([[7, 9]], np.uint8))
        ...     sink.close()
        ...     sorted(str(p.relative_to(d)) for p in Path(d).rglob("*.*"))
        ['dataset.json', 'imagesTr/a_0000.png', 'labelsTr/a.png']
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        self.provenance = dict(provenance)
        self.label_values = nnunet_labels(labels)
        size = provenance.get("pixel_size")
        self.spacing = float(size[0]) if size is not None else 1.0
        z = size[2] if size is not None and len(size) > 2 else None
        self.z_spacing = float(z) if z else self.spacing
        self.ending: str | None = None
        self.channels: int | None = None
        self.volume: bool | None = None
        self._taken: set[str] = set()
        self.cases: dict[str, list[str]] = {"train": [], "val": [], "test": [], "": []}
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write the image file(s) and the label file of one case."""
        image = need_pixels("nnunet", targets, pixels)
        cmap = np.asarray(targets.class_map)
        volume = cmap.ndim == 3
        channels = 1 if image.ndim == cmap.ndim else int(image.shape[-1])
        ending = ".tif" if volume or image.dtype not in (np.uint8, np.uint16) else ".png"
        if self.ending is None:
            self.ending, self.channels, self.volume = ending, channels, volume
        elif (ending, channels, volume) != (self.ending, self.channels, self.volume):
            raise InputError(
                f"{targets.name!r}: {channels} channel(s), {'3D' if volume else '2D'}, "
                f"{ending}; the export's first image was {self.channels} channel(s), "
                f"{'3D' if self.volume else '2D'}, {self.ending}: nnU-Net needs them alike"
            )
        split = case_split(targets, self.provenance) or ""
        case = case_name(targets.name, self._taken)
        self.cases[split].append(case)
        images_dir = self.root / ("imagesTs" if split == "test" else "imagesTr")
        labels_dir = self.root / ("labelsTs" if split == "test" else "labelsTr")
        images_dir.mkdir(exist_ok=True)
        labels_dir.mkdir(exist_ok=True)
        planes = [image] if image.ndim == cmap.ndim else np.moveaxis(image, -1, 0)
        for index, plane in enumerate(planes):
            self._write(images_dir / f"{case}_{index:04d}{ending}", np.ascontiguousarray(plane))
        self._write(labels_dir / f"{case}{ending}", self._label_values(cmap))
        if volume:
            for folder in (images_dir, labels_dir):
                (folder / f"{case}.json").write_text(
                    json.dumps({"spacing": [self.z_spacing, self.spacing, self.spacing]})
                )

    def _label_values(self, cmap: NDArray[Any]) -> NDArray[Any]:
        top = max(self.label_values.values())
        out = cmap.astype(np.uint8 if top < 256 else np.uint16)
        if self.labels.ignore_index is not None:
            out[cmap == self.labels.ignore_index] = self.label_values["ignore"]
        return out

    def _write(self, path: Path, arr: NDArray[Any]) -> None:
        if path.suffix == ".png":
            Image.fromarray(arr).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            tifffile.imwrite(path, arr, compression="zlib", photometric="minisblack")

    def close(self) -> None:
        """Write ``dataset.json`` and, when cases are split, ``splits_final.json``."""
        training = self.cases["train"] + self.cases["val"] + self.cases[""]
        dataset: dict[str, Any] = {
            "channel_names": {str(i): f"channel{i}" for i in range(self.channels or 1)},
            "labels": self.label_values,
            "numTraining": len(training),
            "file_ending": self.ending or ".png",
            "name": str(self.provenance.get("source", "microprep")),
            "description": "written by microprep (prep convert / prep export --to nnunet)",
        }
        if self.volume:
            dataset["overwrite_image_reader_writer"] = "Tiff3DIO"
        (self.root / "dataset.json").write_text(json.dumps(dataset, indent=2), encoding="utf-8")
        if self.cases["val"]:
            fold = {"train": self.cases["train"] + self.cases[""], "val": self.cases["val"]}
            (self.root / "splits_final.json").write_text(json.dumps([fold], indent=2))
        logger.info(
            "%s: %d training case(s), %d test case(s)",
            self.root,
            len(training),
            len(self.cases["test"]),
        )
