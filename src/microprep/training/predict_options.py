"""The options of ``prep predict``: those every trainer takes, and each trainer's own.

Every trainer reads the shared options (:data:`PREDICT_DEFAULTS`: ``overlap``, ``batch_size``,
``window``, ``device``, ``overlays``, ``tta``, ``uncertainty``). A trainer declares its own in
``predict_schema()``: a JSON Schema object whose ``properties`` are flat options of type
``boolean`` (a flag), ``number``, ``integer`` (with ``minimum`` / ``maximum``) or ``string``
(with ``enum``), each with a ``default`` and a ``description`` (the help line of its
``prep predict`` option: ``score_threshold`` becomes ``--score-threshold``). Torch-free.

Example:
    >>> schema = {"type": "object", "properties": {
    ...     "score_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
    ...                         "description": "Keep instances scoring at least this."}}}
    >>> check_predict_schema(schema, "mine")["score_threshold"]["default"]
    0.5
    >>> opts = predict_options({"overlap": None, "batch_size": 8}, schema)
    >>> opts["overlap"], opts["batch_size"], opts["score_threshold"]
    (0.25, 8, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from microprep.errors import UsageError

__all__ = ["EMPTY_SCHEMA", "PREDICT_DEFAULTS", "check_predict_schema", "predict_options"]

#: The options every trainer's ``predict`` reads, with their defaults (``prep predict``'s too).
PREDICT_DEFAULTS: dict[str, Any] = {
    "overlap": 0.25,
    "batch_size": 4,
    "window": None,
    "device": "auto",
    "overlays": True,
    "tta": None,
    "uncertainty": False,
}

#: ``predict_schema()`` of a trainer without options of its own.
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

_TYPES = {"boolean", "number", "integer", "string"}


def check_predict_schema(schema: Any, trainer: str) -> dict[str, dict[str, Any]]:
    """The option specs (name -> property schema) of trainer ``trainer``'s predict schema.

    Raises:
        UsageError: not an object schema, a property that is not one flat option of a known
            type, or an option that takes the name of a shared one.
    """
    where = f"trainer {trainer!r}: predict_schema()"
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise UsageError(f"{where} must be an object schema")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise UsageError(f"{where}: properties must be an object")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        if not isinstance(spec, Mapping) or spec.get("type") not in _TYPES:
            raise UsageError(
                f"{where}: option {name!r} needs a type among {', '.join(sorted(_TYPES))}"
            )
        if name in PREDICT_DEFAULTS:
            raise UsageError(f"{where}: option {name!r} is a shared option of prep predict")
        if not str(name).isidentifier():
            raise UsageError(f"{where}: option {name!r} is not a name (letters, digits, _)")
        out[str(name)] = dict(spec)
    return out


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of every property of a predict schema (flags default to False)."""
    out: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        out[name] = spec.get("default", False if spec.get("type") == "boolean" else None)
    return out


def predict_options(
    options: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``options`` (e.g. ``PredictRequest.options``) over the defaults: the shared ones, then
    those of the trainer's predict ``schema``. A None value takes the default."""
    out = {**PREDICT_DEFAULTS, **schema_defaults(schema or EMPTY_SCHEMA)}
    out.update({key: value for key, value in options.items() if value is not None})
    return out
