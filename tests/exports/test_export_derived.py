"""``prep export`` of the stores other commands derive: an augmented store exports like any
store; a crops store is refused in one line naming the store it was cut from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import microprep
from microprep.cli.main import main

W, H = 48, 40


@pytest.fixture
def store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (H, W), dtype=np.uint8)).save(images / name)
    export = write_cvat(
        "\n".join(
            f'<image id="{i}" name="{n}" width="{W}" height="{H}">'
            f'<box label="pore" xtl="{2 + 20 * i}" ytl="2" xbr="{18 + 20 * i}" ybr="20" '
            'z_order="0"/></image>'
            for i, n in enumerate(("a.png", "b.png"))
        )
    )
    out = tmp_path / "d.zarr"
    assert main(["convert", str(export), "--images", str(images), "-o", str(out), "-q"]) == 0
    return out


def test_augmented_store_exports(store: Path, tmp_path: Path) -> None:
    aug = tmp_path / "aug.zarr"
    assert main(["augment", str(store), "--out", str(aug), "--geometry", "flip", "-q"]) == 0
    out = tmp_path / "out"
    assert main(["export", str(aug), "--to", "ome-zarr,coco", "-o", str(out), "-q"]) == 0
    with microprep.open_dataset(aug) as ds:
        nodes = len(ds.nodes)
    assert len(list(out.glob("*.ome.zarr"))) == nodes
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == nodes and coco["annotations"]


def test_crops_store_is_refused_in_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crops = tmp_path / "crops.zarr"
    assert main(["crop", str(store), "--window", "16", "--out", str(crops), "-q"]) == 0
    out = tmp_path / "out"
    assert main(["export", str(crops), "--to", "ome-zarr", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "crops store" in err and str(store) in err
    assert not out.exists()
