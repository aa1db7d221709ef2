"""The run directory every training run writes.

Layout::

    RUN/
      config.json         trainer, dataset, the resolved configuration, versions
      metrics.csv         one row per epoch: epoch, lr, train_loss, val metrics, seconds
      curves.png          loss and validation curves (redrawn every epoch)
      checkpoints/        epoch-0007.pt (+ .sha256), best.pt (+ .sha256)
      summary.json        written last, when the run ends: the final and best metrics

A run is finished only when ``summary.json`` exists; a run killed before that has its last
checkpoints and can continue with ``prep train ... --resume``. Every file is written to a
temporary name and renamed, so no file is ever half written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microprep.errors import UsageError
from microprep.outputs import write_file_atomic

CONFIG = "config.json"
METRICS = "metrics.csv"
CURVES = "curves.png"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    write_file_atomic(path, data)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _dump(data: Any) -> bytes:
    return (json.dumps(json_safe(data), indent=2, sort_keys=False) + "\n").encode()


@dataclass(frozen=True)
class RunDir:
    """A run directory (see the module docstring for its layout).

    Example:
        >>> import tempfile
        >>> run = RunDir.create(Path(tempfile.mkdtemp()) / "run", trainer="unet",
        ...                     dataset=Path("d.zarr"), config={"epochs": 1})
        >>> RunDir.open(run.path).config["epochs"], run.finished
        (1, False)
    """

    path: Path
    trainer: str
    dataset: Path
    config: dict[str, Any]

    @property
    def checkpoints(self) -> Path:
        """The checkpoint folder."""
        return self.path / CHECKPOINTS

    @property
    def metrics_csv(self) -> Path:
        """The per-epoch metrics table."""
        return self.path / METRICS

    @property
    def curves_png(self) -> Path:
        """The training curves picture."""
        return self.path / CURVES

    @property
    def finished(self) -> bool:
        """True once the run wrote its summary."""
        return (self.path / SUMMARY).is_file()

    @staticmethod
    def create(
        path: Path,
        *,
        trainer: str,
        dataset: Path,
        config: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> RunDir:
        """Make a new run directory; refuses a folder that already holds a run.

        Raises:
            UsageError: ``path`` exists and is not empty (use ``--resume`` or another
                ``--out``).
        """
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(
                f"{path}: the run directory already exists; pass --resume to continue it "
                "or choose another --out"
            )
        (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        record = {
            "trainer": trainer,
            "dataset": str(dataset),
            "config": dict(config),
            **dict(extra or {}),
        }
        write_atomic(path / CONFIG, _dump(record))
        return RunDir(path, trainer, dataset, dict(config))

    @staticmethod
    def open(path: Path) -> RunDir:
        """An existing run directory.

        Raises:
            UsageError: no run there, or its ``config.json`` is unreadable.
        """
        file = path / CONFIG
        if not file.is_file():
            raise UsageError(f"{path}: not a run directory (no {CONFIG})")
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
            return RunDir(
                path, str(record["trainer"]), Path(record["dataset"]), dict(record["config"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{file}: unreadable run configuration: {exc}") from exc

    def read_metrics(self) -> list[dict[str, str]]:
        """The rows of ``metrics.csv`` (empty before the first epoch)."""
        if not self.metrics_csv.is_file():
            return []
        with open(self.metrics_csv, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite ``metrics.csv`` with ``rows`` (columns: the union of keys, in first-seen
        order). Rewriting the whole small table keeps it consistent after a resume."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        write_atomic(self.metrics_csv, buf.getvalue().encode())

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Write ``summary.json``: the run is finished."""
        write_atomic(self.path / SUMMARY, _dump(dict(summary)))

    def read_summary(self) -> dict[str, Any]:
        """The summary of a finished run."""
        data: dict[str, Any] = json.loads((self.path / SUMMARY).read_text(encoding="utf-8"))
        return data


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
