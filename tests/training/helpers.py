"""A tiny learnable store and the tiny trainer plugin for the training tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Targets

PLUGIN_SOURCE = Path(__file__).parent / "tiny_trainer"


def learnable_store(path: Path, *, count: int = 4, size: int = 32, seed: int = 0) -> Path:
    """``count`` images whose bright squares are class 1 and dark squares class 2."""
    rng = np.random.default_rng(seed)
    lm = LabelMap((LabelSpec("bright"), LabelSpec("dark")))
    with ZarrSink(path, lm, provenance={"source": "synthetic", "sha256": None}) as sink:
        for k in range(count):
            labels = np.zeros((size, size), np.uint8)
            for value in (1, 2):
                y, x = rng.integers(0, size - 10, 2)
                labels[y : y + 9, x : x + 9] = value
            image = np.where(labels == 1, 200, np.where(labels == 2, 40, 120)).astype(np.float64)
            image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
            name = f"img{k}.png"
            targets = Targets(
                name, (ImageInfo(name, size, size),), labels, Instances.empty((size, size)), 3
            )
            sink.add(targets, image)
    return path


def install_plugin(target: Path) -> Path:
    """Install the tiny plugin package into ``target`` (a folder for PYTHONPATH) with pip."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN_SOURCE),
        ],
        check=True,
        capture_output=True,
    )
    return target


def learnable_volume(path: Path, *, depth: int = 16, size: int = 16, seed: int = 0) -> Path:
    """One ``(depth, size, size)`` volume with a bright cube (class 1) and a dark one (2)."""
    rng = np.random.default_rng(seed)
    lm = LabelMap((LabelSpec("bright"), LabelSpec("dark")))
    labels = np.zeros((depth, size, size), np.uint8)
    labels[2:8, 2:8, 2:8] = 1
    labels[8:14, 8:14, 8:14] = 2
    image = np.where(labels == 1, 200, np.where(labels == 2, 40, 120)).astype(np.float64)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    infos = tuple(ImageInfo(f"slice{k:02d}.png", size, size) for k in range(depth))
    with ZarrSink(path, lm, provenance={"source": "synthetic", "sha256": None}) as sink:
        sink.add(Targets("vol", infos, labels, Instances.empty(labels.shape), 3), image)
    return path
