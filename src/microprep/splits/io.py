"""Splits files: ``DATASET.zarr.splits.json`` beside the store, read and written as JSON.

The file is described by ``schemas/splits.schema.json``; it is written atomically and checked
against the schema and for overlaps when read.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from microprep.errors import StoreError
from microprep.schemas import load_schema
from microprep.splits.regions import SPLIT_NAMES, Region, SplitError, Splits, check_disjoint

__all__ = [
    "FORMAT_VERSION",
    "SCHEMA_NAME",
    "default_splits_path",
    "load_splits",
    "save_splits",
    "splits_from_json",
    "splits_to_json",
]

logger = logging.getLogger("microprep.splits")

#: The JSON Schema of a splits file.
SCHEMA_NAME = "splits.schema.json"
#: Version of the splits file format.
FORMAT_VERSION = 1


def default_splits_path(dataset: str | Path) -> Path:
    """Where the splits of a store go by default: ``DATASET.zarr.splits.json`` beside it."""
    path = Path(dataset)
    return path.with_name(path.name + ".splits.json")


def splits_to_json(splits: Splits) -> dict[str, Any]:
    """The JSON object of a splits file (see ``schemas/splits.schema.json``)."""
    return {
        "format": "microprep-splits",
        "format_version": FORMAT_VERSION,
        "dataset": splits.dataset,
        "by": splits.by,
        "seed": splits.seed,
        "fractions": {"val": splits.val_fraction, "test": splits.test_fraction},
        "region_axis": splits.region_axis,
        "gap": splits.gap,
        "splits": {
            name: [{"node": r.node, "start": list(r.start), "stop": list(r.stop)} for r in regions]
            for name, regions in splits.items()
        },
    }


def splits_from_json(data: Any, *, where: str = "<splits>") -> Splits:
    """Parse and check a splits object (schema, then :func:`check_disjoint`).

    Raises:
        SplitError: the object does not match the schema, or the splits overlap.
    """
    validator = Draft202012Validator(load_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise SplitError(f"{where}: does not match {SCHEMA_NAME} at {at}: {first.message}")
    regions: dict[str, tuple[Region, ...]] = {}
    for name in SPLIT_NAMES:
        parsed = []
        for index, item in enumerate(data["splits"][name]):
            region = Region(item["node"], tuple(item["start"]), tuple(item["stop"]))
            if len(region.start) != len(region.stop) or any(
                a >= b for a, b in zip(region.start, region.stop, strict=True)
            ):
                raise SplitError(
                    f"{where}: splits/{name}/{index}: start {list(region.start)} and stop "
                    f"{list(region.stop)} must have the same length and start < stop"
                )
            parsed.append(region)
        regions[name] = tuple(parsed)
    splits = Splits(
        train=regions["train"],
        val=regions["val"],
        test=regions["test"],
        by=data["by"],
        seed=data["seed"],
        val_fraction=float(data["fractions"]["val"]),
        test_fraction=float(data["fractions"]["test"]),
        region_axis=data["region_axis"],
        gap=data["gap"],
        dataset=data["dataset"],
    )
    try:
        check_disjoint(splits)
    except SplitError as exc:
        raise SplitError(f"{where}: {exc}") from exc
    return splits


def _dumps(data: dict[str, Any]) -> str:
    """The splits JSON, one key per line and one region per line (readable and diffable)."""
    lines = ["{"]
    for key, value in data.items():
        if key != "splits":
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "splits": {')
    for k, name in enumerate(SPLIT_NAMES):
        regions = [json.dumps(r, ensure_ascii=False) for r in data["splits"][name]]
        body = ",\n".join(f"    {r}" for r in regions)
        end = "," if k < len(SPLIT_NAMES) - 1 else ""
        lines.append(
            f"   {json.dumps(name)}: [\n{body}\n   ]{end}"
            if regions
            else f"   {json.dumps(name)}: []{end}"
        )
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save_splits(splits: Splits, path: str | Path) -> Path:
    """Write ``splits`` as JSON to ``path`` atomically (a temp file beside it, then a rename).

    Returns:
        The path written.

    Raises:
        SplitError: the splits overlap. StoreError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> s = Splits(train=(Region("a", (0, 0), (4, 4)),), val=(), test=())
        >>> target = Path(tempfile.mkdtemp()) / "d.zarr.splits.json"
        >>> load_splits(save_splits(s, target)) == s
        True
    """
    check_disjoint(splits)
    path = Path(path)
    text = _dumps(splits_to_json(splits))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write the splits file {path}: {exc}") from exc
    logger.info("wrote %s", path)
    return path


def load_splits(path: str | Path) -> Splits:
    """Read a splits file written by :func:`save_splits`, checked against the schema.

    Raises:
        SplitError: not valid JSON, not matching the schema, or overlapping splits.
        StoreError: the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read the splits file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SplitError(f"{path}: not valid JSON: {exc}") from exc
    return splits_from_json(data, where=str(path))
