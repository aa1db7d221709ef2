"""prep augment --split: only a split's nodes, or a volume's region as a node of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crops.helpers import disk, make_store
from microprep import open_dataset
from microprep.augment import AugmentConfig, parse_noise
from microprep.augment.nodes import read_node, tasks_for
from microprep.augment.write import augment_node, augment_store
from microprep.cli.main import main
from microprep.splits import Region, Splits, save_splits

SHAPE = (20, 24, 28)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    labels = np.zeros(SHAPE, np.uint8)
    inside = disk(SHAPE, (15, 12, 14), 3)  # all in z >= 10
    across = disk(SHAPE, (10, 12, 14), 4)  # crosses z = 10
    below = disk(SHAPE, (3, 6, 6), 2)  # all in z < 10
    labels[inside], labels[across], labels[below] = 1, 2, 1
    masks = [inside & ~across, across, below]
    store = make_store(tmp_path / "v.zarr", {"vol": (labels, masks, [1, 2, 1])})
    val = Region("vol", (10, 0, 0), SHAPE)
    splits = Splits(train=(Region("vol", (0, 0, 0), (10, *SHAPE[1:])),), val=(val,), test=())
    save_splits(splits, Path(f"{store}.splits.json"))
    return store


def test_a_region_is_augmented_as_a_node_of_its_own(volume: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug.zarr"
    config = AugmentConfig(noise=parse_noise("gaussian:sigma=0.05"))
    summary = augment_store(
        volume, out, config, copies=1, seed=3, include_original=True, split="val"
    )
    assert summary.nodes == 1 and len(summary.names) == 2
    source = open_dataset(volume)["vol"]
    aug = open_dataset(out)
    original, noisy = (aug[name] for name in aug.nodes)
    assert dict(original.sizes)["z"] == 10
    # the original copy is exactly the region: pixels, class map
    np.testing.assert_array_equal(original["labels"].values, source["labels"].values[10:])
    np.testing.assert_array_equal(original["image"].values, source["image"].values[10:])
    assert not np.array_equal(noisy["image"].values, original["image"].values)  # noise: image
    np.testing.assert_array_equal(noisy["labels"].values, original["labels"].values)
    # objects clipped to the region: the one below is gone, the one across keeps its top part
    areas = sorted(original["instance_area"].values.tolist())
    inside = disk(SHAPE, (15, 12, 14), 3) & ~disk(SHAPE, (10, 12, 14), 4)
    assert areas == sorted([int(inside.sum()), int(disk(SHAPE, (10, 12, 14), 4)[10:].sum())])
    boxes = original["instance_box"].values  # x, y, z min then max, in region pixels
    assert boxes[:, 2].min() == 0 and boxes[:, 5].max() <= 10
    assert original.attrs["name"] == "vol[10:20,0:24,0:28]"
    assert original.attrs["augment"]["region"] == [[10, 0, 0], list(SHAPE)]


def test_a_worker_reads_its_region_alone(volume: Path) -> None:
    """augment_node without data (as on a dask worker) equals the in-process path."""
    config = AugmentConfig(noise=parse_noise("poisson:dose=20"))
    (task,) = tasks_for(volume, [Region("vol", (10, 0, 0), SHAPE)], config, copies=1, seed=1)
    alone = augment_node(task)
    shared = augment_node(task, read_node(volume, "vol", task.region))
    np.testing.assert_array_equal(alone[0].class_map, shared[0].class_map)
    np.testing.assert_array_equal(alone[1], shared[1])
    assert alone[0].name == "vol[10:20,0:24,0:28]#aug0" and alone[2] == shared[2]


def test_splits_by_image_choose_nodes(tmp_path: Path) -> None:
    empty = np.zeros((12, 12), np.uint8)
    store = make_store(tmp_path / "d.zarr", {f"im{k}.png": (empty, [], []) for k in range(3)})
    whole = [Region(f"im{k}.png", (0, 0), (12, 12)) for k in range(3)]
    splits = Splits(train=(whole[0], whole[2]), val=(whole[1],), test=())
    config = AugmentConfig(noise=parse_noise("poisson"))
    summary = augment_store(
        store, tmp_path / "a.zarr", config, copies=2, seed=0, split="train", splits=splits
    )
    names = [str(open_dataset(tmp_path / "a.zarr")[n].attrs["name"]) for n in summary.names]
    assert names == ["im0.png#aug0", "im0.png#aug1", "im2.png#aug0", "im2.png#aug1"]


def test_cli_split(volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.zarr"
    args = ["augment", str(volume), "--noise", "poisson", "--split", "val", "--out", str(out)]
    assert main(args) == 0
    assert "1 source regions x 1 copies" in capsys.readouterr().out
    other = tmp_path / "b.zarr"
    missing = tmp_path / "none.json"
    code = main([*args[:-1], str(other), "--splits", str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and not other.exists()


def test_a_node_without_objects_is_augmented(tmp_path: Path) -> None:
    empty = np.zeros((12, 16), np.uint8)
    store = make_store(tmp_path / "d.zarr", {"a.png": (empty, [], [])})
    config = AugmentConfig(noise=parse_noise("poisson"))
    summary = augment_store(store, tmp_path / "a.zarr", config, copies=1, seed=0)
    node = open_dataset(tmp_path / "a.zarr")[summary.names[0]]
    assert dict(node.sizes)["instance"] == 0 and node["image"].shape == (12, 16)
