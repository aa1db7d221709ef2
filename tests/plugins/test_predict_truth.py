"""``prep predict --truth``: overlays outline the ground truth in white over the prediction;
an input without ground truth is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microprep.cli.main import main
from microprep.paths import picture_name
from microprep.predict.instances import InstancePrediction
from microprep.predict.instances_write import PredictedImage, write_instance_predictions
from microprep.predict.overlays import prediction_picture
from microprep.predict.truth import TRUTH_COLOR, truth_edges, truth_overlays
from microprep.preview.montage import enlarge
from microprep.store import open_dataset
from microprep.targets.types import Raster
from training.helpers import learnable_store

Capture = pytest.CaptureFixture[str]

TINY = [
    "--device", "cpu", "--batch-size", "4", "--window", "32", "--workers", "0", "--epochs", "1",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1", "-q",
]  # fmt: skip
CAPTION = 20  # height of the title line above an overlay's picture


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store of 32x32 images with ground truth, and a U-Net run trained on it (1 epoch)."""
    folder = tmp_path_factory.mktemp("truth")
    store = learnable_store(folder / "d.zarr", count=2, size=32)
    assert main(["split", str(store), "--val", "0.5", "--test", "0", "--by", "image"]) == 0
    assert main(["train", "unet", str(store), "--out", str(folder / "run"), *TINY]) == 0
    return store, folder / "run"


def body(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The picture part of an overlay PNG of a ``shape`` image (below its title line)."""
    width, height = enlarge(Image.new("RGB", (shape[1], shape[0]))).size
    return np.array(Image.open(path).convert("RGB"))[CAPTION : CAPTION + height, :width]


def test_truth_outlines_the_ground_truth_in_white(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    store, run = trained
    plain, truth = tmp_path / "plain.zarr", tmp_path / "truth.zarr"
    assert main(["predict", str(run), str(store), "--out", str(plain), "-q"]) == 0
    assert main(["predict", str(run), str(store), "--out", str(truth), "--truth", "-q"]) == 0
    dataset = open_dataset(store)
    for node in dataset.nodes:
        labels = np.asarray(dataset[node]["labels"])
        name = picture_name(node, set())
        without = body(tmp_path / "plain.overlays" / name, labels.shape)
        with_truth = body(tmp_path / "truth.overlays" / name, labels.shape)
        factor = without.shape[0] // labels.shape[0]
        changed = np.any(without != with_truth, axis=-1)[::factor, ::factor]
        white = np.all(with_truth == TRUTH_COLOR, axis=-1)[::factor, ::factor]
        # exactly the truth's outlines are drawn, in white; the rest is the plain overlay
        assert changed.any()
        assert np.array_equal(changed, truth_edges(labels))
        assert np.array_equal(white, truth_edges(labels))
    dataset.close()


def test_truth_without_ground_truth_is_one_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: Capture
) -> None:
    _, run = trained
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((32, 32), 120, np.uint8)).save(images / "a.png")
    out = tmp_path / "pred.zarr"
    capsys.readouterr()
    assert main(["predict", str(run), str(images), "--out", str(out), "--truth", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("prep: error: --truth:") and "no ground truth" in err
    assert not out.exists()
    # without --truth the same input predicts
    assert main(["predict", str(run), str(images), "--out", str(out), "-q"]) == 0


def test_truth_and_no_overlays_are_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: Capture
) -> None:
    store, run = trained
    args = ["predict", str(run), str(store), "--out", str(tmp_path / "p.zarr")]
    assert main([*args, "--truth", "--no-overlays"]) == 2
    assert "--no-overlays" in capsys.readouterr().err


def test_truth_edges_outline_every_region_and_object() -> None:
    labels = np.zeros((6, 6), np.uint8)
    labels[1:5, 1:3] = 1
    labels[1:5, 3:5] = 2  # touching regions: both sides of the border are outline
    edges = truth_edges(labels)
    assert edges[2].astype(int).tolist() == [0, 1, 1, 1, 1, 0]
    assert not edges[0].any() and edges[1, 1:5].all()
    layered = np.zeros((2, 6, 6), np.uint32)
    layered[1, 0:3, 0:3] = 7  # an object on a further layer, at the array's edge
    assert truth_edges(layered)[0, 0] and not truth_edges(layered)[1, 1]


def test_volume_overlays_outline_each_shown_slice() -> None:
    pred = {0: np.zeros((8, 8), np.uint8), 3: np.ones((8, 8), np.uint8)}
    truth = {0: np.pad(np.ones((4, 4), np.uint8), 2), 3: np.zeros((8, 8), np.uint8)}
    colors, names = [(0, 0, 0), (0, 200, 0)], ["background", "fibre"]
    plain = prediction_picture(None, pred, title="v", colors=colors, names=names, depth=4)
    outlined = prediction_picture(
        None, pred, title="v", colors=colors, names=names, depth=4, truth=truth
    )
    white = np.all(np.array(outlined) == TRUTH_COLOR, axis=-1).sum()
    assert white > np.all(np.array(plain) == TRUTH_COLOR, axis=-1).sum()


def test_instance_overlays_outline_the_truth_objects(tmp_path: Path) -> None:
    low = Raster((2, 2), np.ones((4, 4), bool))
    pred = InstancePrediction.from_rasters((12, 12), [low], labels=[1], scores=[0.9])
    truth = np.zeros((1, 12, 12), np.uint32)
    truth[0, 3:8, 3:9] = 1  # a truth object shifted against the predicted one
    truth[0, 8:11, 8:11] = 2  # one the model missed
    item = PredictedImage("a.png", pred, np.full((12, 12), 100, np.uint8), truth=truth)
    classes = ["background", "pore"]
    write_instance_predictions([item], tmp_path / "plain.zarr", classes=classes, coco=False)
    with truth_overlays():
        write_instance_predictions([item], tmp_path / "truth.zarr", classes=classes, coco=False)
    plain = body(tmp_path / "plain.overlays" / "a.png", (12, 12))
    outlined = body(tmp_path / "truth.overlays" / "a.png", (12, 12))
    factor = plain.shape[0] // 12
    white = np.all(outlined == TRUTH_COLOR, axis=-1)[::factor, ::factor]
    assert np.array_equal(white, truth_edges(truth))
    assert not np.all(plain == TRUTH_COLOR, axis=-1).any()
