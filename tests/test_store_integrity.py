"""Damaged stores are never read silently: checksums, the every-chunk rule, ``prep info --verify``.

The store comes from ``prep convert`` of a small CVAT export built here (one 600 x 1100 image,
so its arrays have 2 x 3 chunks); each test damages it one way and reads it through the CLI.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from zarr.codecs import ZstdCodec

import microprep.store.layout as store_layout
import microprep.store.write as store_write
from crops.helpers import make_store
from microprep.cli.main import main
from microprep.data import SegmentationDataset
from microprep.errors import StoreDamageError, StoreError
from microprep.store import open_dataset
from microprep.store.integrity import CheckedStore, open_root, open_store
from microprep.store.verify import verify_store

Capture = pytest.CaptureFixture[str]

IMAGE = (
    '<image id="0" name="a.tif" width="1100" height="600">\n'
    '  <box label="precipitate" occluded="0" source="manual" xtl="100" ytl="50" xbr="1000"'
    ' ybr="560" z_order="0"/>\n'
    '  <ellipse label="bubble" occluded="0" source="manual" cx="300" cy="300" rx="80" ry="60"'
    ' rotation="0" z_order="1"/>\n'
    "</image>"
)


def convert(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    export = write_cvat(IMAGE)
    images = tmp_path / "imgs"
    images.mkdir()
    pixels = np.random.default_rng(0).integers(0, 60000, (600, 1100), dtype=np.uint16)
    tifffile.imwrite(images / "a.tif", pixels)
    out = tmp_path / "d.zarr"
    assert main(["convert", str(export), "--images", str(images), "--out", str(out)]) == 0
    return out


@pytest.fixture
def store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    return convert(write_cvat, tmp_path)


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def info(capsys: Capture, store: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "info", str(store), "-q", *extra)


def crop(capsys: Capture, store: Path) -> tuple[int, str, str]:
    out = store.parent / "crops.zarr"
    return run(capsys, "crop", str(store), "--window", "256", "--out", str(out), "-q")


def flip_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x40
    file.write_bytes(bytes(data))


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def test_a_good_store_verifies_and_says_it_has_checksums(store: Path, capsys: Capture) -> None:
    code, out, _ = info(capsys, store)
    assert code == 0 and "checksums: crc32c on every chunk" in out
    code, out, err = info(capsys, store, "--verify")
    assert code == 0, err
    assert "verified" in out and "no damage" in out
    # every array's chunk files are there: 2 x 3 for the spatial ones
    assert len(list((store / "a.tif" / "labels" / "c").rglob("*"))) == 2 + 6
    result = verify_store(store)
    assert result.ok and result.nodes == 1 and result.chunks >= 3 * 6
    assert crop(capsys, store)[0] == 0
    with open_dataset(store, verify=True) as ds:
        assert ds.verifiable and int(ds[0]["labels"].sum()) > 0


def test_a_deleted_label_chunk_is_an_error_naming_node_array_and_chunk(
    store: Path, capsys: Capture
) -> None:
    with open_dataset(store) as ds:
        before = int((ds[0]["labels"].values[:512, 512:1024] > 0).sum())
    assert before > 0
    (store / "a.tif" / "labels" / "c" / "0" / "1").unlink()
    want = "node 'a.tif', array 'labels', chunk c/0/1: the chunk file is missing"
    for code, _, err in (info(capsys, store), crop(capsys, store), info(capsys, store, "--verify")):
        assert code == 2
        assert want in err
    assert not (store.parent / "crops.zarr").exists()
    with pytest.raises(StoreDamageError, match="chunk c/0/1") as caught:
        open_dataset(store, verify=True)
    assert (caught.value.node, caught.value.array, caught.value.chunk) == (
        "a.tif",
        "labels",
        "c/0/1",
    )
    with open_dataset(store) as ds, pytest.raises(StoreDamageError, match="chunk c/0/1"):
        ds[0]["labels"].values  # noqa: B018  (the read is the test)
    aug = store.parent / "aug.zarr"
    assert main(["augment", str(store), "--geometry", "flip", "--out", str(aug), "-q"]) == 2
    assert want in capsys.readouterr().err and not aug.exists()


def test_a_deleted_node_folder_is_an_error(store: Path, capsys: Capture) -> None:
    shutil.rmtree(store / "a.tif")
    for code, _, err in (info(capsys, store), crop(capsys, store), info(capsys, store, "--verify")):
        assert code == 2
        assert "node 'a.tif': the node's folder is missing" in err
    with pytest.raises(StoreError, match="folder is missing"):
        open_dataset(store, verify=True)
    with pytest.raises(StoreError, match="folder is missing"):
        open_dataset(store)


def test_a_flipped_byte_in_an_image_chunk_fails_its_checksum(store: Path, capsys: Capture) -> None:
    flip_byte(store / "a.tif" / "image" / "c" / "1" / "2")
    want = "node 'a.tif', array 'image', chunk c/1/2: the chunk does not match its crc32c"
    code, _, err = crop(capsys, store)
    assert code == 2 and want in err
    code, _, err = info(capsys, store, "--verify")
    assert code == 2 and want in err
    with pytest.raises(StoreDamageError, match="checksum"):
        open_dataset(store, verify=True)


@pytest.mark.parametrize("array", ["labels", "image", "instances"])
def test_a_truncated_chunk_is_exit_2_naming_the_chunk_never_exit_3(
    store: Path, capsys: Capture, array: str
) -> None:
    chunk = "c/0/0/0" if array == "instances" else "c/0/0"
    truncate(store / "a.tif" / array / chunk)
    want = f"node 'a.tif', array '{array}', chunk {chunk}"
    runs = [crop(capsys, store), info(capsys, store, "--verify")]
    if array == "labels":
        runs.append(info(capsys, store))
    for code, _, err in runs:
        assert code == 2, err
        assert want in err and "internal error" not in err
    with pytest.raises(StoreError, match=want):
        open_dataset(store, verify=True)


def test_verify_lists_every_damaged_chunk(store: Path, capsys: Capture) -> None:
    labels = store / "a.tif" / "labels" / "c"
    (labels / "1" / "0").unlink()
    flip_byte(labels / "0" / "2")
    truncate(store / "a.tif" / "image" / "c" / "0" / "0")
    code, _, err = info(capsys, store, "--verify")
    assert code == 2
    assert "3 of" in err and "chunks are missing or damaged" in err
    for key in ("'image', chunk c/0/0", "'labels', chunk c/0/2", "'labels', chunk c/1/0"):
        assert sum(key in line for line in err.splitlines()) == 1, key
    result = verify_store(store)
    assert [(d.array, d.chunk) for d in result.damage] == [
        ("image", "c/0/0"),
        ("labels", "c/0/2"),
        ("labels", "c/1/0"),
    ]
    with pytest.raises(StoreError, match=r"3 of .* chunks are missing or damaged"):
        open_dataset(store, verify=True)


def test_verify_caps_the_lines(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for file in (store / "a.tif" / "labels" / "c").rglob("*"):
        if file.is_file():
            file.unlink()
    result = verify_store(store)
    assert len(result.damage) == 6
    lines = result.lines(limit=2)
    assert len(lines) == 3 and lines[-1].endswith("... and 4 more damaged chunks")


def test_the_data_loader_reads_damage_as_an_error(store: Path) -> None:
    dataset = SegmentationDataset(store, window=256, normalization="dtype")
    dataset[0]  # a good store reads
    (store / "a.tif" / "image" / "c" / "0" / "0").unlink()
    with pytest.raises(StoreDamageError, match="array 'image', chunk c/0/0"):
        SegmentationDataset(store, window=256, normalization="dtype")[0]


def test_sharded_arrays_are_checked_shard_by_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small chunks and shards, so that a 32 x 40 class map is 4 x 5 chunks in 2 x 3 shards
    monkeypatch.setattr(store_layout, "CHUNKS_2D", (8, 8))
    monkeypatch.setattr(store_layout, "SHARD_CHUNKS_2D", (2, 2))
    monkeypatch.setattr(store_layout, "MAX_UNSHARDED_CHUNKS", 4)
    class_map = (np.arange(32 * 40).reshape(32, 40) % 3).astype(np.uint8)
    path = make_store(tmp_path / "s.zarr", {"a.png": (class_map, [], [])})
    shard = path / "a.png" / "labels" / "c" / "0" / "1"
    assert (
        json.loads((path / "a.png" / "labels" / "zarr.json").read_text())["codecs"][0]["name"]
        == "sharding_indexed"
    )
    assert verify_store(path).ok
    good = shard.read_bytes()
    index = 16 * 4 + 4  # the shard index: (offset, length) per inner chunk, then its crc32c
    body = bytearray(good)
    body[0] ^= 0x01  # in the first inner chunk's bytes
    for damaged, reason in (
        (bytes(body), "does not match its crc32c"),
        (good[: len(good) - index // 2], "shard index does not match its checksum"),
    ):
        shard.write_bytes(damaged)
        root = open_root(path)
        with pytest.raises(StoreDamageError, match=f"chunk c/0/1: .*{reason}"):
            root["a.png"]["labels"][:]  # whole shards
        with pytest.raises(StoreDamageError, match="chunk c/0/1"):
            root["a.png"]["labels"][0:4, 16:20]  # one inner chunk: index, then a byte range
        assert [d.chunk for d in verify_store(path).damage] == ["c/0/1"]
    shard.unlink()
    with pytest.raises(StoreDamageError, match="chunk c/0/1: the chunk file is missing"):
        open_root(path)["a.png"]["labels"][:]
    shard.write_bytes(good)
    np.testing.assert_array_equal(open_root(path)["a.png"]["labels"][:], class_map)


def test_the_checking_store_pickles(store: Path) -> None:
    checked = open_store(store, open_dataset(store).attrs)
    assert isinstance(checked, CheckedStore)
    again = pickle.loads(pickle.dumps(checked))
    assert isinstance(again, CheckedStore) and again.root == store


def write_old_store(write_cvat: Callable[..., Path], tmp_path: Path) -> Path:
    """A store as microprep wrote it before checksums: zstd only, format_version 1, no
    integrity record."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_write, "COMPRESSORS", (ZstdCodec(level=1),))
        path = convert(write_cvat, tmp_path)
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    attrs = meta["attributes"]["microprep"]
    attrs["format_version"] = 1
    del attrs["integrity"]
    meta_file.write_text(json.dumps(meta))
    codecs = json.loads((path / "a.tif" / "labels" / "zarr.json").read_text())["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "zstd"]
    return path


def test_an_old_store_without_checksums_opens_but_cannot_be_verified(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    path = write_old_store(write_cvat, tmp_path)
    with open_dataset(path) as ds:
        assert not ds.verifiable and int(ds[0]["labels"].sum()) > 0
    assert open_dataset(path).attrs["format_version"] == 1
    code, out, _ = info(capsys, path)
    assert code == 0 and "cannot be verified" in out
    code, _, err = info(capsys, path, "--verify")
    assert code == 2 and "cannot be verified" in err and "before chunk checksums" in err
    with pytest.raises(StoreError, match="cannot be verified"):
        open_dataset(path, verify=True)
    assert crop(capsys, path)[0] == 0
    # a truncated chunk in such a store is still an error (exit 2) naming the node
    truncate(path / "a.tif" / "labels" / "c" / "0" / "0")
    code, _, err = info(capsys, path)
    assert code == 2 and "node 'a.tif'" in err
