"""Folders of label images through ``prep convert LABELS --images IMAGES``: matching by name,
class and instance maps, class names, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from microprep.cli.main import main
from microprep.errors import ImageFileError, InputError, UsageError
from microprep.readers import ReadOptions, detect_format, read_annotations
from microprep.store import open_dataset


def folders(tmp_path: Path, labels: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """An images folder with one 8x6 image per label file's image name, and the labels."""
    images, lab = tmp_path / "images", tmp_path / "labels"
    for name, array in labels.items():
        image = images / (name.split("|")[0])
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full(array.shape, 100, np.uint8)).save(image)
        target = lab / name.split("|")[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".tif":
            tifffile.imwrite(target, array)
        else:
            Image.fromarray(array).save(target)
    return images, lab


def class_map() -> np.ndarray:
    arr = np.zeros((6, 8), np.uint8)
    arr[0:2, 0:2] = 1
    arr[4:6, 6:8] = 1  # a second region of class 1
    arr[2:4, 3:5] = 2
    return arr


def instance_map() -> np.ndarray:
    arr = np.zeros((6, 8), np.uint16)
    arr[0:3, 0:3] = 7
    arr[0:3, 3:6] = 300  # touching instance 7
    return arr


def test_class_folder_with_classes_file(tmp_path: Path) -> None:
    images, labels = folders(
        tmp_path, {"a.png|a_masks.png": class_map(), "sub/b.tif|sub/b_masks.tif": class_map() * 0}
    )
    classes = tmp_path / "classes.txt"
    classes.write_text("background\ngrain\npore\nvoid\n", encoding="utf-8")
    out = tmp_path / "d.zarr"
    args = ["convert", str(labels), "--images", str(images), "--classes", str(classes)]
    assert main([*args, "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.classes == ("background", "grain", "pore", "void")
    assert ds.attrs["source_format"] == "label-folder"
    node = ds.nodes[0]
    np.testing.assert_array_equal(ds[node]["labels"].values, class_map())
    ann = read_annotations(labels, options=ReadOptions(images=images, classes=("g", "p")))
    shapes = next(iter(ann)).shapes
    assert [(s.kind, s.label) for s in shapes] == [("mask", "g"), ("mask", "g"), ("mask", "p")]
    assert shapes[1].points.tolist() == [[6.0, 4.0], [8.0, 6.0]]
    assert [i.image.name for i in ann] == ["a.png", "sub/b.tif"]


def test_instance_folder_gives_one_object_per_id(tmp_path: Path) -> None:
    images, labels = folders(tmp_path, {"a.png|a_label.tif": instance_map()})
    ann = read_annotations(
        labels, options=ReadOptions(images=images, label_kind="instance", instance_class="cell")
    )
    shapes = next(iter(ann)).shapes
    assert ann.labels.class_names == ("background", "cell")
    assert [s.points.tolist() for s in shapes] == [[[0, 0], [3, 3]], [[3, 0], [6, 3]]]
    out = tmp_path / "o"
    args = ["convert", str(labels), "--images", str(images), "--instance-class", "cell"]
    assert main([*args, "--to", "coco", "-q", "-o", str(out)]) == 0
    import json

    assert len(json.loads((out / "coco.json").read_text())["annotations"]) == 2


def test_kind_must_be_told_without_names(tmp_path: Path) -> None:
    images, labels = folders(tmp_path, {"a.png|a.png": class_map()})
    with pytest.raises(UsageError, match="--label-kind"):
        read_annotations(labels, options=ReadOptions(images=images))
    with pytest.raises(UsageError, match="needs --images"):
        read_annotations(labels)
    ann = read_annotations(labels, options=ReadOptions(images=images, label_kind="class"))
    assert ann.labels.class_names == ("background", "class_1", "class_2")


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = folders(tmp_path, {"a.png|a_masks.png": class_map()})
    Image.fromarray(class_map()).save(labels / "orphan.png")
    opts = ReadOptions(images=images, classes=("g", "p"))
    with pytest.raises(InputError, match="no image in") as info:
        read_annotations(labels, options=opts)
    assert "orphan.png" in str(info.value)
    (labels / "orphan.png").unlink()
    with pytest.raises(ImageFileError, match="only 1 class names"):
        read_annotations(labels, options=ReadOptions(images=images, classes=("g",)))
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(labels / "a_masks.png")
    assert main(["convert", str(labels), "--images", str(images), "--label-kind", "class",
                 "-o", str(tmp_path / "x.zarr")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a_masks.png" in err[0] and "one channel" in err[0]


def test_suffix_option_and_detection(tmp_path: Path) -> None:
    images, labels = folders(tmp_path, {"a.png|a_seg.png": class_map()})
    assert detect_format(labels) == "label-folder"
    with pytest.raises(InputError, match="--label-suffix"):
        read_annotations(labels, options=ReadOptions(images=images, label_kind="class"))
    ann = read_annotations(
        labels, options=ReadOptions(images=images, label_kind="class", label_suffix="_seg")
    )
    assert len(next(iter(ann)).shapes) == 3


def test_validate_accepts_a_label_folder(tmp_path: Path) -> None:
    images, labels = folders(tmp_path, {"a.png|a.png": class_map()})
    args = ["validate", str(labels), "--images", str(images), "--label-kind", "class"]
    assert main(args) == 0


def test_instances_take_the_majority_class_of_the_class_map_beside_them(tmp_path: Path) -> None:
    inst = instance_map()  # ids 7 (left) and 300 (right), 3x3 each
    cls = np.zeros((6, 8), np.uint8)
    cls[0:3, 0:3] = 2
    cls[0, 0] = 1  # a minority pixel of another class inside instance 7
    cls[0:3, 3:6] = 1
    images, labels = folders(tmp_path, {"a.png|a_masks.tif": inst})
    Image.fromarray(cls).save(labels / "a_classes.png")
    out = tmp_path / "d.zarr"
    args = ["convert", str(labels), "--images", str(images), "--class-suffix", "_classes"]
    names = tmp_path / "classes.txt"
    names.write_text("background\ngrain\npore\n", encoding="utf-8")
    assert main([*args, "--classes", str(names), "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.classes == ("background", "grain", "pore")
    instances = ds.instances(ds.nodes[0])
    found = [ds.classes[int(c)] for c in instances.labels]
    assert sorted(zip(instances.boxes[:, 0].tolist(), found, strict=True)) == [
        (0.0, "pore"),
        (3.0, "grain"),
    ]
    # without class names the classes are class_1, class_2
    names.unlink()
    out2 = tmp_path / "d2.zarr"
    assert main([*args, "-q", "-o", str(out2)]) == 0
    assert open_dataset(out2).classes == ("background", "class_1", "class_2")


def test_class_suffix_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = folders(tmp_path, {"a.png|a_masks.tif": instance_map()})
    args = ["convert", str(labels), "--images", str(images), "--class-suffix", "_classes"]
    assert main([*args, "-q", "-o", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no class map a_classes.png" in err
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(labels / "a_classes.png")
    assert main([*args, "-q", "-o", str(tmp_path / "y.zarr")]) == 2
    assert "instance 7 lies on class 0" in capsys.readouterr().err
    # --instance-class names the class of such instances
    out = tmp_path / "z.zarr"
    assert main([*args, "--instance-class", "cell", "-q", "-o", str(out)]) == 0
    assert open_dataset(out).classes == ("background", "cell")


def stack_folders(tmp_path: Path, labels: np.ndarray, *, pages: int = 3) -> tuple[Path, Path]:
    """``images/s.tif``: a stack of ``pages`` 6x8 pages (page z filled with 10 * z + 1), and
    ``labels/s_masks.tif``: the label stack."""
    images, lab = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    lab.mkdir()
    pixels = np.stack([np.full((6, 8), 10 * z + 1, np.uint8) for z in range(pages)])
    tifffile.imwrite(images / "s.tif", pixels, photometric="minisblack")
    tifffile.imwrite(lab / "s_masks.tif", labels, photometric="minisblack")
    return images, lab


def class_stack() -> np.ndarray:
    arr = np.zeros((3, 6, 8), np.uint8)
    arr[0:2, 0:2, 0:2] = 1  # one grain through slices 0 and 1
    arr[2, 4:6, 6:8] = 1  # a second grain, slice 2 only
    arr[1:3, 2:4, 3:5] = 2  # a pore through slices 1 and 2
    return arr


def instance_stack() -> np.ndarray:
    arr = np.zeros((3, 6, 8), np.uint16)
    arr[0:3, 0:3, 0:3] = 7  # a cell through all three slices
    arr[1, 0:3, 3:6] = 300  # touching cell 7 in slice 1
    arr[2, 0:2, 3:6] = 300  # and in slice 2
    return arr


def test_class_stack_becomes_a_volume(tmp_path: Path) -> None:
    images, labels = stack_folders(tmp_path, class_stack())
    assert len(tifffile.TiffFile(labels / "s_masks.tif").pages) == 3
    out = tmp_path / "d.zarr"
    args = ["convert", str(labels), "--images", str(images), "--classes", str(tmp_path / "c")]
    (tmp_path / "c").write_text("background\ngrain\npore\n", encoding="utf-8")
    assert main([*args, "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.nodes == ("s.tif",) or len(ds.nodes) == 1
    node = ds[ds.nodes[0]]
    assert node.attrs["name"] == "s.tif" and node.attrs["kind"] == "volume"
    np.testing.assert_array_equal(node["labels"].values, class_stack())
    np.testing.assert_array_equal(node["image"].values[:, 0, 0], [1, 11, 21])
    instances = ds.instances(ds.nodes[0])
    found = sorted(
        (ds.classes[int(c)], box.tolist(), int(a))
        for c, box, a in zip(instances.labels, instances.boxes, instances.areas, strict=True)
    )
    assert found == [
        ("grain", [0.0, 0.0, 0.0, 2.0, 2.0, 2.0], 8),  # 3D: x, y, z min, then max
        ("grain", [6.0, 4.0, 2.0, 8.0, 6.0, 3.0], 4),
        ("pore", [3.0, 2.0, 1.0, 5.0, 4.0, 3.0], 8),
    ]


def test_instance_stack_gives_one_3d_object_per_id(tmp_path: Path) -> None:
    images, labels = stack_folders(tmp_path, instance_stack())
    ann = read_annotations(labels, options=ReadOptions(images=images, instance_class="cell"))
    items = list(ann)
    assert [(i.image.name, i.image.frame) for i in items] == [("s.tif", z) for z in range(3)]
    assert [len(i.shapes) for i in items] == [1, 2, 2]
    out = tmp_path / "d.zarr"
    args = ["convert", str(labels), "--images", str(images), "--instance-class", "cell"]
    assert main([*args, "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    assert len(ds.nodes) == 1 and ds.classes == ("background", "cell")
    node = ds[ds.nodes[0]]
    np.testing.assert_array_equal(node["labels"].values, (instance_stack() > 0).astype(np.uint8))
    instances = ds.instances(ds.nodes[0])
    assert sorted(instances.areas.tolist()) == [15, 27]  # 9 + 6 voxels, 3 * 9
    assert sorted(instances.boxes[:, [2, 5]].tolist()) == [[0.0, 3.0], [1.0, 3.0]]
    for raster in instances.rasters:
        where = np.zeros((3, 6, 8), bool)
        z, top, left = raster.origin
        d, h, w = raster.mask.shape
        where[z : z + d, top : top + h, left : left + w] = raster.mask
        assert len(np.unique(instance_stack()[where])) == 1  # one id, all its voxels
        assert where.sum() == (instance_stack() == instance_stack()[where][0]).sum()


def test_stack_with_a_2d_folder_beside_it(tmp_path: Path) -> None:
    images, labels = stack_folders(tmp_path, class_stack())
    Image.fromarray(np.full((6, 8), 5, np.uint8)).save(images / "a.png")
    Image.fromarray(class_map()).save(labels / "a_masks.png")
    out = tmp_path / "d.zarr"
    args = ["convert", str(labels), "--images", str(images), "--label-kind", "class"]
    assert main([*args, "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    shapes = {ds[n].attrs["name"]: ds[n]["labels"].shape for n in ds.nodes}
    assert shapes == {"a.png": (6, 8), "s.tif": (3, 6, 8)}


def test_stack_page_count_mismatch_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = stack_folders(tmp_path, class_stack(), pages=2)
    args = ["convert", str(labels), "--images", str(images), "--label-kind", "class"]
    assert main([*args, "-q", "-o", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "s_masks.tif" in err[0] and "s.tif" in err[0] and "2 page(s)" in err[0]
    assert not (tmp_path / "x.zarr").exists()
