"""Checkpoints: atomic, verified, weights_only, with a fallback to the last good one."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import torch

from microprep.training.checkpoint import (
    CheckpointError,
    latest_good,
    load_checkpoint,
    load_latest,
    prune,
    save_checkpoint,
)
from microprep.training.runtime import rng_state, set_rng_state


class Payload:
    """Not a tensor or a plain container: weights_only loading must refuse it."""


def _state(value: float) -> dict[str, object]:
    return {"epoch": 1, "model": {"w": torch.full((3,), value)}, "rng": rng_state()}


def test_round_trip_and_digest(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _state(2.0), epoch=1, best=True)
    assert path.name == "epoch-0001.pt" and (tmp_path / "best.pt").is_file()
    digest = (tmp_path / "epoch-0001.pt.sha256").read_text().strip()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 2.0))
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "digest"])
def test_damaged_checkpoint_is_refused(tmp_path: Path, damage: str) -> None:
    path = save_checkpoint(tmp_path, _state(1.0), epoch=1)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    else:
        (tmp_path / "epoch-0001.pt.sha256").unlink()
    with pytest.raises(CheckpointError, match=r"epoch-0001\.pt"):
        load_checkpoint(path)


def test_arbitrary_objects_are_refused_even_with_a_good_digest(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"epoch": 1, "payload": Payload()}, buf)
    path = tmp_path / "epoch-0001.pt"
    path.write_bytes(buf.getvalue())
    (tmp_path / "epoch-0001.pt.sha256").write_text(hashlib.sha256(buf.getvalue()).hexdigest())
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_checkpoint(path)


def test_latest_good_skips_damaged_newer_ones(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, _state(float(epoch)), epoch=epoch)
    (tmp_path / "epoch-0003.pt").write_bytes(b"garbage")
    assert latest_good(tmp_path) == tmp_path / "epoch-0002.pt"
    found = load_latest(tmp_path)
    assert found is not None and found[1]["model"]["w"][0] == 2.0
    prune(tmp_path, keep=1)
    assert sorted(p.name for p in tmp_path.glob("epoch-*.pt")) == ["epoch-0003.pt"]
    assert load_latest(tmp_path) is None


def test_rng_state_restores_every_generator() -> None:
    import random

    import numpy as np

    saved = rng_state()
    first = (random.random(), np.random.random(), torch.rand(2))  # noqa: NPY002
    set_rng_state(saved)
    again = (random.random(), np.random.random(), torch.rand(2))  # noqa: NPY002
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])
