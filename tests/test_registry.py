"""The tables of output kinds and readers: built-ins, kinds registered from code, and a
third-party package installed with pip whose sink and reader ``prep convert`` uses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from microprep.cli.main import cli
from microprep.errors import UsageError
from microprep.readers import READERS, detect_format
from microprep.registry import (
    ReaderKind,
    SinkKind,
    reader_kinds,
    register,
    sink_kind,
    sink_kinds,
    unregister,
)

from .conftest import GOOD_IMAGE, cvat_xml

PLUGIN_SOURCE = Path(__file__).parent / "plugins_sink"
PREP = [sys.executable, "-m", "microprep.cli.main"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(PLUGIN_SOURCE)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert (target / "microprep_tiny_sink" / "__init__.py").is_file()
    paths = [str(target), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


def _prep(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREP, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "annotations.xml"
    path.write_text(cvat_xml(GOOD_IMAGE), encoding="utf-8")
    return path


def test_builtin_kinds_keep_their_names_order_and_outputs() -> None:
    kinds = sink_kinds()
    assert [k.name for k in kinds][:5] == ["zarr", "masks", "onehot", "coco", "yolo"]
    assert [k.output for k in kinds][:5] == [
        "dataset.zarr",
        "masks",
        "onehot",
        "coco.json",
        "labels",
    ]
    assert [k.store for k in kinds][:5] == [True, False, False, False, False]
    assert [k.name for k in reader_kinds()][:5] == [
        "cvat", "via", "labelbox", "coco-instances", "label-folder"
    ]  # fmt: skip
    with pytest.raises(UsageError, match="choose from zarr, masks, onehot, coco, yolo"):
        sink_kind("tiff")


def test_builtins_cannot_be_replaced() -> None:
    with pytest.raises(UsageError, match="built-in"):
        register(SinkKind("zarr", sink_kind("masks").factory, "x", "no"))


@pytest.fixture
def code_sink() -> Iterator[list[str]]:
    """A sink registered from code: writes the names of the images it saw."""
    seen: list[str] = []

    class Names:
        def __init__(self, root: Path, labels: object, *, provenance: object) -> None:
            self.root = root

        def add(self, targets: object, pixels: object) -> None:
            seen.append(targets.name)  # type: ignore[attr-defined]

        def close(self) -> None:
            (self.root / "names.txt").write_text("\n".join(seen), encoding="utf-8")

    register(SinkKind("names", Names, "names.txt", "image names, one a line", order=60))
    yield seen
    unregister("names")


def test_a_sink_registered_from_code_is_a_kind_of_convert(
    code_sink: list[str], export: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", "--help"])
    assert result.exit_code == 0
    assert "names" in result.output and "image names, one a line" in result.output
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["convert", str(export), "--to", "masks,names", "-q", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "names.txt").read_text(encoding="utf-8") == "a.png"
    assert (out / "masks" / "a.png").is_file()
    assert code_sink == ["a.png"]


def test_an_unknown_kind_lists_the_table(
    code_sink: list[str], export: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["convert", str(export), "--to", "tiff", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "tiff; choose from zarr,masks,onehot,coco,yolo,names" in result.output


def test_a_reader_registered_from_code_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "dots.txt"
    path.write_text("DOTS\n", encoding="utf-8")

    def detect(p: Path) -> bool:
        return p.suffix == ".txt" and p.read_text(encoding="utf-8").startswith("DOTS")

    def read(p: object, *, on_warning: object = None, options: object = None) -> object:
        raise AssertionError("not read here")

    register(ReaderKind("dots", detect, read, "dots"))  # type: ignore[arg-type]
    try:
        assert detect_format(path) == "dots"
        assert "dots" in READERS
    finally:
        unregister("dots")
    assert "dots" not in READERS


def test_third_party_sink_and_reader_from_the_cli(
    env: dict[str, str], export: Path, tmp_path: Path
) -> None:
    result = _prep(env, "convert", "--help")
    assert result.returncode == 0, result.stderr
    assert "objects per image as CSV" in result.stdout
    assert "points-csv" in result.stdout
    assert "microprep.sinks:broken" in result.stdout  # reported, not fatal
    out = tmp_path / "out"
    result = _prep(env, "convert", str(export), "--to", "zarr,counts", "-q", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "counts.csv").read_text(encoding="utf-8") == "image,objects\na.png,2\n"
    assert (out / "dataset.zarr").is_dir()
    points = tmp_path / "spots.csv"
    points.write_text("image,x,y\ns.png,3,4\ns.png,9,9\n", encoding="utf-8")
    result = _prep(env, "convert", str(points), "--to", "counts", "-q", "-o", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p" / "counts.csv").read_text(encoding="utf-8").endswith("s.png,2\n")


def test_without_the_plugin_its_kind_is_unknown(export: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["convert", str(export), "--to", "counts", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "counts" in result.output
    assert not np.any([k.name == "counts" for k in sink_kinds()])
