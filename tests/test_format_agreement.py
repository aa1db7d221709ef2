"""The same sample scenes exported as CVAT, VIA (JSON and CSV) and Labelbox give the same class
maps, pixel for pixel, for the shape kinds each format can express."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microprep.model import AnnotatedImage, AnnotationSet
from microprep.readers import ReadOptions, read_annotations
from microprep.targets import build_targets

CASES = {
    "via/via_project.json": ("via2-project", {"box", "polygon", "polyline", "points", "ellipse"}),
    "via/via_export.csv": ("via-csv", {"box", "polygon", "polyline", "points", "ellipse"}),
    "labelbox/export.ndjson": ("labelbox-ndjson", {"box", "polygon", "polyline", "points", "mask"}),
}


def named_maps(annotations: AnnotationSet, kinds: set[str] | None = None) -> dict[str, np.ndarray]:
    """Per image, the class map as class *names* (formats may number classes differently)."""
    names = np.array(annotations.labels.class_names, dtype=object)
    out = {}
    for item in annotations:
        shapes = tuple(s for s in item.shapes if kinds is None or s.kind in kinds)
        targets = build_targets(AnnotatedImage(item.image, shapes), annotations.labels)
        out[item.image.name] = names[targets.class_map]
    return out


@pytest.mark.parametrize("export", sorted(CASES))
def test_formats_agree_with_cvat(sample_data: Path, export: str) -> None:
    fmt, kinds = CASES[export]
    reference = read_annotations(sample_data / "cvat" / "annotations.xml")
    options = ReadOptions(
        images=sample_data / "micrographs", masks=sample_data / "labelbox" / "masks"
    )
    other = read_annotations(sample_data / export, options=options)
    assert other.format == fmt
    expected = named_maps(reference, kinds)
    got = named_maps(other)
    assert sorted(got) == sorted(expected)
    drawn = 0
    for name, classes in expected.items():
        np.testing.assert_array_equal(got[name], classes, err_msg=name)
        drawn += int((classes != "background").sum())
    assert drawn > 10_000  # the comparison covers real objects, not empty maps
    shown = {c for m in got.values() for c in np.unique(m)}
    assert len(shown) >= 3  # background and at least two classes


def _store(tmp_path: Path, sample_data: Path, export: str, *args: str) -> Path:
    from microprep.cli.main import main

    out = tmp_path / (export.replace("/", "_") + ".zarr")
    images = str(sample_data / "micrographs")
    masks = str(sample_data / "labelbox" / "masks")
    command = ["convert", str(sample_data / export), "--images", images, "--masks", masks]
    assert main([*command, "-q", "--out", str(out), *args]) == 0
    return out


def test_the_same_classes_file_gives_identical_stores(sample_data: Path, tmp_path: Path) -> None:
    """CVAT, VIA and Labelbox exports of the same scenes, converted with the same --classes,
    give stores with the same classes and the same class maps, pixel for pixel.

    Without --classes each format numbers the classes its own way (bubble is 1 from CVAT, grain
    is 1 from Labelbox). Labelbox has no ellipses and VIA no masks, so bubbles and precipitates
    (drawn with those) are dropped to compare what all three can express; they stay classes.
    """
    from microprep.store import open_dataset

    classes = tmp_path / "classes.txt"
    classes.write_text("background\ngrain\ndislocation\nbubble\nprecipitate\n", encoding="utf-8")
    exports = ["cvat/annotations.xml", *CASES]
    plain = {e: open_dataset(_store(tmp_path / "plain", sample_data, e)).classes for e in exports}
    assert plain["cvat/annotations.xml"][1] == "bubble"
    assert plain["labelbox/export.ndjson"][1] == "grain"
    args = ("--classes", str(classes), "--drop", "bubble,precipitate")
    stores = {e: open_dataset(_store(tmp_path, sample_data, e, *args)) for e in exports}
    reference = stores["cvat/annotations.xml"]
    assert reference.classes == ("background", "grain", "dislocation", "bubble", "precipitate")
    drawn = 0
    for export, ds in stores.items():
        assert ds.classes == reference.classes, export
        assert ds.nodes == reference.nodes, export
        assert ds.attrs["class_mapping"]["drop"] == ["bubble", "precipitate"]
        for node in reference.nodes:
            expected = reference[node]["labels"].values
            np.testing.assert_array_equal(ds[node]["labels"].values, expected, err_msg=export)
            np.testing.assert_array_equal(ds[node]["image"].values, reference[node]["image"].values)
            drawn += int(np.count_nonzero(expected))
    assert drawn > 4 * 10_000  # grains and dislocations in all four stores
    shown = set(
        np.unique(np.concatenate([reference[n]["labels"].values.ravel() for n in reference.nodes]))
    )
    assert shown == {0, 1, 2}


def test_coco_and_label_folders_written_from_cvat_give_the_same_store(
    sample_data: Path, tmp_path: Path
) -> None:
    """The CVAT sample written as COCO and as masks, then read back, gives the CVAT store's
    classes and class maps pixel for pixel. Instances: COCO keeps every object (its masks are
    the objects' own); a label folder gives one object per connected region of a class, so
    touching objects of one class merge and grouped parts apart from each other split."""
    from microprep.cli.main import main
    from microprep.store import open_dataset

    images = str(sample_data / "micrographs")
    written = tmp_path / "written"
    export = str(sample_data / "cvat" / "annotations.xml")
    assert main(["convert", export, "--images", images, "--to", "zarr,coco,masks", "-q",
                 "-o", str(written)]) == 0  # fmt: skip
    reference = open_dataset(written / "dataset.zarr")
    classes = str(written / "classes.txt")
    sources = {
        "coco": [str(written / "coco.json"), "--classes", classes],
        "masks": [str(written / "masks")],  # classes.txt beside the folder names the classes
    }
    drawn = 0
    for name, args in sources.items():
        out = tmp_path / f"{name}.zarr"
        assert main(["convert", *args, "--images", images, "-q", "-o", str(out)]) == 0, name
        ds = open_dataset(out)
        assert ds.classes == reference.classes, name
        assert sorted(ds.nodes) == sorted(reference.nodes), name  # folders: file name order
        for node in reference.nodes:
            expected = reference[node]["labels"].values
            np.testing.assert_array_equal(ds[node]["labels"].values, expected, err_msg=name)
            np.testing.assert_array_equal(ds[node]["image"].values, reference[node]["image"].values)
            drawn += int(np.count_nonzero(expected))
    assert drawn > 2 * 100_000
    coco = read_annotations(written / "coco.json")
    cvat = read_annotations(export)
    objects = [len(build_targets(item, coco.labels).instances.rasters) for item in coco]
    assert objects == [len(build_targets(item, cvat.labels).instances.rasters) for item in cvat]
