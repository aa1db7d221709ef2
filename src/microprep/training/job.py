"""What a trainer plugin is handed: :class:`TrainJob` for ``fit``, :class:`PredictRequest` for
``predict``. Plain data; no torch import here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microprep.training.rundir import RunDir


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a ``torchrun`` job (``rank 0 of 1`` without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the process that writes the run directory (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def dist_info() -> DistInfo:
    """This process's rank, world size and local rank from the ``torchrun`` environment."""
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


@dataclass(frozen=True)
class TrainJob:
    """One training run.

    Attributes:
        dataset: the dataset store (``DATASET.zarr``) to train on.
        config: the validated configuration, defaults filled (see ``docs/training.md``).
        run: the run directory (checkpoints, metrics, curves, summary).
        resume: continue from the last good checkpoint in ``run`` (when there is one).
        dist: the ``torchrun`` ranks (rank 0 of 1 when not distributed).
        progress: show progress bars.
    """

    dataset: Path
    config: dict[str, Any]
    run: RunDir
    resume: bool = False
    dist: DistInfo = field(default_factory=DistInfo)
    progress: bool = True


@dataclass(frozen=True)
class PredictRequest:
    """One prediction run of a trained model.

    Attributes:
        run: the finished (or checkpointed) run directory whose weights are used.
        source: what to predict: a dataset store, an image file, a folder of images or a
            TIFF stack.
        out: the output path (``PRED.zarr``); written atomically.
        options: trainer-specific options from the command line (``overlap``,
            ``batch_size``, ``probabilities``, thresholds, ``device``...), already parsed.
        checkpoint: a specific checkpoint file (default: the run's best, else its last good).
        progress: show progress bars.
    """

    run: RunDir
    source: Path
    out: Path
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    progress: bool = True
