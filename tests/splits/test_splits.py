"""Splits: every unit in exactly one split, reproducible per seed, regions disjoint with gaps."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.splits import (
    SPLIT_NAMES,
    Region,
    SplitError,
    Splits,
    check_against,
    check_disjoint,
    default_splits_path,
    load_splits,
    make_splits,
    node_shapes,
    save_splits,
    split_shapes,
)
from microprep.store import open_dataset

Capture = pytest.CaptureFixture[str]


def images_xml(count: int, width: int = 16, height: int = 12) -> str:
    """``count`` CVAT images with one box each."""
    return "\n".join(
        f'<image id="{i}" name="img_{i:02d}.png" width="{width}" height="{height}">'
        f'<box label="precipitate" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>'
        "</image>"
        for i in range(count)
    )


@pytest.fixture
def store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """A store of 10 small images."""
    out = tmp_path / "d.zarr"
    convert(write_cvat(images_xml(10)), out)
    return out


@pytest.fixture
def volume_store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """A store of one volume of 40 slices (16 x 12)."""
    out = tmp_path / "v.zarr"
    convert(write_cvat(images_xml(40), name="stack.xml"), out, ConvertOptions(volume=True))
    return out


def covered(splits: Splits) -> dict[str, list[str]]:
    """Node -> the splits that hold it."""
    out: dict[str, list[str]] = {}
    for name, regions in splits.items():
        for region in regions:
            out.setdefault(region.node, []).append(name)
    return out


@pytest.mark.parametrize("by", ["image", "volume"])
def test_whole_node_splits_cover_every_node_once(store: Path, by: str) -> None:
    splits = make_splits(store, val=0.2, test=0.1, by=by, seed=3)
    nodes = covered(splits)
    assert len(nodes) == 10
    assert all(len(held) == 1 for held in nodes.values())
    assert [len(splits[name]) for name in SPLIT_NAMES] == [7, 2, 1]
    for region in splits.train:
        assert region.start == (0, 0)
        assert region.stop == (12, 16)
    check_disjoint(splits)


def test_same_seed_same_splits_other_seed_differs(store: Path) -> None:
    a = make_splits(store, val=0.3, test=0.3, by="image", seed=7)
    b = make_splits(store, val=0.3, test=0.3, by="image", seed=7)
    assert a == b
    others = [make_splits(store, val=0.3, test=0.3, by="image", seed=s) for s in range(8, 12)]
    assert any(other.val != a.val or other.test != a.test for other in others)


def test_rounding_gives_every_requested_split_a_unit() -> None:
    shapes = {f"n{i}": (4, 4) for i in range(3)}
    splits = split_shapes(shapes, val=0.05, test=0.05, seed=0)
    assert [len(splits[name]) for name in SPLIT_NAMES] == [1, 1, 1]
    no_test = split_shapes(shapes, val=0.3, test=0.0, seed=0)
    assert [len(no_test[name]) for name in SPLIT_NAMES] == [2, 1, 0]


@pytest.mark.parametrize(("count", "val", "test"), [(2, 0.15, 0.15), (1, 0.1, 0.0)])
def test_too_few_units_is_a_clear_error(count: int, val: float, test: float) -> None:
    shapes = {f"n{i}": (4, 4) for i in range(count)}
    with pytest.raises(SplitError, match="too few nodes"):
        split_shapes(shapes, val=val, test=test, seed=0)


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.1), (1.0, 0.0)])
def test_bad_fractions_are_refused(val: float, test: float) -> None:
    with pytest.raises(SplitError):
        split_shapes({"a": (4, 4), "b": (4, 4)}, val=val, test=test, seed=0)


@pytest.mark.parametrize("gap", [0, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_split_of_a_volume_is_disjoint_and_respects_the_gap(
    volume_store: Path, gap: int, seed: int
) -> None:
    splits = make_splits(volume_store, val=0.15, test=0.15, by="region", seed=seed, gap=gap)
    regions = sorted((r.start[0], r.stop[0], name) for name, rs in splits.items() for r in rs)
    assert len(regions) == 3
    assert {name for _, _, name in regions} == set(SPLIT_NAMES)
    for (_, stop, _), (start, _, _) in itertools.pairwise(regions):
        assert start - stop == gap  # exactly the gap between neighbours, never an overlap
    assert regions[0][0] == 0
    assert regions[-1][1] == 40  # blocks + gaps cover the whole depth
    for name, rs in splits.items():
        for region in rs:
            assert region.start[1:] == (0, 0)
            assert region.stop[1:] == (12, 16)
            assert name in SPLIT_NAMES
    check_disjoint(splits, gap=gap)
    with open_dataset(volume_store) as ds:
        shapes = node_shapes(ds)
    assert list(shapes.values()) == [(40, 12, 16)]
    check_against(splits, shapes)


def test_region_split_of_images_cuts_along_y() -> None:
    splits = split_shapes({"big": (100, 50)}, val=0.2, test=0.1, by="region", seed=4, gap=2)
    sizes = {
        name: [(r.stop[0] - r.start[0], r.stop[1] - r.start[1]) for r in rs]
        for name, rs in splits.items()
    }
    assert sizes == {"train": [(67, 50)], "val": [(19, 50)], "test": [(10, 50)]}


def test_region_split_along_x_and_a_missing_axis() -> None:
    splits = split_shapes({"v": (4, 8, 60)}, val=0.2, test=0.2, by="region", region_axis="x")
    assert all(r.stop[:2] == (4, 8) for _, rs in splits.items() for r in rs)
    with pytest.raises(SplitError, match="too short"):
        split_shapes({"v": (2, 8, 60)}, val=0.2, test=0.2, by="region", region_axis="z")
    with pytest.raises(SplitError, match="cannot be cut along"):
        split_shapes({"img": (8, 60)}, val=0.2, test=0.2, by="region", region_axis="q")


def test_region_split_too_short_for_the_gap() -> None:
    with pytest.raises(SplitError, match="too short"):
        split_shapes({"v": (10, 4, 4)}, val=0.1, test=0.1, by="region", gap=5)


def test_overlapping_hand_made_splits_are_refused(tmp_path: Path) -> None:
    train = Region("stack", (0, 0, 0), (30, 12, 16))
    val = Region("stack", (20, 0, 0), (40, 12, 16))  # a validation range inside training
    leak = Splits(train=(train,), val=(val,), test=())
    with pytest.raises(SplitError, match=r"train region stack\[0:30.*overlaps val region"):
        check_disjoint(leak)
    with pytest.raises(SplitError):
        save_splits(leak, tmp_path / "leak.json")
    assert not (tmp_path / "leak.json").exists()
    touching = Splits(
        train=(Region("s", (0, 0), (10, 4)),), val=(Region("s", (10, 0), (20, 4)),), test=()
    )
    check_disjoint(touching)  # sharing a border is not sharing a pixel
    with pytest.raises(SplitError, match="closer than the gap"):
        check_disjoint(touching, gap=2)
    # the same node in two splits, whole: a leak too
    whole = Region("a", (0, 0), (4, 4))
    with pytest.raises(SplitError, match="overlaps"):
        check_disjoint(Splits(train=(whole,), val=(), test=(whole,)))


def test_save_and_load_round_trip(volume_store: Path) -> None:
    splits = make_splits(volume_store, val=0.1, test=0.2, by="region", seed=5, gap=1)
    path = save_splits(splits, default_splits_path(volume_store))
    assert path == volume_store.parent / "v.zarr.splits.json"
    assert load_splits(path) == splits
    assert not list(path.parent.glob(".v.zarr.splits.json.tmp-*"))


def test_load_refuses_bad_files(tmp_path: Path, store: Path) -> None:
    path = save_splits(
        make_splits(store, val=0.2, test=0.2, by="image", seed=0), tmp_path / "s.json"
    )
    data = json.loads(path.read_text())
    bad = tmp_path / "bad.json"
    data["splits"]["val"].append(dict(data["splits"]["train"][0]))  # train node also in val
    bad.write_text(json.dumps(data))
    with pytest.raises(SplitError, match="overlaps"):
        load_splits(bad)
    data = json.loads(path.read_text())
    data["splits"]["train"][0]["start"] = [-1, 0]
    bad.write_text(json.dumps(data))
    with pytest.raises(SplitError, match=r"splits\.schema\.json at splits/train/0/start/0"):
        load_splits(bad)
    data = json.loads(path.read_text())
    data["splits"]["train"][0]["stop"] = [0, 16]
    bad.write_text(json.dumps(data))
    with pytest.raises(SplitError, match="start < stop"):
        load_splits(bad)
    bad.write_text("{not json")
    with pytest.raises(SplitError, match="not valid JSON"):
        load_splits(bad)


def test_check_against_the_store_shapes() -> None:
    splits = Splits(train=(Region("a", (0, 0), (5, 5)),), val=(), test=())
    check_against(splits, {"a": (5, 5)})
    with pytest.raises(SplitError, match="does not fit"):
        check_against(splits, {"a": (4, 5)})
    with pytest.raises(SplitError, match="no node 'a'"):
        check_against(splits, {"b": (5, 5)})


def test_cli_split_writes_the_file_beside_the_store(store: Path, capsys: Capture) -> None:
    before = sorted(p.name for p in store.rglob("*"))
    assert main(["split", str(store), "--val", "0.2", "--test", "0.2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "train     6 regions" in out
    splits = load_splits(store.parent / "d.zarr.splits.json")
    assert [len(splits[name]) for name in SPLIT_NAMES] == [6, 2, 2]
    assert sorted(p.name for p in store.rglob("*")) == before  # the store is not touched


def test_cli_split_region_with_out(volume_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "splits.json"
    code = main(
        ["split", str(volume_store), "--by", "region", "--gap", "2", "--out", str(target), "-q"]
    )
    assert code == 0
    splits = load_splits(target)
    assert splits.by == "region"
    assert splits.gap == 2
    depths = sorted(r.stop[0] - r.start[0] for _, rs in splits.items() for r in rs)
    assert sum(depths) == 40 - 2 * 2


def test_cli_split_errors_are_one_line_exit_2(volume_store: Path, capsys: Capture) -> None:
    assert main(["split", str(volume_store)]) == 2  # one volume cannot be split by image
    err = capsys.readouterr().err.strip()
    assert err.startswith("prep: error: too few nodes")
    assert "\n" not in err
    assert not default_splits_path(volume_store).exists()


def test_sample_data_split(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    convert(sample_data / "cvat" / "annotations.xml", out)
    splits = make_splits(out, val=0.15, test=0.15, by="image", seed=0)
    nodes = covered(splits)
    assert len(nodes) == 6
    assert all(len(held) == 1 for held in nodes.values())
    sizes = np.array([len(splits[name]) for name in SPLIT_NAMES])
    assert sizes.tolist() == [4, 1, 1]
