"""The dataset store: what goes in comes back, xarray reads it cleanly, bad stores are refused."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import jsonschema
import numpy as np
import pytest
import xarray as xr

import microprep
from microprep.errors import StoreError
from microprep.model import ImageInfo, LabelMap, LabelSpec
from microprep.outputs import atomic_output
from microprep.schemas import load_schema
from microprep.store import Dataset, ZarrSink, node_name, open_dataset
from microprep.store import layout as store_layout
from microprep.store.layout import spatial_chunking
from microprep.targets.types import Instances, Raster, Targets

REPO = Path(__file__).resolve().parent.parent
LABELS = LabelMap((LabelSpec("bubble", color="#e6194b"), LabelSpec("precipitate")))
PROVENANCE: dict[str, Any] = {
    "source": "annotations.xml",
    "sha256": "ab" * 32,
    "source_format": "cvat",
    "options": {"to": ["zarr"], "line_width": 1.0, "images": Path("imgs")},
}


def tight(dense: np.ndarray) -> Raster:
    """A raster cropped to the bounding box of the pixels of ``dense``."""
    hits = np.argwhere(dense)
    lo, hi = hits.min(axis=0), hits.max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return Raster(tuple(int(a) for a in lo), dense[box].copy())


def make_targets(
    name: str,
    shape: tuple[int, ...],
    masks: Sequence[np.ndarray],
    labels: Sequence[int],
    frames: Sequence[str] | None = None,
    subset: str | None = None,
) -> Targets:
    """Targets of ``shape`` with one object per mask; later objects win in the class map."""
    class_map = np.zeros(shape, np.uint8)
    rasters, boxes = [], []
    for mask, label in zip(masks, labels, strict=True):
        class_map[mask] = label
        raster = tight(mask)
        rasters.append(raster)
        bounds = raster.bounds()  # per axis (first, last + 1), axis order z, y, x
        lows = [float(b[0]) for b in reversed(bounds)]
        highs = [float(b[1]) for b in reversed(bounds)]
        boxes.append(lows + highs)  # x_min, y_min[, z_min], x_max, y_max[, z_max]
    n = len(rasters)
    instances = Instances(
        shape=shape,
        rasters=tuple(rasters),
        labels=np.asarray(labels, np.int64),
        boxes=np.asarray(boxes, np.float64).reshape(n, 2 * len(shape)),
        areas=np.asarray([r.area for r in rasters], np.int64),
        occluded=np.arange(n) % 2 == 1,
        groups=np.arange(n, dtype=np.int64) * 3,
        tracks=np.arange(n, dtype=np.int64) - 1,
    )
    names = frames or [name]
    images = tuple(ImageInfo(f, shape[-1], shape[-2], subset=subset) for f in names)
    return Targets(name, images, class_map, instances, LABELS.num_classes)


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 < r * r


def overlapping_targets(name: str = "grid 1/a b.png") -> Targets:
    shape = (40, 50)
    masks = [disk(shape, 15, 15, 9), disk(shape, 20, 22, 8), disk(shape, 30, 40, 5)]
    return make_targets(name, shape, masks, [1, 2, 1], subset="train")


def write_store(path: Path, items: Sequence[tuple[Targets, np.ndarray | None]]) -> None:
    with atomic_output(path) as tmp:
        sink = ZarrSink(tmp, LABELS, provenance=PROVENANCE)
        for targets, pixels in items:
            sink.add(targets, pixels)
        sink.close()


def assert_same_instances(got: Instances, want: Instances) -> None:
    assert got.shape == want.shape
    assert len(got) == len(want)
    for g, w in zip(got.rasters, want.rasters, strict=True):
        assert g.origin == w.origin
        np.testing.assert_array_equal(g.mask, w.mask)
    np.testing.assert_array_equal(got.dense(), want.dense())
    for field in ("labels", "boxes", "areas", "occluded", "groups", "tracks"):
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype, field
        np.testing.assert_array_equal(a, b, err_msg=field)


def test_round_trip_keeps_overlapping_instances(tmp_path: Path) -> None:
    targets = overlapping_targets()
    path = tmp_path / "d.zarr"
    write_store(path, [(targets, None)])
    ds = open_dataset(path)
    assert isinstance(ds, Dataset)
    assert ds.nodes == ("grid_1_a_b.png",)
    node = ds[0]
    assert node["labels"].dtype == np.uint8
    np.testing.assert_array_equal(node["labels"].values, targets.class_map)
    layers = node["instances"].values
    assert layers.dtype == np.uint32
    assert layers.shape == (2, 40, 50)  # the overlap needs a second layer
    rebuilt = ds.instances("grid_1_a_b.png")
    assert_same_instances(rebuilt, targets.instances)
    overlap = targets.instances.rasters[0].dense((40, 50)) & targets.instances.rasters[1].dense(
        (40, 50)
    )
    assert overlap.any()
    dense = rebuilt.dense()
    assert dense[0][overlap].all() and dense[1][overlap].all()
    assert node.attrs["name"] == "grid 1/a b.png"
    assert node.attrs["kind"] == "image"
    assert (node.attrs["width"], node.attrs["height"]) == (50, 40)
    assert node.attrs["subset"] == "train"
    assert "image" not in node


def test_root_attributes_record_provenance_and_match_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    write_store(path, [(overlapping_targets(), None)])
    ds = open_dataset(path)
    attrs = ds.attrs
    jsonschema.Draft202012Validator(load_schema("store-attrs.schema.json")).validate(attrs)
    assert attrs["complete"] is True
    assert attrs["format_version"] == 2
    assert attrs["integrity"] == {"checksum": "crc32c", "chunks": "all"}
    assert attrs["version"] == microprep.__version__
    assert attrs["classes"] == ["background", "bubble", "precipitate"]
    assert ds.classes == ("background", "bubble", "precipitate")
    assert ds.colors[:2] == ((0, 0, 0), (230, 25, 75))
    assert attrs["source"] == "annotations.xml"
    assert attrs["source_sha256"] == "ab" * 32
    assert attrs["source_format"] == "cvat"
    assert attrs["options"] == {"to": ["zarr"], "line_width": 1.0, "images": "imgs"}
    assert attrs["nodes"] == ["grid_1_a_b.png"]
    raw = json.loads((path / "zarr.json").read_text())
    assert raw["attributes"]["microprep"] == attrs
    assert "consolidated_metadata" in raw


def test_schema_file_is_valid_and_the_one_loaded() -> None:
    schema = load_schema("store-attrs.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    on_disk = json.loads((REPO / "schemas" / "store-attrs.schema.json").read_text())
    assert schema == on_disk
    with pytest.raises(ValueError, match="plain file name"):
        load_schema("../pyproject.toml")


def test_xarray_opens_the_store_without_warnings(tmp_path: Path) -> None:
    targets = overlapping_targets()
    pixels = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    path = tmp_path / "d.zarr"
    write_store(path, [(targets, pixels), (make_targets("empty.png", (8, 9), [], []), None)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(path, engine="zarr")
        lazy = xr.open_datatree(path, engine="zarr", chunks={})
        node = tree["grid_1_a_b.png"]
        assert node["image"].dims == ("y", "x", "c")
        assert node["labels"].dims == ("y", "x")
        assert node["instances"].dims == ("layer", "y", "x")
        assert node["instance_box"].dims == ("instance", "box_coord")
        for key in ("label", "area", "occluded", "group", "track"):
            assert node[f"instance_{key}"].dims == ("instance",)
        assert node.attrs["name"] == "grid 1/a b.png"
        assert tree.attrs["microprep"]["complete"] is True
        np.testing.assert_array_equal(node["image"].values, pixels)
        assert isinstance(lazy["grid_1_a_b.png"]["labels"].data, da.Array)
        assert lazy["empty.png"]["instance_box"].shape == (0, 4)
        assert lazy["empty.png"]["instance_label"].values.shape == (0,)
        tree.close()
        lazy.close()


def test_dataset_nodes_are_lazy_dask_arrays(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    write_store(path, [(overlapping_targets(), None)])
    ds = open_dataset(path)
    labels = ds[0]["labels"]
    assert isinstance(labels.data, da.Array)
    np.testing.assert_array_equal(
        labels[10:20, 5:9].values, overlapping_targets().class_map[10:20, 5:9]
    )


def test_volume_node(tmp_path: Path) -> None:
    shape = (6, 20, 24)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    ball = (zz - 2.5) ** 2 + (yy - 8.5) ** 2 + (xx - 9.5) ** 2 < 9
    slab = (zz >= 2) & (zz < 5) & (yy >= 5) & (yy < 15) & (xx >= 8) & (xx < 20)
    frames = [f"slices/slice_{i:03d}.png" for i in range(shape[0])]
    targets = make_targets("stack", shape, [ball, slab], [1, 2], frames=frames)
    pixels = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 7
    path = tmp_path / "v.zarr"
    write_store(path, [(targets, pixels)])
    ds = open_dataset(path)
    node = ds["stack"]
    assert node["labels"].dims == ("z", "y", "x")
    assert node["instances"].dims == ("layer", "z", "y", "x")
    assert node["image"].dims == ("z", "y", "x")
    assert node["image"].dtype == np.uint16
    np.testing.assert_array_equal(node["image"].values, pixels)
    np.testing.assert_array_equal(node["labels"].values, targets.class_map)
    assert node.sizes["box_coord"] == 6
    assert node.attrs["kind"] == "volume"
    assert node.attrs["frames"] == frames
    assert node.attrs["depth"] == 6
    rebuilt = ds.instances(0)
    assert rebuilt.boxes.shape == (2, 6)
    assert_same_instances(rebuilt, targets.instances)


def test_node_without_instances(tmp_path: Path) -> None:
    targets = make_targets("nothing.png", (12, 10), [], [])
    path = tmp_path / "d.zarr"
    write_store(path, [(targets, None)])
    ds = open_dataset(path)
    node = ds[0]
    assert node.sizes["instance"] == 0
    assert node["instance_box"].shape == (0, 4)
    assert node["instances"].shape == (1, 12, 10)
    assert not node["instances"].values.any()
    rebuilt = ds.instances(0)
    assert len(rebuilt) == 0
    assert rebuilt.boxes.shape == (0, 4)
    assert rebuilt.shape == (12, 10)


def test_instance_without_pixels_comes_back_empty(tmp_path: Path) -> None:
    targets = overlapping_targets()
    inst = targets.instances
    empty = Raster((3, 3), np.zeros((0, 0), bool))
    with_empty = Instances(
        shape=inst.shape,
        rasters=(*inst.rasters, empty),
        labels=np.append(inst.labels, 2),
        boxes=np.vstack([inst.boxes, [3.0, 3.0, 3.0, 3.0]]),
        areas=np.append(inst.areas, 0),
        occluded=np.append(inst.occluded, False),
        groups=np.append(inst.groups, 0),
        tracks=np.append(inst.tracks, -1),
    )
    t = Targets(targets.name, targets.images, targets.class_map, with_empty, targets.num_classes)
    write_store(tmp_path / "d.zarr", [(t, None)])
    rebuilt = open_dataset(tmp_path / "d.zarr").instances(0)
    assert len(rebuilt) == 4
    assert rebuilt.rasters[3].area == 0
    assert rebuilt.rasters[3].mask.size == 0
    np.testing.assert_array_equal(rebuilt.dense(), with_empty.dense())


def test_awkward_image_names_get_safe_unique_group_names(tmp_path: Path) -> None:
    names = [
        "grid 1/a b.png",
        "grid_1_a_b.png",
        "GRID_1_A_B.png",
        "ünïcödé µm.tif",
        "zarr.json",
        ".hidden.png",
        "__init__.png",
        "a\\b.png",
    ]
    items = [(make_targets(n, (6, 7), [disk((6, 7), 3, 3, 2)], [1]), None) for n in names]
    path = tmp_path / "d.zarr"
    write_store(path, items)
    ds = open_dataset(path)
    assert len(ds) == len(names)
    assert len({n.lower() for n in ds.nodes}) == len(names)
    for group, name in zip(ds.nodes, names, strict=True):
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in group), group
        assert not group.startswith(".") and not group.startswith("__")
        assert group.lower() != "zarr.json"
        assert ds[group].attrs["name"] == name
        if name not in ds.nodes:  # group names come first, then image names
            assert ds[name].attrs["name"] == name
    assert ds.nodes[:3] == ("grid_1_a_b.png", "grid_1_a_b.png-2", "GRID_1_A_B.png-3")


def test_node_name_helper() -> None:
    taken: set[str] = set()
    assert node_name("a/b c.png", taken) == "a_b_c.png"
    assert node_name("a_b_c.png", taken) == "a_b_c.png-2"
    assert node_name("a?b c.png", taken) == "a_b_c.png-3"
    assert node_name("", taken) == "node"
    assert len(node_name("x" * 500, taken)) <= 120


def test_pixels_keep_their_dtype(tmp_path: Path) -> None:
    shape = (30, 20)
    gray16 = (np.arange(600, dtype=np.uint16).reshape(shape) * 100).astype(np.uint16)
    rgb = np.arange(1800, dtype=np.uint8).reshape(30, 20, 3)
    f32 = np.linspace(-1, 1, 600, dtype=np.float32).reshape(shape)
    items = [
        (make_targets("u16.tif", shape, [], []), gray16),
        (make_targets("rgb.png", shape, [], []), rgb),
        (make_targets("f32.tif", shape, [], []), f32),
    ]
    path = tmp_path / "d.zarr"
    write_store(path, items)
    ds = open_dataset(path)
    for (_, pixels), node in zip(items, ds, strict=True):
        assert node["image"].dtype == pixels.dtype
        np.testing.assert_array_equal(node["image"].values, pixels)


def test_large_node_is_chunked(tmp_path: Path) -> None:
    shape = (1100, 1300)
    targets = make_targets("big.png", shape, [disk(shape, 500, 600, 300)], [2])
    pixels = (np.arange(np.prod(shape), dtype=np.uint32).reshape(shape) % 60000).astype(np.uint16)
    path = tmp_path / "d.zarr"
    write_store(path, [(targets, pixels)])
    node = open_dataset(path)[0]
    assert node["labels"].encoding["chunks"] == (512, 512)
    assert node["labels"].encoding.get("shards") is None
    assert node["instances"].encoding["chunks"] == (1, 512, 512)
    assert node["labels"].chunks == ((512, 512, 76), (512, 512, 276))
    np.testing.assert_array_equal(node["labels"].values, targets.class_map)
    np.testing.assert_array_equal(node["image"].values, pixels)


def test_many_chunks_are_sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_layout, "MAX_UNSHARDED_CHUNKS", 4)
    monkeypatch.setattr(store_layout, "CHUNKS_3D", (4, 16, 16))
    monkeypatch.setattr(store_layout, "SHARD_CHUNKS_3D", (2, 2, 2))
    shape = (10, 40, 50)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    blob = (zz - 5) ** 2 + (yy - 20) ** 2 + (xx - 25) ** 2 < 60
    targets = make_targets("vol", shape, [blob, ~blob], [1, 2])
    pixels = np.arange(np.prod(shape), dtype=np.float32).reshape(*shape, 1)
    path = tmp_path / "d.zarr"
    write_store(path, [(targets, pixels)])
    ds = open_dataset(path)
    node = ds[0]
    assert node["labels"].encoding["chunks"] == (4, 16, 16)
    assert node["labels"].encoding["shards"] == (8, 32, 32)
    assert node["image"].encoding["shards"] == (8, 32, 32, 1)
    assert node["instances"].encoding["shards"] == (1, 8, 32, 32)
    np.testing.assert_array_equal(node["labels"].values, targets.class_map)
    np.testing.assert_array_equal(node["image"].values, pixels)
    assert_same_instances(ds.instances(0), targets.instances)


def test_spatial_chunking() -> None:
    assert spatial_chunking((2048, 2048)) == ((512, 512), None)
    assert spatial_chunking((100, 60)) == ((100, 60), None)
    assert spatial_chunking((10000, 300)) == ((512, 300), None)
    assert spatial_chunking((8192, 8192)) == ((512, 512), (4096, 4096))
    assert spatial_chunking((5, 40, 30)) == ((5, 40, 30), None)
    assert spatial_chunking((200, 1000, 1000)) == ((32, 128, 128), (128, 1024, 1024))
    assert spatial_chunking((32, 128, 2000)) == ((32, 128, 128), None)


def test_incomplete_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    sink = ZarrSink(path, LABELS, provenance=PROVENANCE)
    sink.add(overlapping_targets(), None)  # never closed: an interrupted write
    with pytest.raises(StoreError, match=r"incomplete \(an interrupted write\?\)"):
        open_dataset(path)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    write_store(path, [(overlapping_targets(), None)])
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["microprep"]["format_version"] = 99
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="format_version 99"):
        open_dataset(path)


def test_attributes_not_matching_the_schema_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    write_store(path, [(overlapping_targets(), None)])
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["microprep"]["classes"] = ["bubble"]
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="classes"):
        open_dataset(path)


def test_not_a_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_dataset(tmp_path / "missing.zarr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(StoreError, match="not a microprep store"):
        open_dataset(tmp_path / "folder")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(StoreError, match="not a microprep store"):
        open_dataset(tmp_path / "file.zarr")
    (tmp_path / "other.zarr").mkdir()
    (tmp_path / "other.zarr" / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    with pytest.raises(StoreError, match="not a microprep store"):
        open_dataset(tmp_path / "other.zarr")


def test_dataset_access_and_summary(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    write_store(path, [(overlapping_targets(f"img{i}.png"), None) for i in range(5)])
    with open_dataset(str(path)) as ds:
        assert len(ds) == 5
        assert ds[-1].attrs["name"] == "img4.png"
        assert ds["img2.png"].attrs["name"] == "img2.png"
        assert [node.attrs["name"] for node in ds] == [f"img{i}.png" for i in range(5)]
        with pytest.raises(IndexError):
            ds[5]
        with pytest.raises(KeyError, match="nope"):
            ds["nope"]
        text = repr(ds)
        assert "5 nodes" in text and "img0.png" in text and "..." in text
        assert "precipitate" in text


def test_sink_refuses_misuse(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="sha256"):
        ZarrSink(tmp_path / "a.zarr", LABELS, provenance={"source": "x"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        ZarrSink(tmp_path / "full", LABELS, provenance=PROVENANCE)
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        ZarrSink(tmp_path / "b.zarr", LABELS, provenance={**PROVENANCE, "options": {"f": object()}})

    sink = ZarrSink(tmp_path / "c.zarr", LABELS, provenance=PROVENANCE)
    targets = overlapping_targets()
    with pytest.raises(StoreError, match="pixels have shape"):
        sink.add(targets, np.zeros((40, 49), np.uint8))
    with pytest.raises(StoreError, match="not a numeric type"):
        sink.add(targets, np.zeros((40, 50), object))
    bad = Targets("x", targets.images, targets.class_map[:10], targets.instances, 3)
    with pytest.raises(StoreError, match="instances have shape"):
        sink.add(bad, None)
    sink.close()
    sink.close()  # a second close does nothing
    with pytest.raises(StoreError, match="closed"):
        sink.add(targets, None)


def test_sink_as_context_manager_and_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    with ZarrSink(path, LABELS, provenance={"source": "x", "sha256": None}) as sink:
        assert sink.nodes == ()
    ds = open_dataset(path)
    assert len(ds) == 0
    assert ds.attrs["source_sha256"] is None
    assert ds.attrs["source_format"] is None
