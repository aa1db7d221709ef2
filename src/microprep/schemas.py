"""The JSON Schemas that describe microprep's files, loaded by name.

The schemas live in the top-level ``schemas/`` folder of the source tree. In an installed wheel
they are package data under ``microprep/schemas_data/``. :func:`load_schema` looks in the source
tree first (editable installs, tests) and falls back to the package data.

Example:
    >>> load_schema("store-attrs.schema.json")["title"]
    'microprep store root attributes'
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

#: The repository root when running from a source tree (``src/microprep/schemas.py``).
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def schema_path(name: str) -> Path | None:
    """The schema file ``name`` in the source tree's ``schemas/`` folder, or None."""
    if (_SOURCE_ROOT / "pyproject.toml").is_file():
        candidate = _SOURCE_ROOT / "schemas" / name
        if candidate.is_file():
            return candidate
    return None


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (e.g. ``"store-attrs.schema.json"``) as a dict (a fresh copy).

    Raises:
        FileNotFoundError: no schema of that name in the source tree or the package data.
        ValueError: ``name`` is not a plain file name.
    """
    return copy.deepcopy(_load(name))


@cache
def _load(name: str) -> dict[str, Any]:
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"schema name {name!r} must be a plain file name")
    path = schema_path(name)
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("microprep").joinpath("schemas_data", name)
        if not resource.is_file():
            raise FileNotFoundError(
                f"schema {name!r} is neither in {_SOURCE_ROOT / 'schemas'} nor in the "
                "package data microprep/schemas_data (a broken install?)"
            )
        text = resource.read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
