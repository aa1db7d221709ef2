"""``prep augment`` end to end: a tiny store in, AUG.zarr out, in process and on 2 workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from PIL import Image

import microprep
from microprep.augment import AugmentConfig, parse_noise
from microprep.augment.scale import noise_blocks
from microprep.augment.write import augment_store
from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.errors import UsageError

TWO_IMAGES = (
    '<image id="0" name="a.png" width="32" height="24">\n'
    '  <box label="precipitate" occluded="0" source="manual" xtl="2.5" ytl="3" xbr="10"'
    ' ybr="9.5" z_order="0"/>\n'
    '  <ellipse label="bubble" occluded="0" source="manual" cx="20" cy="12" rx="5.5" ry="4"'
    ' rotation="30" z_order="1"/>\n'
    "</image>\n"
    '<image id="1" name="sub/b c.png" width="20" height="16">\n'
    '  <box label="bubble" occluded="1" source="manual" xtl="1" ytl="1" xbr="8" ybr="9"'
    ' z_order="0"/>\n'
    "</image>"
)


@pytest.fixture
def store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """A converted store of two images with uint8 pixels."""
    export = write_cvat(TWO_IMAGES)
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 256, (16, 20), dtype=np.uint8)).save(images / "sub/b c.png")
    out = tmp_path / "dataset.zarr"
    convert(export, out, ConvertOptions(images=images))
    return out


CONFIG = AugmentConfig(
    noise=parse_noise("poisson:dose=20,gaussian:sigma=0.02,blur:sigma=0.8"),
    geometry=("flip", "rot90", "rotate", "zoom"),
)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    ds = microprep.open_dataset(path)
    out = {}
    for name in ds.nodes:
        node = ds[name]
        for key in node.data_vars:
            out[f"{name}/{key}"] = np.asarray(node[key].values)
    ds.close()
    return out


def test_augment_store_layout_and_attrs(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug.zarr"
    summary = augment_store(store, out, CONFIG, copies=2, seed=11)
    assert len(summary.names) == 4
    ds = microprep.open_dataset(out)
    assert ds.classes == microprep.open_dataset(store).classes
    assert ds.attrs["options"]["seed"] == 11
    assert ds.attrs["options"]["copies"] == 2
    assert ds.attrs["options"]["augment"]["geometry"] == ["flip", "rot90", "rotate", "zoom"]
    first = ds[0]
    assert first.attrs["augment"] == {"source_node": "a.png", "index": 0, "copy": 0, "seed": 11}
    assert first.attrs["name"] == "a.png#aug0"
    assert first["image"].dtype == np.uint8
    source_labels = set(np.unique(microprep.open_dataset(store)[0]["labels"].values).tolist())
    for index in range(len(ds)):
        labels = ds[index]["labels"].values
        assert set(np.unique(labels).tolist()) <= source_labels | {0}
        objects = ds.instances(index)
        for raster, box, area in zip(objects.rasters, objects.boxes, objects.areas, strict=True):
            if area:
                (y0, y1), (x0, x1) = raster.bounds()
                assert box.tolist() == [x0, y0, x1, y1]
                assert raster.area == area


def test_same_seed_same_store_other_seed_differs(store: Path, tmp_path: Path) -> None:
    augment_store(store, tmp_path / "a.zarr", CONFIG, copies=2, seed=3)
    augment_store(store, tmp_path / "b.zarr", CONFIG, copies=2, seed=3)
    augment_store(store, tmp_path / "c.zarr", CONFIG, copies=2, seed=4)
    a, b, c = (_arrays(tmp_path / f"{x}.zarr") for x in "abc")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert any(not np.array_equal(a[k], c[k]) for k in a if k.endswith("/image"))


def test_two_dask_workers_equal_in_process(store: Path, tmp_path: Path) -> None:
    augment_store(store, tmp_path / "local.zarr", CONFIG, copies=2, seed=9)
    augment_store(store, tmp_path / "dist.zarr", CONFIG, copies=2, seed=9, workers=2)
    local, dist = _arrays(tmp_path / "local.zarr"), _arrays(tmp_path / "dist.zarr")
    assert local.keys() == dist.keys()
    for key in local:
        np.testing.assert_array_equal(local[key], dist[key], err_msg=key)


def test_include_original_keeps_the_source(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug.zarr"
    augment_store(store, out, CONFIG, copies=1, seed=0, include_original=True)
    ds, src = microprep.open_dataset(out), microprep.open_dataset(store)
    assert len(ds) == 4
    np.testing.assert_array_equal(ds[0]["image"].values, src[0]["image"].values)
    np.testing.assert_array_equal(ds[0]["instance_box"].values, src[0]["instance_box"].values)
    assert ds[0].attrs["augment"]["copy"] == -1


def test_noise_over_dask_blocks_is_reproducible() -> None:
    arr = da.from_array(np.full((64, 48), 90, np.uint8), chunks=(32, 16))
    specs = parse_noise("poisson:dose=30,salt_and_pepper")
    a = noise_blocks(arr, specs, seed=1).compute()
    b = noise_blocks(arr, specs, seed=1).compute(scheduler="processes")
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.std() > 0
    with pytest.raises(UsageError):
        noise_blocks(arr, parse_noise("blur"), seed=1)


def test_cli_augment(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.zarr"
    code = main(
        [
            "augment",
            str(store),
            "--noise",
            "poisson:dose=50,gaussian:sigma=0.05",
            "--geometry",
            "flip,rot90,rotate,zoom",
            "--copies",
            "3",
            "--seed",
            "5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    ds = microprep.open_dataset(out)
    assert len(ds) == 6
    assert ds.attrs["options"]["augment"]["noise"][0] == {"kind": "poisson", "dose": 50.0}


@pytest.mark.parametrize(
    "args",
    [["--noise", "sparkle"], ["--geometry", "shear"], ["--noise", "poisson:dose=-1"]],
)
def test_cli_bad_options_exit_2(
    store: Path, tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["augment", str(store), "--out", str(tmp_path / "x.zarr"), "-q", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("prep: error:") and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()
