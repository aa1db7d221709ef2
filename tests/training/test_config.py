"""Training configuration: schema merging, defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprep.training.config import (
    ConfigError,
    apply_override,
    build_config,
    fill_defaults,
    merge_schemas,
    read_config_file,
    trainer_schema,
)

PLUGIN = {
    "type": "object",
    "properties": {
        "model": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"depth": {"type": "integer", "minimum": 1, "default": 4}},
        },
        "data": {
            "type": "object",
            "properties": {"target": {"enum": ["index", "onehot"], "default": "index"}},
        },
    },
}


def test_plugin_keys_merge_into_the_shared_schema() -> None:
    schema = trainer_schema(PLUGIN)
    config = build_config(schema)
    assert config["model"]["depth"] == 4 and config["data"]["target"] == "index"
    assert config["data"]["window"] == 128 and config["epochs"] == 30
    assert config["schedule"]["name"] == "cosine"


def test_unknown_and_bad_values_name_the_json_path(tmp_path: Path) -> None:
    schema = trainer_schema(PLUGIN)
    with pytest.raises(ConfigError, match=r"\$\.model\.depth"):
        build_config(schema, overrides=["model.depth=0"])
    with pytest.raises(ConfigError, match="epoch"):
        build_config(schema, overrides=["epoch=3"])  # a typo is an error, not ignored
    file = tmp_path / "c.yaml"
    file.write_text("epochs: 3\ndata:\n  window: [64, 64\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4:1: not valid YAML: expected"):
        build_config(schema, file=file)


def test_file_then_options_then_set(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("epochs: 3\nlr: 0.01\nmodel:\n  depth: 2\n")
    config = build_config(
        trainer_schema(PLUGIN),
        file=file,
        options={"lr": 0.02, "seed": None},
        overrides=["model.depth=3", "lr=1e-4"],
    )
    assert config["epochs"] == 3 and config["lr"] == 1e-4 and config["model"]["depth"] == 3
    assert config["seed"] == 0


def test_override_syntax_and_nesting() -> None:
    config: dict[str, object] = {"a": 1}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override(config, "novalue")
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_override(config, "a.b=2")
    apply_override(config, "x.y.z=[1, 2]")
    assert config["x"] == {"y": {"z": [1, 2]}}


def test_merge_and_defaults_are_pure() -> None:
    base = {
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 1}},
        "required": ["a"],
    }
    merged = merge_schemas(base, {"properties": {"b": {"default": 2}}, "required": ["b"]})
    assert merged["required"] == ["a", "b"] and "b" not in base["properties"]
    assert fill_defaults(merged, {"a": 5}) == {"a": 5, "b": 2}


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    file = tmp_path / "c.json"
    file.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        read_config_file(file)
    file.write_text("{bad")
    with pytest.raises(ConfigError, match=r"c\.json:1:2"):
        read_config_file(file)
