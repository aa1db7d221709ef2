"""``prep convert`` / ``prep validate`` with --classes, --map, --drop, --ignore and
--annotated-region, through the CLI; the stores they write feed the Dataset and evaluate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import microprep
from microprep.cli.main import main

Capture = pytest.CaptureFixture[str]

LABELS = "".join(
    f"<label><name>{name}</name><color>{color}</color><type>any</type><attributes/></label>"
    for name, color in (
        ("grain", "#ffe119"),
        ("Bubble", "#e6194b"),
        ("void", "#000080"),
        ("unsure", "#808080"),
        ("roi", "#ffffff"),
    )
)


def _box(label: str, x0: int, y0: int, x1: int, y1: int, z: int = 0) -> str:
    return (
        f'<box label="{label}" occluded="0" source="manual" xtl="{x0}" ytl="{y0}" xbr="{x1}" '
        f'ybr="{y1}" z_order="{z}"/>'
    )


#: a.png: grain (0..8 x 0..6), Bubble (10..14 x 2..6), void (2..6 x 8..11), unsure over the
#: grain's right part (6..10 x 0..4, above it), roi (0..12 x 0..8). b.png: one grain, no roi.
IMAGES = (
    '<image id="0" name="a.png" width="16" height="12">'
    + _box("grain", 0, 0, 8, 6)
    + _box("Bubble", 10, 2, 14, 6)
    + _box("void", 2, 8, 6, 11)
    + _box("unsure", 6, 0, 10, 4, z=1)
    + _box("roi", 0, 0, 12, 8)
    + "</image>"
    '<image id="1" name="b.png" width="16" height="12">' + _box("grain", 1, 1, 5, 5) + "</image>"
)


@pytest.fixture
def scene(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """The export, with its two images in tmp_path/images."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (12, 16), dtype=np.uint8)).save(folder / name)
    return write_cvat(IMAGES, labels=f"<labels>{LABELS}</labels>")


def classes_file(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("".join(f"{n}\n" for n in ("background", *names)), encoding="utf-8")
    return path


def convert(scene: Path, out: Path, *args: str) -> int:
    images = str(scene.parent / "images")
    return main(["convert", str(scene), "--images", images, "-q", "--out", str(out), *args])


def labels_of(store: Path, node: int = 0) -> np.ndarray:
    with microprep.open_dataset(store) as ds:
        return np.asarray(ds[node]["labels"].values)


def test_classes_file_fixes_the_order(scene: Path, tmp_path: Path) -> None:
    order = classes_file(tmp_path, "pore", "Bubble", "unsure", "void", "roi", "grain")
    assert convert(scene, tmp_path / "d.zarr", "--classes", str(order)) == 0
    with microprep.open_dataset(tmp_path / "d.zarr") as ds:
        assert ds.classes == ("background", "pore", "Bubble", "unsure", "void", "roi", "grain")
        assert "ignore_index" not in ds.attrs
        mapping = ds.attrs["class_mapping"]
    assert mapping["classes_file"] == "classes.txt" and mapping["sources"]["grain"] == ["grain"]
    labels = labels_of(tmp_path / "d.zarr")
    assert labels[1, 1] == 5  # the roi box, later in the file, above the grain
    assert labels[1, 7] == 3  # unsure, higher z_order
    assert labels[10, 3] == 4  # void
    assert labels_of(tmp_path / "d.zarr", 1)[2, 2] == 6  # grain


def test_a_label_missing_from_the_classes_file_is_one_error_line(
    scene: Path, tmp_path: Path, capsys: Capture
) -> None:
    order = classes_file(tmp_path, "grain", "Bubble")
    out = tmp_path / "d.zarr"
    for command in (["convert", "-o", str(out)], ["validate"]):
        code = main([command[0], str(scene), "--classes", str(order), *command[1:]])
        err = capsys.readouterr().err.strip()
        assert code == 2, command
        assert len(err.splitlines()) == 1
        assert "'void', 'unsure', 'roi'" in err and "classes.txt" in err
    assert not out.exists()


def test_map_merges_and_drop_leaves_out(scene: Path, tmp_path: Path) -> None:
    order = classes_file(tmp_path, "bubble", "grain")
    args = ["--classes", str(order), "--map", "Bubble=bubble,void=bubble", "--drop", "unsure"]
    assert convert(scene, tmp_path / "d.zarr", *args, "--drop", "roi") == 0
    labels = labels_of(tmp_path / "d.zarr")
    assert labels[3, 11] == 1 and labels[10, 3] == 1  # Bubble and void: one class
    assert labels[1, 7] == 2  # unsure dropped: the grain shows
    assert labels[3, 9] == 0  # roi dropped
    with microprep.open_dataset(tmp_path / "d.zarr") as ds:
        assert ds.classes == ("background", "bubble", "grain")
        assert ds.instances(0).labels.tolist() == [2, 1, 1]
        assert ds.attrs["class_mapping"]["sources"]["bubble"] == ["Bubble", "void"]
        assert ds.attrs["class_mapping"]["drop"] == ["roi", "unsure"]


def test_ignore_value_in_the_store_and_every_export(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--to", "zarr,masks,onehot,coco,yolo", "--ignore", "unsure", "--drop", "roi"]
    assert convert(scene, out, *args) == 0
    store = out / "dataset.zarr"
    labels = labels_of(store)
    with microprep.open_dataset(store) as ds:
        assert ds.attrs["ignore_index"] == 255
        assert ds.classes == ("background", "grain", "Bubble", "void")
    assert (labels[0:4, 6:10] == 255).all()  # unsure above the grain: ignored
    assert labels[5, 7] == 1 and labels[1, 5] == 1
    mask = np.asarray(Image.open(out / "masks" / "a.png"))
    np.testing.assert_array_equal(mask, labels)
    onehot = np.load(out / "onehot" / "a.npy")
    assert onehot.shape[0] == 4 and (onehot[:, 0:4, 6:10] == 0).all()
    assert (onehot.sum(axis=0)[labels != 255] == 1).all()
    coco = json.loads((out / "coco.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in coco["categories"]] == ["grain", "Bubble", "void"]
    assert len([a for a in coco["annotations"] if a["image_id"] == coco["images"][0]["id"]]) == 3
    assert len((out / "labels" / "a.txt").read_text(encoding="utf-8").splitlines()) == 3
    assert (out / "classes.txt").read_text(encoding="utf-8").split() == [
        "background",
        "grain",
        "Bubble",
        "void",
    ]


def test_annotated_region(scene: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "d.zarr"
    code = main(["convert", str(scene), "--annotated-region", "roi", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "1 image(s) have no annotated region (roi)" in captured.err and "'b.png'" in captured.err
    a, b = labels_of(out, 0), labels_of(out, 1)
    assert (a[8:, :] == 255).all() and (a[:, 12:] == 255).all()  # outside the roi box
    assert a[1, 1] == 1 and a[10, 3] == 255 and a[7, 11] == 0
    assert (b == 255).all()
    assert main(["validate", str(scene), "--annotated-region", "roi"]) == 0
    assert "'b.png'" in capsys.readouterr().err


def test_bad_class_options_exit_2(scene: Path, tmp_path: Path, capsys: Capture) -> None:
    out = str(tmp_path / "d.zarr")
    bad = tmp_path / "bad.txt"
    bad.write_text("grain\n", encoding="utf-8")
    for args, words in (
        (["--map", "Bubble"], "OLD=NEW"),
        (["--drop", "void", "--ignore", "void"], "both --drop and --ignore"),
        (["--classes", str(bad)], "bad.txt:1"),
    ):
        assert main(["convert", str(scene), "-o", out, *args]) == 2, args
        assert words in capsys.readouterr().err


# -- what the store's ignore pixels mean downstream


@pytest.fixture
def ignore_store(scene: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ignore.zarr"
    assert convert(scene, out, "--ignore", "unsure", "--drop", "roi") == 0
    return out


def test_ignore_pixels_are_not_valid_in_dataset_samples(ignore_store: Path) -> None:
    pytest.importorskip("torch")
    from microprep.data import SegmentationDataset

    ds = SegmentationDataset(ignore_store, window=(12, 16), nodes=["a.png"])
    assert ds.ignore_index == 255
    sample = ds[0]
    labels = labels_of(ignore_store)
    valid = sample["valid"].numpy()
    np.testing.assert_array_equal(valid, labels != 255)
    assert not valid[0:4, 6:10].any() and valid.sum() == 12 * 16 - 16
    assert (sample["target"].numpy()[~valid] == 0).all()


def test_ignore_pixels_contribute_nothing_to_the_loss(ignore_store: Path) -> None:
    torch = pytest.importorskip("torch")
    from microprep.data import SegmentationDataset
    from microprep_unet import CombinedLoss

    sample = SegmentationDataset(ignore_store, window=(12, 16), nodes=["a.png"])[0]
    target, valid = sample["target"][None], sample["valid"][None]
    loss = CombinedLoss({"ce": 1.0, "dice": 1.0, "jaccard2": 1.0}, class_weight=[1, 2, 1, 1])
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 12, 16)
    changed = logits.clone()
    changed[:, :, ~valid[0]] = torch.randn(4, int((~valid).sum())) * 10
    before, _ = loss(logits, target, valid)
    after, _ = loss(changed, target, valid)
    assert torch.allclose(before, after)
    elsewhere = logits.clone()
    elsewhere[:, 0, 5, 7] += 5.0  # a valid grain pixel: the loss does change
    assert not torch.allclose(before, loss(elsewhere, target, valid)[0])


def test_evaluate_leaves_ignore_pixels_out(ignore_store: Path, tmp_path: Path) -> None:
    from microprep.evaluate import evaluate_semantic

    folder = tmp_path / "pred"
    folder.mkdir()
    with microprep.open_dataset(ignore_store) as ds:
        for node in ds.nodes:
            truth = np.asarray(ds[node]["labels"].values)
            pred = np.where(truth == 255, 2, truth).astype(np.uint8)  # wrong where ignored
            Image.fromarray(pred).save(folder / str(ds[node].attrs["name"]))
    report = evaluate_semantic(folder, ignore_store)
    ignored = int((labels_of(ignore_store) == 255).sum())
    assert ignored == 16
    assert report.scores.micro_iou == pytest.approx(1.0)
    assert sum(r.pixels for r in report.images) == 2 * 12 * 16 - ignored


@pytest.mark.parametrize("beside", [False, True])
def test_the_checks_see_the_mapped_export(
    write_cvat: Callable[..., Path], tmp_path: Path, beside: bool
) -> None:
    """A broken shape of a dropped label does not stop the conversion, whether the checks run
    in this process or beside it (a second process reading the export again)."""
    from microprep.classes import ClassOptions
    from microprep.conversion import ConvertOptions
    from microprep.conversion import convert as convert_export
    from microprep.errors import ValidationError

    # a bow-tie whose left lobe is traced twice: its repair changes pixels, so it is refused
    broken = (
        '<polygon label="void" occluded="0" source="manual" z_order="0" '
        'points="2,2;7,7;2,12;2,2;7,7;12,2;12,12;7,7;2,12"/>'
    )
    image = '<image id="0" name="a.png" width="16" height="16">' + broken
    scene = write_cvat(
        image + _box("grain", 1, 1, 5, 5) + "</image>", labels=f"<labels>{LABELS}</labels>"
    )
    with pytest.raises(ValidationError, match="self-intersection"):
        convert_export(scene, tmp_path / "bad.zarr", ConvertOptions(check_beside=beside))
    options = ConvertOptions(check_beside=beside, classes=ClassOptions(drop=frozenset({"void"})))
    summary = convert_export(scene, tmp_path / "d.zarr", options)
    assert summary.shapes == 1 and "void" not in summary.classes


def test_an_augmented_store_keeps_the_ignore_value(ignore_store: Path, tmp_path: Path) -> None:
    aug = tmp_path / "aug.zarr"
    code = main(["augment", str(ignore_store), "--out", str(aug), "--geometry", "flip", "-q"])
    assert code == 0
    with microprep.open_dataset(aug) as ds:
        assert ds.attrs["ignore_index"] == 255
        assert ds.classes == ("background", "grain", "Bubble", "void")
        assert ds.attrs["class_mapping"]["ignore"] == ["unsure"]
        labels = np.asarray(ds[0]["labels"].values)
    assert int((labels == 255).sum()) == 16


def test_evaluate_against_mask_pngs_with_ignore_index(
    scene: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out"
    assert convert(scene, out, "--to", "masks", "--ignore", "unsure", "--drop", "roi") == 0
    pred = tmp_path / "pred"
    for png in (out / "masks").glob("*.png"):
        truth = np.asarray(Image.open(png))
        (pred / png.parent.relative_to(out / "masks")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(truth == 255, 1, truth).astype(np.uint8)).save(pred / png.name)
    masks = str(out / "masks")
    assert (
        main(
            [
                "evaluate",
                str(pred),
                masks,
                "--ignore-index",
                "255",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["pixels"] == 2 * 12 * 16 - 16
    assert all(image["micro_iou"] == pytest.approx(1.0) for image in report["per_image"])
    assert main(["evaluate", str(pred), masks]) == 0  # without it, 255 is a class of its own
    assert "255" in capsys.readouterr().out
