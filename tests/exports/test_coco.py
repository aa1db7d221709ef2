"""Tests of the coco export: RLE against pycocotools, and coco.json read back with COCO."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from microprep.errors import UnsafeInputError
from microprep.exports.coco import CocoSink, planes, raster_to_rle, rle_counts
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.targets.types import Instances, Raster, Targets

# pycocotools' decoder trips a numpy 2 deprecation warning that is not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

LABELS = LabelMap((LabelSpec("bubble"), LabelSpec("precipitate"), LabelSpec("void")))


def crop(dense: NDArray[np.bool_]) -> Raster:
    """The tight raster of a dense 2D or 3D mask."""
    hit = np.argwhere(dense)
    if not hit.size:
        return Raster((0,) * dense.ndim, np.zeros((0,) * dense.ndim, dtype=bool))
    lo, hi = hit.min(axis=0), hit.max(axis=0) + 1
    return Raster(
        tuple(int(v) for v in lo), dense[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    )


def make_targets(
    names: list[str],
    masks: list[NDArray[np.bool_]],
    labels: list[int],
    *,
    tracks: list[int] | None = None,
) -> Targets:
    """2D targets (one name, masks (H, W)) or a volume (one name per slice, masks (Z, H, W))."""
    shape = masks[0].shape
    volume = len(shape) == 3
    h, w = shape[-2:]
    cmap = np.zeros(shape, np.uint8)
    rasters, boxes = [], []
    for mask, label in zip(masks, labels, strict=True):
        cmap[mask] = label
        raster = crop(mask)
        rasters.append(raster)
        bounds = raster.bounds()
        if volume:
            (z0, z1), (y0, y1), (x0, x1) = bounds
            boxes.append([x0, y0, z0, x1, y1, z1])
        else:
            (y0, y1), (x0, x1) = bounds
            boxes.append([x0, y0, x1, y1])
    n = len(masks)
    inst = Instances(
        shape=shape,
        rasters=tuple(rasters),
        labels=np.array(labels, np.int64),
        boxes=np.array(boxes, np.float64).reshape(n, -1),
        areas=np.array([r.area for r in rasters], np.int64),
        occluded=np.arange(n) % 2 == 1,
        groups=np.arange(n, dtype=np.int64) * 3,
        tracks=np.array(tracks if tracks is not None else [-1] * n, np.int64),
    )
    images = tuple(ImageInfo(name, w, h) for name in names)
    return Targets(names[0], images, cmap, inst, LABELS.num_classes)


def ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> NDArray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0


def rect(shape: tuple[int, int], top: int, left: int, bottom: int, right: int) -> NDArray:
    out = np.zeros(shape, bool)
    out[top:bottom, left:right] = True
    return out


def encode(dense: NDArray[np.bool_]) -> dict[str, object]:
    rle = coco_mask.encode(np.asfortranarray(dense.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def run_sink(root: Path, *targets: Targets, provenance: dict[str, object] | None = None) -> COCO:
    sink = CocoSink(root, LABELS, provenance=provenance or {})
    for t in targets:
        sink.add(t, None)
    sink.close()
    return COCO(str(root / "coco.json"))


# --- raster_to_rle ---------------------------------------------------------------------------


@st.composite
def placed_masks(draw: st.DrawFn) -> tuple[Raster, int, int]:
    height = draw(st.integers(1, 12))
    width = draw(st.integers(1, 12))
    top = draw(st.integers(0, height))
    left = draw(st.integers(0, width))
    h = draw(st.integers(0, height - top))
    w = draw(st.integers(0, width - left))
    fill = draw(st.sampled_from(["random", "full", "empty"]))
    if fill == "random":
        bits = draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
        mask = np.array(bits, dtype=bool).reshape(h, w)
    else:
        mask = np.full((h, w), fill == "full", dtype=bool)
    return Raster((top, left), mask), height, width


@given(placed_masks())
@example((Raster((0, 0), np.ones((5, 4), bool)), 5, 4))  # the whole image
@example((Raster((0, 1), np.ones((5, 2), bool)), 5, 4))  # full-height columns side by side
@example((Raster((3, 2), np.ones((2, 2), bool)), 5, 4))  # bottom-right corner
@example((Raster((0, 0), np.zeros((0, 0), bool)), 3, 3))  # zero-sized
@example((Raster((1, 1), np.zeros((2, 2), bool)), 3, 3))  # crop without pixels
def test_raster_to_rle_matches_pycocotools(case: tuple[Raster, int, int]) -> None:
    raster, height, width = case
    dense = raster.dense((height, width))
    assert raster_to_rle(raster, height, width) == encode(dense)
    counts = rle_counts(raster, height, width)
    assert int(counts.sum()) == height * width
    assert int(counts[1::2].sum()) == int(dense.sum())


def test_raster_to_rle_large_image_with_checkerboard_at_edges() -> None:
    height, width = 37, 41
    board = (np.indices((height, 9)).sum(axis=0) % 2).astype(bool)
    raster = Raster((0, width - 9), board)
    assert raster_to_rle(raster, height, width) == encode(raster.dense((height, width)))


def test_raster_outside_the_image_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        raster_to_rle(Raster((2, 0), np.ones((3, 3), bool)), 4, 4)
    with pytest.raises(ValueError, match="2D"):
        raster_to_rle(Raster((0, 0, 0), np.ones((1, 1, 1), bool)), 4, 4)


# --- CocoSink, 2D ----------------------------------------------------------------------------


def overlapping_image(name: str = "grid 1/a b.png") -> tuple[Targets, list[NDArray[np.bool_]]]:
    shape = (60, 80)
    masks = [
        ellipse(shape, 20, 25, 12, 18),
        ellipse(shape, 28, 35, 10, 8),  # overlaps the first
        rect(shape, 0, 60, 15, 80),  # touches the top and right borders
        rect(shape, 45, 0, 60, 30),  # touches the bottom and left borders
        ellipse(shape, 50, 25, 9, 14),  # overlaps the previous one, cut by the bottom border
        rect(shape, 0, 0, 60, 3),  # full height at the left border
    ]
    labels = [1, 2, 1, 3, 2, 3]
    return make_targets([name], masks, labels, tracks=[-1, 7, -1, 0, -1, 2]), masks


def test_coco_masks_categories_and_boxes(tmp_path: Path) -> None:
    targets, masks = overlapping_image()
    coco = run_sink(tmp_path, targets, provenance={"tool": "prep", "version": "0.1"})

    assert coco.dataset["info"] == {"tool": "prep", "version": "0.1"}
    assert coco.dataset["categories"] == [
        {"id": 1, "name": "bubble", "supercategory": ""},
        {"id": 2, "name": "precipitate", "supercategory": ""},
        {"id": 3, "name": "void", "supercategory": ""},
    ]
    assert coco.dataset["images"] == [
        {"id": 1, "file_name": "grid 1/a b.png", "width": 80, "height": 60}
    ]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["id"] for a in anns] == list(range(1, len(masks) + 1))
    inst = targets.instances
    for i, (ann, dense) in enumerate(zip(anns, masks, strict=True)):
        decoded = coco.annToMask(ann)
        assert decoded.shape == dense.shape
        np.testing.assert_array_equal(decoded.astype(bool), dense)
        assert ann["category_id"] == int(inst.labels[i])
        assert ann["iscrowd"] == 0
        assert ann["area"] == int(dense.sum())
        x0, y0, x1, y1 = inst.boxes[i]
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert all(isinstance(v, float) for v in ann["bbox"])
        rows, cols = np.nonzero(dense)
        assert ann["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        track = int(inst.tracks[i])
        assert ann["attributes"] == {
            "occluded": bool(inst.occluded[i]),
            "group": int(inst.groups[i]),
            "track_id": None if track < 0 else track,
        }
    # overlaps are kept: the first two objects share pixels
    assert (masks[0] & masks[1]).any()


def test_coco_json_is_compact(tmp_path: Path) -> None:
    targets, _ = overlapping_image()
    run_sink(tmp_path, targets)
    text = (tmp_path / "coco.json").read_text()
    assert "\n" not in text
    assert ", " not in text.replace("grid 1/a b.png", "")


def test_coco_ids_run_over_images(tmp_path: Path) -> None:
    first, masks = overlapping_image("a.png")
    second, _ = overlapping_image("sub dir/b.tif")
    coco = run_sink(tmp_path, first, second)
    assert [im["file_name"] for im in coco.dataset["images"]] == ["a.png", "sub dir/b.tif"]
    ids = [a["id"] for a in coco.dataset["annotations"]]
    assert ids == list(range(1, 2 * len(masks) + 1))
    assert len(coco.getAnnIds(imgIds=[2])) == len(masks)


def test_image_without_objects(tmp_path: Path) -> None:
    empty = Targets(
        "e.png", (ImageInfo("e.png", 5, 4),), np.zeros((4, 5), np.uint8), Instances.empty((4, 5)), 4
    )
    coco = run_sink(tmp_path, empty)
    assert len(coco.dataset["images"]) == 1
    assert coco.dataset["annotations"] == []


def test_objects_without_pixels_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shape = (10, 10)
    targets = make_targets(
        ["a.png"],
        [rect(shape, 1, 1, 4, 4), np.zeros(shape, bool), rect(shape, 5, 5, 9, 9)],
        [1, 2, 3],
    )
    sink = CocoSink(tmp_path, LABELS, provenance={})
    sink.add(targets, None)
    with caplog.at_level(logging.WARNING, logger="microprep.exports.coco"):
        sink.close()
    assert sink.skipped == 1
    assert "1 object(s) without any pixel" in caplog.text
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert [a["category_id"] for a in doc["annotations"]] == [1, 3]


def test_class_index_outside_the_label_map_is_refused(tmp_path: Path) -> None:
    targets = make_targets(["a.png"], [rect((4, 4), 0, 0, 2, 2)], [9])
    with pytest.raises(ValueError, match="class index 9"):
        CocoSink(tmp_path, LABELS, provenance={}).add(targets, None)


# --- CocoSink, volumes -----------------------------------------------------------------------


def test_volume_gives_one_image_per_slice_and_per_slice_annotations(tmp_path: Path) -> None:
    shape = (4, 20, 30)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    ball = ((zz - 1.5) / 2.0) ** 2 + ((yy - 10) / 7.0) ** 2 + ((xx - 12) / 9.0) ** 2 <= 1.0
    slab = np.zeros(shape, bool)
    slab[0, 2:6, 20:28] = True
    slab[2, 10:20, 25:30] = True  # gap at z = 1, touches the bottom/right borders at z = 2
    names = ["vol/s 0.png", "vol/s 1.png", "vol/s 2.png", "vol/s 3.png"]
    targets = make_targets(names, [ball, slab], [1, 2], tracks=[4, -1])
    coco = run_sink(tmp_path, targets)

    assert [im["file_name"] for im in coco.dataset["images"]] == names
    assert all((im["width"], im["height"]) == (30, 20) for im in coco.dataset["images"])
    expected = []
    for z in range(shape[0]):
        for obj, dense in enumerate([ball, slab]):
            if dense[z].any():
                expected.append((z + 1, obj, dense[z]))
    anns = coco.dataset["annotations"]
    assert len(anns) == len(expected)
    for ann, (image_id, obj, dense) in zip(anns, expected, strict=True):
        assert ann["image_id"] == image_id
        assert ann["category_id"] == [1, 2][obj]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), dense)
        rows, cols = np.nonzero(dense)
        assert ann["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert ann["area"] == int(dense.sum())
        assert ann["attributes"]["track_id"] == [4, None][obj]


def test_planes_of_a_volume(tmp_path: Path) -> None:
    shape = (3, 6, 6)
    a = np.zeros(shape, bool)
    a[0, 1:3, 1:3] = True
    a[2, 4:6, 0:1] = True
    empty = np.zeros(shape, bool)
    targets = make_targets(["z0.png", "z1.png", "z2.png"], [a, empty], [1, 2])
    plane_list, skipped = planes(targets)
    assert skipped == 1
    assert [len(p.instances) for p in plane_list] == [1, 0, 1]
    assert plane_list[2].instances.boxes.tolist() == [[0.0, 4.0, 1.0, 6.0]]
    assert plane_list[2].instances.shape == (6, 6)


def test_volume_with_wrong_image_count_is_refused(tmp_path: Path) -> None:
    targets = make_targets(["only.png"], [np.ones((2, 3, 3), bool)], [1])
    with pytest.raises(ValueError, match="image entries"):
        CocoSink(tmp_path, LABELS, provenance={}).add(targets, None)


@pytest.mark.parametrize("name", ["../x.png", "/abs/x.png", "a/../../x.png"])
def test_names_escaping_a_folder_are_refused(tmp_path: Path, name: str) -> None:
    targets = make_targets([name], [rect((4, 4), 0, 0, 2, 2)], [1])
    with pytest.raises(UnsafeInputError):
        CocoSink(tmp_path, LABELS, provenance={}).add(targets, None)
