"""The labelling loop through the CLI: predict --uncertainty, rank, export --only, convert
back, retrain; and the uncertainty stored by predict_semantic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from lxml import etree
from PIL import Image

from conftest import cvat_xml
from microprep.cli.main import main
from microprep.predict import predict_semantic
from microprep.predict.rank import rank_entries
from microprep.predict.write import normalized_entropy
from microprep.store import open_dataset

Capture = pytest.CaptureFixture[str]

LABELS = (
    "<labels><label><name>bright</name><color>#e6194b</color><type>polygon</type>"
    "<attributes/></label></labels>"
)
TINY = [
    "--device", "cpu", "--batch-size", "4", "--window", "32", "--workers", "0",
    "--set", "model.depth=2", "--set", "model.base_filters=4", "--set", "threads=1", "-q",
]  # fmt: skip


def soft_forward(batch: np.ndarray) -> np.ndarray:
    """Two classes, class 1 with probability = the pixel value (so mid-grey is uncertain)."""
    p = np.clip(batch[:, :1], 0, 1)
    return np.concatenate([1 - p, p], axis=1).astype(np.float32)


def test_predict_semantic_stores_normalised_entropy_and_a_heat_map(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    calm = np.zeros((16, 20), np.uint8)  # certain everywhere
    mixed = np.full((16, 20), 128, np.uint8)  # p = 0.5: uncertainty 1
    Image.fromarray(calm).save(images / "calm.png")
    Image.fromarray(mixed).save(images / "mixed.png")
    out = tmp_path / "pred.zarr"
    predict_semantic(
        soft_forward, images, out, window=16, classes=["background", "bright"],
        uncertainty=True, progress=False,
    )  # fmt: skip
    root = zarr.open_group(out, mode="r")
    assert root.attrs["microprep_prediction"]["uncertainty"] == "entropy"
    mixed_u = np.asarray(root["mixed.png"]["uncertainty"][...], np.float32)
    assert mixed_u.shape == (16, 20) and np.allclose(mixed_u, 1.0, atol=1e-3)
    assert root["calm.png"].attrs["uncertainty_mean"] == pytest.approx(0.0, abs=1e-6)
    assert root["mixed.png"].attrs["uncertainty_mean"] == pytest.approx(1.0, abs=1e-3)
    assert root["calm.png"].attrs["class_pixels"] == [320, 0]
    heat = Image.open(tmp_path / "pred.overlays" / "uncertainty" / "mixed.png")
    assert heat.mode == "RGB"
    assert (tmp_path / "pred.overlays" / "mixed.png").is_file()  # the class overlay stays


def test_normalised_entropy_bounds() -> None:
    probs = np.array([[[1.0, 1 / 3]], [[0.0, 1 / 3]], [[0.0, 1 / 3]]])
    assert normalized_entropy(probs).round(4).tolist() == [[0.0, 1.0]]
    assert normalized_entropy(np.ones((1, 2, 2))).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_balance_favours_images_with_rare_classes() -> None:
    classes = ["background", "common", "rare"]
    entries = [("a", 0.30, [10, 5, 0]), ("b", 0.25, [10, 5, 3]), ("c", 0.2, [10, 5, 0])]
    plain = [r.name for r in rank_entries(entries, classes=classes)]
    balanced = rank_entries(entries, classes=classes, balance=True)
    assert plain == ["a", "b", "c"]
    assert [r.name for r in balanced] == ["b", "a", "c"]
    assert balanced[0].score == pytest.approx(0.25 * (1 + 2 / 3))
    assert balanced[0].classes == ("common", "rare")


def write_task(folder: Path, count: int, size: int = 32, seed: int = 0) -> Path:
    """``count`` grey images with one bright square each, and their CVAT export."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for k in range(count):
        y, x = (int(v) for v in rng.integers(2, size - 14, 2))
        pixels = np.full((size, size), 60.0)
        pixels[y : y + 10, x : x + 10] = 200
        pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        name = f"m{k:02d}.png"
        Image.fromarray(pixels).save(folder / name)
        points = f"{x},{y};{x + 10},{y};{x + 10},{y + 10};{x},{y + 10}"
        parts.append(
            f'<image id="{k}" name="{name}" width="{size}" height="{size}">'
            f'<polygon label="bright" occluded="0" points="{points}" z_order="0"/></image>'
        )
    export = folder / "annotations.xml"
    export.write_text(cvat_xml("\n".join(parts), labels=LABELS), encoding="utf-8")
    return export


def run(args: list[str], capsys: Capture) -> str:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_the_labelling_loop_on_tiny_data(tmp_path: Path, capsys: Capture) -> None:
    first = write_task(tmp_path / "first", 4, seed=1)
    pool = write_task(tmp_path / "pool", 8, seed=2)
    store = tmp_path / "first.zarr"
    run(["convert", str(first), "--images", str(first.parent), "--out", str(store), "-q"], capsys)
    run(["split", str(store), "--val", "0.25", "--test", "0", "-q"], capsys)
    model = tmp_path / "run"
    run(["train", "unet", str(store), "--out", str(model), "--epochs", "1", *TINY], capsys)
    # predict the pool with uncertainty
    pred = tmp_path / "pred.zarr"
    run(["predict", str(model), str(pool.parent), "--out", str(pred), "--uncertainty",
         "--device", "cpu", "-q"], capsys)  # fmt: skip
    root = zarr.open_group(pred, mode="r")
    means = {root[g].attrs["name"]: root[g].attrs["uncertainty_mean"] for g in root.group_keys()}
    assert len(means) == 8 and all(0 <= m <= 1 for m in means.values())
    assert len(list((tmp_path / "pred.overlays" / "uncertainty").glob("*.png"))) == 8
    # rank and keep the top 3
    ranking = tmp_path / "next.json"
    table = run(["rank", str(pred), "--top", "3", "--json", str(ranking)], capsys)
    data = json.loads(ranking.read_text())
    top = [item["name"] for item in data["images"]]
    assert top == sorted(means, key=lambda n: (-means[n], n))[:3]
    assert top[0] in table.splitlines()[1]
    # pre-annotate only those, like the original export, and convert them back unchanged
    xml = tmp_path / "next.xml"
    run(["export-annotations", str(pred), "--to", "cvat", "--like", str(pool), "--only",
         str(ranking), "--out", str(xml), "-q"], capsys)  # fmt: skip
    written = [e.get("name") for e in etree.parse(str(xml)).getroot().iter("image")]
    assert sorted(written) == sorted(top)
    corrected = tmp_path / "corrected.zarr"
    run(["convert", str(xml), "--images", str(pool.parent), "--out", str(corrected), "-q"],
        capsys)  # fmt: skip
    assert sorted(open_dataset(corrected).nodes) == sorted(top)
    # retrain on the new labels
    run(["split", str(corrected), "--val", "0.34", "--test", "0", "-q"], capsys)
    again = tmp_path / "run2"
    run(["train", "unet", str(corrected), "--out", str(again), "--epochs", "1", *TINY], capsys)
    assert any((again / "checkpoints").iterdir())


def test_a_ranking_naming_unknown_images_is_refused(tmp_path: Path, capsys: Capture) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(images / "a.png")
    pred = tmp_path / "pred.zarr"
    predict_semantic(soft_forward, images, pred, window=8, classes=["background", "bright"],
                     uncertainty=True, overlays=False, progress=False)  # fmt: skip
    ranking = tmp_path / "r.json"
    assert main(["rank", str(pred), "--json", str(ranking), "-q"]) == 0
    data = json.loads(ranking.read_text())
    data["images"].append({"rank": 2, "name": "ghost.png"})
    ranking.write_text(json.dumps(data))
    out = tmp_path / "next.xml"
    code = main(["export-annotations", str(pred), "--to", "cvat", "--only", str(ranking),
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and "ghost.png" in err and str(ranking) in err
    assert not out.exists()


def test_rank_refuses_a_store_without_uncertainty(tmp_path: Path, capsys: Capture) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "a.png")
    pred = tmp_path / "pred.zarr"
    predict_semantic(soft_forward, images, pred, window=8, classes=["background", "bright"],
                     overlays=False, progress=False)  # fmt: skip
    assert main(["rank", str(pred)]) == 2
    assert "--uncertainty" in capsys.readouterr().err


def test_instance_uncertainty_is_one_minus_the_score_and_ranks(
    tmp_path: Path, capsys: Capture
) -> None:
    from microprep.predict.instances import InstancePrediction
    from microprep.predict.instances_write import PredictedImage, write_instance_predictions
    from microprep.targets.types import Raster

    def square(score: float) -> InstancePrediction:
        raster = Raster((1, 1), np.ones((2, 2), bool))
        return InstancePrediction.from_rasters((4, 4), [raster], labels=[1], scores=[score])

    out = tmp_path / "pred.zarr"
    items = [PredictedImage("sure.png", square(0.9)), PredictedImage("unsure.png", square(0.2))]
    write_instance_predictions(
        items, out, classes=["background", "pore"], overlays=False, uncertainty=True
    )
    root = zarr.open_group(out, mode="r")
    heat = np.asarray(root["unsure.png"]["uncertainty"][...], np.float32)
    assert heat[1, 1] == pytest.approx(0.8, abs=1e-3) and heat[0, 0] == 0
    assert root["unsure.png"].attrs["uncertainty_mean"] == pytest.approx(0.8 * 4 / 16, abs=1e-6)
    assert root["sure.png"].attrs["class_pixels"] == [12, 4]
    rows = run(["rank", str(out)], capsys).splitlines()[1:]
    assert [row.split()[3] for row in rows] == ["unsure.png", "sure.png"]
