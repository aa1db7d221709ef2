"""Previews: overlay pixels, display scaling, PNG files, the gallery and the CLI."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.outputs import MARKER
from microprep.preview import (
    PreviewError,
    augmentation_gallery,
    render_overlay,
    slice_instances,
    to_display,
    volume_montage,
    with_legend,
    write_previews,
)
from microprep.preview.overlay import DEFAULT_ALPHA, NEUTRAL_GREY, brighter, display_range
from microprep.store import open_dataset
from microprep.targets.types import Instances, Raster

Capture = pytest.CaptureFixture[str]
COLORS = [(0, 0, 0), (200, 40, 0), (0, 100, 220)]
NAMES = ["background", "bubble", "precipitate"]


def make_instances(
    shape: tuple[int, ...],
    masks: list[tuple[tuple[int, ...], NDArray[np.bool_]]],
    labels: list[int],
) -> Instances:
    """Objects from ``(origin, mask)`` pairs; boxes are the tight boxes of the masks."""
    rasters = tuple(Raster(origin, mask) for origin, mask in masks)
    boxes = []
    for raster in rasters:
        bounds = raster.bounds()
        lows = [lo for lo, _ in bounds][::-1]
        highs = [hi for _, hi in bounds][::-1]
        boxes.append([*lows, *highs])
    n = len(rasters)
    return Instances(
        shape=shape,
        rasters=rasters,
        labels=np.array(labels, np.int64),
        boxes=np.array(boxes, np.float64).reshape(n, 2 * len(shape)),
        areas=np.array([r.area for r in rasters], np.int64),
        occluded=np.zeros(n, bool),
        groups=np.zeros(n, np.int64),
        tracks=np.full(n, -1, np.int64),
    )


def blend(under: int, color: int) -> int:
    return round((1 - DEFAULT_ALPHA) * under + DEFAULT_ALPHA * color)


def test_a_class_pixel_gets_the_class_colour_blended() -> None:
    image = np.full((10, 12), 100, np.uint8)
    labels = np.zeros((10, 12), np.uint8)
    labels[2:5, 3:7] = 2
    picture = render_overlay(image, labels, None, colors=COLORS, names=NAMES)
    assert picture.size == (12, 10)
    assert picture.getpixel((4, 3)) == tuple(blend(100, c) for c in COLORS[2])
    assert picture.getpixel((0, 0)) == (100, 100, 100)  # background left as it is


def test_instance_outline_and_box_are_drawn() -> None:
    labels = np.zeros((30, 40), np.uint8)
    mask = np.ones((5, 6), bool)
    labels[4:9, 10:16] = 1
    objects = make_instances((30, 40), [((4, 10), mask)], [1])
    bright = brighter(COLORS[1])
    outline_only = render_overlay(None, labels, objects, colors=COLORS, boxes=False)
    assert outline_only.getpixel((12, 4)) == bright  # top edge of the object
    assert outline_only.getpixel((10, 6)) == bright  # left edge
    inside = tuple(blend(NEUTRAL_GREY, c) for c in COLORS[1])
    assert outline_only.getpixel((12, 6)) == inside  # interior: class colour, no outline
    assert outline_only.getpixel((20, 20)) == (NEUTRAL_GREY,) * 3

    # a box larger than the mask (as a stored box can be): its edges are drawn
    boxed = Instances(
        shape=objects.shape,
        rasters=objects.rasters,
        labels=objects.labels,
        boxes=np.array([[8.5, 2.0, 20.0, 12.25]]),
        areas=objects.areas,
        occluded=objects.occluded,
        groups=objects.groups,
        tracks=objects.tracks,
    )
    picture = render_overlay(None, labels, boxed, colors=COLORS, outlines=False)
    assert picture.getpixel((8, 7)) == bright  # left edge: floor(8.5)
    assert picture.getpixel((19, 7)) == bright  # right edge: last covered column (exclusive 20)
    assert picture.getpixel((14, 2)) == bright  # top edge
    assert picture.getpixel((14, 12)) == bright  # bottom edge: ceil(12.25) - 1
    assert picture.getpixel((20, 7)) == (NEUTRAL_GREY,) * 3  # outside the box
    assert picture.getpixel((12, 6)) == inside  # no outline asked for


def test_overlapping_objects_both_get_outlines() -> None:
    labels = np.zeros((20, 20), np.uint8)
    a = ((2, 2), np.ones((8, 8), bool))
    b = ((6, 6), np.ones((8, 8), bool))
    objects = make_instances((20, 20), [a, b], [1, 2])
    picture = render_overlay(None, labels, objects, colors=COLORS, boxes=False)
    assert picture.getpixel((2, 5)) == brighter(COLORS[1])
    assert picture.getpixel((13, 10)) == brighter(COLORS[2])
    assert picture.getpixel((6, 8)) == brighter(COLORS[2])  # b's left edge inside a


def test_display_scaling() -> None:
    ramp = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    low, high = display_range(ramp)
    assert (low, high) == pytest.approx((np.percentile(ramp, 1.0), np.percentile(ramp, 99.5)))
    shown = to_display(ramp, (100, 100))
    assert shown.dtype == np.uint8
    assert shown.shape == (100, 100, 3)
    assert shown[0, 0, 0] == 0
    assert shown[-1, -1, 0] == 255
    hot = np.zeros((50, 50), np.float32)
    hot[10:40] = 1.0
    hot[0, 0] = 1e6  # one hot pixel does not squash the rest
    assert to_display(hot, (50, 50))[20, 20, 0] == 255
    constant = to_display(np.full((3, 3), 7.0), (3, 3))
    assert constant.shape == (3, 3, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 9
    assert to_display(rgba, (2, 2))[0, 0].tolist() == [9, 0, 0]
    assert to_display(None, (4, 5))[0, 0].tolist() == [NEUTRAL_GREY] * 3


def test_legend_strip_shows_every_class() -> None:
    picture = render_overlay(None, np.zeros((40, 300), np.uint8), None, colors=COLORS)
    framed = with_legend(picture, COLORS, NAMES)
    assert framed.width == 300
    assert framed.height > 40
    strip = np.asarray(framed)[40:]
    for color in COLORS[1:]:
        assert np.all(strip == color, axis=-1).any(), color


def test_volume_slices_and_montage() -> None:
    mask = np.zeros((3, 4, 4), bool)
    mask[1, 1:3, 1:3] = True
    objects = make_instances((6, 10, 10), [((2, 3, 3), mask)], [2])
    in_slice = slice_instances(objects, 3)
    assert len(in_slice) == 1
    assert in_slice.boxes.tolist() == [[4.0, 4.0, 6.0, 6.0]]
    assert len(slice_instances(objects, 2)) == 0  # the object has no pixels there
    assert len(slice_instances(objects, 5)) == 0
    labels = np.zeros((6, 10, 10), np.uint8)
    picture = volume_montage(None, labels, objects, colors=COLORS, names=NAMES, slices=3)
    assert picture.width > 3 * 10


def fake_augment(monkeypatch: pytest.MonkeyPatch, kinds: dict[str, object]) -> None:
    module = types.ModuleType("microprep.augment")
    module.NOISE_KINDS = kinds  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "microprep.augment", module)


def test_gallery_has_one_tile_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def invert(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        seen.append(int(rng.integers(1000)))
        return 255 - image

    def darker(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        seen.append(int(rng.integers(1000)))
        return image // 2

    fake_augment(monkeypatch, {"invert": invert, "darker": darker})
    image = np.full((64, 64), 200, np.uint8)
    one = augmentation_gallery(image, seed=3, columns=3)
    two = augmentation_gallery(image, seed=3, columns=3)
    assert np.array_equal(np.asarray(one), np.asarray(two))
    assert seen[0] == seen[1] == seen[2] == seen[3]  # each kind its own generator of the seed
    pixels = np.asarray(one).reshape(-1, 3)
    for value in (200, 55, 100):  # the original, inverted and darker tiles
        assert np.all(pixels == value, axis=1).any(), value


def test_gallery_without_augmentation_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "microprep.augment", None)
    with pytest.raises(PreviewError, match="augmentation is not available"):
        augmentation_gallery(np.zeros((4, 4), np.uint8))
    fake_augment(monkeypatch, {"boom": lambda image, rng: 1 / 0})
    with pytest.raises(PreviewError, match="noise kind 'boom' failed"):
        augmentation_gallery(np.zeros((4, 4), np.uint8))


@pytest.fixture
def store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """Two images without pixels (converted without --images)."""
    images = "\n".join(
        f'<image id="{i}" name="dir/im {i}.png" width="32" height="24">'
        '<box label="precipitate" occluded="0" xtl="2" ytl="3" xbr="10" ybr="9" z_order="0"/>'
        '<ellipse label="bubble" occluded="0" cx="20" cy="12" rx="5" ry="4" rotation="30"'
        ' z_order="1"/></image>'
        for i in range(2)
    )
    out = tmp_path / "d.zarr"
    convert(write_cvat(images), out)
    return out


def test_write_previews_without_pixels(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "previews"
    summary = write_previews(store, out)
    assert summary.files == ["dir_im_0.png", "dir_im_1.png"]
    assert sorted(p.name for p in out.iterdir() if p.name != MARKER) == summary.files
    with Image.open(out / summary.files[0]) as picture:
        picture.load()
        assert picture.mode == "RGB"
        assert picture.width >= 256  # a 32 px image is enlarged for viewing
        colors = {tuple(c) for c in np.asarray(picture).reshape(-1, 3).tolist()}
    assert (NEUTRAL_GREY,) * 3 in colors  # the neutral background
    assert brighter(open_dataset(store).colors[2]) in colors  # the box of the precipitate
    assert not list(tmp_path.glob(".previews.tmp-*"))
    # --max, and a second run replaces the folder as a whole
    assert write_previews(store, out, max_nodes=1).files == ["dir_im_0.png"]
    assert [p.name for p in out.iterdir() if p.name != MARKER] == ["dir_im_0.png"]


def test_write_previews_of_a_volume(write_cvat: Callable[..., Path], tmp_path: Path) -> None:
    frames = "\n".join(
        f'<image id="{i}" name="s{i:02d}.png" width="20" height="16">'
        f'<box label="bubble" occluded="0" xtl="{i}" ytl="2" xbr="{i + 6}" ybr="8" z_order="0"/>'
        "</image>"
        for i in range(8)
    )
    store = tmp_path / "v.zarr"
    convert(write_cvat(frames), store, ConvertOptions(volume=True))
    summary = write_previews(store, tmp_path / "p", slices=3)
    assert len(summary.files) == 1
    with Image.open(tmp_path / "p" / summary.files[0]) as picture:
        assert picture.width > 3 * 256  # three enlarged slices side by side


def test_gallery_needs_pixels(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_augment(monkeypatch, {"same": lambda image, rng: image})
    with pytest.raises(PreviewError, match="no node has pixels"):
        write_previews(store, tmp_path / "p", gallery=True)
    assert not (tmp_path / "p").exists()


def test_cli_preview(store: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "p"
    assert main(["preview", str(store), "--out", str(out), "--max", "1", "-q"]) == 0
    assert [p.name for p in out.iterdir() if p.name != MARKER] == ["dir_im_0.png"]
    assert main(["preview", str(store), "--out", str(out)]) == 0
    assert "2 PNGs for 2 of 2 nodes" in capsys.readouterr().out


def test_cli_preview_errors_are_one_line_exit_2(
    store: Path, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_store = tmp_path / "empty"
    not_a_store.mkdir()
    assert main(["preview", str(not_a_store), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prep: error:")
    assert "not a microprep store" in err
    assert "\n" not in err
    monkeypatch.setitem(sys.modules, "microprep.augment", None)
    assert main(["preview", str(store), "--out", str(tmp_path / "p"), "--gallery"]) == 2
    assert "prep: error:" in capsys.readouterr().err


def test_sample_data_preview(
    sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "d.zarr"
    convert(
        sample_data / "cvat" / "annotations.xml",
        store,
        ConvertOptions(images=sample_data / "micrographs"),
    )
    fake_augment(monkeypatch, {"invert": lambda image, rng: np.iinfo(image.dtype).max - image})
    summary = write_previews(store, tmp_path / "p", max_nodes=2, gallery=True)
    assert summary.files[-1] == "gallery.png"
    assert len(summary.files) == 3
    for name in summary.files:
        with Image.open(tmp_path / "p" / name) as picture:
            picture.load()
            assert picture.mode == "RGB"
    ds = open_dataset(store)
    node = ds[0]
    image = node["image"].values
    labels = node["labels"].values
    objects = ds.instances(0)
    picture = np.asarray(
        render_overlay(
            image, labels, objects, colors=ds.colors, names=ds.classes, outlines=False, boxes=False
        )
    )
    painted = labels > 0
    assert painted.any()
    palette = np.array(ds.colors, np.float64)
    expected = np.round(
        (1 - DEFAULT_ALPHA) * image[painted][:, None].astype(np.float64)
        + DEFAULT_ALPHA * palette[labels[painted]]
    )
    # float32 blending: within one grey level of the float64 reference
    np.testing.assert_allclose(picture[painted], expected, atol=1)
    np.testing.assert_array_equal(picture[~painted], np.repeat(image[~painted][:, None], 3, 1))
    # with outlines: every object's first row of pixels is in its brighter colour or covered
    # by a later object's outline / box
    full = np.asarray(render_overlay(image, labels, objects, colors=ds.colors))
    edge = objects.rasters[0]
    r0, c0 = edge.origin
    first = np.flatnonzero(edge.mask[0])[0]
    assert tuple(full[r0, c0 + first]) in {brighter(c) for c in ds.colors}


def hand_made_crops_store(path: Path) -> None:
    """A crops store in the layout of ``microprep.crops.write``: one node, two 8 x 8 crops."""
    import zarr

    attrs = {"classes": NAMES, "colors": [list(c) for c in COLORS], "nodes": ["n"]}
    root = zarr.create_group(
        store=str(path), zarr_format=3, attributes={"microprep_crops": {**attrs, "complete": True}}
    )
    node = root.create_group("n", attributes={"name": "dir/n.png"})
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[1, 2:6, 2:6] = 2
    instances = np.zeros((2, 1, 8, 8), np.uint32)
    instances[1, 0, 2:6, 2:6] = 1
    for name, data in {
        "labels": labels,
        "instances": instances,
        "image": np.full((2, 8, 8), 100, np.uint8),
        "origin": np.array([[0, 0], [0, 8]], np.int64),
        "instance_crop": np.array([1], np.int64),
        "instance_label": np.array([2], np.int64),
    }.items():
        node.create_array(name, data=data)


def test_preview_of_a_crops_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from microprep.preview.crops import crop_indices, is_crops_store, node_crops_picture

    store = tmp_path / "crops.zarr"
    hand_made_crops_store(store)
    assert is_crops_store(store)
    assert crop_indices(10, 3) == [0, 4, 9]
    picture = np.asarray(node_crops_picture(store, "n"))
    colors = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
    assert brighter(COLORS[2]) in colors  # the object's outline / box in crop 1
    assert tuple(blend(100, c) for c in COLORS[2]) in colors  # its class pixels
    fake_augment(monkeypatch, {"same": lambda image, rng: image})
    summary = write_previews(store, tmp_path / "p", gallery=True)
    assert summary.files == ["n.png", "gallery.png"]
    assert main(["preview", str(store), "--out", str(tmp_path / "q"), "-q"]) == 0


def test_picture_names_drop_the_image_suffix_unless_two_clash(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    images = "\n".join(
        f'<image id="{i}" name="{name}" width="20" height="16">'
        '<box label="bubble" occluded="0" xtl="1" ytl="2" xbr="7" ybr="8" z_order="0"/></image>'
        for i, name in enumerate(["a.png", "a.tif", "gallery.jpg"])
    )
    store = tmp_path / "d.zarr"
    convert(write_cvat(images), store)
    summary = write_previews(store, tmp_path / "p")
    # "a.tif" would clash with "a.png"; "gallery" with the gallery's own file name
    assert summary.files == ["a.png", "a.tif.png", "gallery.jpg.png"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir() if p.name != MARKER) == sorted(
        summary.files
    )
