"""Atomic, verifiable checkpoints.

A checkpoint is a ``torch.save`` of plain containers, tensors and numbers only (model,
optimiser, scheduler and scaler state, epoch, RNG states, configuration as JSON text), so it
loads with ``torch.load(weights_only=True)``: a checkpoint cannot run code. Each file is written
to a temporary name, fsynced and renamed, then its SHA-256 is written beside it
(``epoch-0007.pt.sha256``). Loading checks the digest first, so a truncated or altered file is
refused with a clear :class:`CheckpointError`, and :func:`latest_good` falls back to the newest
checkpoint that still verifies.

Example:
    >>> import tempfile, torch
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = save_checkpoint(folder, {"epoch": 3, "w": torch.ones(2)}, epoch=3)
    >>> load_checkpoint(path)["epoch"], latest_good(folder) == path
    (3, True)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from microprep.errors import PrepError, UsageError
from microprep.training.rundir import write_atomic

logger = logging.getLogger(__name__)

BEST = "best.pt"
_EPOCH = re.compile(r"^epoch-(\d+)\.pt$")


class CheckpointError(PrepError):
    """A checkpoint that is missing, truncated, altered or not a microprep checkpoint."""


@dataclass(frozen=True)
class CheckpointState:
    """What :func:`microprep.training.loop.fit` saves after every epoch: the one place that
    names the keys of a checkpoint.

    ``model`` … ``scaler`` are state dicts; ``history`` (the rows of ``metrics.csv``),
    ``config`` and ``extra`` (JSON-safe facts of the trainer, e.g. classes and window) are
    stored as JSON text, so that the file stays plain containers and tensors.

    Example:
        >>> state = CheckpointState(model={}, optimizer={}, scheduler={}, scaler={}, epoch=2,
        ...     rng={}, history=[{"epoch": 1}], best=0.5, best_epoch=1, stale=1,
        ...     config={"epochs": 3}, trainer="unet", extra={"classes": ["a"]})
        >>> saved = state.as_dict()
        >>> saved["history"], CheckpointState.from_dict(saved) == state
        ('[{"epoch": 1}]', True)
    """

    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    epoch: int
    rng: dict[str, Any]
    history: list[dict[str, Any]]
    best: float | None
    best_epoch: int
    stale: int
    config: dict[str, Any]
    trainer: str
    extra: dict[str, Any]

    #: the fields saved as JSON text
    JSON_FIELDS = ("history", "config", "extra")

    def as_dict(self) -> dict[str, Any]:
        """The dictionary that :func:`save_checkpoint` writes."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in self.JSON_FIELDS:
            out[key] = json.dumps(out[key])
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any], *, path: Path | None = None) -> CheckpointState:
        """The state of a loaded checkpoint (see :func:`load_checkpoint`).

        Raises:
            CheckpointError: keys are missing (not a checkpoint of the training loop).
        """
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in state]
        if missing:
            raise CheckpointError(
                f"{path or 'checkpoint'}: not a training checkpoint (no {', '.join(missing)})"
            )
        values = {name: state[name] for name in names}
        for key in cls.JSON_FIELDS:
            values[key] = json.loads(values[key])
        values["epoch"], values["best_epoch"] = int(values["epoch"]), int(values["best_epoch"])
        values["stale"] = int(values["stale"])
        return cls(**values)


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def epoch_path(folder: Path, epoch: int) -> Path:
    """``folder/epoch-0007.pt`` for epoch 7."""
    return folder / f"epoch-{epoch:04d}.pt"


def save_checkpoint(folder: Path, state: dict[str, Any], *, epoch: int, best: bool = False) -> Path:
    """Write ``state`` as the checkpoint of ``epoch`` (and as ``best.pt`` when ``best``).

    Returns the epoch checkpoint's path. The digest file is written after the checkpoint, so
    a checkpoint without a digest is one whose writing was interrupted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode() + b"\n"
    targets = [epoch_path(folder, epoch)] + ([folder / BEST] if best else [])
    for path in targets:
        write_atomic(path, data)
        write_atomic(_digest_path(path), digest)
    return targets[0]


def verify(path: Path) -> bytes:
    """The bytes of checkpoint ``path`` once its digest matches.

    Raises:
        CheckpointError: missing file or digest, or a digest mismatch (truncated/altered).
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    digest_file = _digest_path(path)
    if not digest_file.is_file():
        raise CheckpointError(
            f"{path}: no {digest_file.name} beside it (the write was interrupted); "
            "the checkpoint cannot be trusted"
        )
    data = path.read_bytes()
    want = digest_file.read_text(encoding="ascii", errors="replace").strip()
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise CheckpointError(
            f"{path}: checksum mismatch (file is {len(data)} bytes; it was truncated or "
            "changed after it was written)"
        )
    return data


def load_checkpoint(path: Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Verify and load checkpoint ``path`` with ``weights_only=True``.

    Raises:
        CheckpointError: it fails verification, or torch refuses it (not a checkpoint, or one
            holding objects other than tensors and plain containers).
    """
    data = verify(path)
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable checkpoint: {first}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a microprep checkpoint (a {type(state).__name__})")
    return state


def epoch_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The epoch checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _EPOCH.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_good(folder: Path) -> Path | None:
    """The newest epoch checkpoint that verifies; bad newer ones are logged and skipped."""
    for _, path in reversed(epoch_checkpoints(folder)):
        try:
            verify(path)
        except CheckpointError as exc:
            logger.warning("skipping checkpoint: %s", exc)
            continue
        return path
    return None


def load_latest(folder: Path, *, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """``(path, state)`` of the newest epoch checkpoint that verifies *and* loads, or None."""
    for _, path in reversed(epoch_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, map_location=map_location)
        except CheckpointError as exc:
            logger.warning("skipping checkpoint: %s", exc)
    return None


def prune(folder: Path, *, keep: int) -> None:
    """Delete all but the ``keep`` newest epoch checkpoints (``best.pt`` stays)."""
    for _, path in epoch_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
        _digest_path(path).unlink(missing_ok=True)


def checkpoint_for_prediction(
    folder: Path, given: Path | None = None, *, map_location: Any = "cpu"
) -> tuple[Path, dict[str, Any]]:
    """``(path, state)`` to predict with: ``given``, else ``folder/best.pt``, else the newest
    epoch checkpoint of ``folder`` that verifies and loads.

    Raises:
        UsageError: no usable checkpoint in ``folder``. CheckpointError: a ``given`` or best
            checkpoint that fails verification.
    """
    if given is not None:
        return given, load_checkpoint(given, map_location=map_location)
    if (folder / BEST).is_file():
        return folder / BEST, load_checkpoint(folder / BEST, map_location=map_location)
    found = load_latest(folder, map_location=map_location)
    if found is None:
        raise UsageError(f"{folder.parent}: no usable checkpoint to predict with")
    return found
