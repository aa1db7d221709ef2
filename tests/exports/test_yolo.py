"""Tests of the yolo export: label files parsed back and data.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.typing import NDArray

from microprep.errors import UnsafeInputError
from microprep.exports.yolo import YoloSink, yolo_line
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.targets.types import Instances, Raster, Targets

LABELS = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate"), LabelSpec("void: big")))


def crop(dense: NDArray[np.bool_]) -> Raster:
    hit = np.argwhere(dense)
    if not hit.size:
        return Raster((0,) * dense.ndim, np.zeros((0,) * dense.ndim, dtype=bool))
    lo, hi = hit.min(axis=0), hit.max(axis=0) + 1
    index = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    return Raster(tuple(int(v) for v in lo), dense[index])


def make_targets(
    names: list[str],
    masks: list[NDArray[np.bool_]],
    labels: list[int],
    boxes: list[list[float]] | None = None,
) -> Targets:
    """Targets with the given masks; boxes default to the masks' pixel extents."""
    shape = masks[0].shape if masks else (8, 8)
    h, w = shape[-2:]
    cmap = np.zeros(shape, np.uint8)
    rasters = []
    for mask, label in zip(masks, labels, strict=True):
        cmap[mask] = label
        rasters.append(crop(mask))
    if boxes is None:
        boxes = []
        for r in rasters:
            b = r.bounds()
            if len(shape) == 3:
                (z0, z1), (y0, y1), (x0, x1) = b
                boxes.append([x0, y0, z0, x1, y1, z1])
            else:
                (y0, y1), (x0, x1) = b
                boxes.append([x0, y0, x1, y1])
    n = len(masks)
    inst = Instances(
        shape=shape,
        rasters=tuple(rasters),
        labels=np.array(labels, np.int64),
        boxes=np.array(boxes, np.float64).reshape(n, 2 * len(shape)),
        areas=np.array([r.area for r in rasters], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )
    images = tuple(ImageInfo(name, w, h) for name in names)
    return Targets(names[0], images, cmap, inst, LABELS.num_classes)


def rect(shape: tuple[int, ...], top: int, left: int, bottom: int, right: int) -> NDArray:
    out = np.zeros(shape, bool)
    out[..., top:bottom, left:right] = True
    return out


def parse(path: Path, width: int, height: int) -> list[tuple[int, list[float]]]:
    """Label lines back to ``(class_id, [x_min, y_min, x_max, y_max])`` in pixels."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        assert len(parts) == 5
        assert all(len(p.split(".")[1]) == 6 for p in parts[1:])
        cx, cy, w, h = (float(p) for p in parts[1:])
        assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h))
        box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width]
        box.append((cy + h / 2) * height)
        out.append((int(parts[0]), box))
    return out


def run_sink(root: Path, *targets: Targets) -> YoloSink:
    sink = YoloSink(root, LABELS, provenance={"tool": "prep"})
    for t in targets:
        sink.add(t, None)
    sink.close()
    return sink


def test_labels_parse_back_to_the_boxes(tmp_path: Path) -> None:
    shape = (300, 500)
    masks = [
        rect(shape, 10, 20, 60, 90),
        rect(shape, 0, 400, 300, 500),
        rect(shape, 150, 0, 151, 1),
    ]
    boxes = [[20.0, 10.0, 90.0, 60.0], [400.0, 0.0, 500.0, 300.0], [0.25, 150.5, 1.0, 151.0]]
    targets = make_targets(["grid 1/a b.tif"], masks, [2, 3, 1], boxes)
    run_sink(tmp_path, targets)

    parsed = parse(tmp_path / "labels" / "grid 1" / "a b.txt", 500, 300)
    assert [c for c, _ in parsed] == [1, 2, 0]
    for (_, got), want in zip(parsed, boxes, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * 500)


def test_image_without_objects_gets_an_empty_file(tmp_path: Path) -> None:
    targets = Targets(
        "e.png", (ImageInfo("e.png", 4, 3),), np.zeros((3, 4), np.uint8), Instances.empty((3, 4)), 4
    )
    run_sink(tmp_path, targets)
    assert (tmp_path / "labels" / "e.txt").read_text() == ""


def test_data_yaml(tmp_path: Path) -> None:
    run_sink(tmp_path)
    text = (tmp_path / "data.yaml").read_text(encoding="utf-8")
    assert text.startswith("#")
    assert "images/" in text.splitlines()[0] + text.splitlines()[1]
    data = yaml.safe_load(text)
    assert data == {
        "path": ".",
        "train": "images",
        "val": "images",
        "nc": 3,
        "names": {0: "bubble", 1: "precipitate", 2: "void: big"},
    }


def test_objects_without_pixels_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shape = (10, 10)
    targets = make_targets(["a.png"], [rect(shape, 1, 1, 3, 3), np.zeros(shape, bool)], [1, 2])
    with caplog.at_level(logging.WARNING, logger="microprep.exports.yolo"):
        sink = run_sink(tmp_path, targets)
    assert sink.skipped == 1
    assert "1 object(s) without any pixel" in caplog.text
    assert len(parse(tmp_path / "labels" / "a.txt", 10, 10)) == 1


def test_volume_one_file_per_slice_with_slice_boxes(tmp_path: Path) -> None:
    shape = (3, 40, 60)
    a = np.zeros(shape, bool)
    a[0, 5:10, 5:20] = True
    a[1, 2:30, 10:15] = True  # a different extent in each slice
    b = rect(shape, 30, 50, 40, 60)
    b[1] = False  # absent from slice 1
    names = ["v/s 0.png", "v/s 1.png", "v/s 2.png"]
    run_sink(tmp_path, make_targets(names, [a, b], [1, 3]))

    expected = {
        0: [(0, [5.0, 5.0, 20.0, 10.0]), (2, [50.0, 30.0, 60.0, 40.0])],
        1: [(0, [10.0, 2.0, 15.0, 30.0])],
        2: [(2, [50.0, 30.0, 60.0, 40.0])],
    }
    for z, want in expected.items():
        got = parse(tmp_path / "labels" / "v" / f"s {z}.txt", 60, 40)
        assert [c for c, _ in got] == [c for c, _ in want]
        for (_, g), (_, w) in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6 * 60)


@pytest.mark.parametrize("name", ["../x.png", "/tmp/x.png", "a/../../x.png"])
def test_names_escaping_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "out"
    root.mkdir()
    targets = make_targets([name], [rect((4, 4), 0, 0, 2, 2)], [1])
    with pytest.raises(UnsafeInputError):
        YoloSink(root, LABELS, provenance={}).add(targets, None)
    assert not (tmp_path / "x.txt").exists()


def test_yolo_line() -> None:
    assert yolo_line(0, (0.0, 0.0, 10.0, 10.0), 10, 10) == "0 0.500000 0.500000 1.000000 1.000000"
    assert yolo_line(4, (1.0, 2.0, 3.0, 6.0), 4, 8) == "4 0.500000 0.500000 0.500000 0.500000"
