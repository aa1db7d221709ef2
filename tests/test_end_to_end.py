"""End to end on the shipped sample data: every target from one conversion, and they agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pycocotools.coco import COCO

import microprep
from microprep.conversion import ConvertOptions
from microprep.readers import read_annotations
from microprep.splits import load_splits


def _convert(sample: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microprep", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=sample.parent,
    )


@pytest.mark.slow
def test_micrographs_to_every_target(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "micrographs"
    done = _convert(
        sample_data,
        out,
        "convert",
        str(sample_data / "cvat" / "annotations.xml"),
        "--images",
        str(sample_data / "micrographs"),
        "--to",
        "zarr,masks,onehot,coco,yolo",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    annotations = read_annotations(sample_data / "cvat" / "annotations.xml")
    ds = microprep.open_dataset(out / "dataset.zarr")
    assert len(ds) == len(annotations.images)
    assert ds.classes == annotations.labels.class_names
    coco = COCO(str(out / "coco.json"))
    coco_images = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes == list(ds.classes)
    for node, image in zip(ds.nodes, annotations.images, strict=True):
        data = ds[node]
        assert data.attrs["name"] == image.name
        labels = data["labels"].values
        assert labels.shape == (image.height, image.width)
        assert data["image"].shape[:2] == (image.height, image.width)
        stem = image.name.rsplit(".", 1)[0]
        png = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        np.testing.assert_array_equal(png, labels)
        onehot = np.load(out / "onehot" / f"{stem}.npy")
        np.testing.assert_array_equal(onehot.argmax(axis=0), labels)
        objects = ds.instances(node)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[coco_images[image.name]]))
        assert len(anns) == len(objects)
        dense = objects.dense()
        for ann, mask, label in zip(anns, dense, objects.labels, strict=True):
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
            assert ann["category_id"] == label
        yolo = (out / "labels" / f"{stem}.txt").read_text().splitlines()
        assert len(yolo) == len(objects)
        # every labelled pixel of the class map belongs to some object of that class
        covered = np.zeros_like(labels)
        for mask, label in zip(dense, objects.labels, strict=True):
            covered[mask & (labels == label)] = label
        np.testing.assert_array_equal(covered, labels)


@pytest.mark.slow
def test_sixteen_bit_image_keeps_its_dtype(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.zarr"
    export = sample_data / "cvat" / "annotations.xml"
    summary = microprep.convert(export, out, microprep_options(images=sample_data / "micrographs"))
    assert summary.images == 6
    tree = xr.open_datatree(out, engine="zarr")
    dtypes = {node.attrs["name"]: node["image"].dtype for node in tree.children.values()}
    assert any(dt == np.uint16 for dt in dtypes.values()), dtypes
    assert any(dt == np.uint8 for dt in dtypes.values()), dtypes


@pytest.mark.slow
def test_slice_stack_becomes_one_volume(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "stack.zarr"
    stack = sample_data / "stack"
    summary = microprep.convert(
        stack / "annotations.xml", out, microprep_options(images=stack / "slices", volume=True)
    )
    assert summary.images == 32
    ds = microprep.open_dataset(out)
    assert len(ds) == 1
    volume = ds[0]
    assert volume["labels"].shape == (32, 128, 128)
    assert volume["image"].shape[:3] == (32, 128, 128)
    assert volume.attrs["frames"][0].endswith("slice_000.png")
    objects = ds.instances(0)
    assert len(objects) > 0
    assert (objects.tracks >= 0).all()
    assert objects.boxes.shape[1] == 6
    # a track is one object: no track id repeats
    assert len(set(objects.tracks.tolist())) == len(objects)
    labels = volume["labels"].values
    for mask, label in zip(objects.dense(), objects.labels, strict=True):
        assert (labels[mask] == label).mean() > 0.5


def microprep_options(**kw: object) -> ConvertOptions:
    return ConvertOptions(**kw)  # type: ignore[arg-type]


@pytest.mark.slow
def test_training_set_converts_and_splits_by_image(sample_data: Path, tmp_path: Path) -> None:
    """The demo's training set: 36 images of the micrographs' classes, split 29 / 7 by image."""
    store = tmp_path / "training.zarr"
    export = sample_data / "training" / "annotations.xml"
    images = sample_data / "training" / "micrographs"
    done = _convert(sample_data, store, "convert", str(export), "--images", str(images), "-q")
    assert done.returncode == 0, done.stderr
    ds = microprep.open_dataset(store)
    reference = read_annotations(sample_data / "cvat" / "annotations.xml")
    assert len(ds) == 36
    assert ds.classes == reference.labels.class_names
    present = set()
    for node in ds.nodes:
        labels = ds[node]["labels"].values
        assert labels.shape == (512, 512)
        present |= set(np.unique(labels).tolist())
    assert present == {0, 1, 2, 3}  # background, bubble, precipitate, grain (no dislocations)
    split = subprocess.run(
        [sys.executable, "-m", "microprep", "split", str(store), "--val", "0.2", "--test", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert split.returncode == 0, split.stderr
    splits = load_splits(Path(f"{store}.splits.json"))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (29, 7, 0)
    train_nodes = {region.node for region in splits.train}
    assert train_nodes.isdisjoint(region.node for region in splits.val)
