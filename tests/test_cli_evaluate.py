"""``prep evaluate``: the table, the JSON file, kinds, errors and exit codes."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from microprep.cli.evaluate import detect_kind, evaluate_command
from microprep.errors import PrepError
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.predict.write import PredictionWriter
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Targets

CLASSES = ["background", "pore", "crack"]


@click.group()
def group() -> None:
    """Only the evaluate command (the main group registers it separately)."""


group.add_command(evaluate_command)


def run(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(group, args, catch_exceptions=True)
    return result.exit_code, result.output, result.exception


def make_pair(tmp_path: Path) -> tuple[Path, Path]:
    truth_map = np.zeros((4, 5), np.uint8)
    truth_map[1:3, 1:3] = 1
    pred_map = truth_map.copy()
    pred_map[0, 0] = 1
    lm = LabelMap((LabelSpec("pore"), LabelSpec("crack")))
    truth = tmp_path / "gt.zarr"
    with ZarrSink(truth, lm, provenance={"source": "x.xml", "sha256": None}) as sink:
        sink.add(Targets("a.png", (ImageInfo("a.png", 5, 4),), truth_map,
                         Instances.empty((4, 5)), 3), None)  # fmt: skip
    pred = tmp_path / "pred.zarr"
    writer = PredictionWriter(pred, classes=CLASSES, colors=[[0, 0, 0]] * 3, kind="semantic")
    node = writer.begin("a.png", (4, 5), probabilities=None)
    writer.write_rows(node, 0, 4, np.stack([pred_map == c for c in range(3)]).astype(np.float32))
    writer.finish_node(node)
    writer.close()
    return pred, truth


def test_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    pred, truth = make_pair(tmp_path)
    out = tmp_path / "reports" / "scores.json"
    code, output, exc = run(["evaluate", str(pred), str(truth), "--json", str(out)])
    assert code == 0, (output, exc)
    assert "IoU" in output and "macro" in output and "micro" in output
    pore = next(line for line in output.splitlines() if " pore " in line)
    assert "0.8000" in pore  # IoU of pore: 4 / 5
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["per_class"]["pore"]["iou"] == pytest.approx(0.8)
    assert data["include_background"] is True
    assert not list(out.parent.glob(".*tmp*"))  # the atomic write left no temp file


def test_plot_writes_a_picture(tmp_path: Path) -> None:
    from PIL import Image

    pred, truth = make_pair(tmp_path)
    out = tmp_path / "scores.png"
    code, output, exc = run(["evaluate", str(pred), str(truth), "--plot", str(out)])
    assert code == 0, (output, exc)
    assert f"picture -> {out}" in output
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > picture.height


def test_no_background_flag(tmp_path: Path) -> None:
    pred, truth = make_pair(tmp_path)
    out = tmp_path / "s.json"
    code, output, _ = run(
        ["evaluate", str(pred), str(truth), "--no-background", "--json", str(out)]
    )
    assert code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["macro"]["iou"] == pytest.approx(0.8)
    assert "background*" in output


def test_bad_input_is_a_prep_error(tmp_path: Path) -> None:
    pred, truth = make_pair(tmp_path)
    code, _, exc = run(["evaluate", str(pred), str(truth), "--split", "val"])
    assert code != 0 and isinstance(exc, PrepError)
    assert "prep split" in str(exc)


def test_main_entry_point_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from microprep.cli import main as main_module

    pred, truth = make_pair(tmp_path)
    monkeypatch.setattr(
        main_module, "cli", click.Group("prep", commands={"evaluate": evaluate_command})
    )
    assert main_module.main(["evaluate", str(pred), str(truth)]) == 0
    failing = ["evaluate", str(pred), str(truth), "--split", "test"]
    assert main_module.main(failing) == main_module.EXIT_ERROR


def test_instances_kind_calls_the_coco_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    class Report:
        def table(self) -> str:
            return "AP 0.5"

        def as_dict(self) -> dict:
            return {"ap": 0.5}

    def evaluate_instances(pred, gt, *, split=None):
        calls.append((Path(pred), Path(gt), split))
        return Report()

    fake = types.ModuleType("microprep.evaluate.coco")
    fake.evaluate_instances = evaluate_instances  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "microprep.evaluate.coco", fake)
    detections = tmp_path / "detections.json"
    detections.write_text("[]")
    truth = tmp_path / "gt.json"
    truth.write_text("{}")
    out = tmp_path / "ap.json"
    code, output, exc = run(["evaluate", str(detections), str(truth), "--json", str(out)])
    assert code == 0, (output, exc)
    assert "AP 0.5" in output
    assert calls == [(detections, truth, None)]
    assert json.loads(out.read_text(encoding="utf-8")) == {"ap": 0.5}
    code, _, exc = run(["evaluate", str(detections), str(truth), "--no-background"])
    assert code != 0 and "semantic" in str(exc)


def test_detect_kind(tmp_path: Path) -> None:
    pred, _ = make_pair(tmp_path)
    assert detect_kind(pred) == "semantic"
    assert detect_kind(tmp_path / "x.json") == "instances"
    inst = tmp_path / "inst.zarr"
    PredictionWriter(inst, classes=CLASSES, colors=[[0, 0, 0]] * 3, kind="instances").close()
    assert detect_kind(inst) == "instances"
