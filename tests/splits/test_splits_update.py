"""Stable splits: hashing node names keeps old nodes in place; ``prep split --update``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from microprep.cli.main import main
from microprep.conversion import ConvertOptions, convert
from microprep.splits import SPLIT_NAMES, Splits, load_splits, split_shapes
from microprep.splits.assign import node_hash

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


def test_cli_update_of_a_grown_region_split_is_refused(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "v.zarr"
    convert(write_cvat(images_xml(20), name="stack.xml"), store, ConvertOptions(volume=True))
    old_file = tmp_path / "old.json"
    assert main(["split", str(store), "--by", "region", "-o", str(old_file), "-q"]) == 0
    # unchanged: the old regions are kept as they were
    same = tmp_path / "same.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(same), "-q"]) == 0
    assert load_splits(same).train == load_splits(old_file).train
    options = ConvertOptions(volume=True)
    convert(write_cvat(images_xml(30), name="stack.xml"), store, options)
    grown = tmp_path / "grown.json"
    assert main(["split", str(store), "--update", str(old_file), "-o", str(grown)]) == 2
    err = capsys.readouterr().err.strip()
    assert "changed shape" in err and "\n" not in err
    assert not grown.exists()
