"""Training configuration: the shared JSON Schema merged with a trainer's, defaults, overrides.

A configuration is one mapping (YAML or JSON file, ``--config``), with the keys of
``schemas/train-config.schema.json`` (epochs, batch size, optimiser, schedule, seed, AMP, early
stopping, data...) and those of the trainer's own schema (``model``, ``loss``...). Command-line
options and ``--set key.sub=value`` override file values. Every key has a default in a schema,
so an empty configuration is a valid one.

Example:
    >>> base = {"type": "object", "properties": {"epochs": {"type": "integer", "default": 5}}}
    >>> extra = {"type": "object", "properties": {"depth": {"type": "integer", "default": 3}}}
    >>> schema = merge_schemas(base, extra)
    >>> resolve_config(schema, {"depth": 4}, where="cfg")
    {'depth': 4, 'epochs': 5}
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from microprep.errors import UsageError
from microprep.schemas import load_schema

#: The shared schema every trainer's configuration extends.
SHARED_SCHEMA = "train-config.schema.json"


class ConfigError(UsageError):
    """A configuration file or override that is unreadable or does not follow the schema."""


def merge_schemas(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s properties added, recursing into shared object properties.

    ``required`` lists are joined; other keywords of ``extra`` win.
    """
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if key == "properties":
            props = out.setdefault("properties", {})
            for name, sub in value.items():
                if name in props and props[name].get("type") == "object" == sub.get("type"):
                    props[name] = merge_schemas(props[name], sub)
                else:
                    props[name] = copy.deepcopy(sub)
        elif key == "required":
            out["required"] = sorted({*out.get("required", []), *value})
        elif key not in ("$schema", "$id", "title", "description"):
            out[key] = copy.deepcopy(value)
    return out


def trainer_schema(plugin_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The full schema of a trainer's configuration: the shared one merged with the plugin's."""
    return merge_schemas(load_schema(SHARED_SCHEMA), plugin_schema)


def fill_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` with every missing property that has a ``default`` in ``schema`` filled in.

    Objects without a default whose properties have defaults are created (``{}``) and filled.
    """
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name in out:
            out[name] = fill_defaults(sub, out[name])
        elif "default" in sub:
            out[name] = fill_defaults(sub, copy.deepcopy(sub["default"]))
        elif sub.get("type") == "object" and "properties" in sub:
            out[name] = fill_defaults(sub, {})
    return out


def _path(error_path: Sequence[Any]) -> str:
    text = "$"
    for part in error_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validate_config(schema: Mapping[str, Any], config: Mapping[str, Any], *, where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` and the JSON path of the first problems."""
    errors = sorted(
        Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path)
    )
    if errors:
        lines = [f"{_path(list(e.absolute_path))}: {e.message}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ConfigError(f"{where}: invalid configuration: " + "; ".join(lines) + more)


def resolve_config(
    schema: Mapping[str, Any], config: Mapping[str, Any], *, where: str
) -> dict[str, Any]:
    """Validate ``config``, fill its defaults and validate the result again."""
    validate_config(schema, config, where=where)
    full: dict[str, Any] = fill_defaults(schema, dict(config))
    validate_config(schema, full, where=f"{where} (with defaults)")
    return full


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML (``.yaml``/``.yml``) or JSON configuration file as a mapping.

    Raises:
        ConfigError: unreadable, not parseable (with the line), or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{place}: not valid YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping, not {type(data).__name__}")
    return data


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.sub=value`` override in place; ``value`` is parsed as JSON, else YAML.

    Example:
        >>> c = {"data": {"window": 64}}
        >>> apply_override(c, "data.window=128"); apply_override(c, "loss=ce+dice")
        >>> c
        {'data': {'window': 128}, 'loss': 'ce+dice'}
    """
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. data.window=128")
    try:
        # JSON first: YAML 1.1 reads "1e-4" as a string
        value = json.loads(raw)
    except ValueError:
        value = None
    try:
        if value is None and raw.strip():
            value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment!r}: value is not valid YAML: {exc}") from exc
    parts = [p.strip() for p in key.split(".")]
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {part!r} is not a mapping")
        node = child
    node[parts[-1]] = value


def build_config(
    schema: Mapping[str, Any],
    *,
    file: Path | None = None,
    options: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """The resolved configuration: file values, then ``options`` (dotted keys), then ``--set``.

    ``options`` holds command-line options that were given (``None`` values are skipped).
    """
    config = read_config_file(file) if file is not None else {}
    for key, value in (options or {}).items():
        if value is not None:
            apply_override(config, f"{key}={json.dumps(value)}")
    for assignment in overrides:
        apply_override(config, assignment)
    where = str(file) if file is not None else "configuration"
    return resolve_config(schema, config, where=where)
