"""prep info: nodes, per-class pixels and objects, splits; other stores refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import microprep.store.info as store_info_module
from crops.helpers import disk, make_store
from microprep.cli.main import main
from microprep.errors import StoreError
from microprep.splits import Region, Splits, save_splits
from microprep.store.info import store_info


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    maps = {
        "a.png": rng.integers(0, 3, (30, 40)).astype(np.uint8),
        "b.png": np.zeros((20, 25), np.uint8),
    }
    ball = disk((30, 40), (10, 10), 4)
    nodes = {
        "a.png": (maps["a.png"], [ball, disk((30, 40), (20, 30), 3)], [1, 2]),
        "b.png": (maps["b.png"], [], []),
    }
    return make_store(tmp_path / "d.zarr", nodes), maps


def test_pixels_and_objects_per_class(
    store: tuple[Path, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, maps = store
    monkeypatch.setattr(store_info_module, "BAND_PIXELS", 64)  # many bands per map
    info = store_info(path)
    want = sum(np.bincount(m.reshape(-1), minlength=3) for m in maps.values())
    assert list(info.class_pixels.values()) == want.tolist()
    assert info.class_objects == {"background": 0, "a": 1, "b": 1}
    a, b = info.nodes
    assert (a.shape, a.dtype, a.objects) == ((30, 40), "uint8", 2)
    assert (b.shape, b.objects, b.pixels) == ((20, 25), 0, (500, 0, 0))
    table = info.table()
    assert "2 nodes (images), 2 classes" in table and "splits" not in table
    assert json.loads(json.dumps(info.as_dict()))["class_pixels"]["a"] == int(want[1])


def test_the_splits_file_beside_the_store_is_summarised(
    store: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, _ = store
    a, b = Region("a.png", (0, 0), (30, 40)), Region("b.png", (0, 0), (20, 25))
    save_splits(Splits(train=(a,), val=(b,), test=()), Path(f"{path}.splits.json"))
    splits = store_info(path).splits
    assert splits is not None
    assert splits["splits"]["train"]["pixels"] == 1200
    assert splits["splits"]["val"]["share"] == pytest.approx(500 / 1700)
    assert "val        1 regions" in store_info(path).table()


def test_cli_info_and_json(
    store: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    out = tmp_path / "info.json"
    assert main(["info", str(path), "--json", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "a.png" in printed and "objects" in printed
    assert json.loads(out.read_text(encoding="utf-8"))["nodes"][1]["node"] == "b.png"


def test_other_stores_are_refused_by_name(
    store: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    crops = tmp_path / "c.zarr"
    assert main(["crop", str(path), "--window", "16", "--out", str(crops), "-q"]) == 0
    with pytest.raises(StoreError, match="is a crops store"):
        store_info(crops)
    assert main(["info", str(crops)]) == 2
    assert "crops store (prep crop)" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StoreError, match="not a microprep store"):
        store_info(empty)
