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
