"""predict_semantic: the prediction store, overlays, inputs, atomic replacement."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr
from PIL import Image

from microprep.errors import ImageFileError, InputError, StoreError, UsageError
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.outputs import MARKER
from microprep.predict import (
    PREDICTION_KEY,
    channels_first,
    iter_inputs,
    overlays_path,
    predict_semantic,
    read_prediction_attrs,
    unit_range,
)
from microprep.store import ZarrSink
from microprep.targets.types import Instances, Targets

CLASSES = ["background", "pore", "crack"]


def threshold_forward(batch: np.ndarray) -> np.ndarray:
    """Class 0 below 1/3, 1 below 2/3, 2 above (channel 0 of the scaled image)."""
    value = batch[:, 0]
    classes = np.digitize(value, [1 / 3, 2 / 3])
    out = np.zeros((len(batch), 3, *batch.shape[2:]), np.float32)
    for c in range(3):
        out[:, c] = classes == c
    return out


def expected_classes(pixels: np.ndarray) -> np.ndarray:
    return np.digitize(pixels.astype(np.float32) / 255, [1 / 3, 2 / 3])


def ramp(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape).astype(np.uint8)


def make_store(path: Path, nodes: dict[str, np.ndarray]) -> Path:
    """A dataset store with pixels: one node per ``name: uint8 image``."""
    lm = LabelMap((LabelSpec("pore"), LabelSpec("crack")))
    with ZarrSink(path, lm, provenance={"source": "x.xml", "sha256": None}) as sink:
        for name, image in nodes.items():
            shape = image.shape
            frames = 1 if image.ndim == 2 else shape[0]
            infos = tuple(
                ImageInfo(f"{name}-{k}" if frames > 1 else name, shape[-1], shape[-2])
                for k in range(frames)
            )
            labels = np.zeros(shape, np.uint8)
            sink.add(Targets(name, infos, labels, Instances.empty(shape), 3), image)
    return path


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    nodes = {
        "grid 1/a.png": ramp((21, 30), 1),
        "b.png": ramp((9, 12), 2),
        "vol": ramp((5, 14, 11), 3),
    }
    return make_store(tmp_path / "data.zarr", nodes), nodes


def test_predicts_a_store_into_a_readable_prediction_store(tmp_path: Path, store) -> None:
    source, nodes = store
    out = tmp_path / "pred.zarr"
    summary = predict_semantic(
        threshold_forward, source, out, window=8, overlap=0.25, batch_size=3, classes=CLASSES,
        probabilities=True, run={"model": "threshold"}, progress=False,
    )  # fmt: skip
    assert summary.names == list(nodes)
    assert summary.groups == ["grid_1_a.png", "b.png", "vol"]
    attrs = read_prediction_attrs(out)
    assert attrs["kind"] == "semantic" and attrs["classes"] == CLASSES
    assert attrs["nodes"] == summary.groups and attrs["run"]["model"] == "threshold"
    assert len(attrs["colors"]) == 3 and attrs["complete"] is True
    tree = xr.open_datatree(out, engine="zarr")
    total = np.zeros(3, np.int64)
    for name, group in zip(nodes, summary.groups, strict=True):
        node = tree[group].to_dataset()
        assert node.attrs["name"] == name
        spatial_dims = ("y", "x") if nodes[name].ndim == 2 else ("z", "y", "x")
        assert node["labels"].dims == spatial_dims
        assert node["labels"].dtype == np.uint8
        assert node["probabilities"].dims == ("class", *spatial_dims)
        assert node["probabilities"].dtype == np.float16
        want = expected_classes(nodes[name])
        np.testing.assert_array_equal(node["labels"].values, want)
        np.testing.assert_array_equal(np.argmax(node["probabilities"].values, axis=0), want)
        total += np.bincount(want.reshape(-1), minlength=3)
    assert summary.class_pixels == total.tolist()
    overlays = overlays_path(out)
    assert overlays == tmp_path / "pred.overlays"
    # named by group without the image suffix
    assert sorted(p.name for p in overlays.iterdir() if p.name != MARKER) == [
        "b.png",
        "grid_1_a.png",
        "vol.png",
    ]
    with Image.open(overlays / "vol.png") as picture:
        assert picture.mode == "RGB" and picture.width > 11


def test_folder_of_images_and_a_tiff_stack(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    a = ramp((10, 13), 4)
    Image.fromarray(a).save(folder / "sub" / "a.png")
    rgb = ramp((7, 6, 3), 5)
    Image.fromarray(rgb).save(folder / "c.png")
    stack = ramp((4, 9, 8), 6)
    tifffile.imwrite(folder / "b.tif", stack, photometric="minisblack")
    (folder / ".hidden.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("skip me")
    records = list(iter_inputs(folder))
    assert [(r.name, r.ndim) for r in records] == [("b.tif", 3), ("c.png", 2), ("sub/a.png", 2)]
    out = tmp_path / "p.zarr"
    summary = predict_semantic(
        threshold_forward, folder, out, window=(4, 4, 4), classes=CLASSES, in_channels=1,
        overlays=False, progress=False,
    )  # fmt: skip
    assert summary.shapes == [(4, 9, 8), (7, 6), (10, 13)]
    assert not overlays_path(out).exists()
    root = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(root["b.tif"]["labels"][...], expected_classes(stack))
    np.testing.assert_array_equal(root["sub_a.png"]["labels"][...], expected_classes(a))
    gray = np.round(rgb.astype(np.float64).mean(axis=-1)).astype(np.uint8)
    np.testing.assert_array_equal(root["c.png"]["labels"][...], expected_classes(gray))
    assert "probabilities" not in root["c.png"]


def test_single_file_input(tmp_path: Path) -> None:
    image = ramp((6, 9), 8)
    Image.fromarray(image).save(tmp_path / "one.png")
    out = tmp_path / "one.zarr"
    summary = predict_semantic(
        threshold_forward, tmp_path / "one.png", out, window=16, classes=CLASSES, progress=False
    )
    assert summary.names == ["one.png"]
    labels = zarr.open_group(str(out), mode="r")["one.png"]["labels"][...]
    np.testing.assert_array_equal(labels, expected_classes(image))


def test_failed_run_leaves_the_earlier_output_untouched(tmp_path: Path, store) -> None:
    source, _ = store
    out = tmp_path / "pred.zarr"
    predict_semantic(threshold_forward, source, out, window=8, classes=CLASSES, progress=False)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    first = read_prediction_attrs(out)
    calls = {"n": 0}

    def failing(batch: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # an interrupted run
        return threshold_forward(batch)

    with pytest.raises(KeyboardInterrupt):
        predict_semantic(failing, source, out, window=8, classes=CLASSES, progress=False)
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert after == before  # no temp folders, no lock, the same files
    assert read_prediction_attrs(out) == first


def test_no_half_written_output_on_a_first_failed_run(tmp_path: Path, store) -> None:
    source, _ = store

    def broken(batch: np.ndarray) -> np.ndarray:
        return np.zeros((len(batch), 2, *batch.shape[2:]), np.float32)  # 2 classes, not 3

    with pytest.raises(UsageError, match="expected"):
        predict_semantic(broken, source, tmp_path / "p.zarr", window=8, classes=CLASSES,
                         progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MARKER) == ["data.zarr"]


def test_unreadable_files_and_missing_pixels_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ImageFileError, match=r"bad\.png"):
        predict_semantic(threshold_forward, tmp_path / "bad.png", tmp_path / "o.zarr", window=8,
                         classes=CLASSES, progress=False)  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        list(iter_inputs(empty))
    lm = LabelMap((LabelSpec("pore"),))
    with ZarrSink(tmp_path / "nopix.zarr", lm, provenance={"source": "x", "sha256": None}) as sink:
        sink.add(Targets("a.png", (ImageInfo("a.png", 4, 3),), np.zeros((3, 4), np.uint8),
                         Instances.empty((3, 4)), 2), None)  # fmt: skip
    with pytest.raises(InputError, match="no pixels"):
        list(iter_inputs(tmp_path / "nopix.zarr"))
    with pytest.raises(InputError, match="no such"):
        list(iter_inputs(tmp_path / "missing"))


def test_incomplete_prediction_store_is_refused(tmp_path: Path) -> None:
    root = zarr.create_group(store=str(tmp_path / "p.zarr"), zarr_format=3)
    root.attrs[PREDICTION_KEY] = {"format_version": 1, "complete": False}
    with pytest.raises(StoreError, match="incomplete"):
        read_prediction_attrs(tmp_path / "p.zarr")


def test_channels_first_and_unit_range() -> None:
    assert channels_first(np.zeros((3, 4, 5)), ndim=3).shape == (1, 3, 4, 5)
    assert channels_first(np.zeros((3, 4, 5)), ndim=2).shape == (5, 3, 4)
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert channels_first(rgba, ndim=2, in_channels=3).shape == (3, 2, 2)
    with pytest.raises(UsageError, match="channels"):
        channels_first(np.zeros((2, 2, 2)), ndim=2, in_channels=3)
    with pytest.raises(UsageError):
        channels_first(np.zeros(4), ndim=2)
    assert unit_range(np.array([65535], np.uint16)).tolist() == [1.0]
    assert unit_range(np.array([0.25], np.float64)).dtype == np.float32


def test_writer_buffers_rows_to_whole_chunks(tmp_path: Path) -> None:
    from microprep.predict.write import PredictionWriter, _prediction_chunking

    assert _prediction_chunking((200, 2048, 2048)) == ((32, 128, 128), (32, 1024, 1024))
    assert _prediction_chunking((300, 400)) == ((300, 400), None)
    writer = PredictionWriter(tmp_path / "w.zarr", classes=["bg", "a"], colors=[[0, 0, 0],
                              [9, 9, 9]], kind="semantic")  # fmt: skip
    node = writer.begin("tall", (1100, 3), probabilities="float32")
    rng = np.random.default_rng(0)
    probs = rng.random((2, 1100, 3)).astype(np.float32)
    edges = [0, 7, 300, 511, 512, 513, 1000, 1100]
    for a, b in itertools.pairwise(edges):
        writer.write_rows(node, a, b, probs[:, a:b])
        assert node.written % 512 == 0 or node.written == 1100  # whole chunk rows only
    with pytest.raises(UsageError, match="out of order"):
        writer.write_rows(node, 5, 6, probs[:, 5:6])
    writer.finish_node(node)
    writer.close()
    root = zarr.open_group(str(tmp_path / "w.zarr"), mode="r")
    np.testing.assert_array_equal(root["tall"]["labels"][...], np.argmax(probs, axis=0))
    np.testing.assert_array_equal(root["tall"]["probabilities"][...], probs)
    assert node.class_pixels.tolist() == np.bincount(np.argmax(probs, 0).ravel()).tolist()


def test_output_without_a_terminal_gets_a_line_per_input(
    tmp_path: Path, store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import microprep.progress as progress

    source, nodes = store
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    with caplog.at_level("INFO", logger="microprep.progress"):
        predict_semantic(threshold_forward, source, tmp_path / "p.zarr", window=8,
                         classes=CLASSES, progress=True)  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "microprep.progress"]
    assert [line.split(" (")[0] for line in lines] == [
        f"predicted {n}" for n in range(1, len(nodes) + 1)
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="microprep.progress"):
        predict_semantic(threshold_forward, source, tmp_path / "q.zarr", window=8,
                         classes=CLASSES, progress=False)  # fmt: skip
    assert not [r for r in caplog.records if r.name == "microprep.progress"]
