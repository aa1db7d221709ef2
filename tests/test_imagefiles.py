"""Unit tests of image discovery (imagefiles.py) and export archives (archive.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microprep.archive import is_archive, open_archive
from microprep.errors import FormatError, ImageFileError, InputError
from microprep.imagefiles import (
    ArchiveImages,
    FolderImages,
    find_images,
    image_keys,
    image_names,
    node_names,
)
from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, StackInfo


def png(value: int, size: tuple[int, int] = (5, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def dataset(images: list[ImageInfo], stack: StackInfo | None = None) -> AnnotationSet:
    return AnnotationSet.from_items(
        [AnnotatedImage(i, ()) for i in images], labels=LabelMap(), stack=stack
    )


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_stack_frames_take_the_archive_files_in_natural_order(tmp_path: Path) -> None:
    export = zip_of(
        tmp_path / "v.zip",
        {
            "annotations.xml": b"<annotations/>",
            **{f"images/slice_{k}.png": png(k) for k in (10, 2, 1)},
            "images/notes.txt": b"not an image",
        },
    )
    frames = [ImageInfo(f"frame_{f:06d}", 5, 3, frame=f) for f in (4, 6, 8)]
    ds = dataset(frames, StackInfo(start_frame=4, step=2))
    source = find_images(export)
    assert isinstance(source, ArchiveImages)
    with source:
        files = image_names(ds, source)
        assert files == ["slice_1.png", "slice_2.png", "slice_10.png"]
        assert node_names(ds, files, source) == files
        assert [int(source.load(f, expected=(5, 3))[0, 0]) for f in files] == [1, 2, 10]
        with pytest.raises(ImageFileError, match=r"v\.zip:images/slice_1\.png.*3x5"):
            source.load("slice_1.png", expected=(3, 5))
        too_many = dataset([*frames, ImageInfo("frame_000010", 5, 3, frame=10)], ds.stack)
        with pytest.raises(ImageFileError, match=r"image #3 of the stack.*holds 3 image files"):
            image_names(too_many, source)


def test_subset_folders_are_used_only_where_they_exist(tmp_path: Path) -> None:
    (tmp_path / "Train").mkdir()
    images = [
        ImageInfo("a.png", 5, 3, subset="Train"),
        ImageInfo("a.png", 5, 3, subset="Test"),
        ImageInfo("b.png", 5, 3),
    ]
    ds = dataset(images)
    files = image_names(ds, FolderImages(tmp_path))
    assert files == ["Train/a.png", "a.png", "b.png"]
    assert node_names(ds, files, FolderImages(tmp_path)) == ["Train/a.png", "Test/a.png", "b.png"]
    assert image_names(ds, None) == ["a.png", "a.png", "b.png"]


def test_one_subset_keeps_plain_names() -> None:
    assert image_keys([ImageInfo("a.png", 5, 3, subset="default")]) == ["a.png"]
    assert image_keys([ImageInfo("a.png", 5, 3)]) == ["a.png"]


def test_find_images_beside_a_file_or_nothing(tmp_path: Path) -> None:
    export = tmp_path / "annotations.xml"
    export.write_text("<annotations/>")
    assert find_images(export) is None
    (tmp_path / "images").mkdir()
    source = find_images(export)
    assert isinstance(source, FolderImages) and source.root == tmp_path / "images"
    assert find_images(zip_of(tmp_path / "x.zip", {"annotations.xml": b"<a/>"})) is None


def test_archive_names_must_stay_inside(tmp_path: Path) -> None:
    export = zip_of(tmp_path / "t.zip", {"annotations.xml": b"<a/>", "images/a.png": png(1)})
    source = find_images(export)
    assert source is not None
    with source:
        assert source.is_file("a.png") and not source.is_file("b.png")
        with pytest.raises(FormatError, match="escapes"):
            source.is_file("../annotations.xml")
        assert not source.is_dir("..")


def test_archive_members_named_twice_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.xml", b"<a/>")
        with pytest.warns(UserWarning, match="Duplicate"):
            zf.writestr("annotations.xml", b"<b/>")
    with pytest.raises(FormatError, match=r"twice\.zip: member 'annotations\.xml': .*twice"):
        open_archive(path)


def test_annotations_in_one_top_folder_only(tmp_path: Path) -> None:
    one = zip_of(tmp_path / "one.zip", {"t/annotations.xml": b"<a/>", "t/images/a.png": b"x"})
    with open_archive(one) as archive:
        assert (archive.annotations, archive.base) == ("t/annotations.xml", "t/")
    two = zip_of(tmp_path / "two.zip", {"t/annotations.xml": b"<a/>", "u/annotations.xml": b"x"})
    with open_archive(two) as archive:
        assert archive.annotations is None
        with pytest.raises(InputError, match="no such member"):
            archive.open("t/nothing.xml")


def test_is_archive_never_raises(tmp_path: Path) -> None:
    assert not is_archive(tmp_path / "missing.zip")
    assert not is_archive(tmp_path)
    (tmp_path / "a.xml").write_text("<annotations/>")
    assert not is_archive(tmp_path / "a.xml")
    (tmp_path / "b.zip").write_bytes(b"PK\x03\x04 truncated")
    assert is_archive(tmp_path / "b.zip")
