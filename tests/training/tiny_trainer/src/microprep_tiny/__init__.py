"""A minimal trainer plugin: a two-layer per-pixel classifier on whole images.

It shows what a third-party trainer needs: a name, a summary, a JSON Schema for its own keys,
``fit`` (build model and loaders, hand them to :func:`microprep.training.loop.fit`) and
``predict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from microprep import open_dataset
from microprep.training.checkpoint import BEST, load_checkpoint
from microprep.training.job import PredictRequest, TrainJob
from microprep.training.loop import Runtime, fit, prepare


def _tensors(path: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    ds = open_dataset(path)
    images = [np.asarray(node["image"].values, np.float32) / 255.0 for node in ds]
    labels = [np.asarray(node["labels"].values, np.int64) for node in ds]
    x = torch.from_numpy(np.stack(images))[:, None]
    y = torch.from_numpy(np.stack(labels))
    return x, y, len(ds.classes)


def _model(hidden: int, classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, hidden, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Dropout2d(0.2),
        torch.nn.Conv2d(hidden, classes, 1),
    )


class TinyTrainer:
    name = "tiny"
    summary = "two-layer per-pixel classifier (test plugin)"

    def config_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "model": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"hidden": {"type": "integer", "minimum": 1, "default": 4}},
                }
            },
        }

    def fit(self, job: TrainJob) -> dict[str, Any]:
        runtime: Runtime = prepare(job)
        x, y, classes = _tensors(job.dataset)
        model = _model(int(job.config["model"]["hidden"]), classes)
        data = TensorDataset(x, y)
        sampler = DistributedSampler(
            data,
            num_replicas=job.dist.world_size,
            rank=job.dist.rank,
            shuffle=True,
            seed=int(job.config["seed"]),
        )
        train = DataLoader(data, batch_size=int(job.config["batch_size"]), sampler=sampler)
        val = DataLoader(data, batch_size=4)

        def step(net: torch.nn.Module, batch: Any, device: torch.device) -> Any:
            images, labels = (t.to(device) for t in batch)
            return F.cross_entropy(net(images), labels), {}

        def evaluate(net: torch.nn.Module, loader: Any, device: Any, _p: Any) -> dict[str, float]:
            hit = total = 0
            for images, labels in loader:
                pred = net(images.to(device)).argmax(1)
                hit += int((pred == labels.to(device)).sum())
                total += labels.numel()
            return {"accuracy": hit / total}

        return fit(
            job,
            runtime,
            model=model,
            train_loader=train,
            val_loader=val,
            train_step=step,
            evaluate=evaluate,
            monitor="accuracy",
            mode="max",
        )

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        x, _, classes = _tensors(request.source)
        state = load_checkpoint(request.checkpoint or request.run.checkpoints / BEST)
        model = _model(int(request.run.config["model"]["hidden"]), classes)
        model.load_state_dict(state["model"])
        model.eval()
        with torch.no_grad():
            pred = model(x).argmax(1).numpy().astype(np.uint8)
        request.out.mkdir(parents=True, exist_ok=True)
        np.save(request.out / "labels.npy", pred)
        return {"images": int(pred.shape[0])}
