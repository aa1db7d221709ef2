"""Training infrastructure shared by every trainer plugin.

Torch-free (import freely): :mod:`.config` (schemas, defaults, overrides), :mod:`.rundir`
(the run directory), :mod:`.curves`, :mod:`.job` (:class:`TrainJob`, :class:`PredictRequest`),
:mod:`.stopping` (best epoch, stop rules), :mod:`.predict_options` (``prep predict``'s shared
defaults, trainers' ``predict_schema()``), :mod:`.stores` (class pixels and colours of a store).
Torch needed: :mod:`.runtime` (device, AMP, seeds), :mod:`.checkpoint`, :mod:`.schedule`,
:mod:`.distributed` (torchrun), :mod:`.loop` (:func:`~microprep.training.loop.fit`),
:mod:`.trainer` (:class:`~microprep.training.trainer.BaseTrainer`, the scaffold of a trainer).

See ``docs/training.md`` and ``docs/plugins.md``.
"""

from __future__ import annotations

from microprep.training.config import ConfigError, build_config, trainer_schema
from microprep.training.job import DistInfo, PredictRequest, TrainJob
from microprep.training.rundir import RunDir

__all__ = [
    "ConfigError",
    "DistInfo",
    "PredictRequest",
    "RunDir",
    "TrainJob",
    "build_config",
    "trainer_schema",
]
