"""The trainer scaffold: a trainer on ``BaseTrainer`` trains through ``prep train``, declares its
own ``prep predict`` option, and the checkpoint keys live in one dataclass."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import torch

import microprep.plugins as plugins
from microprep.cli.main import main
from microprep.errors import UsageError
from microprep.training.checkpoint import (
    BEST,
    CheckpointError,
    CheckpointState,
    checkpoint_for_prediction,
    load_checkpoint,
    save_checkpoint,
)
from microprep.training.config import build_config, trainer_schema
from microprep.training.job import TrainJob
from microprep.training.predict_options import check_predict_schema, predict_options
from microprep.training.rundir import RunDir

from .helpers import learnable_store


@pytest.fixture
def fake_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``training.fake_trainer:FakeTrainer`` as the trainer ``fake``."""
    original = plugins._entry_points
    fake = EntryPoint("fake", "training.fake_trainer:FakeTrainer", plugins.GROUP)
    monkeypatch.setattr(plugins, "_entry_points", lambda: sorted([*original(), fake]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fake")
    store = learnable_store(folder / "d.zarr", count=4, size=16)
    assert main(["split", str(folder / "d.zarr"), "--val", "0.25", "--test", "0", "-q"]) == 0
    with pytest.MonkeyPatch.context() as mp:
        original = plugins._entry_points
        fake = EntryPoint("fake", "training.fake_trainer:FakeTrainer", plugins.GROUP)
        mp.setattr(plugins, "_entry_points", lambda: sorted([*original(), fake]))
        code = main(["train", "fake", str(store), "--out", str(folder / "run"), "--epochs", "2",
                     "--device", "cpu", "--batch-size", "2", "--window", "16", "--workers", "0",
                     "-q"])  # fmt: skip
    assert code == 0
    return store, folder / "run"


def test_a_base_trainer_trains_with_its_hooks(trained: tuple[Path, Path]) -> None:
    _, run = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and summary["monitor"] == "acc"
    state = CheckpointState.from_dict(load_checkpoint(run / "checkpoints" / BEST))
    # the base class saves the training set's facts for predict
    assert state.extra["classes"] == ["background", "bright", "dark"]
    assert state.extra["window"] == [16, 16] and state.extra["in_channels"] == 1
    assert state.trainer == "fake" and state.history[0]["epoch"] == 1


def test_predict_help_lists_a_trainers_own_option(fake_installed: None) -> None:
    from click.testing import CliRunner

    from microprep.cli.main import cli

    result = CliRunner().invoke(cli, ["predict", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--smoothing" in result.output and "How much the fake trainer smooths." in result.output
    assert "[default: 1.5; x>=0]" in result.output and "--fake-fast" in result.output
    # the built-in trainers' options are still there, with their help
    assert "Keep instances scoring at least this (Mask R-CNN)." in result.output
    assert "Also store class probabilities (U-Net)." in result.output


def test_a_trainers_option_reaches_its_predict(
    trained: tuple[Path, Path], tmp_path: Path, fake_installed: None
) -> None:
    store, run = trained
    out = tmp_path / "p"
    assert main(["predict", str(run), str(store), "--out", str(out), "--smoothing", "2.5",
                 "--fake-fast", "-q"]) == 0  # fmt: skip
    record = json.loads((out / "options.json").read_text())
    options = record["options"]
    assert options["smoothing"] == 2.5 and options["fake_fast"] is True
    assert options["overlap"] == 0.25 and options["batch_size"] == 4
    assert record["checkpoint"] == BEST
    plain = tmp_path / "q"
    assert main(["predict", str(run), str(store), "--out", str(plain), "-q"]) == 0
    options = json.loads((plain / "options.json").read_text())["options"]
    assert options["smoothing"] == 1.5 and options["fake_fast"] is False


def test_a_trainers_option_is_checked_by_the_cli(
    trained: tuple[Path, Path], tmp_path: Path, fake_installed: None
) -> None:
    store, run = trained
    code = main(["predict", str(run), str(store), "--out", str(tmp_path / "p"),
                 "--smoothing", "-1", "-q"])  # fmt: skip
    assert code == 2 and not (tmp_path / "p").exists()


def test_the_example_of_docs_plugins_md_trains(trained: tuple[Path, Path], tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    space: dict[str, Any] = {}
    exec(compile(code, "docs/plugins.md", "exec"), space)
    trainer = plugins.check_trainer(space["MyTrainer"](), "mine")
    assert plugins.predict_options_of(trainer, "mine")["smoothing"]["default"] == 1.0
    store, _ = trained
    options = {"epochs": 1, "batch_size": 2, "device": "cpu", "data.workers": 0, "data.window": 16}
    config = build_config(trainer_schema(trainer.config_schema()), options=options)
    run = RunDir.create(tmp_path / "run", trainer="mine", dataset=store, config=config)
    summary = trainer.fit(TrainJob(dataset=store, config=config, run=run, progress=False))
    assert summary["epochs_run"] == 1 and summary["monitor"] == "acc"
    assert 0.0 <= summary["final"]["val_acc"] <= 1.0 and (run.checkpoints / BEST).is_file()


def test_predict_schemas_are_checked() -> None:
    with pytest.raises(UsageError, match="'overlap' is a shared option"):
        check_predict_schema({"properties": {"overlap": {"type": "number"}}}, "mine")
    with pytest.raises(UsageError, match="'x' needs a type"):
        check_predict_schema({"properties": {"x": {"default": 1}}}, "mine")
    with pytest.raises(UsageError, match="must be an object schema"):
        check_predict_schema({"type": "array"}, "mine")


def test_a_trainer_with_a_bad_predict_schema_is_a_plugin_error() -> None:
    class Bad:
        name, summary = "bad", "bad"

        def config_schema(self) -> dict[str, Any]:
            return {"type": "object"}

        def predict_schema(self) -> dict[str, Any]:
            return {"properties": {"batch_size": {"type": "integer"}}}

        def fit(self, job: Any) -> dict[str, Any]:
            return {}

        def predict(self, request: Any) -> dict[str, Any]:
            return {}

    with pytest.raises(plugins.PluginError, match="'batch_size' is a shared option"):
        plugins.check_trainer(Bad(), "bad")
    del Bad.predict_schema  # a trainer without predict options is fine
    assert plugins.predict_options_of(plugins.check_trainer(Bad(), "bad"), "bad") == {}


def test_predict_options_fill_shared_then_trainer_defaults() -> None:
    schema = {"properties": {"level": {"type": "integer", "default": 3}}}
    opts = predict_options({"overlap": 0.5, "window": None}, schema)
    assert opts["overlap"] == 0.5 and opts["window"] is None and opts["level"] == 3
    assert opts["batch_size"] == 4 and opts["device"] == "auto" and opts["overlays"] is True


def _state(epoch: int) -> CheckpointState:
    return CheckpointState(
        model={"w": torch.ones(2) * epoch}, optimizer={}, scheduler={}, scaler={}, epoch=epoch,
        rng={}, history=[{"epoch": epoch}], best=None, best_epoch=0, stale=0,
        config={"epochs": 9}, trainer="fake", extra={"classes": ["a"]},
    )  # fmt: skip


def test_checkpoint_state_round_trips_and_names_missing_keys(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _state(3).as_dict(), epoch=3)
    loaded = CheckpointState.from_dict(load_checkpoint(path), path=path)
    assert loaded.epoch == 3 and loaded.config == {"epochs": 9} and loaded.extra["classes"] == ["a"]
    assert torch.equal(loaded.model["w"], torch.full((2,), 3.0))
    with pytest.raises(CheckpointError, match="no best_epoch, stale"):
        CheckpointState.from_dict({k: v for k, v in _state(1).as_dict().items()
                                   if k not in ("best_epoch", "stale")})  # fmt: skip


def test_checkpoint_for_prediction_takes_given_then_best_then_latest(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoints"
    with pytest.raises(UsageError, match="no usable checkpoint"):
        checkpoint_for_prediction(folder)
    save_checkpoint(folder, _state(1).as_dict(), epoch=1, best=True)
    save_checkpoint(folder, _state(2).as_dict(), epoch=2)
    assert checkpoint_for_prediction(folder)[0].name == BEST
    given = folder / "epoch-0002.pt"
    assert checkpoint_for_prediction(folder, given)[1]["epoch"] == 2
    (folder / BEST).unlink()
    assert checkpoint_for_prediction(folder)[0].name == "epoch-0002.pt"


#: A schema registered in the torch-free group for a trainer that is never imported here.
DECLARED = {"type": "object", "properties": {"halo": {"type": "integer", "default": 3}}}


def test_declared_predict_options_are_read_without_importing_the_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer = EntryPoint("ghost", "no_such_module_anywhere:Ghost", plugins.GROUP)
    options = EntryPoint("ghost", "training.test_trainer_scaffold:DECLARED", plugins.OPTIONS_GROUP)
    original, declared = plugins._entry_points, plugins._option_entry_points
    monkeypatch.setattr(plugins, "_entry_points", lambda: sorted([*original(), trainer]))
    monkeypatch.setattr(plugins, "_option_entry_points", lambda: {**declared(), "ghost": options})
    found = plugins.all_predict_options()
    # the trainer's module does not even exist: its options come from the declared schema
    assert found["ghost"] == {"halo": {"type": "integer", "default": 3}}
    with pytest.raises(plugins.PluginError, match="failed to load"):
        plugins.load_trainer("ghost")


@pytest.mark.parametrize("name", ["unet", "maskrcnn"])
def test_a_built_in_trainers_declared_options_are_its_own(name: str) -> None:
    declared = plugins._option_entry_points()
    assert name in declared  # registered in the plugin's pyproject.toml
    trainer = plugins.load_trainer(name)
    assert declared[name].load() == trainer.predict_schema()


def test_predict_help_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from microprep.cli.main import cli\n"
        "out = CliRunner().invoke(cli, ['predict', '--help'], terminal_width=200).output\n"
        "assert '--score-threshold' in out and '--probabilities' in out, out\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
