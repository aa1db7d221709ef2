"""The built-in output kinds of ``prep convert --to``, registered in :mod:`microprep.registry`.

Each factory imports its writer only when a conversion asks for it. ``prep convert --to`` and
``prep export --to`` (every kind but the store) take their kinds from the same table.

Example:
    >>> from microprep.registry import sink_kind
    >>> sink_kind("coco").output, sink_kind("zarr").store
    ('coco.json', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microprep.exports import Sink, SinkFactory
from microprep.model import LabelMap
from microprep.registry import SinkKind, builtin

#: Name of the store inside the output folder when ``--to`` also asks for file exports.
STORE_NAME = "dataset.zarr"


def _lazy(module: str, name: str) -> SinkFactory:
    """A factory that imports ``module.name`` (a sink class) only when it is called."""

    def factory(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
        cls: SinkFactory = getattr(importlib.import_module(module), name)
        return cls(root, labels, provenance=provenance)

    factory.__qualname__ = factory.__name__ = f"{name}_factory"
    return factory


BUILTIN_SINKS = tuple(
    builtin(kind)
    for kind in (
        SinkKind(
            "zarr",
            _lazy("microprep.store", "ZarrSink"),
            STORE_NAME,
            "the zarr store (training input)",
            store=True,
            order=10,
            bands=True,
        ),
        SinkKind(
            "masks",
            _lazy("microprep.exports.masks", "MasksSink"),
            "masks",
            "class-index PNGs + classes.txt",
            order=20,
            bands=True,
        ),
        SinkKind(
            "onehot",
            _lazy("microprep.exports.masks", "OneHotSink"),
            "onehot",
            "(C, H, W) one-hot .npy files",
            order=30,
        ),
        SinkKind(
            "coco",
            _lazy("microprep.exports.coco", "CocoSink"),
            "coco.json",
            "COCO instances JSON (RLE masks)",
            order=40,
        ),
        SinkKind(
            "yolo",
            _lazy("microprep.exports.yolo", "YoloSink"),
            "labels",
            "YOLO segmentation labels + data.yaml",
            order=50,
            bands=True,
        ),
        SinkKind(
            "ome-zarr",
            _lazy("microprep.exports.omezarr", "OmeZarrSink"),
            "",
            "one OME-Zarr image per node with its label images (napari, Fiji)",
            order=60,
        ),
        SinkKind(
            "nnunet",
            _lazy("microprep.exports.nnunet", "NnUNetSink"),
            "dataset.json",
            "an nnU-Net v2 raw dataset (imagesTr, labelsTr, dataset.json, splits)",
            order=70,
        ),
        SinkKind(
            "cellpose",
            _lazy("microprep.exports.cellpose", "CellposeSink"),
            "",
            "Cellpose training folders (NAME.tif + NAME_masks.tif)",
            order=80,
        ),
        SinkKind(
            "stardist",
            _lazy("microprep.exports.stardist", "StarDistSink"),
            "",
            "StarDist training folders (images/, masks/)",
            order=90,
        ),
    )
)
