"""Crops of one split: windows only inside its regions, never a pixel of another split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from microprep import open_dataset
from microprep.cli.main import main
from microprep.cluster import local_cluster
from microprep.crops.cut import cut_window
from microprep.crops.index import CropIndex
from microprep.crops.scale import distributed_samples
from microprep.crops.write import write_crops
from microprep.errors import UsageError
from microprep.splits import Region, Splits, save_splits

from .helpers import disk, make_store

SHAPE = (24, 30, 34)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """A volume whose class map is 1 in z 0..11, 2 in z 12..23 (where a ball crosses z=12)."""
    labels = np.ones(SHAPE, np.uint8)
    labels[12:] = 2
    ball = disk(SHAPE, (12, 15, 17), 5)
    return make_store(tmp_path / "v.zarr", {"vol": (labels, [ball], [1])})


def _splits(path: Path, train: Region, val: Region, test: tuple[Region, ...] = ()) -> Path:
    splits = Splits(train=(train,), val=(val,), test=test, by="region", region_axis="z")
    return save_splits(splits, Path(f"{path}.splits.json"))


@pytest.mark.parametrize("pad", ["constant", "reflect"])
def test_val_crops_read_nothing_of_train(volume: Path, pad: str) -> None:
    _splits(volume, Region("vol", (0, 0, 0), (12, 30, 34)), Region("vol", (12, 0, 0), (24, 30, 34)))
    ds = open_dataset(volume)
    # edge="pad": the last windows of a region reach past its end, into the other split's rows
    opts = {"window": (8, 16, 16), "stride": (5, 8, 8), "pad": pad, "edge": "pad"}
    val = CropIndex(ds, split="val", **opts)
    train = CropIndex(ds, split="train", **opts)
    assert (train.origins["vol"][:, 0] + 8 > 12).any()
    assert val.regions == {"vol": [Region("vol", (12, 0, 0), (24, 30, 34))]}
    assert (val.origins["vol"][:, 0] >= 12).all() and (train.origins["vol"][:, 0] < 12).all()
    for index, own in ((val, 2), (train, 1)):
        for i, crop in enumerate(index.iter_crops()):
            # the class map of a crop holds its own split's class (and padding), never the other
            assert set(np.unique(crop["labels"]).tolist()) <= {0, own}
            same = index.read(i)
            assert np.array_equal(crop["labels"], same["labels"])
            assert np.array_equal(crop["image"], same["image"])
            assert np.array_equal(crop["instances"].layers(), same["instances"].layers())


def test_a_window_past_its_region_is_padded_like_a_window_past_the_node(volume: Path) -> None:
    _splits(volume, Region("vol", (0, 0, 0), (12, 30, 34)), Region("vol", (12, 0, 0), (18, 30, 34)))
    ds = open_dataset(volume)
    index = CropIndex(ds, window=(8, 16, 16), pad="reflect", split="val")
    image = np.asarray(ds["vol"]["image"].values)
    region = image[12:18]  # the val region only, as if it were the whole volume
    for crop in index.iter_crops():
        z, y, x = crop["origin"]
        want = cut_window(region, (z - 12, y, x), (8, 16, 16), pad="reflect")
        assert np.array_equal(crop["image"], want)
        assert crop["valid"][0] == 6  # 6 of the 8 rows lie inside the region


def test_objects_are_clipped_to_the_region(volume: Path) -> None:
    _splits(volume, Region("vol", (0, 0, 0), (12, 30, 34)), Region("vol", (12, 0, 0), (24, 30, 34)))
    index = CropIndex(open_dataset(volume), window=(12, 30, 34), split="val", min_visible=0.0)
    (crop,) = list(index.iter_crops())
    ball = disk(SHAPE, (12, 15, 17), 5)
    assert crop["instances"].areas.tolist() == [int(ball[12:].sum())]
    assert crop["instances"].boxes[0, 2] == 0  # the box starts at the region's first slice


def test_by_image_splits_choose_nodes(tmp_path: Path) -> None:
    empty = np.zeros((20, 20), np.uint8)
    store = make_store(tmp_path / "d.zarr", {f"im{k}.png": (empty, [], []) for k in range(3)})
    whole = [Region(f"im{k}.png", (0, 0), (20, 20)) for k in range(3)]
    splits = Splits(train=(whole[0], whole[2]), val=(whole[1],), test=())
    index = CropIndex(open_dataset(store), window=16, split="train", splits=splits)
    assert index.nodes == ("im0.png", "im2.png") and index.splits_file is None
    with pytest.raises(UsageError, match="'test' split has no regions"):
        CropIndex(open_dataset(store), window=16, split="test", splits=splits)
    with pytest.raises(UsageError, match="no splits file"):
        CropIndex(open_dataset(store), window=16, split="val")


def test_the_crops_store_records_the_split(volume: Path, tmp_path: Path) -> None:
    path = _splits(
        volume, Region("vol", (0, 0, 0), (12, 30, 34)), Region("vol", (12, 0, 0), (24, 30, 34))
    )
    out = tmp_path / "c.zarr"
    code = main(["crop", str(volume), "--window", "8,16,16", "--split", "val", "--out", str(out)])
    assert code == 0
    root = zarr.open_group(out, mode="r")
    attrs = root.attrs["microprep_crops"]
    assert attrs["split"] == "val" and attrs["splits_file"] == str(path.resolve())
    assert attrs["splits_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert root["vol"].attrs["regions"] == [[[12, 0, 0], [24, 30, 34]]]
    assert (root["vol"]["origin"][:][:, 0] >= 12).all()


def test_cli_without_a_splits_file_is_one_line(
    volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c"
    code = main(["crop", str(volume), "--window", "8", "--split", "val", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "no splits file" in err and "prep split" in err
    assert "Traceback" not in err and not out.exists()


def test_two_workers_crop_a_split_like_one_process(volume: Path, tmp_path: Path) -> None:
    _splits(volume, Region("vol", (0, 0, 0), (10, 30, 34)), Region("vol", (13, 0, 0), (24, 30, 34)))
    index = CropIndex(open_dataset(volume), window=8, stride=5, pad="reflect", split="val")
    write_crops(index, tmp_path / "local.zarr")
    with local_cluster(2, processes=False) as client:
        write_crops(index, tmp_path / "dist.zarr", samples=distributed_samples(client))
    local = xr.open_datatree(tmp_path / "local.zarr", engine="zarr")
    dist = xr.open_datatree(tmp_path / "dist.zarr", engine="zarr")
    xr.testing.assert_identical(local["vol"].to_dataset(), dist["vol"].to_dataset())
    assert int(local["vol"]["origin"].values[:, 0].min()) == 13
