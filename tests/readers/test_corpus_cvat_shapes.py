"""CVAT skeletons, tracks of every kind and subsets, through ``prep convert`` and ``prep split``.

The exports are the corpus files in tests/corpus/cvat/ (``skeleton_*``, ``elements_*``,
``subsets_*``, ``bad_skeleton_*``) and a few built here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import microprep
from microprep.cli.main import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "cvat"
MINE = ("skeleton_", "elements_", "subsets_", "bad_skeleton_")
FILES = sorted(p for p in CORPUS.glob("*.xml") if p.name.startswith(MINE))

Capture = pytest.CaptureFixture[str]


def convert(path: Path, out: Path, capsys: Capture) -> tuple[int, str, str]:
    code = main(["convert", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def labels(out: Path) -> dict[str, np.ndarray]:
    ds = microprep.open_dataset(out)
    return {name: np.asarray(ds[i]["labels"].values) for i, name in enumerate(ds.nodes)}


def disk_at(label_image: np.ndarray, x: float, y: float) -> bool:
    """A point drawn as a point: a disk around the pixel holding (x, y)."""
    return bool(label_image[int(y), int(x)] > 0)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_converts_or_is_refused_in_one_line(
    path: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "o.zarr"
    code, _, err = convert(path, out, capsys)
    if path.name.startswith("bad_"):
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert re.search(rf"{re.escape(path.name)}:\d+: <skeleton label='fly'>", lines[0])
        assert "no elements" in lines[0]
        assert "finite_unless_kind" not in err and "Traceback" not in err
        assert not out.exists()
    else:
        assert code == 0, err
        assert out.exists()


def test_video_skeleton_with_nested_element_tracks(tmp_path: Path, capsys: Capture) -> None:
    path = CORPUS / "skeleton_video_nested_tracks.xml"
    code, report, err = convert(path, tmp_path / "o.zarr", capsys)
    assert code == 0, err
    assert "4 images, 3 shapes -> 3 objects" in report
    frames = labels(tmp_path / "o.zarr")
    assert sorted(frames) == [f"frame_{f:06d}" for f in range(4)]
    # frame 0: head and tail; frame 1 (interpolated, head occluded): both moved
    f0, f1, f2, f3 = (frames[f"frame_{f:06d}"] for f in range(4))
    assert disk_at(f0, 4, 5) and disk_at(f0, 20, 12)
    assert disk_at(f1, 6, 5) and disk_at(f1, 21, 12) and not disk_at(f1, 13, 8)
    # frame 2: the head is outside, only the tail is drawn; frame 3: every point outside
    assert not disk_at(f2, 8, 5) and disk_at(f2, 22, 12)
    assert not f3.any()
    # points are drawn as small disks, not as an area between them
    assert f0[5, 12] == 0 and 0 < (f0 > 0).sum() < 100

    ds = microprep.read_annotations(path)
    (sk0,), (sk1,), (sk2,), () = (item.shapes for item in ds)
    assert [(e.label, e.points.tolist()) for e in sk0.elements] == [
        ("head", [[4.0, 5.0]]), ("tail", [[20.0, 12.0]]),
    ]  # fmt: skip
    assert (sk1.keyframe, [e.occluded for e in sk1.elements]) == (False, [True, False])
    assert [e.label for e in sk2.elements] == ["tail"]
    assert {s.track_id for s in (sk0, sk1, sk2)} == {3}
    assert not ds.warnings


def test_video_skeleton_as_cvat2_writes_it_and_tracks_of_other_kinds(
    tmp_path: Path, capsys: Capture
) -> None:
    path = CORPUS / "skeleton_video_cvat2.xml"
    code, _report, err = convert(path, tmp_path / "o.zarr", capsys)
    assert code == 0, err
    frames = labels(tmp_path / "o.zarr")
    f0, f1, f2 = (frames[f"frame_{f:06d}"] for f in range(3))
    assert disk_at(f0, 4, 5) and not disk_at(f0, 20, 12)  # the tail is outside
    assert f0[4, 15] > 0  # the polygon track
    assert not f1.any()  # every point outside, the polygon outside
    assert f2[20:22, 0:2].all() and f2.sum() > 0  # the mask track
    ds = microprep.read_annotations(path)
    kinds = [[s.kind for s in item.shapes] for item in ds]
    assert kinds == [["skeleton", "polygon"], [], ["tag", "mask"]]


def test_images_skeleton_cuboids_3d_and_tags(tmp_path: Path, capsys: Capture) -> None:
    path = CORPUS / "elements_images_every_kind.xml"
    code, _report, err = convert(path, tmp_path / "o.zarr", capsys)
    assert code == 0, err
    assert err.count("warning:") == 2, err
    assert "1 <cuboid> element(s) skipped" in err
    assert "1 <cuboid_3d> element(s) skipped" in err
    (image,) = labels(tmp_path / "o.zarr").values()
    assert disk_at(image, 4, 5) and disk_at(image, 10, 18)  # occluded head, unlabelled element
    assert not disk_at(image, 20, 12)  # the outside tail
    ds = microprep.read_annotations(path)
    (item,) = list(ds)
    skeleton = item.shapes[0]
    assert [(e.label, e.occluded) for e in skeleton.elements] == [("head", True), ("fly", False)]
    assert dict(skeleton.attributes) == {"pose": "walking"}
    assert [s.kind for s in item.shapes] == ["skeleton", "ellipse", "tag"]


def video(tracks: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><id>1</id><name>v</name><size>3</size><mode>interpolation</mode>
<start_frame>0</start_frame><stop_frame>2</stop_frame><frame_filter></frame_filter>
<labels><label><name>fly</name><type>skeleton</type><attributes/></label></labels>
<original_size><width>16</width><height>16</height></original_size></task></meta>
{tracks}
</annotations>
"""


def test_other_element_kinds_in_a_skeleton_are_skipped_with_a_count(
    tmp_path: Path, capsys: Capture
) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(
        video(
            '<track id="0" label="fly"><skeleton frame="0" keyframe="1">'
            '<points label="head" outside="0" points="2,2"/>'
            '<box label="body" outside="0" xtl="1" ytl="1" xbr="4" ybr="4"/>'
            '<box label="body" outside="0" xtl="1" ytl="1" xbr="4" ybr="4"/>'
            "</skeleton>"
            '<cuboid frame="1" outside="0" keyframe="1" xtl1="1" ytl1="1"/></track>'
        ),
        encoding="utf-8",
    )
    code, _report, err = convert(path, tmp_path / "o.zarr", capsys)
    assert code == 0, err
    assert "2 skeleton element(s) <box> (a skeleton's elements are points) skipped" in err
    assert "1 <cuboid> element(s) skipped" in err


def test_malformed_element_track_is_one_line_in_user_terms(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(
        video(
            '<track id="3" label="fly"><skeleton frame="1" keyframe="1"/>\n'
            '<track label="head"><points frame="1" outside="0" points="4"/></track></track>'
        ),
        encoding="utf-8",
    )
    code, _, err = convert(path, tmp_path / "o.zarr", capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "annotations.xml:8: <points label='head'> of track 3 at frame 1" in line
    assert "odd number of coordinates" in line


# -- prep split --by subset -------------------------------------------------------------------


def test_split_by_subset(tmp_path: Path, capsys: Capture) -> None:
    store = tmp_path / "d.zarr"
    code, _, err = convert(CORPUS / "subsets_project.xml", store, capsys)
    assert code == 0, err
    splits = tmp_path / "s.json"
    args = ["split", str(store), "--by", "subset", "--out", str(splits)]
    assert main([*args, "--subset-map", "holdout=testing"]) == 0
    assert "split by subset:" in capsys.readouterr().out
    data = json.loads(splits.read_text(encoding="utf-8"))
    ds = microprep.open_dataset(store)
    names = {n: ds.tree[n].attrs["name"] for n in ds.nodes}
    got = {split: [names[r["node"]] for r in regions] for split, regions in data["splits"].items()}
    # a project export with several subsets names its nodes SUBSET/NAME
    assert got == {
        "train": ["Train/a.png", "training/d.png"],
        "val": ["Validation/b.png"],
        "test": ["Holdout/c.png"],
    }
    assert data["by"] == "subset"
    assert data["fractions"] == {"val": 0.25, "test": 0.25}
    assert microprep.splits.load_splits(splits).by == "subset"

    # a subset that maps to nothing is an error naming the image and the subset
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "image 'Holdout/c.png'" in line and "subset 'Holdout' maps to no split" in line
    assert main([*args, "--subset-map", "Holdout=nowhere"]) == 2
    assert "'nowhere' is not a split" in capsys.readouterr().err
    assert main(["split", str(store), "--subset-map", "Holdout=test", "--out", str(splits)]) == 2
    assert "--subset-map goes with --by subset" in capsys.readouterr().err


def test_split_by_subset_refuses_an_image_without_one(tmp_path: Path, capsys: Capture) -> None:
    store = tmp_path / "d.zarr"
    code, _, err = convert(CORPUS / "elements_images_every_kind.xml", store, capsys)
    assert code == 0, err
    out = tmp_path / "s.json"
    assert main(["split", str(store), "--by", "subset", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "image 'a.png' has no subset" in line
    assert not out.exists()
