"""CropIndex: lazy reads equal chunk-aware iteration; stitching; clipping; filters; padding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from microprep import open_dataset
from microprep.crops.cut import cut_window
from microprep.crops.index import CropIndex
from microprep.crops.instances import clip_instances
from microprep.crops.slabs import SlabReader
from microprep.errors import UsageError

from .helpers import disk, instances_from_masks, make_store


@pytest.fixture
def store2d(tmp_path: Path) -> Path:
    labels = np.zeros((70, 90), np.uint8)
    a = disk((70, 90), (20, 30), 8)
    b = disk((70, 90), (50, 60), 10)
    labels[a], labels[b] = 1, 2
    empty = np.zeros((10, 12), np.uint8)
    nodes = {"a.png": (labels, [a, b], [1, 2]), "tiny.png": (empty, [], [])}
    return make_store(tmp_path / "d.zarr", nodes)


@pytest.fixture
def store3d(tmp_path: Path) -> Path:
    shape = (40, 50, 60)
    labels = np.zeros(shape, np.uint8)
    ball = disk(shape, (20, 25, 30), 9)
    labels[ball] = 1
    return make_store(tmp_path / "v.zarr", {"vol": (labels, [ball], [1])})


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["origin"] == b["origin"] and a["node"] == b["node"] and a["index"] == b["index"]
    assert np.array_equal(a["labels"], b["labels"])
    assert np.array_equal(a["image"], b["image"])
    assert np.array_equal(a["instances"].boxes, b["instances"].boxes)
    assert np.array_equal(a["instances"].layers(), b["instances"].layers())
    assert np.array_equal(a["instance_ids"], b["instance_ids"])


@pytest.mark.parametrize("edge", ["flush", "pad"])
def test_iteration_equals_random_access(store2d: Path, edge: str) -> None:
    index = CropIndex(open_dataset(store2d), window=32, stride=16, edge=edge)
    crops = list(index.iter_crops())
    assert len(crops) == len(index)
    for i, crop in enumerate(crops):
        _same(dict(crop), dict(index.read(i)))


def test_volume_iteration_equals_random_access(store3d: Path) -> None:
    index = CropIndex(open_dataset(store3d), window=(16, 16, 16), stride=(8, 16, 16))
    for i, crop in enumerate(index.iter_crops()):
        _same(dict(crop), dict(index.read(i)))
        assert crop["labels"].shape == (16, 16, 16)


@pytest.mark.parametrize("edge", ["flush", "pad"])
def test_crops_stitch_back_to_the_source(store2d: Path, edge: str) -> None:
    ds = open_dataset(store2d)
    index = CropIndex(ds, window=(24, 32), stride=(20, 17), edge=edge, nodes=["a.png"])
    labels = ds["a.png"]["labels"].values
    image = ds["a.png"]["image"].values
    out = np.full(labels.shape, 255, np.uint8)
    pix = np.zeros_like(image)
    for crop in index.iter_crops():
        valid = tuple(slice(0, v) for v in crop["valid"])
        target = tuple(slice(o, o + v) for o, v in zip(crop["origin"], crop["valid"], strict=True))
        out[target] = crop["labels"][valid]
        pix[target] = crop["image"][valid]
    assert np.array_equal(out, labels)
    assert np.array_equal(pix, image)


def test_objects_are_clipped_and_filtered(store2d: Path) -> None:
    ds = open_dataset(store2d)
    full = ds.instances("a.png")
    index = CropIndex(ds, window=32, stride=32, edge="pad", nodes=["a.png"], min_visible=0.0)
    seen = np.zeros(len(full), np.int64)
    for crop in index.iter_crops():
        objs = crop["instances"]
        assert objs.shape == (32, 32)
        for k, src in enumerate(crop["instance_ids"]):
            raster = objs.rasters[k]
            assert objs.areas[k] == raster.area > 0
            box = objs.boxes[k]
            assert 0 <= box[0] < box[2] <= 32 and 0 <= box[1] < box[3] <= 32
            assert objs.labels[k] == full.labels[src]
            seen[src] += objs.areas[k]
    assert np.array_equal(seen, full.areas)  # non-overlapping windows split every object
    strict = CropIndex(ds, window=32, stride=32, edge="pad", nodes=["a.png"], min_visible=0.9)
    kept = sum(len(c["instances"]) for c in strict.iter_crops())
    assert kept < sum(len(c["instances"]) for c in index.iter_crops())
    big = CropIndex(ds, window=32, stride=32, edge="pad", nodes=["a.png"], min_area=10_000)
    assert all(len(c["instances"]) == 0 for c in big.iter_crops())


def test_empty_windows_are_valid_negatives(store2d: Path) -> None:
    index = CropIndex(open_dataset(store2d), window=64, nodes=["tiny.png"])
    (crop,) = list(index.iter_crops())
    assert crop["labels"].shape == (64, 64) and not crop["labels"].any()
    assert len(crop["instances"]) == 0 and crop["instances"].boxes.shape == (0, 4)
    assert crop["valid"] == (10, 12)


def test_min_foreground_filters_windows(store2d: Path) -> None:
    ds = open_dataset(store2d)
    every = CropIndex(ds, window=16, nodes=["a.png"])
    some = CropIndex(ds, window=16, nodes=["a.png"], min_foreground=0.2)
    assert 0 < len(some) < len(every)
    for crop in some.iter_crops():
        assert np.count_nonzero(crop["labels"]) / 256 >= 0.2


@pytest.mark.parametrize("pad", ["constant", "reflect"])
def test_small_images_are_padded(store2d: Path, pad: str) -> None:
    ds = open_dataset(store2d)
    crop = CropIndex(ds, window=16, nodes=["tiny.png"], pad=pad).read(0)
    image = ds["tiny.png"]["image"].values
    assert crop["image"] is not None
    assert np.array_equal(crop["image"][:10, :12], image)
    expected = np.pad(image, ((0, 6), (0, 4)), mode=pad)
    assert np.array_equal(crop["image"], expected)


def test_bad_options_are_usage_errors(store2d: Path) -> None:
    ds = open_dataset(store2d)
    with pytest.raises(UsageError, match="window"):
        CropIndex(ds, window=(8, 8, 8))
    with pytest.raises(UsageError, match="pad"):
        CropIndex(ds, window=8, pad="wrap")
    with pytest.raises(UsageError, match="min-visible"):
        CropIndex(ds, window=8, min_visible=2.0)


def test_clip_instances_in_memory() -> None:
    a = disk((20, 20), (5, 5), 4)
    objs = instances_from_masks([a], [2])
    clipped, ids = clip_instances(objs, (0, 5), (20, 20), min_visible=0.25, min_area=1)
    assert ids.tolist() == [0]
    assert clipped.areas[0] == int(a[:, 5:].sum())
    assert clipped.boxes[0].tolist() == [0.0, 1.0, 5.0, 10.0]  # x 5..9 -> 0..4, y 1..9


class CountingArray:
    """A zarr array that records the first-axis rows of every read."""

    def __init__(self, array: Any) -> None:
        self.array, self.reads = array, []  # type: list[tuple[int, int]]
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, sel: Any) -> Any:
        self.reads.append((sel[0].start, sel[0].stop))
        return self.array[sel]


@settings(max_examples=30, deadline=None)
@given(
    chunk=st.sampled_from([1, 3, 8, 40]),
    window=st.integers(1, 12),
    fraction=st.floats(0.1, 1.0),
)
def test_slab_reader_reads_every_chunk_once(chunk: int, window: int, fraction: float) -> None:
    data = np.arange(40 * 6 * 5, dtype=np.uint16).reshape(40, 6, 5)
    arr = zarr.create_array(
        store=zarr.storage.MemoryStore(), shape=data.shape, chunks=(chunk, 6, 5), dtype=data.dtype
    )
    arr[...] = data
    counting = CountingArray(arr)
    reader = SlabReader(counting)
    stride = max(1, int(window * fraction))
    for start in range(0, 40, stride):
        rows = reader.rows(start, start + window)
        assert np.array_equal(rows, data[start : start + window])
        cut = cut_window(rows, (start, 1, 0), (window, 4, 7), row_offset=start, full_rows=40)
        assert cut.shape == (window, 4, 7)
    covered = np.zeros(40, np.int64)
    for lo, hi in counting.reads:
        assert lo % chunk == 0
        covered[lo:hi] += 1
    assert covered.max() == 1  # no row (so no chunk) read twice
