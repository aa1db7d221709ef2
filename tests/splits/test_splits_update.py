"""Stable splits: hashing node names keeps old nodes in place; ``prep split --update``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.splits import (
    SPLIT_NAMES,
    Region,
    SplitError,
    Splits,
    check_disjoint,
    load_splits,
    split_shapes,
)
from microprep.splits.assign import node_hash
from microprep.splits.update import update_splits

from .test_splits import images_xml

Capture = pytest.CaptureFixture[str]


def split_of(splits: Splits) -> dict[str, str]:
    return {r.node: name for name in SPLIT_NAMES for r in splits[name]}


def test_node_hash_depends_on_name_and_seed_only() -> None:
    assert node_hash("a.png", 3) == node_hash("a.png", 3)
    assert node_hash("a.png", 3) != node_hash("a.png", 4)
    assert 0 <= node_hash("b.png", 0) < 1


def test_order_of_nodes_does_not_change_the_splits() -> None:
    shapes = {f"n{i}": (4, 4) for i in range(20)}
    forward = split_of(split_shapes(shapes, val=0.2, test=0.2, seed=5))
    backward = split_of(split_shapes(dict(reversed(shapes.items())), val=0.2, test=0.2, seed=5))
    assert forward == backward
    assert sorted(forward.values()).count("val") == 4  # exact counts kept


def test_cli_update_keeps_old_nodes_and_adds_new_ones(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "d.zarr"
    convert(write_cvat(images_xml(10)), store)
    old_file = tmp_path / "old.splits.json"
    assert main(["split", str(store), "--val", "0.2", "--test", "0.2", "-o", str(old_file)]) == 0
    old = split_of(load_splits(old_file))
    # the store is rebuilt with 12 images: img_00 is gone, img_10 and img_11 are new
    xml = images_xml(12).split("</image>\n", 1)[1]
    convert(write_cvat(xml, name="more.xml"), store, ConvertOptions())
    capsys.readouterr()
    new_file = tmp_path / "new.splits.json"
    code = main(["split", str(store), "--update", str(old_file), "-o", str(new_file)])
    assert code == 0
    out = capsys.readouterr().out
    new = split_of(load_splits(new_file))
    assert set(new) == {f"img_{i:02d}.png" for i in range(1, 12)}
    assert all(new[node] == old[node] for node in new if node in old)  # nobody moved
    assert "9 nodes kept their splits, 2 added, 1 removed" in out
    assert "removed img_00.png" in out
    assert f"added   img_10.png -> {new['img_10.png']}" in out


def regions_of(splits: Splits) -> set[tuple[str, str]]:
    return {(name, str(r)) for name in SPLIT_NAMES for r in splits[name]}


def voxels(splits: Splits, node: str, shape: tuple[int, ...]) -> np.ndarray:
    """Per voxel of ``node``: how many regions hold it, and in which split (-1: none)."""
    count = np.zeros(shape, np.int32)
    which = np.full(shape, -1, np.int32)
    for k, name in enumerate(SPLIT_NAMES):
        for r in splits[name]:
            if r.node == node:
                box = tuple(slice(a, b) for a, b in zip(r.start, r.stop, strict=True))
                count[box] += 1
                which[box] = k
    assert count.max() <= 1
    return which


def test_cli_update_of_a_grown_volume_keeps_its_old_regions(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "v.zarr"
    convert(write_cvat(images_xml(20), name="stack.xml"), store, ConvertOptions(volume=True))
    old_file = tmp_path / "old.json"
    split = ["split", str(store), "--by", "region", "--gap", "2", "-o", str(old_file), "-q"]
    assert main(split) == 0
    old = load_splits(old_file)
    (node,) = {r.node for r in old.train}
    # unchanged: the old regions are kept as they were, nothing grown
    same = tmp_path / "same.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(same), "-q"]) == 0
    assert regions_of(load_splits(same)) == regions_of(old)
    # 20 more slices: the old regions stay, the new slices 22..39 are cut into new blocks
    convert(write_cvat(images_xml(40), name="stack.xml"), store, ConvertOptions(volume=True))
    capsys.readouterr()
    grown_file = tmp_path / "grown.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(grown_file)]) == 0
    out = capsys.readouterr().out
    grown = load_splits(grown_file)
    assert regions_of(old) < regions_of(grown)
    added = regions_of(grown) - regions_of(old)
    assert {split for split, _ in added} == set(SPLIT_NAMES)
    assert "1 nodes kept their splits, 0 added, 0 removed, 1 grown" in out
    assert f"grown   {node} [20, 12, 16] -> [40, 12, 16] px:" in out
    for split, region in added:
        assert f"    {split:<5} {region}" in out
    check_disjoint(grown, gap=2)
    which = voxels(grown, node, (40, 12, 16))
    assert (which[:20] == voxels(old, node, (20, 12, 16))).all()  # old voxels did not move
    assert (which[20:22] == -1).all() and (which[22:] >= 0).any(axis=(1, 2)).sum() == 14


def test_cli_update_of_a_shrunk_volume_is_refused(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "v.zarr"
    convert(write_cvat(images_xml(20), name="stack.xml"), store, ConvertOptions(volume=True))
    old_file = tmp_path / "old.json"
    assert main(["split", str(store), "--by", "region", "-o", str(old_file), "-q"]) == 0
    convert(write_cvat(images_xml(15), name="stack.xml"), store, ConvertOptions(volume=True))
    capsys.readouterr()
    shrunk = tmp_path / "shrunk.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(shrunk)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is now [15, 12, 16] px but its old regions cover [20, 12, 16] px: it shrank" in err
    assert "\n" not in err
    assert not shrunk.exists()


def test_cli_update_of_larger_images_continues_every_block(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "d.zarr"
    convert(write_cvat(images_xml(3, width=16, height=40)), store)
    old_file = tmp_path / "old.json"
    split = ["split", str(store), "--by", "region", "--gap", "1", "-o", str(old_file), "-q"]
    assert main(split) == 0
    old = load_splits(old_file)
    # the same images, now wider: every old block (cut along y) goes on across the new columns
    convert(write_cvat(images_xml(3, width=24, height=40), name="wide.xml"), store)
    new_file = tmp_path / "new.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(new_file), "-q"]) == 0
    new = load_splits(new_file)
    assert regions_of(old) < regions_of(new)
    for name in SPLIT_NAMES:
        for r in old[name]:
            assert Region(r.node, (r.start[0], 16), (r.stop[0], 24)) in new[name]
    assert len(regions_of(new)) == 2 * len(regions_of(old))
    for r in old.train:
        which = voxels(new, r.node, (40, 24))
        assert (which[:, 16:] == which[:, :16].max(axis=1, keepdims=True)).all()


def grown_once(shape: tuple[int, ...], new: tuple[int, ...], **kw: Any) -> Any:
    old = split_shapes({"v": shape}, val=0.2, test=0.2, by="region", **kw)
    return old, update_splits(old, {"v": new})


def test_a_few_new_slices_go_whole_to_one_split_by_hash() -> None:
    old, (splits, change) = grown_once((20, 4, 4), (24, 4, 4), gap=1)
    (growth,) = change.grown
    ((split, region),) = growth.regions  # 3 slices: too few for a block per split
    assert str(region) == "v[21:24, 0:4, 0:4]"
    value = node_hash("v@20", old.seed)
    expected = "val" if value < 0.2 else "test" if value < 0.4 else "train"
    assert split == expected and region in splits[split]


def test_new_slices_within_the_gap_add_nothing_and_later_growth_starts_after_it() -> None:
    old, (splits, change) = grown_once((20, 4, 4), (22, 4, 4), gap=2)
    assert change.grown[0].regions == ()
    assert regions_of(splits) == regions_of(old)
    again, change = update_splits(splits, {"v": (30, 4, 4)})
    starts = sorted(r.start[0] for _, r in change.grown[0].regions)
    assert starts[0] == 22  # the gap after the old end, not after the 22 slices seen before
    check_disjoint(again, gap=2)


def test_growth_along_every_axis_covers_the_new_extent() -> None:
    old, (splits, _) = grown_once((20, 6, 5), (30, 9, 8), gap=1)
    which = voxels(splits, "v", (30, 9, 8))
    assert (which[:20, :6, :5] == voxels(old, "v", (20, 6, 5))).all()
    # every slice is one split (or a gap) across the whole, grown, slice
    for z in range(30):
        assert len(set(which[z].ravel().tolist())) == 1
    # the new slices: the gap after the old end, then a block per split with gaps between
    assert (which[20] == -1).all()
    assert sorted(set(which[21:, 0, 0].tolist())) == [-1, 0, 1, 2]
    assert (which[21:, 0, 0] == -1).sum() == 2
    check_disjoint(splits, gap=1)
    assert update_splits(splits, {"v": (30, 9, 8)})[1].grown == ()  # nothing new the 2nd time
    # growing again across y and x continues each slab, made of several regions by now
    again, _ = update_splits(splits, {"v": (30, 12, 10)})
    assert regions_of(splits) < regions_of(again)
    which = voxels(again, "v", (30, 12, 10))
    assert (which[:, :9, :8] == voxels(splits, "v", (30, 9, 8))).all()
    for z in range(30):
        assert len(set(which[z].ravel().tolist())) == 1


def test_growth_that_cannot_keep_the_old_regions_is_refused() -> None:
    old = split_shapes({"v": (20, 6, 5)}, val=0.2, test=0.2, by="region")
    with pytest.raises(SplitError, match="shrank"):
        update_splits(old, {"v": (20, 5, 6)})
    with pytest.raises(SplitError, match="now has 2 axes but its old regions have 3"):
        update_splits(old, {"v": (24, 6)})
    # a hand-made region that does not span the node across y and x cannot be grown
    odd = replace(old, train=(Region("v", (0, 0, 0), (4, 3, 5)), *old.train[1:]))
    odd = replace(odd, train=tuple(r for r in old.train if r.start[0] >= 4))
    block = next(r for r in old["train"])
    odd = replace(old, train=(Region("v", block.start, (block.stop[0], 3, 5)), *old.train[1:]))
    with pytest.raises(SplitError, match="is not a block spanning the node"):
        update_splits(odd, {"v": (20, 8, 5)})
