"""The ecosystem exports through the CLI, checked by the ecosystem's own code where it installs:
OME-Zarr (ome-zarr-models, ome-zarr's reader), nnU-Net v2 (verify_dataset_integrity),
Cellpose (io.load_train_test_data), StarDist (its documented label rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image
from scipy import ndimage

import microprep
from microprep.cli.main import main
from microprep.errors import UsageError
from microprep.exports.instancemap import one_piece_per_id
from microprep.exports.omezarr import parse_pixel_size, pyramid_shapes

Capture = pytest.CaptureFixture[str]

W, H = 300, 280  # two pyramid levels: 280 >= 256, then 140


def image_xml(name: str, dx: int) -> str:
    """A polygon of precipitate cut in two by a bubble box drawn over it, and an ellipse."""
    return (
        f'<image id="{dx}" name="{name}" width="{W}" height="{H}">\n'
        f'  <polygon label="precipitate" points="{10 + dx},10;{120 + dx},10;{120 + dx},40;'
        f'{10 + dx},40" z_order="0"/>\n'
        f'  <box label="bubble" xtl="{50 + dx}" ytl="0" xbr="{70 + dx}" ybr="60" z_order="1"/>\n'
        f'  <ellipse label="bubble" cx="{150 + dx}" cy="150" rx="30" ry="20" z_order="0"/>\n'
        "</image>"
    )


NAMES = ("a.png", "b.png", "c.png")


@pytest.fixture
def export_with_images(write_cvat: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in NAMES:
        Image.fromarray(rng.integers(0, 255, (H, W), dtype=np.uint8)).save(images / name)
    export = write_cvat("\n".join(image_xml(n, 10 * i) for i, n in enumerate(NAMES)))
    return export, images


def run(args: list[str]) -> None:
    assert main([*args, "-q"]) == 0


def test_parse_pixel_size() -> None:
    assert parse_pixel_size("0.5nm") == (0.5, "nanometer")
    assert parse_pixel_size("3 µm") == (3.0, "micrometer")
    for bad in ("nm", "0nm", "2 parsecs", "-1um"):
        with pytest.raises(UsageError, match="pixel size"):
            parse_pixel_size(bad)


def test_pyramid_stops_under_256() -> None:
    assert pyramid_shapes((2048, 2048))[-1] == (128, 128)
    assert len(pyramid_shapes((2048, 2048))) == 5
    assert pyramid_shapes((255, 4000)) == [(255, 4000)]


def test_ome_zarr_convert_validates_and_reads(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    models = pytest.importorskip("ome_zarr_models.v05.image")
    reader_mod = pytest.importorskip("ome_zarr.reader")
    io_mod = pytest.importorskip("ome_zarr.io")
    export, images = export_with_images
    out = tmp_path / "out"
    run(["convert", str(export), "--images", str(images), "--to", "zarr,ome-zarr",
         "--pixel-size", "0.5nm", "-o", str(out)])  # fmt: skip
    ds = microprep.open_dataset(out / "dataset.zarr")
    root = zarr.open_group(out, mode="r")
    assert root.attrs["microprep"]["images"] == ["a.ome.zarr", "b.ome.zarr", "c.ome.zarr"]
    for index, name in enumerate(("a", "b", "c")):
        path = out / f"{name}.ome.zarr"
        image = models.Image.from_zarr(zarr.open_group(path, mode="r"))  # validates, labels too
        axes = image.attributes.ome.multiscales[0].axes
        assert [(a.name, a.unit) for a in axes] == [("y", "nanometer"), ("x", "nanometer")]
        nodes = list(reader_mod.Reader(io_mod.parse_url(str(path)))())
        by_name = {n.metadata.get("name"): n for n in nodes}
        assert [d.shape for d in by_name[f"{NAMES[index]}"].data] == [(H, W), (H // 2, W // 2)]
        classes = by_name["classes"]
        assert [d.shape for d in classes.data] == [(H, W), (H // 2, W // 2)]
        colors = classes.metadata["color"]
        assert colors[1] == pytest.approx([230 / 255, 25 / 255, 75 / 255, 1.0])  # bubble
        np.testing.assert_array_equal(np.asarray(classes.data[0]), ds[index]["labels"].values)
        instances = np.asarray(by_name["instances"].data[0])
        assert set(np.unique(instances)) == {0, 1, 2, 3}
        pixels = np.asarray(by_name[NAMES[index]].data[0])
        np.testing.assert_array_equal(pixels, ds[index]["image"].values)


def test_ome_zarr_without_images_is_one_line(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out"
    assert main(["convert", str(write_cvat()), "--to", "ome-zarr", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--images" in err
    assert not out.exists()


def test_export_ome_zarr_with_predictions(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    reader_mod = pytest.importorskip("ome_zarr.reader")
    io_mod = pytest.importorskip("ome_zarr.io")
    from microprep.predict.write import PredictionWriter

    export, images = export_with_images
    store = tmp_path / "d.zarr"
    run(["convert", str(export), "--images", str(images), "-o", str(store)])
    ds = microprep.open_dataset(store)
    pred = tmp_path / "pred.zarr"
    writer = PredictionWriter(pred, classes=ds.classes, colors=ds.colors, kind="semantic")
    for name in NAMES:
        node = writer.begin(name, (H, W), probabilities=None)
        probs = np.zeros((3, H, W), np.float32)
        probs[2, :, : W // 2] = 1.0  # left half "precipitate"
        writer.write_rows(node, 0, H, probs)
        writer.finish_node(node)
    writer.close()
    out = tmp_path / "ome"
    run(["export", str(store), "--to", "ome-zarr", "--predictions", str(pred), "-o", str(out)])
    nodes = list(reader_mod.Reader(io_mod.parse_url(str(out / "a.ome.zarr")))())
    by_name = {n.metadata.get("name"): n for n in nodes}
    predicted = np.asarray(by_name["predicted"].data[0])
    assert predicted[:, : W // 2].min() == 2 and predicted[:, W // 2 :].max() == 0
    assert "classes" in by_name and "instances" in by_name


def test_nnunet_export_of_split_store(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    export, images = export_with_images
    store = tmp_path / "d.zarr"
    run(["convert", str(export), "--images", str(images), "-o", str(store)])
    run(["split", str(store), "--val", "0.34", "--test", "0.33"])
    splits = json.loads((tmp_path / "d.zarr.splits.json").read_text())["splits"]
    out = tmp_path / "Dataset001_pores"
    run(["export", str(store), "--to", "nnunet", "-o", str(out)])
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "bubble": 1, "precipitate": 2}
    assert dataset["numTraining"] == 2 and dataset["file_ending"] == ".png"
    case = {"a.png": "a", "b.png": "b", "c.png": "c"}
    fold = json.loads((out / "splits_final.json").read_text())[0]
    assert fold["val"] == [case[r["node"]] for r in splits["val"]]
    assert fold["train"] == [case[r["node"]] for r in splits["train"]]
    (test_case,) = [case[r["node"]] for r in splits["test"]]
    assert (out / "imagesTs" / f"{test_case}_0000.png").is_file()
    label = np.asarray(Image.open(out / "labelsTr" / f"{fold['train'][0]}.png"))
    node = next(r["node"] for r in splits["train"])
    np.testing.assert_array_equal(label, microprep.open_dataset(store)[node]["labels"].values)
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity")
    verify.verify_dataset_integrity(str(out), num_processes=1)


def test_nnunet_volume_is_tiff_with_spacing(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    export, images = export_with_images
    out = tmp_path / "Dataset002_stack"
    run(["convert", str(export), "--images", str(images), "--volume", "--to", "nnunet",
         "--pixel-size", "2nm", "-o", str(out)])  # fmt: skip
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["file_ending"] == ".tif"
    assert dataset["overwrite_image_reader_writer"] == "Tiff3DIO"
    (case,) = [p.name[: -len("_0000.tif")] for p in (out / "imagesTr").glob("*_0000.tif")]
    assert tifffile.imread(out / "labelsTr" / f"{case}.tif").shape == (3, H, W)
    assert json.loads((out / "labelsTr" / f"{case}.json").read_text()) == {"spacing": [2.0] * 3}
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity")
    verify.verify_dataset_integrity(str(out), num_processes=1)


def test_cellpose_pairs_load_in_cellpose(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    export, images = export_with_images
    out = tmp_path / "cp"
    run(["convert", str(export), "--images", str(images), "--to", "cellpose", "-o", str(out)])
    masks = tifffile.imread(out / "train" / "a_masks.tif")
    assert masks.dtype == np.uint16 and set(np.unique(masks)) == {0, 1, 2, 3}
    assert masks[25, 60] == 2  # the box drawn over the polygon owns the overlap
    assert masks[25, 20] == 1 and masks[25, 100] == 1  # the polygon keeps both sides
    cp_io = pytest.importorskip("cellpose.io")
    loaded = cp_io.load_train_test_data(str(out / "train"), mask_filter="_masks")
    train_images, train_labels = loaded[0], loaded[1]
    assert len(train_images) == 3 and len(train_labels) == 3
    np.testing.assert_array_equal(np.asarray(train_labels[0]).squeeze(), masks)


def test_stardist_masks_follow_its_rules(
    export_with_images: tuple[Path, Path], tmp_path: Path
) -> None:
    export, images = export_with_images
    out = tmp_path / "sd"
    run(["convert", str(export), "--images", str(images), "--to", "stardist", "-o", str(out)])
    names = sorted(p.name for p in (out / "train" / "images").iterdir())
    assert (
        names
        == sorted(p.name for p in (out / "train" / "masks").iterdir())
        == [
            "a.tif",
            "b.tif",
            "c.tif",
        ]
    )
    for name in names:
        ids = tifffile.imread(out / "train" / "masks" / name)
        values = sorted(set(np.unique(ids).tolist()) - {0})
        assert values == list(range(1, len(values) + 1)) == [1, 2, 3]
        for value in values:
            mask = ids == value
            assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1  # one piece
            assert np.array_equal(ndimage.binary_fill_holes(mask), mask)  # no holes


def test_one_piece_per_id_fills_holes_but_keeps_inner_objects() -> None:
    ids = np.zeros((7, 7), np.uint32)
    ids[1:6, 1:6] = 1
    ids[3, 3] = 0  # a hole
    ids[2, 4] = 2  # an object inside object 1
    out = one_piece_per_id(ids, fill_holes=True)
    assert out[3, 3] == 1 and out[2, 4] == 2
    assert not one_piece_per_id(ids, fill_holes=False)[3, 3]


def test_export_refuses_region_splits(
    export_with_images: tuple[Path, Path], tmp_path: Path, capsys: Capture
) -> None:
    export, images = export_with_images
    store = tmp_path / "d.zarr"
    run(["convert", str(export), "--images", str(images), "-o", str(store)])
    run(["split", str(store), "--by", "region", "--val", "0.3", "--test", "0"])
    assert main(["export", str(store), "--to", "cellpose", "-o", str(tmp_path / "x"), "-q"]) == 2
    assert "--by image" in capsys.readouterr().err
