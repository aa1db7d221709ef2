"""The built-in output kinds of ``prep convert --to``, registered in :mod:`microprep.registry`.

Each factory imports its writer only when a conversion asks for it.

Example:
    >>> from microprep.registry import sink_kind
    >>> sink_kind("coco").output, sink_kind("zarr").store
    ('coco.json', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microprep.exports import Sink
from microprep.model import LabelMap
from microprep.registry import SinkKind, builtin

#: Name of the store inside the output folder when ``--to`` also asks for file exports.
STORE_NAME = "dataset.zarr"


def _zarr(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
    from microprep.store import ZarrSink

    return ZarrSink(root, labels, provenance=provenance)


def _masks(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
    from microprep.exports.masks import MasksSink

    return MasksSink(root, labels, provenance=provenance)


def _onehot(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
    from microprep.exports.masks import OneHotSink

    return OneHotSink(root, labels, provenance=provenance)


def _coco(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
    from microprep.exports.coco import CocoSink

    return CocoSink(root, labels, provenance=provenance)


def _yolo(root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink:
    from microprep.exports.yolo import YoloSink

    return YoloSink(root, labels, provenance=provenance)


BUILTIN_SINKS = tuple(
    builtin(kind)
    for kind in (
        SinkKind(
            "zarr", _zarr, STORE_NAME, "the zarr store (training input)", store=True, order=10
        ),
        SinkKind("masks", _masks, "masks", "class-index PNGs + classes.txt", order=20),
        SinkKind("onehot", _onehot, "onehot", "(C, H, W) one-hot .npy files", order=30),
        SinkKind("coco", _coco, "coco.json", "COCO instances JSON (RLE masks)", order=40),
        SinkKind("yolo", _yolo, "labels", "YOLO segmentation labels + data.yaml", order=50),
    )
)
