"""Tiled instance prediction: objects cut by tile seams come back whole, exactly once.

The fake detector below "detects" the ground-truth objects visible in each tile, cut by the
tile as a real detector would see them. It finds out where a tile lies from the pixels: channel
0 holds the row index and channel 1 the column index of every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from microprep.errors import UsageError
from microprep.predict.instances import InstancePrediction, predict_instances_tiled
from microprep.targets.types import Raster


def coordinate_image(height: int, width: int) -> NDArray[np.float32]:
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([rows, cols])


class FakeDetector:
    """Detects every ground-truth object with at least ``min_pixels`` pixels in the tile.

    Scores grow with the visible fraction of the object (whole views score highest), masks
    are soft (0.9 inside, 0.1 outside). ``duplicate``: also report a slightly shrunk copy of
    every object with a lower score, as a detector without NMS would. ``bleed``: views of
    partly visible objects spill one pixel around the object (context is missing near a tile
    border), so only a whole view gives the exact mask.
    """

    def __init__(
        self,
        ids: NDArray[np.int64],
        labels: dict[int, int],
        window: tuple[int, int],
        *,
        duplicate: bool = False,
        min_pixels: int = 1,
        bleed: bool = False,
    ) -> None:
        self.ids, self.labels, self.window = ids, labels, window
        self.duplicate, self.min_pixels, self.bleed = duplicate, min_pixels, bleed
        self.areas = {i: int(np.count_nonzero(ids == i)) for i in labels}
        self.calls: list[int] = []
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, tiles: list[NDArray[np.float32]]) -> list[dict[str, Any]]:
        self.calls.append(len(tiles))
        out = []
        for tile in tiles:
            self.shapes.append(tile.shape)
            assert tile.dtype == np.float32
            top, left = round(float(tile[0, 0, 0])), round(float(tile[1, 0, 0]))
            crop = np.zeros(self.window, np.int64)
            seen = self.ids[top : top + self.window[0], left : left + self.window[1]]
            crop[: seen.shape[0], : seen.shape[1]] = seen
            masks, scores, labels = [], [], []
            for i in np.unique(crop[crop > 0]):
                mask = crop == i
                if np.count_nonzero(mask) < self.min_pixels:
                    continue
                fraction = np.count_nonzero(mask) / self.areas[int(i)]
                if self.bleed and fraction < 1:
                    mask = ndimage.binary_dilation(mask)
                masks.append(np.where(mask, 0.9, 0.1).astype(np.float32))
                scores.append(0.5 + 0.4 * fraction)
                labels.append(self.labels[int(i)])
                if self.duplicate:
                    shrunk = mask.copy()
                    rows = np.flatnonzero(mask.any(axis=1))
                    shrunk[rows[-1]] = False  # one row less: IoU stays high
                    masks.append(np.where(shrunk, 0.8, 0.0).astype(np.float32))
                    scores.append(scores[-1] - 0.05)
                    labels.append(labels[-1])
            out.append(
                {
                    "boxes": np.zeros((len(masks), 4), np.float32),
                    "labels": np.array(labels, np.int64),
                    "scores": np.array(scores, np.float32),
                    "masks": np.array(masks, np.float32).reshape(-1, 1, *self.window),
                }
            )
        return out


def paint(shape: tuple[int, int], objects: Sequence[tuple[slice, slice]]) -> NDArray[np.int64]:
    ids = np.zeros(shape, np.int64)
    for k, (rows, cols) in enumerate(objects, start=1):
        ids[rows, cols] = k
    return ids


def disc(shape: tuple[int, int], cy: float, cx: float, radius: float) -> NDArray[np.bool_]:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2


def check_one_each(
    pred: InstancePrediction, ids: NDArray[np.int64], labels: dict[int, int]
) -> None:
    """Exactly one predicted object per ground-truth object, with exactly its pixels."""
    assert len(pred) == len(labels)
    matched = set()
    for raster, label in zip(pred.rasters, pred.labels, strict=True):
        dense = raster.dense(ids.shape)
        found = np.unique(ids[dense])
        assert found.size == 1 and found[0] > 0, f"a predicted object covers ids {found}"
        gt = int(found[0])
        assert gt not in matched, f"object {gt} predicted twice"
        matched.add(gt)
        np.testing.assert_array_equal(dense, ids == gt, err_msg=f"object {gt} is not whole")
        assert label == labels[gt]
    # boxes are recomputed from the masks, exclusive max
    for raster, box in zip(pred.rasters, pred.boxes, strict=True):
        (y0, y1), (x0, x1) = raster.bounds()
        assert box.tolist() == [x0, y0, x1, y1]


SEAM_OBJECTS = [
    (slice(4, 12), slice(18, 46)),  # across both vertical seams of the top tile row
    (slice(16, 52), slice(3, 10)),  # across both horizontal seams of the left tile column
    (slice(14, 50), slice(14, 50)),  # large: cut by every tile, four-tile corners included
    (slice(56, 62), slice(26, 36)),  # small, across the middle vertical seam at the bottom
]


@pytest.mark.parametrize("overlap", [0.25, 0.0])
def test_objects_across_seams_come_back_whole_and_once(overlap: float) -> None:
    shape, window = (64, 64), (32, 32)
    ids = paint(shape, SEAM_OBJECTS)
    labels = {1: 1, 2: 2, 3: 1, 4: 2}
    detector = FakeDetector(ids, labels, window)
    pred = predict_instances_tiled(
        detector, coordinate_image(*shape), window=window, overlap=overlap, batch_size=4
    )
    check_one_each(pred, ids, labels)
    # every tile was seen; batches of at most 4
    tiles = 9 if overlap else 4
    assert sum(detector.calls) == tiles and max(detector.calls) <= 4
    assert set(detector.shapes) == {(2, 32, 32)}


def test_whole_view_is_preferred_over_pieces() -> None:
    shape, window = (64, 64), (32, 32)
    ids = np.zeros(shape, np.int64)
    ids[disc(shape, 40, 40, 11)] = 1  # whole in the middle tile [24, 56)^2, cut by 8 others
    ids[disc(shape, 20, 12, 4)] = 2  # whole in the top-left tile, cut by the one below
    labels = {1: 3, 2: 3}
    detector = FakeDetector(ids, labels, window, bleed=True, min_pixels=10)
    pred = predict_instances_tiled(detector, coordinate_image(*shape), window=window)
    # the pieces spill over the object: a union would be too large, the whole view is exact
    check_one_each(pred, ids, labels)
    # the whole view scores highest and is the one kept
    assert pred.scores.max() == pytest.approx(0.9)


def test_in_tile_duplicates_are_removed() -> None:
    shape, window = (64, 64), (32, 32)
    ids = paint(shape, SEAM_OBJECTS)
    labels = {1: 1, 2: 1, 3: 1, 4: 1}
    detector = FakeDetector(ids, labels, window, duplicate=True)
    pred = predict_instances_tiled(detector, coordinate_image(*shape), window=window)
    assert len(pred) == len(labels)
    # each remaining object is its ground-truth object or nearly (a shrunk copy lost a row)
    for raster in pred.rasters:
        dense = raster.dense(shape)
        gt = int(np.bincount(ids[dense]).argmax())
        inter = np.count_nonzero(dense & (ids == gt))
        assert inter / np.count_nonzero(dense | (ids == gt)) > 0.9


def test_touching_objects_of_one_class_stay_apart() -> None:
    shape, window = (64, 64), (32, 32)
    # two squares meeting at column 28, inside the shared area of the first two tile columns
    ids = paint(shape, [(slice(4, 14), slice(18, 28)), (slice(4, 14), slice(28, 38))])
    labels = {1: 1, 2: 1}
    pred = predict_instances_tiled(
        FakeDetector(ids, labels, window), coordinate_image(*shape), window=window
    )
    check_one_each(pred, ids, labels)


def test_small_image_is_one_padded_tile() -> None:
    shape, window = (20, 27), (32, 32)
    ids = paint(shape, [(slice(2, 9), slice(3, 26)), (slice(12, 20), slice(0, 5))])
    labels = {1: 1, 2: 2}
    detector = FakeDetector(ids, labels, window)
    pred = predict_instances_tiled(detector, coordinate_image(*shape), window=window)
    assert detector.shapes == [(2, 32, 32)]
    check_one_each(pred, ids, labels)
    assert pred.shape == shape


def test_thresholds_and_empty_output() -> None:
    shape, window = (40, 40), (32, 32)
    ids = paint(shape, [(slice(2, 9), slice(3, 20))])
    detector = FakeDetector(ids, {1: 1}, window)
    image = coordinate_image(*shape)
    assert len(predict_instances_tiled(detector, image, window=window, score_threshold=0.95)) == 0
    # a mask threshold above every probability leaves no pixel, hence no object
    assert len(predict_instances_tiled(detector, image, window=window, mask_threshold=0.95)) == 0
    none = predict_instances_tiled(
        FakeDetector(np.zeros(shape, np.int64), {}, window), image, window=window
    )
    assert len(none) == 0 and none.boxes.shape == (0, 4) and none.id_map().shape == shape


def test_prediction_container() -> None:
    a = Raster((1, 1), np.ones((2, 2), bool))
    b = Raster((2, 2), np.ones((2, 2), bool))
    pred = InstancePrediction.from_rasters((5, 5), [a, b], labels=[1, 2], scores=[0.2, 0.7])
    assert pred.scores.tolist() == pytest.approx([0.7, 0.2])  # sorted by score
    assert pred.labels.tolist() == [2, 1] and pred.labels.dtype == np.int64
    assert pred.boxes.dtype == np.float32 and pred.boxes.tolist() == [[2, 2, 4, 4], [1, 1, 3, 3]]
    id_map = pred.id_map()
    assert id_map[2, 2] == 1  # the higher score is on top where they overlap
    assert id_map[1, 1] == 2 and np.count_nonzero(id_map) == 7
    inst = pred.to_instances()
    assert len(inst) == 2 and inst.areas.tolist() == [4, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overlap": 1.0}, "overlap"),
        ({"window": 0}, "window"),
        ({"merge_iou": 1.5}, "merge_iou"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"window": 8, **kwargs}
    with pytest.raises(UsageError, match=message):
        predict_instances_tiled(lambda t: [], np.zeros((1, 8, 8), np.float32), **args)


def test_bad_image_and_bad_detector_output() -> None:
    with pytest.raises(UsageError, match=r"\(C, H, W\)"):
        predict_instances_tiled(lambda t: [], np.zeros((8, 8), np.float32), window=8)
    image = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(UsageError, match="1 tiles"):
        predict_instances_tiled(lambda t: [], image, window=8)
    wrong = [{"labels": [1], "scores": [0.9], "masks": np.ones((1, 4, 4), np.float32)}]
    with pytest.raises(UsageError, match="masks of shape"):
        predict_instances_tiled(lambda t: wrong, image, window=8)
    with pytest.raises(UsageError, match="masks"):
        predict_instances_tiled(lambda t: [{"labels": [1]}], image, window=8)
