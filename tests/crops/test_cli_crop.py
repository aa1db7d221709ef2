"""``prep crop``: on a tiny converted CVAT export and on the shipped sample data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from microprep import open_dataset
from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.crops.write import CROPS_ATTRS_KEY


@pytest.fixture
def tiny_store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    out = tmp_path / "d.zarr"
    convert(write_cvat(), out, ConvertOptions())
    return out


def test_crop_tiny_store(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "crops.zarr"
    code = main([
        "crop", str(tiny_store), "--window", "16", "--stride", "8", "--out", str(out),
        "--min-visible", "0.1",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "crops" in capsys.readouterr().out
    tree = xr.open_datatree(out, engine="zarr")
    attrs = tree.attrs[CROPS_ATTRS_KEY]
    assert attrs["complete"] is True and attrs["window"] == [16] and attrs["stride"] == [8]
    assert attrs["edge"] == "flush" and attrs["source_store"] == str(tiny_store.resolve())
    assert len(attrs["source_store_sha256"]) == 64
    node = tree["a.png"].to_dataset()
    # 24 x 32 image, window 16 stride 8: rows 0, 8 and columns 0, 8, 16 (flush with the edge)
    assert node.sizes["crop"] == 6 and node["labels"].shape == (6, 16, 16)
    assert node["origin"].values.tolist() == [[r, c] for r in (0, 8) for c in (0, 8, 16)]
    source = open_dataset(tiny_store)["a.png"]["labels"].values
    for k, (r, c) in enumerate(node["origin"].values.tolist()):
        assert np.array_equal(node["labels"].values[k], source[r : r + 16, c : c + 16])
    crops_of = node["instance_crop"].values
    assert len(crops_of) == node.sizes["instance"] > 0
    for k in range(node.sizes["crop"]):
        ids = np.unique(node["instances"].values[k])
        assert ids[ids > 0].tolist() == list(range(1, int((crops_of == k).sum()) + 1))


def test_crop_grid_rows(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.zarr"
    assert main(["crop", str(tiny_store), "--window", "16", "--out", str(out), "-q"]) == 0
    origins = xr.open_datatree(out, engine="zarr")["a.png"]["origin"].values.tolist()
    assert origins == [[0, 0], [0, 16], [8, 0], [8, 16]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "8,8,8"], "3 values"),
        (["--window", "8", "--stride", "9"], "larger than the window"),
        (["--window", "8", "--node", "nope"], "nope"),
    ],
)
def test_crop_errors_are_one_line(
    tiny_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = main(["crop", str(tiny_store), "--out", str(tmp_path / "x.zarr"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("prep: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.zarr").exists()


def test_crop_sample_data(sample_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    argv = ["convert", str(sample_data / "cvat" / "annotations.xml"), "-q"]
    assert main([*argv, "--images", str(sample_data / "micrographs"), "--out", str(store)]) == 0
    out = tmp_path / "crops.zarr"
    code = main([
        "crop", str(store), "--window", "256", "--stride", "128", "--out", str(out), "-q",
        "--min-foreground", "0.01",
    ])  # fmt: skip
    assert code == 0
    tree = xr.open_datatree(out, engine="zarr")
    ds = open_dataset(store)
    assert list(tree.children) == list(ds.nodes)
    for name in ds.nodes:
        node = tree[name].to_dataset()
        assert node["image"].shape[1:3] == (256, 256)
        image = ds[name]["image"].values
        for k, (r, c) in enumerate(node["origin"].values.tolist()):
            assert np.array_equal(node["image"].values[k], image[r : r + 256, c : c + 256])
            assert np.count_nonzero(node["labels"].values[k]) / 256**2 >= 0.01


def test_crop_with_workers_equals_in_process(tiny_store: Path, tmp_path: Path) -> None:
    args = ["crop", str(tiny_store), "--window", "16", "--stride", "8", "-q"]
    assert main([*args, "--out", str(tmp_path / "a.zarr")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.zarr"), "--workers", "2"]) == 0
    a = xr.open_datatree(tmp_path / "a.zarr", engine="zarr")
    b = xr.open_datatree(tmp_path / "b.zarr", engine="zarr")
    xr.testing.assert_identical(a["a.png"].to_dataset(), b["a.png"].to_dataset())
    assert b.attrs[CROPS_ATTRS_KEY]["options"]["workers"] == 2
