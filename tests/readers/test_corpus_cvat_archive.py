"""CVAT export archives, the images CVAT lays out beside its exports, and project exports.

The XML of each export is a corpus file (tests/corpus/cvat/export_*.xml, modelled on CVAT's own
exporter); the archives around them are built here with the layout CVAT's exporter writes:
``annotations.xml`` at the top, ``images/<name>`` for tasks and jobs, ``images/<subset>/<name>``
for projects, ``images/frame_000000.PNG``... for video tasks.
"""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from microprep import archive
from microprep.cli.main import main

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cvat"
Capture = pytest.CaptureFixture[str]


def png(width: int, height: int, value: int) -> bytes:
    """A gray PNG filled with ``value``."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def corpus(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


def store_nodes(store: Path) -> dict[str, dict[str, object]]:
    """Node group name -> its attributes (and whether it stores an image and which value)."""
    root = zarr.open_group(store, mode="r")
    out: dict[str, dict[str, object]] = {}
    for name in root.attrs["microprep"]["nodes"]:
        group = root[name]
        assert isinstance(group, zarr.Group)
        attrs = dict(group.attrs)
        if "image" in group:
            attrs["pixel"] = int(np.asarray(group["image"])[0, 0])
        out[name] = attrs
    return out


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- archives that convert ------------------------------------------------------------------


def test_task_archive_with_images_converts_with_pixels(tmp_path: Path, capsys: Capture) -> None:
    xml = corpus("export_job.xml").replace("<job>", "<task>").replace("</job>", "</task>")
    export = make_zip(
        tmp_path / "task.zip",
        {
            "annotations.xml": xml,
            "images/grid 1/a.png": png(16, 12, 10),
            "images/grid 1/b.png": png(16, 12, 20),
        },
    )
    out = tmp_path / "out.zarr"
    assert main(["convert", str(export), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"images from {export}:images/" in printed
    nodes = store_nodes(out)
    pixels = {n["name"]: n["pixel"] for n in nodes.values()}
    assert pixels == {"grid 1/a.png": 10, "grid 1/b.png": 20}
    # nothing was extracted beside the archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "task.zip"]


def test_job_archive_without_images_converts_targets_only(tmp_path: Path, capsys: Capture) -> None:
    export = make_zip(tmp_path / "job.zip", {"annotations.xml": corpus("export_job.xml")})
    out = tmp_path / "out.zarr"
    assert main(["convert", str(export), "--out", str(out)]) == 0
    assert "no image files" in capsys.readouterr().out
    nodes = store_nodes(out)
    assert [n["name"] for n in nodes.values()] == ["grid 1/a.png", "grid 1/b.png"]
    assert not any("pixel" in n for n in nodes.values())


def test_archive_zipped_again_with_its_folder_is_read(tmp_path: Path) -> None:
    export = make_zip(
        tmp_path / "again.zip",
        {
            "job_12/annotations.xml": corpus("export_job.xml"),
            "job_12/images/grid 1/a.png": png(16, 12, 1),
            "job_12/images/grid 1/b.png": png(16, 12, 2),
        },
    )
    out = tmp_path / "out.zarr"
    assert main(["convert", str(export), "--out", str(out), "-q"]) == 0
    assert sorted(n["pixel"] for n in store_nodes(out).values()) == [1, 2]


def test_project_archive_with_repeated_ids_and_names_per_subset(tmp_path: Path) -> None:
    export = make_zip(
        tmp_path / "project.zip",
        {
            "annotations.xml": corpus("export_project_subsets.xml"),
            "images/Train/img0.jpg": png(16, 12, 11),
            "images/Train/img1.jpg": png(16, 12, 12),
            "images/Validation/img0.jpg": png(16, 12, 21),
        },
    )
    out = tmp_path / "out.zarr"
    assert main(["convert", str(export), "--out", str(out), "-q"]) == 0
    nodes = store_nodes(out)
    assert [(n["name"], n["subset"], n["pixel"]) for n in nodes.values()] == [
        ("Train/img0.jpg", "Train", 11),
        ("Train/img1.jpg", "Train", 12),
        ("Validation/img0.jpg", "Validation", 21),
    ]
    assert len(set(nodes)) == 3
    assert all(name.startswith(("Train", "Validation")) for name in nodes)


def test_project_archive_without_images_has_unique_readable_nodes(tmp_path: Path) -> None:
    export = make_zip(tmp_path / "p.zip", {"annotations.xml": corpus("export_project_subsets.xml")})
    out = tmp_path / "out"
    assert main(["convert", str(export), "--to", "zarr,coco", "--out", str(out), "-q"]) == 0
    names = [n["name"] for n in store_nodes(out / "dataset.zarr").values()]
    assert names == ["Train/img0.jpg", "Train/img1.jpg", "Validation/img0.jpg"]
    coco = json.loads((out / "coco.json").read_text())
    assert sorted(image["file_name"] for image in coco["images"]) == sorted(names)


def test_video_archive_with_frames_converts_a_volume(tmp_path: Path, capsys: Capture) -> None:
    export = make_zip(
        tmp_path / "video.zip",
        {
            "annotations.xml": corpus("export_video_task.xml"),
            **{f"images/frame_{k:06d}.PNG": png(16, 12, 100 + k) for k in range(3)},
        },
    )
    out = tmp_path / "vol.zarr"
    assert main(["convert", str(export), "--volume", "--out", str(out)]) == 0
    assert "images from" in capsys.readouterr().out
    root = zarr.open_group(out, mode="r")
    (node,) = root.attrs["microprep"]["nodes"]
    group = root[node]
    assert isinstance(group, zarr.Group)
    image = np.asarray(group["image"])
    assert image.shape == (3, 12, 16)
    assert image[:, 0, 0].tolist() == [100, 101, 102]
    assert group.attrs["frames"] == ["frame_000000.PNG", "frame_000001.PNG", "frame_000002.PNG"]
    labels = np.asarray(group["labels"])
    assert labels[0].any() and labels[1].any() and not labels[2].any()


def test_video_archive_without_images_converts(tmp_path: Path) -> None:
    export = make_zip(tmp_path / "v.zip", {"annotations.xml": corpus("export_video_task.xml")})
    out = tmp_path / "v.zarr"
    assert main(["convert", str(export), "--out", str(out), "-q"]) == 0
    assert [n["name"] for n in store_nodes(out).values()] == [
        "frame_000000",
        "frame_000001",
        "frame_000002",
    ]


def test_validate_reads_an_archive_and_names_its_images(tmp_path: Path, capsys: Capture) -> None:
    export = make_zip(
        tmp_path / "project.zip",
        {
            "annotations.xml": corpus("export_project_subsets.xml"),
            "images/Train/img0.jpg": png(16, 12, 1),
            "images/Train/img1.jpg": png(16, 12, 1),
            "images/Validation/img0.jpg": png(8, 12, 1),  # not the export's size
        },
    )
    report = tmp_path / "report.json"
    assert main(["validate", str(export), "--json", str(report)]) == 2
    out = capsys.readouterr().out
    assert f"images from {export}:images/" in out
    data = json.loads(report.read_text())
    assert data["images_from"] == f"{export}:images/"
    found = [(f["code"], f["image"]) for f in data["findings"] if f["severity"] == "error"]
    assert found == [("image-size-mismatch", "Validation/img0.jpg")]
    assert not [f for f in data["findings"] if f["code"] == "duplicate-image-name"]


# --- images/ beside annotations.xml ----------------------------------------------------------


def test_images_beside_the_export_are_found_and_named(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "annotations.xml").write_text(corpus("export_job.xml"), encoding="utf-8")
    (tmp_path / "images" / "grid 1").mkdir(parents=True)
    (tmp_path / "images" / "grid 1" / "a.png").write_bytes(png(16, 12, 7))
    (tmp_path / "images" / "grid 1" / "b.png").write_bytes(png(16, 12, 8))
    out = tmp_path / "out.zarr"
    assert main(["convert", str(tmp_path / "annotations.xml"), "--out", str(out)]) == 0
    assert f"images from {tmp_path / 'images'}" in capsys.readouterr().out
    assert sorted(n["pixel"] for n in store_nodes(out).values()) == [7, 8]
    assert main(["validate", str(tmp_path / "annotations.xml")]) == 0
    assert f"images from {tmp_path / 'images'}" in capsys.readouterr().out


def test_images_option_wins_over_the_folder_beside(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "annotations.xml").write_text(corpus("export_job.xml"), encoding="utf-8")
    for folder, value in (("images", 1), ("mine", 2)):
        (tmp_path / folder / "grid 1").mkdir(parents=True)
        for name in ("a.png", "b.png"):
            (tmp_path / folder / "grid 1" / name).write_bytes(png(16, 12, value))
    out = tmp_path / "out.zarr"
    args = ["convert", str(tmp_path / "annotations.xml"), "--images", str(tmp_path / "mine")]
    assert main([*args, "--out", str(out)]) == 0
    assert f"images from {tmp_path / 'mine'}" in capsys.readouterr().out
    assert {n["pixel"] for n in store_nodes(out).values()} == {2}


def test_project_folder_layout_beside_the_export(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_text(corpus("export_project_subsets.xml"), "utf-8")
    files = (("Train", "img0", 1), ("Train", "img1", 2), ("Validation", "img0", 3))
    for subset, name, value in files:
        (tmp_path / "images" / subset).mkdir(parents=True, exist_ok=True)
        (tmp_path / "images" / subset / f"{name}.jpg").write_bytes(png(16, 12, value))
    out = tmp_path / "out.zarr"
    assert main(["convert", str(tmp_path / "annotations.xml"), "--out", str(out), "-q"]) == 0
    assert {n["name"]: n["pixel"] for n in store_nodes(out).values()} == {
        "Train/img0.jpg": 1,
        "Train/img1.jpg": 2,
        "Validation/img0.jpg": 3,
    }


def test_a_missing_file_in_the_images_beside_is_named(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "annotations.xml").write_text(corpus("export_job.xml"), encoding="utf-8")
    (tmp_path / "images" / "grid 1").mkdir(parents=True)
    (tmp_path / "images" / "grid 1" / "a.png").write_bytes(png(16, 12, 7))
    out = tmp_path / "out.zarr"
    assert main(["convert", str(tmp_path / "annotations.xml"), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'grid 1/b.png'" in line and str(tmp_path / "images") in line
    assert not out.exists()
    args = ["convert", str(tmp_path / "annotations.xml"), "--skip-missing", "-q"]
    assert main([*args, "--out", str(out)]) == 0
    assert [n["name"] for n in store_nodes(out).values()] == ["grid 1/a.png"]


# --- archives that are refused ---------------------------------------------------------------


def symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.xml", corpus("export_job.xml"))
        info = zipfile.ZipInfo("images/grid 1/a.png")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return path


def truncated_zip(path: Path) -> Path:
    make_zip(path, {"annotations.xml": corpus("export_job.xml")})
    path.write_bytes(path.read_bytes()[:200])
    return path


def damaged_member_zip(path: Path) -> Path:
    make_zip(path, {"annotations.xml": corpus("export_job.xml") * 3})
    data = bytearray(path.read_bytes())
    start = 30 + len("annotations.xml")
    data[start + 40 : start + 60] = bytes(20)  # inside the deflated data
    path.write_bytes(bytes(data))
    return path


BAD_ARCHIVES = {
    "dot-dot member": (
        lambda p: make_zip(p, {"annotations.xml": corpus("export_job.xml"), "../evil.png": b"x"}),
        r"member '\.\./evil\.png'.*leaves the archive",
    ),
    "absolute member": (
        lambda p: make_zip(p, {"annotations.xml": corpus("export_job.xml"), "/tmp/evil": b"x"}),
        r"member '/tmp/evil'.*leaves the archive",
    ),
    "symlink member": (symlink_zip, r"member 'images/grid 1/a\.png'.*symbolic link"),
    "ratio bomb": (
        lambda p: make_zip(
            p, {"annotations.xml": corpus("export_job.xml"), "images/zeros.png": bytes(8 << 20)}
        ),
        r"member 'images/zeros\.png'.*expands \d[\d,]* times.*zip bomb",
    ),
    "no annotations.xml": (
        lambda p: make_zip(p, {"export.xml": corpus("export_job.xml")}),
        r"member 'annotations\.xml'.*no annotations\.xml in the archive.*'export\.xml'",
    ),
    "corrupt archive": (truncated_zip, r"not a readable zip archive"),
    "damaged member": (damaged_member_zip, r":annotations\.xml: cannot read the member"),
    "bad xml in member": (
        lambda p: make_zip(p, {"annotations.xml": corpus("export_job.xml")[:-40]}),
        r":annotations\.xml:\d+:\d+: malformed or truncated XML",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
@pytest.mark.parametrize("command", ["convert", "validate"])
def test_bad_archives_exit_2_with_one_line_naming_archive_and_member(
    case: str, command: str, tmp_path: Path, capsys: Capture
) -> None:
    build, pattern = BAD_ARCHIVES[case]
    export = build(tmp_path / "export.zip")
    out = tmp_path / "out.zarr"
    args = [command, str(export)] + (["--out", str(out)] if command == "convert" else [])
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"prep: error: {export}"), line
    assert re.search(pattern, line), line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.zip"]


def test_size_limit_refuses_a_large_member(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = make_zip(
        tmp_path / "export.zip",
        {"annotations.xml": corpus("export_job.xml"), "images/grid 1/a.png": png(16, 12, 1)},
    )
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 1000)
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert re.search(r"export\.zip: member 'annotations\.xml': expands to [\d,]+ bytes", line)
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 1 << 30)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1000)
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 2
    assert "allowed in all" in one_error_line(capsys.readouterr().err)


def test_overlapping_members_are_refused(tmp_path: Path, capsys: Capture) -> None:
    export = make_zip(
        tmp_path / "export.zip",
        {"annotations.xml": corpus("export_job.xml"), "images/a.png": png(16, 12, 1)},
    )
    data = bytearray(export.read_bytes())
    # point the central directory entry of images/a.png at the local header of annotations.xml
    central = data.rindex(b"PK\x01\x02")
    data[central + 42 : central + 46] = (0).to_bytes(4, "little")
    export.write_bytes(bytes(data))
    assert main(["validate", str(export)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert re.search(r"member '.*': its data overlaps member", line), line


def test_bad_corpus_file_exits_2_naming_file_line_and_reason(
    tmp_path: Path, capsys: Capture
) -> None:
    path = CORPUS / "bad_export_project_name_twice_in_subset.xml"
    assert main(["convert", str(path), "--out", str(tmp_path / "o.zarr")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert re.search(
        r"bad_export_project_name_twice_in_subset\.xml:\d+: <image> 'img0\.jpg': "
        r"image name 'img0\.jpg' is used twice in subset 'Train'",
        line,
    ), line
    # the same export zipped names the member
    export = make_zip(tmp_path / "p.zip", {"annotations.xml": path.read_text()})
    assert main(["convert", str(export), "--out", str(tmp_path / "o.zarr")]) == 2
    assert f"{export}:annotations.xml:" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "name", ["export_job.xml", "export_project_subsets.xml", "export_video_task.xml"]
)
def test_corpus_exports_convert(name: str, tmp_path: Path) -> None:
    assert main(["convert", str(CORPUS / name), "--out", str(tmp_path / "o.zarr"), "-q"]) == 0
