"""Training curves as a PNG (matplotlib, headless): losses on the left, validation metrics on
the right, one point per epoch; and :func:`epoch_line`, the log line of one epoch.

Example:
    >>> import tempfile
    >>> rows = [{"epoch": 1, "train_loss": 1.0, "val_iou_macro": 0.5},
    ...         {"epoch": 2, "train_loss": 0.6, "val_iou_macro": 0.7}]
    >>> out = Path(tempfile.mkdtemp()) / "curves.png"
    >>> draw_curves(rows, out, title="unet"); out.stat().st_size > 0
    True
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microprep.training.rundir import write_atomic

#: Columns never drawn (bookkeeping, not curves).
_SKIP = {"epoch", "seconds", "lr", "step"}


def _floats(rows: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    out = []
    for row in rows:
        try:
            out.append(float(row.get(key, "nan")))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def curve_points(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of column ``key``, leaving out the epochs without a value.

    Validation runs every ``val_every`` epochs, so its columns are empty in between; dropping
    those epochs joins the validation points into one line instead of isolated dots.
    """
    pairs = zip(_floats(rows, "epoch"), _floats(rows, key), strict=True)
    kept = [(epoch, value) for epoch, value in pairs if not math.isnan(value)]
    return [epoch for epoch, _ in kept], [value for _, value in kept]


def draw_curves(
    rows: Sequence[Mapping[str, Any]], out: Path, *, title: str = "", note: str = ""
) -> None:
    """Draw the per-epoch ``rows`` (``metrics.csv``) to the PNG ``out`` (written atomically).

    Columns ending in ``loss`` go to the left panel, the other numeric columns to the right.
    ``note`` (e.g. why a run stopped early) is written in red under the panels; a validation
    panel without any point says "no validation".
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys and k not in _SKIP]
    fig = Figure(figsize=(10, 4), dpi=100)
    left, right = fig.subplots(1, 2)
    for key in keys:
        xs, ys = curve_points(rows, key)
        if not xs:
            continue
        axis = left if key.endswith("loss") else right
        axis.plot(xs, ys, marker="o", markersize=3, label=key)
    for axis, name in ((left, "loss"), (right, "validation")):
        if not axis.lines:
            axis.text(0.5, 0.5, f"no {name}", ha="center", va="center", transform=axis.transAxes)
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if note:
        fig.subplots_adjust(bottom=0.22)
        fig.text(0.5, 0.02, note, ha="center", va="bottom", color="#b00000", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(out, buf.getvalue())


def epoch_line(row: Mapping[str, Any], *, epochs: int, durations: Sequence[float]) -> str:
    """One log line for a finished epoch: its number, losses, validation metrics, seconds and
    the estimated time left (the mean epoch so far times the epochs left).

    Example:
        >>> epoch_line({"epoch": 2, "train_loss": 0.5, "val_iou_macro": 0.71, "seconds": 30.0},
        ...            epochs=4, durations=[30.0, 30.0])
        'epoch 2/4: train_loss 0.5000, val_iou_macro 0.7100, 30.0 s, ETA 1 min 0 s'
    """
    epoch = int(row["epoch"])
    parts = [
        f"{key} {float(value):.4f}"
        for key, value in row.items()
        if key.endswith("loss") or key.startswith("val_")
    ]
    left = (sum(durations) / max(len(durations), 1)) * (epochs - epoch)
    minutes, seconds = divmod(round(left), 60)
    parts.append(f"{float(row.get('seconds', 0.0)):.1f} s")
    parts.append(f"ETA {minutes} min {seconds} s")
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts)
