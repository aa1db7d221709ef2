"""Scale-out: a 2-worker LocalCluster writes the same crops as the in-process path."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from microprep import open_dataset
from microprep.cluster import local_cluster
from microprep.crops.cut import cut_window
from microprep.crops.index import CropIndex
from microprep.crops.scale import crop_array, distributed_samples
from microprep.crops.windows import window_grid
from microprep.crops.write import write_crops

from .helpers import disk, make_store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    shape = (30, 40, 50)
    labels = np.zeros(shape, np.uint8)
    a, b = disk(shape, (10, 12, 14), 6), disk(shape, (20, 28, 35), 8)
    labels[a], labels[b] = 1, 2
    image = np.zeros((45, 61), np.uint8)
    c = disk(image.shape, (20, 30), 12)
    image[c] = 1
    nodes = {"vol": (labels, [a, b], [1, 2]), "img": (image, [c], [1])}
    return make_store(tmp_path / "d.zarr", nodes)


@pytest.mark.parametrize("processes", [False, True])
def test_two_workers_equal_in_process(store: Path, tmp_path: Path, processes: bool) -> None:
    ds = open_dataset(store)
    index = CropIndex(ds, window=16, stride=8, edge="pad", pad="reflect", min_visible=0.3)
    write_crops(index, tmp_path / "local.zarr")
    with local_cluster(2, processes=processes) as client:
        write_crops(index, tmp_path / "dist.zarr", samples=distributed_samples(client))
    local = xr.open_datatree(tmp_path / "local.zarr", engine="zarr")
    dist = xr.open_datatree(tmp_path / "dist.zarr", engine="zarr")
    assert sorted(local.children) == sorted(dist.children) == ["img", "vol"]
    assert dist.attrs["microprep_crops"]["nodes"] == ["vol", "img"]
    for name in local.children:
        xr.testing.assert_identical(local[name].to_dataset(), dist[name].to_dataset())


def test_crop_array_over_dask_equals_numpy() -> None:
    data = np.arange(37 * 29, dtype=np.uint16).reshape(37, 29)
    origins = window_grid(shape=data.shape, window=8, stride=6, edge="pad")
    expected = crop_array(data, origins, (8, 8), pad="reflect")
    lazy = crop_array(da.from_array(data, chunks=(10, 10)), origins, (8, 8), pad="reflect")
    assert isinstance(lazy, da.Array)
    assert np.array_equal(lazy.compute(), expected)
    assert expected.shape == (len(origins), 8, 8)


@pytest.mark.parametrize(
    ("shape", "window", "stride"),
    [((37, 29), (8, 8), (3, 5)), ((10, 11, 12, 3), (4, 5, 6), (2, 3, 4)), ((5, 5), (8, 8), (8, 8))],
)
@pytest.mark.parametrize("edge", ["flush", "pad"])
def test_crop_array_equals_cut_window(
    shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...], edge: str
) -> None:
    data = np.random.default_rng(0).integers(0, 100, shape)
    origins = window_grid(shape=shape[: len(window)], window=window, stride=stride, edge=edge)
    got = crop_array(data, origins, window, pad="reflect")
    expected = np.stack([cut_window(data, tuple(o), window, pad="reflect") for o in origins])
    assert np.array_equal(got, expected)


def test_crop_array_any_order_and_subsets_equal_cut_window() -> None:
    """Full flush grids take one strided copy per block; shuffled or partial grids do not."""
    data = np.random.default_rng(1).integers(0, 255, (61, 47), dtype=np.uint8)
    origins = window_grid(shape=data.shape, window=(16, 12), stride=(7, 5))
    expected = np.stack([cut_window(data, tuple(o), (16, 12)) for o in origins])
    assert np.array_equal(crop_array(data, origins, (16, 12)), expected)
    order = np.random.default_rng(2).permutation(len(origins))
    assert np.array_equal(crop_array(data, origins[order], (16, 12)), expected[order])
    assert np.array_equal(crop_array(data, origins[3:-4], (16, 12)), expected[3:-4])
