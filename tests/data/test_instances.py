"""InstanceDataset: torchvision target format, clipping, negatives, augmentation, Mask R-CNN."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from microprep.augment import AugmentConfig
from microprep.data import InstanceDataset, collate_instances
from microprep.errors import UsageError

from .helpers import disk, make_store, ramp, store_2d, store_3d

KEYS = {"boxes", "labels", "masks", "image_id", "area", "iscrowd", "valid"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return store_2d(tmp_path / "d.zarr")


def _check_target(image: torch.Tensor, target: dict[str, torch.Tensor], index: int) -> int:
    """Assert the torchvision format; return the number of objects."""
    _, h, w = image.shape
    assert image.dtype == torch.float32
    assert set(target) == KEYS
    n = len(target["labels"])
    assert target["boxes"].shape == (n, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].dtype == torch.int64
    assert target["masks"].shape == (n, h, w) and target["masks"].dtype == torch.uint8
    assert target["image_id"].shape == () and target["image_id"].dtype == torch.int64
    assert int(target["image_id"]) == index
    assert target["area"].shape == (n,) and target["area"].dtype == torch.float32
    assert target["iscrowd"].shape == (n,) and not target["iscrowd"].any()
    assert target["valid"].shape == (h, w) and target["valid"].dtype == torch.bool
    if n:
        boxes = target["boxes"]
        assert ((target["labels"] >= 1) & (target["labels"] <= 2)).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        for mask, box, area in zip(target["masks"], boxes, target["area"], strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert float(area) == len(ys) > 0
            tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert box.tolist() == [float(v) for v in tight]
    return n


def test_target_format_and_negatives(store: Path) -> None:
    ds = InstanceDataset(store, window=32, min_area=4)
    assert ds.num_classes == 3 and ds.in_channels == 1
    counts = []
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (1, 32, 32)
        counts.append(_check_target(image, target, i))
    assert sum(counts) > 0
    # b.png has no objects and is smaller than the window: a padded negative
    image, target = ds[len(ds) - 1]
    assert ds.window_at(len(ds) - 1).node == "b.png"
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 32, 32)
    assert not image[0, 20:, :].any() or float(image[0, 20:, :].std()) == 0.0


def test_whole_object_matches_the_store(store: Path) -> None:
    ds = InstanceDataset(store, window=32, min_visible=1.0, min_area=1)
    # window 0 of a.png at (0, 0) holds disk one (centre 12, 14; radius 6) whole
    _, target = ds[0]
    assert target["labels"].tolist() == [1]
    expected = disk((40, 50), (12, 14), 6)[:32, :32]
    assert np.array_equal(target["masks"][0].numpy().astype(bool), expected)
    assert float(target["area"][0]) == float(expected.sum())


def test_border_objects_are_filtered_and_counted(tmp_path: Path) -> None:
    shape = (32, 48)
    cut = np.zeros(shape, bool)
    cut[4:12, 12:20] = True  # 64 px, 4 columns in the second window (x >= 16) -> 25 %
    whole = np.zeros(shape, bool)
    whole[20:26, 30:36] = True
    labels = (cut | whole).astype(np.uint8)
    path = make_store(
        tmp_path / "c.zarr",
        {"a.png": {"labels": labels, "image": ramp(shape), "masks": [cut, whole],
                   "classes": [1, 2]}},
    )  # fmt: skip
    strict = InstanceDataset(path, window=16, stride=16, min_visible=0.5, min_area=1)
    loose = InstanceDataset(path, window=16, stride=16, min_visible=0.2, min_area=1)
    # windows (0, 0) and (0, 16) each hold half of ``cut``; (16, 16) holds ``whole``
    s_labels = [strict[i][1]["labels"].tolist() for i in range(len(strict))]
    l_labels = [loose[i][1]["labels"].tolist() for i in range(len(loose))]
    assert sum(map(len, l_labels)) > sum(map(len, s_labels))
    assert [2] in s_labels
    assert strict.stats["dropped_border"] >= 1 and strict.stats["samples"] == len(strict)
    assert loose.stats["dropped_border"] == 0
    big = InstanceDataset(path, window=16, stride=16, min_visible=0.0, min_area=40)
    assert all(len(big[i][1]["labels"]) in (0, 1) for i in range(len(big)))
    with pytest.raises(UsageError, match="min-visible"):
        InstanceDataset(path, window=16, min_visible=2.0)


def test_augmentation_keeps_the_format_and_drops_objects_moved_out(store: Path) -> None:
    config = AugmentConfig(geometry=("flip", "rot90", "rotate", "zoom"), zoom_range=(1.6, 2.0))
    ds = InstanceDataset(store, window=32, augment=config, seed=5, min_area=1)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            image, target = ds[i]
            _check_target(image, target, i)
    assert ds.stats["samples"] == 3 * len(ds)
    again = InstanceDataset(store, window=32, augment=config, seed=5, min_area=1)
    again.set_epoch(2)
    for i in range(len(ds)):
        a, b = ds[i], again[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1]["masks"], b[1]["masks"])
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.stats["samples"] == 0 and torch.equal(copy[1][0], ds[1][0])


def test_objects_moved_out_by_augmentation_are_removed(tmp_path: Path) -> None:
    shape = (32, 32)
    corner, centre = np.zeros(shape, bool), np.zeros(shape, bool)
    corner[1:4, 1:4] = True
    centre[14:18, 14:18] = True
    path = make_store(
        tmp_path / "z.zarr",
        {"a.png": {"labels": (corner | centre).astype(np.uint8), "image": ramp(shape),
                   "masks": [corner, centre], "classes": [1, 2]}},
    )  # fmt: skip
    plain = InstanceDataset(path, window=32, min_area=1)
    assert plain[0][1]["labels"].tolist() == [1, 2]
    zoom = AugmentConfig(geometry=("zoom",), zoom_range=(2.0, 2.0))
    ds = InstanceDataset(path, window=32, min_area=1, augment=zoom)
    image, target = ds[0]
    _check_target(image, target, 0)
    assert target["labels"].tolist() == [2]  # the corner object left the window
    assert float(target["area"][0]) > 16  # the centre one grew
    assert ds.stats["dropped_augment"] == 1 and ds.stats["kept"] == 1


def _ignore_store(path: Path) -> tuple[Path, np.ndarray]:
    """One 32 x 40 image: columns 28.. not annotated (255 in the class map, pixels 255,
    others below 200), a disk of class 1 at the left and one of class 2 drawn inside the
    unannotated part (kept as an object)."""
    shape = (32, 40)
    labels = np.zeros(shape, np.uint8)
    left, right = disk(shape, (10, 8), 5), disk(shape, (20, 34), 4)
    labels[left] = 1
    labels[:, 28:] = 255
    image = (ramp(shape) % 200).astype(np.uint8)
    image[:, 28:] = 255
    node = {"labels": labels, "image": image, "masks": [left, right], "classes": [1, 2]}
    return make_store(path, {"a.png": node}, ignore=True), labels != 255


def test_valid_is_false_where_not_annotated_and_on_padding(tmp_path: Path) -> None:
    path, annotated = _ignore_store(tmp_path / "i.zarr")
    ds = InstanceDataset(path, window=(32, 40), min_area=1)
    assert ds.ignore_index == 255 and len(ds) == 1
    image, target = ds[0]
    _check_target(image, target, 0)
    assert np.array_equal(target["valid"].numpy(), annotated)
    assert target["labels"].tolist() == [1, 2]  # the object in the unannotated part stays
    padded = InstanceDataset(path, window=48, min_area=1)
    valid = padded[0][1]["valid"].numpy()
    assert valid.shape == (48, 48) and not valid[32:].any() and not valid[:, 40:].any()
    assert np.array_equal(valid[:32, :40], annotated)
    plain = InstanceDataset(store_2d(tmp_path / "d.zarr"), window=(40, 50))
    assert plain.ignore_index is None and bool(plain[0][1]["valid"].all())


def test_augmentation_moves_valid_with_the_pixels(tmp_path: Path) -> None:
    path, _ = _ignore_store(tmp_path / "i.zarr")
    config = AugmentConfig(geometry=("flip", "rot90"))
    ds = InstanceDataset(path, window=32, min_area=1, augment=config, seed=1)
    moved = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            image, *_, valid = ds.read_numpy(i)
            # the unannotated columns hold the only pixels of value 255
            assert np.array_equal(valid, image != 255)
            moved += int(bool(valid[:, -1].all()))
    assert moved > 0  # some draws turned the unannotated columns away from the right edge
    zoom_out = AugmentConfig(geometry=("zoom",), zoom_range=(0.5, 0.5))
    shrunk = InstanceDataset(store_2d(tmp_path / "d.zarr"), window=(40, 50), augment=zoom_out)
    valid = shrunk[0][1]["valid"].numpy()
    assert not valid[0].any() and not valid[:, 0].any()  # warped in from outside
    assert valid[20, 25]


def test_volume_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="2D"):
        InstanceDataset(store_3d(tmp_path / "v.zarr"), window=8)


@pytest.mark.slow
def test_mask_rcnn_trains_on_a_collated_batch(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    ds = InstanceDataset(store_2d(tmp_path / "rgb.zarr", rgb=True), window=32)
    images, targets = collate_instances([ds[0], ds[len(ds) - 1]])  # one positive, one negative
    assert images[0].shape == (3, 32, 32) and len(targets[1]["labels"]) == 0
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=ds.num_classes, min_size=64, max_size=64
    )
    model.train()
    losses = model(images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_mask"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    assert torchvision.__version__
