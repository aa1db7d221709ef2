"""SegmentationDataset: 2D / 3D samples, padding, coverage, splits, augmentation, pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from microprep import open_dataset
from microprep.augment import AugmentConfig, parse_noise
from microprep.data import ImageScale, SegmentationDataset
from microprep.errors import UsageError
from microprep.splits import Region, Splits, default_splits_path, make_splits, save_splits

from .helpers import CLASSES, make_store, ramp, store_2d, store_3d

RAW = ImageScale(0.0, 1.0)  # normalisation that keeps the stored values


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return store_2d(tmp_path / "d.zarr")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return store_3d(tmp_path / "v.zarr")


def _stored(path: Path, node: str, var: str) -> np.ndarray:
    with open_dataset(path) as ds:
        return np.asarray(ds[node][var].values)


@pytest.mark.parametrize("rgb", [False, True])
def test_2d_sample_format(tmp_path: Path, rgb: bool) -> None:
    ds = SegmentationDataset(store_2d(tmp_path / "d.zarr", rgb=rgb), window=16)
    channels = 3 if rgb else 1
    assert (ds.ndim, ds.in_channels, ds.num_classes, ds.classes) == (2, channels, 3, CLASSES)
    # a.png 40 x 50: 3 x 4 windows; b.png 20 x 24: 2 x 2 windows
    assert len(ds) == 12 + 4
    sample = ds[5]
    assert set(sample) == {"image", "target", "valid", "node", "origin", "index"}
    assert sample["image"].shape == (channels, 16, 16) and sample["image"].dtype == torch.float32
    assert sample["target"].shape == (16, 16) and sample["target"].dtype == torch.int64
    assert sample["valid"].shape == (16, 16) and sample["valid"].dtype == torch.bool
    assert sample["node"] == "a.png" and sample["index"] == 5
    assert sample["origin"] == (16, 16)
    assert float(sample["image"].min()) >= -1.0 and float(sample["image"].max()) <= 2.0
    assert int(sample["target"].min()) >= 0 and int(sample["target"].max()) < 3
    assert ds[-1]["index"] == len(ds) - 1
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_3d_sample_format_onehot(volume: Path) -> None:
    ds = SegmentationDataset(volume, window=(8, 16, 16), stride=(4, 8, 8), target="onehot")
    assert ds.ndim == 3 and ds.in_channels == 1
    sample = ds[len(ds) // 2]
    assert sample["image"].shape == (1, 8, 16, 16) and sample["image"].dtype == torch.float32
    assert sample["target"].shape == (3, 8, 16, 16) and sample["target"].dtype == torch.float32
    assert sample["valid"].shape == (8, 16, 16)
    assert len(sample["origin"]) == 3
    index = SegmentationDataset(volume, window=(8, 16, 16), stride=(4, 8, 8))
    for i in range(len(ds)):
        onehot, classes = ds[i]["target"], index[i]["target"]
        assert torch.equal(onehot.sum(0), torch.ones_like(onehot[0]))
        assert torch.equal(onehot.argmax(0), classes)
    assert any(int(index[i]["target"].max()) == 1 for i in range(len(index)))


def test_samples_hold_the_stored_pixels_and_cover_every_node(store: Path) -> None:
    ds = SegmentationDataset(store, window=16, stride=12, normalization=RAW)
    for node in ("a.png", "b.png"):
        image, labels = _stored(store, node, "image"), _stored(store, node, "labels")
        seen = np.zeros(labels.shape, int)
        for i in range(len(ds)):
            s = ds[i]
            if s["node"] != node:
                continue
            y, x = s["origin"]
            valid = s["valid"].numpy()
            h, w = valid.sum(0).max(), valid.sum(1).max()
            assert valid[:h, :w].all() and valid.sum() == h * w
            assert np.array_equal(s["image"][0].numpy()[:h, :w], image[y : y + h, x : x + w])
            assert np.array_equal(s["target"].numpy()[:h, :w], labels[y : y + h, x : x + w])
            seen[y : y + h, x : x + w] += 1
        assert seen.min() >= 1  # every pixel is in some window


def test_padding_is_marked_invalid(store: Path) -> None:
    # b.png is 20 x 24: one window of 32 with 12 / 8 padded rows / columns
    ds = SegmentationDataset(store, window=32, nodes=["b.png"], normalization=RAW)
    assert len(ds) == 1
    s = ds[0]
    valid, target, image = s["valid"].numpy(), s["target"].numpy(), s["image"][0].numpy()
    assert valid[:20, :24].all() and not valid[20:].any() and not valid[:, 24:].any()
    assert not target[~valid].any()
    stored = _stored(store, "b.png", "image")
    assert np.array_equal(image[:20, :24], stored)
    assert np.array_equal(image[20:24, :24], stored[18:14:-1])  # reflected rows
    constant = SegmentationDataset(
        store, window=32, nodes=["b.png"], normalization=RAW, pad="constant"
    )
    assert not constant[0]["image"][0].numpy()[~valid].any()
    # edge="pad": the last window keeps the stride and reaches past the edge
    padded = SegmentationDataset(store, window=16, nodes=["b.png"], edge="pad", stride=16)
    last = padded[len(padded) - 1]
    assert last["origin"] == (16, 16)
    assert int(last["valid"].sum()) == 4 * 8


def test_split_windows_read_only_their_own_regions(tmp_path: Path) -> None:
    shape = (40, 50)
    image = np.zeros(shape, np.uint8)
    image[:25], image[25:27], image[27:] = 10, 20, 30  # train, gap, val
    labels = np.zeros(shape, np.uint8)
    labels[5:30, 5:30] = 1
    path = make_store(
        tmp_path / "s.zarr",
        {
            "a.png": {"labels": labels, "image": image},
            "b.png": {"labels": np.zeros((20, 24), np.uint8), "image": ramp((20, 24))},
        },
    )
    splits = Splits(
        train=(Region("a.png", (0, 0), (25, 50)),),
        val=(Region("a.png", (27, 0), (40, 50)),),
        test=(Region("b.png", (0, 0), (20, 24)),),
    )
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for split, value in (("train", 10), ("val", 30)):
        ds = SegmentationDataset(
            path, split=split, splits=splits, window=16, stride=8, normalization=RAW
        )
        region = splits[split][0]
        covered = np.zeros(shape, bool)
        for i in range(len(ds)):
            s = ds[i]
            assert s["node"] == "a.png"
            # every pixel, padding included, comes from the split's own region
            assert np.all(s["image"].numpy() == value)
            y, x = s["origin"]
            v = s["valid"].numpy()
            h, w = int(v.any(1).sum()), int(v.any(0).sum())
            assert region.start[0] <= y and y + h <= region.stop[0]
            assert region.start[1] <= x and x + w <= region.stop[1]
            covered[y : y + h, x : x + w] = True
            boxes.setdefault(split, []).append((y, x, y + h, x + w))
        sl = tuple(slice(a, b) for a, b in zip(region.start, region.stop, strict=True))
        assert covered[sl].all() and covered.sum() == region.size
    for ty0, tx0, ty1, tx1 in boxes["train"]:
        for vy0, vx0, vy1, vx1 in boxes["val"]:
            assert max(ty0, vy0) >= min(ty1, vy1) or max(tx0, vx0) >= min(tx1, vx1)
    test = SegmentationDataset(path, split="test", splits=splits, window=16)
    assert {test[i]["node"] for i in range(len(test))} == {"b.png"}


def test_split_from_the_default_splits_file(store: Path) -> None:
    with pytest.raises(UsageError, match="prep split"):
        SegmentationDataset(store, split="train", window=16)
    splits = make_splits(store, val=0.3, test=0.3, by="region", seed=0, gap=2)
    save_splits(splits, default_splits_path(store))
    sizes = {}
    for name in ("train", "val", "test"):
        ds = SegmentationDataset(store, split=name, window=8)
        sizes[name] = len(ds)
        regions = splits[name]
        for i in range(len(ds)):
            spec = ds.window_at(i)
            assert any(
                r.node == spec.node
                and all(a <= o < b for a, o, b in zip(r.start, spec.origin, r.stop, strict=True))
                and spec.stop == r.stop
                for r in regions
            )
    assert all(sizes.values())
    with pytest.raises(UsageError, match="split must be"):
        SegmentationDataset(store, split="holdout", window=8)
    other = Splits(train=(Region("a.png", (0, 0), (90, 50)),), val=(), test=())
    with pytest.raises(UsageError, match="does not fit"):
        SegmentationDataset(store, split="train", splits=other, window=8)
    train_only = Splits(train=(Region("a.png", (0, 0), (40, 50)),), val=(), test=())
    with pytest.raises(UsageError, match="no regions"):
        SegmentationDataset(store, split="val", splits=train_only, window=8)


def test_bad_options_and_stores(store: Path, tmp_path: Path) -> None:
    for kw in ({"target": "mask"}, {"edge": "wrap"}, {"pad": "edge"}, {"normalization": "z"}):
        with pytest.raises(UsageError):
            SegmentationDataset(store, window=16, **kw)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="window"):
        SegmentationDataset(store, window=(16, 16, 16))
    with pytest.raises(UsageError, match="no node"):
        SegmentationDataset(store, window=16, nodes=["nope.png"])
    bare = make_store(tmp_path / "bare.zarr", {"a.png": {"labels": np.zeros((8, 8), np.uint8)}})
    with pytest.raises(UsageError, match="--images"):
        SegmentationDataset(bare, window=8)


def test_min_foreground_keeps_windows_with_enough_objects(store: Path) -> None:
    everything = SegmentationDataset(store, window=16)
    some = SegmentationDataset(store, window=16, min_foreground=0.2)
    assert 0 < len(some) < len(everything)
    for i in range(len(some)):
        s = some[i]
        assert float((s["target"] > 0).float().mean()) >= 0.2
    with pytest.raises(UsageError, match="min_foreground"):
        SegmentationDataset(store, window=16, min_foreground=1.0)


AUGMENT = AugmentConfig(
    geometry=("flip", "rot90", "rotate"), noise=parse_noise("gaussian:sigma=0.05")
)


def test_augmentation_depends_only_on_seed_epoch_and_index(store: Path) -> None:
    ds = SegmentationDataset(store, window=16, augment=AUGMENT, seed=3)
    again = SegmentationDataset(store, window=16, augment=AUGMENT, seed=3)
    first = ds[4]
    again.set_epoch(0)
    for other in (ds[4], again[4]):
        assert torch.equal(first["image"], other["image"])
        assert torch.equal(first["target"], other["target"])
        assert torch.equal(first["valid"], other["valid"])
    ds.set_epoch(1)
    assert ds.epoch == 1
    assert not torch.equal(ds[4]["image"], first["image"])
    ds.set_epoch(0)
    assert torch.equal(ds[4]["image"], first["image"])
    other_seed = SegmentationDataset(store, window=16, augment=AUGMENT, seed=4)
    assert not torch.equal(other_seed[4]["image"], first["image"])
    plain = SegmentationDataset(store, window=16)
    assert torch.equal(plain[4]["image"], plain[4]["image"])


def test_augmentation_marks_warped_in_areas_invalid(store: Path) -> None:
    turn = AugmentConfig(geometry=("rotate",), rotate_range=(45.0, 45.0))
    ds = SegmentationDataset(store, window=16, augment=turn, nodes=["a.png"])
    s = ds[0]
    valid = s["valid"].numpy()
    assert not valid[0, 0] and not valid[-1, -1] and valid[8, 8]
    assert 0.4 < valid.mean() < 0.9
    assert not s["target"].numpy()[~valid].any()
    # labels move with the image: the rotated target still holds class 1 pixels
    assert int(s["target"].max()) == 1


def test_pickle_round_trip(store: Path) -> None:
    ds = SegmentationDataset(store, window=16, augment=AUGMENT, seed=2)
    ds.set_epoch(3)
    ds[0]  # opens the store in this process
    data = pickle.dumps(ds)
    assert b"zarr.core" not in data
    copy = pickle.loads(data)
    assert copy.reader._root is None
    assert copy.epoch == 3 and len(copy) == len(ds) and copy.scales == ds.scales
    for i in (0, len(ds) - 1):
        assert torch.equal(copy[i]["image"], ds[i]["image"])
        assert torch.equal(copy[i]["target"], ds[i]["target"])


def test_opened_dataset_and_node_selection(store: Path) -> None:
    with open_dataset(store) as opened:
        ds = SegmentationDataset(opened, window=16, nodes=[1])
    assert {ds[i]["node"] for i in range(len(ds))} == {"b.png"}
    assert "b.png" in repr(ds) or "1 nodes" in repr(ds)
