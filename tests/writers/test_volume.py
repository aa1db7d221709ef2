"""A predicted volume as CVAT for video: ``prep convert --volume`` of the written file gives the
volume's class maps back voxel for voxel; each 6-connected 3D region is one track (or tracks
sharing a ``group_id``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from microprep.cli.main import main
from microprep.predict.write import PredictionWriter
from microprep.store.read import open_dataset
from writers.helpers import CLASSES, COLORS, tricky_map


def _volume() -> np.ndarray:
    base = tricky_map()
    v = np.stack([base, base, np.roll(base, 3, axis=1), np.zeros_like(base), base, base, base])
    v[5:7, 2:12, 2:12] = 0
    v[5, 3:5, 3:8] = 2  # a U in 3D: two pieces on slice 5 ...
    v[5, 8:10, 3:8] = 2
    v[6, 3:10, 3:5] = 2  # ... joined on slice 6
    return v


def _volume_store(path: Path, volume: np.ndarray) -> Path:
    writer = PredictionWriter(path, classes=CLASSES, colors=COLORS, kind="semantic")
    node = writer.begin("stack.tif", volume.shape, probabilities=None)
    probs = np.eye(len(CLASSES), dtype=np.float32)[volume]  # (Z, H, W, K)
    writer.write_rows(node, 0, volume.shape[0], np.moveaxis(probs, -1, 0))
    writer.finish_node(node)
    writer.close()
    return path


def test_cvat_video_round_trip_voxel_for_voxel(tmp_path: Path) -> None:
    volume = _volume()
    pred = _volume_store(tmp_path / "pred.zarr", volume)
    out = tmp_path / "pre.xml"
    assert main(["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "-q"]) == 0
    root = etree.parse(str(out)).getroot()
    assert root.findtext("meta/task/size") == "7"
    assert root.find("image") is None and root.find("track") is not None
    store = tmp_path / "back.zarr"
    assert main(["convert", str(out), "--volume", "--out", str(store), "-q"]) == 0
    with open_dataset(store) as ds:
        classes = np.array(ds.classes, dtype=object)
        (node,) = list(ds)
        got = classes[node["labels"].values]
    np.testing.assert_array_equal(got, np.array(CLASSES, dtype=object)[volume])


def test_a_3d_region_is_one_track_or_one_group(tmp_path: Path) -> None:
    pred = _volume_store(tmp_path / "pred.zarr", _volume())
    out = tmp_path / "pre.xml"
    assert main(["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "-q"]) == 0
    root = etree.parse(str(out)).getroot()
    u_shape = []
    for track in root.iter("track"):
        frames = [int(p.get("frame")) for p in track if p.get("outside") == "0"]
        assert frames == list(range(frames[0], frames[-1] + 1))  # consecutive slices
        if track.get("label") == "grain" and frames[0] == 5:
            u_shape.append(track)
    # the U: one track over slices 5-6, one for its second piece on slice 5, one group
    assert len(u_shape) == 2
    assert u_shape[0].get("group_id") and u_shape[0].get("group_id") == u_shape[1].get("group_id")
    ends = [p for p in u_shape[0] if p.get("outside") == "1"]
    assert [int(p.get("frame")) for p in ends] == []  # slice 6 is the last: no end marker
    track_of_slice_0 = next(t for t in root.iter("track") if t[0].get("frame") == "0")
    assert track_of_slice_0[-1].get("outside") == "1"  # a track ends with outside="1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to", "via"], "or Labelbox video masks (--to labelbox), not via"),
        (["--to", "cvat", "--as", "mask"], "--as mask and --simplify are not written"),
        (["--to", "labelbox", "--simplify", "1"], "--as mask and --simplify are not written"),
    ],
)
def test_volume_refusals_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    pred = _volume_store(tmp_path / "pred.zarr", _volume())
    out = tmp_path / "pre.out"
    assert main(["export-annotations", str(pred), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_two_volumes_in_one_store_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = _volume()
    store = tmp_path / "two.zarr"
    writer = PredictionWriter(store, classes=CLASSES, colors=COLORS, kind="semantic")
    for name in ("s1.tif", "s2.tif"):
        node = writer.begin(name, volume.shape, probabilities=None)
        probs = np.moveaxis(np.eye(len(CLASSES), dtype=np.float32)[volume], -1, 0)
        writer.write_rows(node, 0, volume.shape[0], probs)
        writer.finish_node(node)
    writer.close()
    out = tmp_path / "pre.xml"
    args = ["export-annotations", str(tmp_path / "two.zarr"), "--to", "cvat", "--out", str(out)]
    assert main(args) == 2
    assert "holds one volume" in capsys.readouterr().err
    assert not out.exists()
