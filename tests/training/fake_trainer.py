"""A trainer written on :class:`~microprep.training.trainer.BaseTrainer`, as docs/plugins.md
shows: a per-pixel 1x1 convolution, its loss and one metric, and a ``prep predict`` option of
its own (``--smoothing``) whose value ``predict`` writes out for the tests to read."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch.nn import functional as F

from microprep.data import SegmentationDataset
from microprep.training.datasets import DataSource
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.trainer import BaseTrainer, Setup


class FakeTrainer(BaseTrainer):
    name = "fake"
    summary = "per-pixel 1x1 convolution (test plugin)"

    def config_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"monitor": {"type": "string", "default": "acc"}}}

    def predict_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "smoothing": {
                    "type": "number",
                    "minimum": 0,
                    "default": 1.5,
                    "description": "How much the fake trainer smooths.",
                },
                "fake_fast": {"type": "boolean", "description": "Skip work (fake trainer)."},
            },
        }

    def build_dataset(self, job: TrainJob, source: DataSource, *, train: bool) -> Any:
        data = job.config["data"]
        return SegmentationDataset(
            source.store, split=source.split, splits=source.splits, window=data["window"],
            stride=data["stride"], seed=int(job.config["seed"]),
        )  # fmt: skip

    def configure_model(self, setup: Setup) -> torch.nn.Module:
        return torch.nn.Conv2d(setup.train_set.in_channels, setup.train_set.num_classes, 1)

    def configure_step(self, setup: Setup) -> Any:
        def step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
            return F.cross_entropy(net(batch["image"].to(device)), batch["target"].to(device)), {}

        return step

    def configure_evaluate(self, setup: Setup) -> Any:
        def evaluate(net: torch.nn.Module, loader: Any, device: Any, _p: Any) -> dict[str, float]:
            hits = [
                (net(b["image"].to(device)).argmax(1) == b["target"].to(device)).float().mean()
                for b in loader
            ]
            return {"acc": float(torch.stack(hits).mean())}

        return evaluate

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        options = self.predict_options(request)
        used, _state = self.checkpoint(request, torch.device("cpu"))
        request.out.mkdir(parents=True, exist_ok=True)
        record = {"options": options, "checkpoint": used.name}
        (request.out / "options.json").write_text(json.dumps(record))
        return {"smoothing": options["smoothing"]}
