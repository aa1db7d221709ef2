"""Prediction stores built with the prediction writers from synthetic class maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microprep.model import AnnotatedImage
from microprep.predict.instances import InstancePrediction
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.write import PredictionWriter
from microprep.readers import ReadOptions, read_annotations
from microprep.targets import build_targets
from microprep.targets.types import Raster

CLASSES = ["background", "pore", "grain", "crack"]
COLORS = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]


def tricky_map() -> np.ndarray:
    """Holes (empty and filled with another class), touching regions of different classes,
    diagonal-only connections, regions on every border, single pixels, a region in a hole."""
    m = np.zeros((24, 30), np.uint8)
    m[2:12, 2:12] = 1
    m[5:8, 5:8] = 0  # an empty hole
    m[9:11, 9:11] = 2  # a hole filled with another class
    m[4:8, 12:18] = 2  # touching class 1
    m[12, 12] = 3
    m[13, 13] = 3  # diagonal only: two regions
    m[14, 12] = 3
    m[0, :] = 2  # top border
    m[:, 29] = 3  # right border
    m[23, 0] = 1  # single pixel, corner
    m[18:24, 18:26] = 1
    m[19:23, 19:25] = 0
    m[20:22, 21:23] = 1  # a region of the same class inside a hole
    m[16, 5] = 2  # single pixel
    m[15:18, 8:11] = 1
    m[16, 9] = 0  # a one-pixel hole
    return m


def semantic_store(path: Path, maps: dict[str, np.ndarray]) -> Path:
    """A semantic prediction store whose class maps are exactly ``maps``."""
    writer = PredictionWriter(path, classes=CLASSES, colors=COLORS, kind="semantic")
    for name, class_map in maps.items():
        node = writer.begin(name, class_map.shape, probabilities=None)
        probs = np.eye(len(CLASSES), dtype=np.float32)[class_map].transpose(2, 0, 1)
        writer.write_rows(node, 0, class_map.shape[0], probs)
        writer.finish_node(node)
    writer.close()
    return path


def instance_prediction() -> InstancePrediction:
    """Three objects: two overlapping (the higher score on top), one with a hole."""
    a = np.ones((6, 6), bool)
    b = np.ones((5, 5), bool)
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False
    return InstancePrediction.from_rasters(
        (20, 20),
        [Raster((2, 2), a), Raster((5, 5), b), Raster((12, 12), ring)],
        labels=[1, 2, 1],
        scores=[0.9, 0.8, 0.3],
    )


def instance_store(
    path: Path, prediction: InstancePrediction | None = None, name: str = "cells/a.png"
) -> Path:
    """An instance prediction store of one image (``instance_prediction()`` by default)."""
    write_instance_predictions(
        [PredictedImage(name, instance_prediction() if prediction is None else prediction)],
        path,
        classes=CLASSES,
        colors=COLORS,
        coco=False,
        overlays=False,
    )
    return path


def objects(path: Path, options: ReadOptions | None = None) -> list[tuple[str, np.ndarray]]:
    """(class name, full-image bool mask) of every object an export converts into, sorted by
    pixel count."""
    annotations = read_annotations(path, options=options)
    names = annotations.labels.class_names
    out = []
    for item in annotations:
        targets = build_targets(AnnotatedImage(item.image, item.shapes), annotations.labels)
        for raster, label in zip(targets.instances.rasters, targets.instances.labels, strict=True):
            full = np.zeros((item.image.height, item.image.width), bool)
            (top, left), m = raster.origin, raster.mask
            full[top : top + m.shape[0], left : left + m.shape[1]] = m
            out.append((names[int(label)], full))
    return sorted(out, key=lambda o: int(o[1].sum()))
