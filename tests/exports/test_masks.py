"""Tests of the masks (class-index PNG) and onehot (.npy) exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import InputError, UnsafeInputError
from microprep.exports.masks import MasksSink, OneHotSink, output_name
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.targets.types import Instances, Targets, class_dtype

LABELS = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate"), LabelSpec("void")))


def labels_with(count: int) -> LabelMap:
    return LabelMap(tuple(LabelSpec(f"class {i}") for i in range(1, count + 1)))


def random_class_map(shape: tuple[int, ...], num_classes: int, seed: int = 0) -> NDArray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_classes, size=shape).astype(class_dtype(num_classes))


def targets_for(names: list[str], cmap: NDArray, num_classes: int) -> Targets:
    h, w = cmap.shape[-2:]
    images = tuple(ImageInfo(name, w, h) for name in names)
    return Targets(names[0], images, cmap, Instances.empty(cmap.shape), num_classes)


def read_png(path: Path) -> tuple[str, NDArray]:
    with Image.open(path) as im:
        return im.mode, np.asarray(im)


# --- masks -----------------------------------------------------------------------------------


def test_png_reads_back_identical_8_bit(tmp_path: Path) -> None:
    cmap = random_class_map((37, 53), LABELS.num_classes)
    sink = MasksSink(tmp_path, LABELS, provenance={})
    sink.add(targets_for(["grid 1/a b.tif"], cmap, LABELS.num_classes), None)
    sink.close()

    mode, back = read_png(tmp_path / "masks" / "grid 1" / "a b.png")
    assert mode == "L"
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, cmap)
    lines = (tmp_path / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert lines == ["background", "bubble", "precipitate", "void"]


def test_png_is_16_bit_past_256_classes(tmp_path: Path) -> None:
    labels = labels_with(299)
    assert labels.num_classes == 300
    cmap = random_class_map((64, 40), labels.num_classes, seed=1)
    cmap[0, 0] = 299
    sink = MasksSink(tmp_path, labels, provenance={})
    sink.add(targets_for(["big.png"], cmap, labels.num_classes), None)
    sink.close()

    mode, back = read_png(tmp_path / "masks" / "big.png")
    assert mode == "I;16"
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, cmap)
    lines = (tmp_path / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    assert lines[0] == "background"
    assert lines[299] == "class 299"


def test_256_classes_still_fit_8_bit(tmp_path: Path) -> None:
    labels = labels_with(255)
    cmap = np.full((3, 3), 255, np.uint8)
    sink = MasksSink(tmp_path, labels, provenance={})
    sink.add(targets_for(["a.png"], cmap, labels.num_classes), None)
    mode, back = read_png(tmp_path / "masks" / "a.png")
    assert mode == "L"
    np.testing.assert_array_equal(back, cmap)


def test_volume_gives_one_png_per_slice(tmp_path: Path) -> None:
    cmap = random_class_map((3, 16, 12), LABELS.num_classes, seed=2)
    names = ["stack/z 0.tif", "stack/z 1.tif", "stack/z 2.tif"]
    sink = MasksSink(tmp_path, LABELS, provenance={})
    sink.add(targets_for(names, cmap, LABELS.num_classes), None)
    sink.close()
    for z in range(3):
        mode, back = read_png(tmp_path / "masks" / "stack" / f"z {z}.png")
        assert mode == "L"
        np.testing.assert_array_equal(back, cmap[z])
    assert len(list((tmp_path / "masks" / "stack").iterdir())) == 3


@pytest.mark.parametrize("sink_type", [MasksSink, OneHotSink])
@pytest.mark.parametrize("name", ["../x.png", "/etc/x.png", "a/../../x.png", "..\\x.png", "."])
def test_names_escaping_the_folder_are_refused(
    tmp_path: Path, sink_type: type[MasksSink] | type[OneHotSink], name: str
) -> None:
    root = tmp_path / "out"
    root.mkdir()
    sink = sink_type(root, LABELS, provenance={})
    with pytest.raises(UnsafeInputError):
        sink.add(targets_for([name], np.zeros((2, 2), np.uint8), LABELS.num_classes), None)
    assert not (tmp_path / "x.png").exists()
    assert not (tmp_path / "x.npy").exists()


def test_two_images_writing_the_same_file_are_refused(tmp_path: Path) -> None:
    sink = MasksSink(tmp_path, LABELS, provenance={})
    cmap = np.zeros((2, 2), np.uint8)
    sink.add(targets_for(["d/a.png"], cmap, LABELS.num_classes), None)
    with pytest.raises(InputError, match="both be written"):
        sink.add(targets_for(["d/a.tif"], cmap, LABELS.num_classes), None)


def test_class_count_must_match_the_label_map(tmp_path: Path) -> None:
    sink = MasksSink(tmp_path, LABELS, provenance={})
    with pytest.raises(ValueError, match="classes"):
        sink.add(targets_for(["a.png"], np.zeros((2, 2), np.uint8), 7), None)


def test_output_name() -> None:
    assert str(output_name("grid 1/a b.tif", ".png")) == "grid 1/a b.png"
    assert str(output_name("a.b.c", ".npy")) == "a.b.npy"
    assert str(output_name("plain", ".png")) == "plain.png"
    assert str(output_name("dir\\img.jpg", ".png")) == "dir/img.png"


# --- onehot ----------------------------------------------------------------------------------


def check_one_hot(arr: NDArray, cmap: NDArray, num_classes: int) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (num_classes, *cmap.shape)
    np.testing.assert_array_equal(arr.sum(axis=0), np.ones(cmap.shape))
    np.testing.assert_array_equal(arr.argmax(axis=0), cmap)


def test_onehot_2d(tmp_path: Path) -> None:
    cmap = random_class_map((21, 17), LABELS.num_classes, seed=3)
    sink = OneHotSink(tmp_path, LABELS, provenance={})
    sink.add(targets_for(["grid 1/a b.png"], cmap, LABELS.num_classes), None)
    sink.close()
    arr = np.load(tmp_path / "onehot" / "grid 1" / "a b.npy")
    check_one_hot(arr, cmap, LABELS.num_classes)
    lines = (tmp_path / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert lines == ["background", "bubble", "precipitate", "void"]


def test_onehot_volume_one_file_per_slice(tmp_path: Path) -> None:
    cmap = random_class_map((2, 9, 11), LABELS.num_classes, seed=4)
    sink = OneHotSink(tmp_path, LABELS, provenance={})
    sink.add(targets_for(["v/s0.png", "v/s1.png"], cmap, LABELS.num_classes), None)
    sink.close()
    for z in range(2):
        arr = np.load(tmp_path / "onehot" / "v" / f"s{z}.npy")
        check_one_hot(arr, cmap[z], LABELS.num_classes)


def test_onehot_16_bit_class_map(tmp_path: Path) -> None:
    labels = labels_with(299)
    cmap = random_class_map((5, 6), labels.num_classes, seed=5)
    sink = OneHotSink(tmp_path, labels, provenance={})
    sink.add(targets_for(["a.png"], cmap, labels.num_classes), None)
    check_one_hot(np.load(tmp_path / "onehot" / "a.npy"), cmap, labels.num_classes)
