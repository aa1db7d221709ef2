"""``prep convert --max-memory``: images built in bands equal the whole-image build; images
that cannot fit are refused up front (exit 2, one line with the sizes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from microprep.cli.main import main
from microprep.memory import BYTES_PER_PIXEL, parse_size

WIDTH, HEIGHT = 40, 30
SHAPES = (
    f'<image id="0" name="a.png" width="{WIDTH}" height="{HEIGHT}">'
    '<polygon label="precipitate" occluded="0" source="manual"'
    ' points="2.5,1.25;37.75,4.5;20.25,28.5" z_order="0"/>'
    '<box label="crack" occluded="1" source="manual" xtl="10" ytl="3.5" xbr="30.25" ybr="12"'
    ' z_order="1"/>'
    '<ellipse label="bubble" occluded="0" source="manual" cx="12" cy="20" rx="6.5" ry="4.25"'
    ' rotation="30" z_order="0"/>'
    '<polyline label="crack" occluded="0" source="manual" points="1,29;39,15" z_order="2"/>'
    '<polygon label="bubble" occluded="0" source="manual" points="-5,-5;8,-5;8,6;-5,6"'
    ' z_order="0"/></image>'
)


def _convert(export: Path, out: Path, *extra: str) -> int:
    return main(["convert", str(export), "-o", str(out), "--to", "zarr,masks,yolo", "-q", *extra])


def _arrays(out: Path) -> dict[str, np.ndarray]:
    node = zarr.open_group(out / "dataset.zarr" / "a.png", mode="r")
    got = {key: np.asarray(node[key][...]) for key in node.array_keys()}
    got["png"] = np.asarray(Image.open(out / "masks" / "a.png"))
    got["yolo"] = np.frombuffer((out / "labels" / "a.txt").read_bytes(), np.uint8)
    return got


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import cvat_xml

    path = tmp_path_factory.mktemp("export") / "annotations.xml"
    path.write_text(cvat_xml(SHAPES), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def whole(export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("whole") / "out"
    assert _convert(export, out) == 0
    return _arrays(out)


@settings(
    deadline=None, max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.integers(1, HEIGHT))
def test_bands_of_any_height_give_the_same_arrays(
    rows: int, export: Path, whole: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("banded") / "out"
    # a budget of exactly `rows` rows of this image (no pixels, few object columns)
    budget = rows * WIDTH * BYTES_PER_PIXEL + 200 * rows
    assert _convert(export, out, "--max-memory", str(budget)) == 0
    got = _arrays(out)
    assert got.keys() == whole.keys()
    for key, value in whole.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert np.array_equal(got[key], value), key


def test_an_image_too_large_for_the_budget_is_refused_with_its_sizes(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_cvat(
        '<image id="0" name="huge.png" width="60000" height="60000">'
        '<box label="crack" occluded="0" source="manual" xtl="1" ytl="1" xbr="5" ybr="5"'
        ' z_order="0"/></image>'
    )
    out = tmp_path / "d.zarr"
    assert main(["convert", str(export), "-o", str(out), "--max-memory", "1MB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'huge.png'" in err[0] and "60000x60000" in err[0] and "needs about" in err[0]
    assert "1 MB" in err[0] and "--max-memory" in err[0]
    assert not out.exists()


def test_onehot_of_an_image_that_needs_bands_is_refused(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = str(5 * WIDTH * BYTES_PER_PIXEL)
    args = ["convert", str(export), "-o", str(tmp_path / "o"), "--to", "onehot"]
    assert main([*args, "--max-memory", budget]) == 2
    assert "onehot, coco" in capsys.readouterr().err
    assert main(args) == 0


def test_bad_sizes_are_usage_errors(export: Path, tmp_path: Path) -> None:
    assert main(["convert", str(export), "-o", str(tmp_path / "o"), "--max-memory", "lots"]) == 2
    assert parse_size("2GB") == 2 * 10**9 and parse_size("1.5 GiB") == 3 << 29
    with pytest.raises(ValueError, match="positive"):
        parse_size("0")
