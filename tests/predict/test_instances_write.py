"""Writing instance predictions: the store, COCO results, overlays; reading the store back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pycocotools import mask as coco_mask

from microprep.errors import StoreError, UsageError
from microprep.outputs import MARKER
from microprep.predict.coco_results import coco_results_path
from microprep.predict.instances import InstancePrediction
from microprep.predict.instances_read import read_instance_predictions
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.write import read_prediction_attrs
from microprep.targets.types import Raster

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CLASSES = ["background", "pore", "crack"]


def overlapping() -> InstancePrediction:
    """Two overlapping squares: the lower-scored one (label 2) is partly under the other."""
    low = Raster((2, 2), np.ones((4, 4), bool))  # rows/cols 2..5
    high = Raster((4, 4), np.ones((4, 4), bool))  # rows/cols 4..7
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    small = Raster((0, 7), ring)
    return InstancePrediction.from_rasters(
        (10, 12), [low, high, small], labels=[2, 1, 1], scores=[0.6, 0.9, 0.3]
    )


def test_store_arrays_and_attributes(tmp_path: Path) -> None:
    out = tmp_path / "pred.zarr"
    pred = overlapping()
    empty = InstancePrediction.empty((5, 6))
    image = np.random.default_rng(0).integers(0, 255, (10, 12), dtype=np.uint8)
    summary = write_instance_predictions(
        [PredictedImage("dir/a b.png", pred, image), PredictedImage("empty.png", empty)],
        out,
        classes=CLASSES,
        run={"model": "maskrcnn", "window": 64},
    )
    assert summary.groups == ["dir_a_b.png", "empty.png"] and summary.objects == [3, 0]
    attrs = read_prediction_attrs(out)
    assert attrs["kind"] == "instances" and attrs["classes"] == CLASSES
    assert attrs["nodes"] == ["dir_a_b.png", "empty.png"] and attrs["run"]["window"] == 64
    tree = xr.open_datatree(out, engine="zarr")
    node = tree["dir_a_b.png"].to_dataset()
    assert node.attrs["name"] == "dir/a b.png"
    ids = node["instances"].values
    assert ids.dtype == np.uint32 and node["instances"].dims == ("y", "x")
    # objects by descending score: 0 = high (0.9), 1 = low (0.6), 2 = small ring (0.3)
    assert node["instance_score"].values.tolist() == pytest.approx([0.9, 0.6, 0.3])
    assert node["instance_label"].values.tolist() == [1, 2, 1]
    assert ids[4, 4] == 1 and ids[2, 2] == 2 and ids[5, 5] == 1  # higher score on top
    assert ids[0, 8] == 3 and ids[1, 8] == 0  # the ring's hole stays empty
    assert node["labels"].values[2, 2] == 2 and node["labels"].values[6, 6] == 1
    assert node["instance_box"].values.tolist()[1] == [2, 2, 6, 6]  # the whole mask's box
    assert node["instance_area"].values.tolist() == [16, 16, 8]
    nothing = tree["empty.png"].to_dataset()
    assert nothing.sizes["instance"] == 0 and not nothing["instances"].values.any()
    tree.close()


def test_coco_results_are_lossless(tmp_path: Path) -> None:
    out = tmp_path / "p.zarr"
    pred = overlapping()
    write_instance_predictions(
        [PredictedImage("x.png", InstancePrediction.empty((3, 3))), PredictedImage("a.png", pred)],
        out,
        classes=CLASSES,
        overlays=False,
    )
    assert not (tmp_path / "p.overlays").exists()
    records = json.loads(coco_results_path(out).read_text(encoding="utf-8"))
    assert len(records) == 3
    assert {r["image_id"] for r in records} == {2} and {r["file_name"] for r in records} == {
        "a.png"
    }
    for record, raster, score in zip(records, pred.rasters, pred.scores, strict=True):
        rle = {"size": record["segmentation"]["size"], "counts": record["segmentation"]["counts"]}
        mask = coco_mask.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)
        np.testing.assert_array_equal(mask, raster.dense((10, 12)))  # overlaps kept whole
        (y0, y1), (x0, x1) = raster.bounds()
        assert record["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert record["score"] == pytest.approx(float(score))


def test_read_back_gives_visible_parts(tmp_path: Path) -> None:
    out = tmp_path / "p.zarr"
    write_instance_predictions(
        [PredictedImage("a.png", overlapping())], out, classes=CLASSES, coco=False
    )
    assert not coco_results_path(out).exists()
    [(name, back)] = list(read_instance_predictions(out))
    assert name == "a.png" and len(back) == 3
    assert back.labels.tolist() == [1, 2, 1]
    assert back.areas.tolist() == [16, 12, 8]  # the low square lost the 4 covered pixels
    assert back.boxes.tolist()[1] == [2, 2, 6, 6]


def test_overlays_show_the_objects(tmp_path: Path) -> None:
    out = tmp_path / "p.zarr"
    image = np.full((10, 12), 30, np.uint8)
    write_instance_predictions(
        [PredictedImage("a.png", overlapping(), image)], out, classes=CLASSES
    )
    files = [f for f in (tmp_path / "p.overlays").iterdir() if f.name != MARKER]
    assert [f.name for f in files] == ["a.png"]
    with Image.open(files[0]) as picture:
        assert picture.mode == "RGB" and picture.width >= 12
        colors = {c for _, c in picture.getcolors(1 << 16) or []}
    assert len(colors) > 3  # image grey, class colours, outlines, legend text


def test_failures_leave_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "p.zarr"
    bad = InstancePrediction.from_rasters(
        (4, 4), [Raster((0, 0), np.ones((1, 1), bool))], labels=[5], scores=[0.5]
    )
    with pytest.raises(UsageError, match=r"outside 1\.\.2"):
        write_instance_predictions([PredictedImage("a.png", bad)], out, classes=CLASSES)
    with pytest.raises(UsageError, match="no predictions"):
        write_instance_predictions([], out, classes=CLASSES)
    with pytest.raises(UsageError, match="colours"):
        write_instance_predictions([], out, classes=CLASSES, colors=[(0, 0, 0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(StoreError, match="not a prediction store"):
        list(read_instance_predictions(tmp_path))
