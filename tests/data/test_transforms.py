"""The user's own augmentation pipeline (``transform=``) on the datasets: albumentations and
plain callables, with masks, instances, boxes and the valid mask kept consistent."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from microprep.data import InstanceDataset, SegmentationDataset
from microprep.data.transforms import boxes_from_masks, load_pipeline
from microprep.errors import UsageError

from .helpers import store_2d, store_3d

A = pytest.importorskip("albumentations")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store_2d(tmp_path_factory.mktemp("tf") / "s.zarr")


def _pipeline(shift: int, **affine: Any) -> Any:
    return A.Compose(
        [
            A.HorizontalFlip(p=1),
            A.RandomBrightnessContrast(p=1),
            A.Affine(translate_px={"x": shift, "y": 0}, p=1, **affine),
        ]
    )


def _moved(a: torch.Tensor, shift: int) -> torch.Tensor:
    """``a`` (.., H, W) flipped left-right, then moved ``shift`` > 0 pixels to the right."""
    return a.flip(-1)[..., : a.shape[-1] - shift]


@pytest.mark.parametrize("fill_mask", [0, 255])
def test_albumentations_on_segmentation_moves_pixels_mask_and_valid(
    store: Path, fill_mask: int
) -> None:
    shift = 10
    plain = SegmentationDataset(store, window=32, normalization="dtype")
    ds = SegmentationDataset(
        store, window=32, normalization="dtype", transform=_pipeline(shift, fill_mask=fill_mask)
    )
    for i in range(len(ds)):
        base, s = plain[i], ds[i]
        assert s["image"].shape == base["image"].shape and s["image"].dtype == torch.float32
        # the class map and valid mask moved with the pixels; the area brought in from outside
        # is not valid, whatever the fill of the masks
        assert not s["valid"][:, :shift].any()
        assert torch.equal(s["valid"][:, shift:], _moved(base["valid"], shift))
        assert torch.equal(s["target"][:, shift:], _moved(base["target"], shift))
        assert not s["target"][:, :shift].any()
        # the pixels moved the same way, with one brightness/contrast change over the window
        before = _moved(base["image"][0], shift).numpy().ravel()
        after = s["image"][0, :, shift:].numpy().ravel()
        inside = (after > 0.001) & (after < 0.999)
        assert inside.sum() > 100
        slope, offset = np.polyfit(before[inside], after[inside], 1)
        assert np.abs(slope * before[inside] + offset - after[inside]).max() < 1e-3
        assert abs(slope - 1) > 1e-3 or abs(offset) > 1e-3
        assert torch.all(s["image"][0, :, :shift] == 0)
    # a sample depends on (seed, index, epoch) only: the same twice, another epoch differs
    first = ds[0]["image"]
    assert torch.equal(first, ds[0]["image"])
    assert torch.equal(first, pickle.loads(pickle.dumps(ds))[0]["image"])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["image"])


def test_albumentations_on_instances_drops_objects_moved_out_and_recomputes_boxes(
    store: Path,
) -> None:
    plain = InstanceDataset(store, window=32, normalization="dtype")
    _, base = plain[0]
    assert base["labels"].tolist() == [1]  # the first disk; the second is cut below min_visible
    # moved 10 px to the right: the object is cut by the window's right edge
    ds = InstanceDataset(store, window=32, normalization="dtype", transform=_pipeline(10))
    image, target = ds[0]
    assert image.shape == (1, 32, 32) and torch.all(image[0, :, :10] == 0)
    assert target["labels"].tolist() == [1]
    expected = torch.zeros_like(base["masks"])
    expected[..., 10:] = _moved(base["masks"], 10)
    assert torch.equal(target["masks"], expected)
    assert target["boxes"].tolist() == boxes_from_masks(expected.numpy()).tolist()
    _, y0, x1, y1 = base["boxes"][0].tolist()
    assert target["boxes"][0].tolist() == [32 - x1 + 10, y0, 32, y1]
    assert target["area"].tolist() == [float(expected.sum())]
    assert not target["valid"][:, :10].any() and target["valid"][:, 10:].all()
    # moved 25 px to the left: the object leaves the window and is dropped
    out = InstanceDataset(store, window=32, normalization="dtype", transform=_pipeline(-25))
    _, target = out[0]
    assert target["labels"].numel() == 0 and tuple(target["boxes"].shape) == (0, 4)
    assert tuple(target["masks"].shape) == (0, 32, 32)
    assert not target["valid"][:, 7:].any() and target["valid"][:, :7].all()
    assert out.stats["dropped_transform"] == 1 and out.stats["kept"] == 0


def test_a_pipeline_with_bbox_params_runs_unchanged(store: Path) -> None:
    """A detection pipeline's BboxParams (any format, label fields) need no edit: it gets the
    boxes in its format and the labels in its fields (albumentations refuses it otherwise)."""
    with_boxes = A.Compose(
        [A.HorizontalFlip(p=1)],
        bbox_params=A.BboxParams(format="coco", label_fields=["class_labels"]),
    )
    _, plain = InstanceDataset(store, window=32, transform=A.HorizontalFlip(p=1))[0]
    _, target = InstanceDataset(store, window=32, transform=with_boxes)[0]
    assert target["labels"].tolist() == [1]
    assert torch.equal(target["masks"], plain["masks"])
    assert torch.equal(target["boxes"], plain["boxes"])
    s = SegmentationDataset(store, window=32, transform=with_boxes)[0]
    assert torch.equal(s["target"], SegmentationDataset(store, window=32)[0]["target"].flip(-1))


def test_a_plain_callable_with_the_dict_interface(store: Path) -> None:
    calls: list[set[str]] = []

    def rotate(**data: Any) -> dict[str, Any]:
        calls.append(set(data))
        out = {
            **data,
            "image": np.rot90(data["image"]).copy(),
            "masks": np.rot90(data["masks"], axes=(1, 2)).copy(),
        }
        if "mask" in data:
            out["mask"] = np.rot90(data["mask"]).copy()
        return out

    plain = SegmentationDataset(store, window=32)
    s = SegmentationDataset(store, window=32, transform=rotate)[0]
    assert calls == [{"image", "mask", "masks", "bboxes"}]
    assert torch.equal(s["target"], torch.rot90(plain[0]["target"]))
    assert torch.equal(s["image"], torch.rot90(plain[0]["image"], dims=(1, 2)))

    boxes: list[np.ndarray] = []

    def keep(**data: Any) -> dict[str, Any]:
        boxes.append(data["bboxes"])
        return rotate(**data)

    _, base = InstanceDataset(store, window=32)[0]
    _, target = InstanceDataset(store, window=32, transform=keep)[0]
    assert boxes[0].tolist() == base["boxes"].tolist()  # pascal_voc, window pixels
    assert torch.equal(target["masks"], torch.rot90(base["masks"], dims=(1, 2)))
    assert target["boxes"].tolist() == boxes_from_masks(target["masks"].numpy()).tolist()


def test_transforms_that_break_the_contract_are_clear_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must be an albumentations pipeline or a callable"):
        SegmentationDataset(store, window=32, transform=42)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="2D windows"):
        SegmentationDataset(store_3d(tmp_path / "v.zarr"), window=8, transform=A.HorizontalFlip())
    resize = SegmentationDataset(store, window=32, transform=A.Resize(16, 16))
    with pytest.raises(UsageError, match="keep the window's size"):
        resize[0]
    drops = InstanceDataset(store, window=32, transform=lambda **d: {**d, "masks": d["masks"][:1]})
    with pytest.raises(UsageError, match="validity markers"):
        drops[0]
    with pytest.raises(UsageError, match="failed on a window"):
        SegmentationDataset(store, window=32, transform=lambda **d: 1 / 0)[0]


def test_load_pipeline_reads_a_saved_pipeline(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "pipeline.json"
    A.save(_pipeline(10), str(path))
    loaded = load_pipeline(path)
    ds = SegmentationDataset(store, window=32, transform=loaded)
    direct = SegmentationDataset(store, window=32, transform=_pipeline(10))
    assert torch.equal(ds[0]["image"], direct[0]["image"])
    yaml_path = tmp_path / "pipeline.yaml"
    A.save(_pipeline(10), str(yaml_path), data_format="yaml")
    assert type(load_pipeline(yaml_path)).__name__ == "Compose"
    with pytest.raises(UsageError, match=r"data\.albumentations: .*missing\.json: not found"):
        load_pipeline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a pipeline"}')
    with pytest.raises(UsageError, match=r"bad\.json: not an albumentations json pipeline"):
        load_pipeline(bad)


def test_a_missing_albumentations_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "albumentations", None)
    with pytest.raises(UsageError, match=r"albumentations package.*pip install"):
        load_pipeline(tmp_path / "pipeline.json")
