"""What to label next: rank the inputs of a prediction store by their uncertainty.

:func:`rank_prediction` reads the per-image ``uncertainty_mean`` that ``prep predict
--uncertainty`` records in each group (:mod:`microprep.predict.write`) and sorts the images,
most uncertain first (ties by name). With ``balance``, each score is multiplied by ``1 +
rarity``: for every foreground class ``k`` predicted in at least one pixel of the image,
``1 - n_k / N`` with ``n_k`` the number of images of the store in which ``k`` is predicted and
``N`` the number of images; ``rarity`` is the largest of these (0 for an image with no
foreground). An image holding a class that only it shows nearly doubles its score; classes
predicted everywhere change nothing.

The ranking file (``--json``) is ``{"format": "microprep-ranking", "format_version": 1,
"prediction", "balance", "images": [{"rank", "name", "group", "score", "uncertainty_mean",
"classes"}]}``; :func:`read_ranking` reads the image names back
(``prep export-annotations --only``).

Example:
    >>> entries = rank_entries(
    ...     [("a", 0.1, [90, 10]), ("b", 0.2, [100, 0]), ("c", 0.15, [100, 0])],
    ...     classes=["background", "pore"], balance=True)
    >>> [(e.name, round(e.score, 3)) for e in entries]
    [('b', 0.2), ('a', 0.167), ('c', 0.15)]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import LocalStore

from microprep.errors import InputError, StoreError, UsageError
from microprep.predict.write import read_prediction_attrs

__all__ = [
    "RANKING_FORMAT",
    "RankedImage",
    "rank_entries",
    "rank_prediction",
    "ranking_json",
    "read_ranking",
]

logger = logging.getLogger(__name__)

#: The ``format`` of a ranking file.
RANKING_FORMAT = "microprep-ranking"


@dataclass(frozen=True, slots=True)
class RankedImage:
    """One ranked input: its image ``name``, ``score`` (sorted by), ``uncertainty_mean`` and
    the foreground ``classes`` predicted in it; ``group`` is its group in the store."""

    name: str
    score: float
    uncertainty_mean: float
    classes: tuple[str, ...]
    group: str = ""


def rank_entries(
    entries: Sequence[tuple[str, float, Sequence[int]]],
    *,
    classes: Sequence[str],
    balance: bool = False,
    groups: Sequence[str] | None = None,
) -> list[RankedImage]:
    """Rank ``(name, uncertainty_mean, class_pixels)`` entries (module docstring), best first."""
    counts = [0] * len(classes)
    for _, _, pixels in entries:
        for k in range(1, len(classes)):
            counts[k] += int(k < len(pixels) and pixels[k] > 0)
    total = len(entries)
    ranked = []
    for index, (name, mean, pixels) in enumerate(entries):
        present = [k for k in range(1, len(classes)) if k < len(pixels) and pixels[k] > 0]
        rarity = max((1 - counts[k] / total for k in present), default=0.0) if balance else 0.0
        ranked.append(
            RankedImage(
                name=name,
                score=float(mean) * (1 + rarity),
                uncertainty_mean=float(mean),
                classes=tuple(classes[k] for k in present),
                group=groups[index] if groups is not None else name,
            )
        )
    ranked.sort(key=lambda r: (-r.score, r.name))
    return ranked


def rank_prediction(path: str | Path, *, balance: bool = False) -> list[RankedImage]:
    """Every input of the prediction store ``path``, most worth labelling first.

    Raises:
        StoreError: not a complete prediction store. UsageError: it has no uncertainty.
    """
    path = Path(path)
    attrs = read_prediction_attrs(path)
    if not attrs.get("uncertainty"):
        raise UsageError(
            f"{path} has no uncertainty: predict again with --uncertainty to rank its inputs"
        )
    entries: list[tuple[str, float, list[int]]] = []
    groups: list[str] = []
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r", zarr_format=3)
        for group in attrs["nodes"]:
            node: Any = root[group].attrs
            pixels = [int(v) for v in node.get("class_pixels", [])]
            entries.append((str(node.get("name", group)), float(node["uncertainty_mean"]), pixels))
            groups.append(str(group))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: the prediction store is damaged: {exc}") from exc
    return rank_entries(entries, classes=list(attrs["classes"]), balance=balance, groups=groups)


def ranking_json(
    ranked: Sequence[RankedImage], *, prediction: str | Path, balance: bool
) -> dict[str, Any]:
    """The JSON object of a ranking file (module docstring)."""
    return {
        "format": RANKING_FORMAT,
        "format_version": 1,
        "prediction": str(prediction),
        "balance": bool(balance),
        "images": [
            {
                "rank": index + 1,
                "name": r.name,
                "group": r.group,
                "score": r.score,
                "uncertainty_mean": r.uncertainty_mean,
                "classes": list(r.classes),
            }
            for index, r in enumerate(ranked)
        ],
    }


def read_ranking(path: str | Path) -> list[str]:
    """The image names of a ranking file written by ``prep rank --json``, in rank order.

    Raises:
        InputError: unreadable, not JSON, or not a ranking file (naming the JSON path).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a readable JSON ranking: {exc}", file=path) from exc
    if not isinstance(data, dict) or data.get("format") != RANKING_FORMAT:
        raise InputError(f'not a ranking file (no "format": "{RANKING_FORMAT}")', file=path)
    images = data.get("images")
    if not isinstance(images, list):
        raise InputError("'images' must be a list", file=path, where="images")
    names: list[str] = []
    for index, item in enumerate(images):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InputError("each image needs a 'name' (a string)", file=path,
                             where=f"images[{index}]")  # fmt: skip
        names.append(name)
    return names
