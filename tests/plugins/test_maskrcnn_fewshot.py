"""Mask R-CNN on a few labelled images: random windows per epoch, the small-dataset
augmentation, and test-time augmentation (``prep predict --tta``) with its merge rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
plugin_module = pytest.importorskip("microprep_maskrcnn.plugin")

from crops.helpers import disk, instances_from_masks  # noqa: E402
from microprep.cli.main import main  # noqa: E402
from microprep.errors import UsageError  # noqa: E402
from microprep.model import ImageInfo, LabelMap, LabelSpec  # noqa: E402
from microprep.plugins import load_trainer  # noqa: E402
from microprep.predict.instances import predict_instances_tiled  # noqa: E402
from microprep.predict.instances_tta import with_instance_tta  # noqa: E402
from microprep.predict.write import read_prediction_attrs  # noqa: E402
from microprep.store import ZarrSink  # noqa: E402
from microprep.targets.types import Targets  # noqa: E402
from microprep.training.checkpoint import load_checkpoint  # noqa: E402
from microprep.training.config import build_config, trainer_schema  # noqa: E402
from microprep.training.datasets import DataSource  # noqa: E402
from microprep_maskrcnn.model import build_model, detector_forward  # noqa: E402

SIZE = 64
FAST = [
    "--device", "cpu", "--batch-size", "1", "--workers", "0", "--window", str(SIZE), "-q",
    "--set", "threads=1", "--set", "optimizer=sgd", "--set", "lr=1e-9",
    "--set", "model.box_detections_per_img=4", "--set", "model.rpn_pre_nms_top_n_train=100",
    "--set", "model.rpn_post_nms_top_n_train=50", "--set", "model.rpn_pre_nms_top_n_test=50",
    "--set", "model.rpn_post_nms_top_n_test=20", "--set", "model.box_batch_size_per_image=32",
]  # fmt: skip

#: The symmetries of a square image that the tests apply to whole ``(C, H, W)`` images.
TURNS: list[Callable[[NDArray[Any]], NDArray[Any]]] = [
    lambda a: a[..., ::-1],
    lambda a: a[..., ::-1, :],
    lambda a: np.swapaxes(a, -1, -2),
    lambda a: np.rot90(a, axes=(-2, -1)),
]


def two_images(path: Path) -> Path:
    """Two 64 px gray images with four bright disks each (class ``grain``)."""
    rng = np.random.default_rng(0)
    with ZarrSink(
        path, LabelMap((LabelSpec("grain"),)), provenance={"source": "synthetic", "sha256": None}
    ) as sink:
        for k in range(2):
            class_map = np.zeros((SIZE, SIZE), np.uint8)
            masks = []
            for centre in ((16, 16), (16, 46), (46, 20), (44, 48)):
                mask = disk((SIZE, SIZE), centre, float(rng.uniform(5, 9)))
                masks.append(mask)
                class_map[mask] = 1
            image = np.where(class_map > 0, 190.0, 60.0) + rng.normal(0, 6, class_map.shape)
            name = f"img{k}.png"
            objects = instances_from_masks(masks, [1] * len(masks))
            sink.add(
                Targets(name, (ImageInfo(name, SIZE, SIZE),), class_map, objects, 3),
                np.clip(image, 0, 255).astype(np.uint8),
            )
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = two_images(tmp_path_factory.mktemp("few") / "two.zarr")
    assert main(["split", str(path), "--by", "region", "--val", "0.25", "--test", "0", "-q"]) == 0
    return path


def _config(*overrides: str) -> dict[str, Any]:
    schema = trainer_schema(load_trainer("maskrcnn").config_schema())
    return build_config(schema, overrides=["data.window=32", *overrides])


def _train_set(store: Path, config: dict[str, Any]) -> Any:
    source = DataSource(store, None, None)
    job = SimpleNamespace(config=config)
    return plugin_module._dataset(job, source, train=True)  # type: ignore[arg-type]


def test_random_windows_and_small_dataset_augmentation_by_default(store: Path) -> None:
    ds = _train_set(store, _config("data.samples_per_epoch=7"))
    assert len(ds) == 7 and ds.samples_per_epoch == 7
    assert ds.augment is not None and ds.augment.recipe == "microscopy"
    assert ds.augment.geometry == ("flip", "rot90")
    first = [ds.window_at(i) for i in range(7)]
    ds.set_epoch(1)
    assert [ds.window_at(i) for i in range(7)] != first
    for i in range(7):
        image, target = ds[i]
        assert image.shape == (1, 32, 32) and target["masks"].shape[1:] == (32, 32)
    # the grid without the key; the recipe off with data.auto_augment=false
    grid = _train_set(store, _config("data.auto_augment=false"))
    assert grid.samples_per_epoch is None and len(grid) == len(grid.layout)
    assert grid.augment is not None and grid.augment.recipe is None
    # a set geometry is the user's choice: no recipe on top
    chosen = _train_set(store, _config("data.geometry=flip"))
    assert chosen.augment.recipe is None


def test_samples_per_epoch_is_checked_by_the_schema() -> None:
    with pytest.raises(UsageError, match="samples_per_epoch"):
        _config("data.samples_per_epoch=0")


def _square(
    tile: NDArray[np.float32], box: tuple[int, int, int, int], score: float
) -> dict[str, Any]:
    mask = np.zeros((1, *tile.shape[1:]), np.float32)
    y0, x0, y1, x1 = box
    mask[0, y0:y1, x0:x1] = 0.9
    return {"labels": np.array([1]), "scores": np.array([score]), "masks": mask}


def _fake(tiles: list[NDArray[np.float32]]) -> list[dict[str, Any]]:
    """Finds the bright block wherever it is (equivariant), plus a spurious square in the
    top-left corner of whatever it is shown (seen in the same place by 2 of 8 views)."""
    out = []
    for t in tiles:
        ys, xs = np.nonzero(t[0] > 0.5)
        found = _square(t, (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1), 0.8)
        corner = _square(t, (0, 0, 3, 3), 0.6)
        out.append({k: np.concatenate([found[k], corner[k]]) for k in found})
    return out


def test_tta_keeps_objects_most_views_agree_on() -> None:
    image = np.zeros((1, 16, 16), np.float32)
    image[0, 4:9, 6:14] = 1
    plain = predict_instances_tiled(_fake, image, window=16, score_threshold=0.5)
    assert len(plain) == 2
    tta = predict_instances_tiled(with_instance_tta(_fake, "all"), image, window=16)
    assert len(tta) == 1 and tta.boxes.tolist() == [[6.0, 4.0, 14.0, 9.0]]
    assert tta.scores.tolist() == pytest.approx([0.8])
    # with 2 votes enough, the 4 corners are kept too (each seen by 2 of the 8 views)
    loose = predict_instances_tiled(with_instance_tta(_fake, "all", min_votes=2), image, window=16)
    assert len(loose) == 5
    # flips only: 4 views, each corner seen by one of them
    assert len(predict_instances_tiled(with_instance_tta(_fake, "flips"), image, window=16)) == 1
    with pytest.raises(UsageError, match="--tta"):
        with_instance_tta(_fake, "sideways")


def _random_detector() -> Callable[[list[NDArray[np.float32]]], list[dict[str, Any]]]:
    """A Mask R-CNN with random weights (seeded); the classifier is damped so that its
    detections score around 0.5 instead of near 0."""
    torch.manual_seed(0)
    model = build_model(
        num_classes=3, in_channels=1, min_size=SIZE, max_size=SIZE, box_detections_per_img=50,
        box_score_thresh=0.0, rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=100,
    )  # fmt: skip
    with torch.no_grad():
        head = model.roi_heads.box_predictor.cls_score
        head.weight.mul_(0.01)
        head.bias.copy_(torch.tensor([0.0, 2.0, 1.5]))
    return detector_forward(model.eval())  # type: ignore[no-any-return]


def test_tta_of_a_turned_image_is_the_turned_tta_of_the_image() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        forward = _random_detector()
        image = np.random.default_rng(0).normal(size=(1, SIZE, SIZE)).astype(np.float32)
        image[:, 10:30, 20:40] += 3
        kw: dict[str, Any] = {"window": SIZE, "score_threshold": 0.1}
        plain = predict_instances_tiled(forward, image, **kw)
        flipped = predict_instances_tiled(forward, np.ascontiguousarray(TURNS[0](image)), **kw)
        # the untrained network is not symmetric by itself
        assert not np.array_equal(flipped.id_map(), TURNS[0](plain.id_map()))
        tta = with_instance_tta(forward, "all", min_votes=2, match_iou=0.3)
        base = predict_instances_tiled(tta, image, **kw)
        assert len(base) > 0
        for turn in (TURNS[0], TURNS[3]):  # a flip and a quarter turn make the whole group
            moved = predict_instances_tiled(tta, np.ascontiguousarray(turn(image)), **kw)
            assert np.array_equal(moved.id_map(), turn(base.id_map()))
            assert np.array_equal(moved.scores, base.scores)
            assert np.array_equal(moved.labels, base.labels)
    finally:
        torch.set_num_threads(threads)


def test_train_with_random_windows_and_predict_with_tta(store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(["train", "maskrcnn", str(store), "--out", str(run), "--epochs", "1", *FAST,
                 "--set", "data.samples_per_epoch=3", "--set", "data.val_stride=32"])  # fmt: skip
    assert code == 0
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["data"]["samples_per_epoch"] == 3 and config["data"]["auto_augment"] is True
    # the checkpoint records what the training data was (as the U-Net's does)
    extra = json.loads(load_checkpoint(run / "checkpoints" / "best.pt")["extra"])
    assert extra["augment"]["recipe"] == "microscopy" and extra["samples_per_epoch"] == 3
    out = tmp_path / "pred.zarr"
    code = main(["predict", str(run), str(store), "--out", str(out), "--device", "cpu", "-q",
                 "--score-threshold", "0", "--no-overlays", "--tta", "flips"])  # fmt: skip
    assert code == 0
    assert read_prediction_attrs(out)["run"]["tta"] == "flips"
    code = main(["predict", str(run), str(store), "--out", str(tmp_path / "bad.zarr"),
                 "--device", "cpu", "-q", "--tta", "sideways"])  # fmt: skip
    assert code == 2
