"""The checks of ``microprep.validate`` and the repairs, on annotation sets built in code."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import shapely
import tifffile
from PIL import Image

from microprep.model import (
    AnnotatedImage,
    AnnotationSet,
    ImageInfo,
    LabelMap,
    LabelSpec,
    Shape,
    StackInfo,
)
from microprep.readers import read_annotations
from microprep.targets.raster import fill_rings, rasterize_shape
from microprep.validate import Finding, Report, ValidateOptions, repair, validate

LABELS = LabelMap((LabelSpec("grain"), LabelSpec("pore")))
BOWTIE = [[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]]
# a bow-tie whose left lobe is traced twice: the even-odd fill leaves that lobe empty,
# make_valid keeps it (its repair changes pixels)
LOBES = [[0, 0], [5, 5], [0, 10], [0, 0], [5, 5], [10, 0], [10, 10], [5, 5], [0, 10]]
# the outer square traced twice, then a loop touching it at (0, 5): make_valid gives the square
# with a keyhole-shaped hole (78 px), the even-odd fill of the outline only the loop's 22 px
KEYHOLE = [
    [0, 0], [10, 0], [10, 10], [0, 10], [0, 0], [10, 0], [10, 10], [0, 10],
    [0, 5], [3, 3], [7, 3], [7, 7], [3, 7], [0, 5],
]  # fmt: skip


def shp(kind: str, points: Sequence[Sequence[float]], order: int = 0, **kw: object) -> Shape:
    """A shape labelled ``grain`` unless ``label`` is given."""
    kw.setdefault("label", "grain")
    return Shape(kind=kind, points=np.asarray(points, dtype=np.float64), order=order, **kw)  # type: ignore[arg-type]


def dataset(
    *images: tuple[str, int, int, Sequence[Shape]],
    labels: LabelMap = LABELS,
    warnings: Sequence[str] = (),
    stack: StackInfo | None = None,
) -> AnnotationSet:
    items = [AnnotatedImage(ImageInfo(n, w, h), tuple(s)) for n, w, h, s in images]
    return AnnotationSet.from_items(items, labels=labels, warnings=warnings, stack=stack)


def one(*shapes: Shape, size: tuple[int, int] = (32, 32)) -> AnnotationSet:
    return dataset(("a.png", size[0], size[1], shapes))


def found(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings} - {"unused-label"}


# ---------------------------------------------------------------------------------- geometry


def test_clean_set_has_no_findings_and_exit_0() -> None:
    report = validate(
        one(
            shp("box", [[1, 1], [5, 6]], 0),
            shp("polygon", [[10, 10], [20, 10], [15, 18]], 1, label="pore"),
            shp("ellipse", [[20, 20], [4, 3]], 2, rotation=30),
            shp("polyline", [[1, 30], [30, 30]], 3),
            shp("points", [[3, 3]], 4),
            shp("tag", np.zeros((0, 2)), 5),
        )
    )
    assert report.findings == []
    assert report.exit_code(strict=True) == 0
    assert report.format_table().endswith("0 error(s), 0 warning(s), 0 info")


def test_bowtie_converts_as_drawn_since_its_repair_covers_the_same_pixels() -> None:
    report = validate(one(shp("polygon", BOWTIE, 7)))
    assert report.errors == []
    (f,) = found(report, "harmless-invalid-polygon")
    assert (f.severity, f.image, f.shape, f.label) == ("warning", "a.png", 7, "grain")
    assert f.details["area_before"] == 0.0  # the two triangles cancel in the shoelace sum
    assert f.details["area_after"] == pytest.approx(50.0)
    assert f.details["changed_pixels"] == 0
    assert f.details["pixels"] == rasterize_shape(shp("polygon", BOWTIE), 32, 32).area
    assert "crosses itself (2 lobes)" in f.message
    assert f.message.endswith("converts as drawn")
    assert report.exit_code(strict=False) == 0 and report.exit_code(strict=True) == 1
    assert repair(one(shp("polygon", BOWTIE, 7)), report)[1] == []  # nothing to repair


def test_a_repair_that_changes_pixels_is_an_error_naming_the_change() -> None:
    report = validate(one(shp("polygon", LOBES, 7)))
    (f,) = report.errors
    assert (f.severity, f.code, f.image, f.shape, f.label) == (
        "error", "polygon-self-intersection", "a.png", 7, "grain",
    )  # fmt: skip
    assert f.details["area_after"] == pytest.approx(50.0)
    assert f.details["parts"] == 2
    drawn = rasterize_shape(shp("polygon", LOBES), 32, 32).area
    assert (f.details["pixels"], f.details["repaired_pixels"]) == (drawn, 50)
    assert f.details["changed_pixels"] == 50 - drawn > 0  # the twice-traced lobe
    assert f"changes {50 - drawn} pixel(s)" in f.message and "use --repair" in f.message
    assert report.exit_code(strict=False) == 2


def test_bowtie_repair_keeps_both_triangles_in_one_group() -> None:
    other = shp("box", [[20, 20], [22, 22]], 1, group=4)
    ds = one(shp("polygon", LOBES, 0), other)
    report = validate(ds)
    fixed, repairs = repair(ds, report)
    shapes = next(iter(fixed)).shapes
    parts = [s for s in shapes if s.order == 0]
    assert [s.kind for s in parts] == ["polygon", "polygon"]
    assert {s.group for s in parts} == {5}  # fresh id above the 4 in use: one object downstream
    total = sum(shapely.Polygon(s.points).area for s in parts)
    assert total == pytest.approx(50.0)  # both halves kept
    assert shapely.Polygon(BOWTIE).buffer(0).area == pytest.approx(25.0)  # what buffer(0) keeps
    (r,) = repairs
    assert (r.severity, r.code, r.shape) == ("info", "repaired-polygon-self-intersection", 0)
    assert r.details["area_after"] == pytest.approx(50.0)
    assert validate(fixed).errors == []
    assert fixed.images == ds.images and fixed.labels is ds.labels


def test_repair_keeps_an_existing_group() -> None:
    ds = one(shp("polygon", LOBES, 0, group=3))
    fixed, _ = repair(ds, validate(ds))
    assert {s.group for s in next(iter(fixed)).shapes} == {3}


def test_repair_of_a_ring_with_a_hole_makes_a_mask() -> None:
    ds = one(shp("polygon", KEYHOLE, 2, label="pore"), size=(16, 16))
    report = validate(ds)
    (f,) = found(report, "polygon-self-intersection")
    assert f.details["holes"] == 1
    assert f.details["area_after"] == pytest.approx(78.0)
    fixed, (r,) = repair(ds, report)
    (mask,) = next(iter(fixed)).shapes
    assert (mask.kind, mask.label, mask.order) == ("mask", "pore", 2)
    assert mask.points.tolist() == [[0, 0], [10, 10]]
    valid = shapely.make_valid(shapely.Polygon(KEYHOLE[4:]))
    rings = [np.asarray(valid.exterior.coords)[:-1], np.asarray(valid.interiors[0].coords)[:-1]]
    np.testing.assert_array_equal(mask.bitmap, fill_rings(rings, 0, 0, 10, 10))
    assert r.details["kind"] == "mask"
    assert r.details["pixels"] == int(mask.bitmap.sum()) == 78
    assert validate(fixed).errors == []


def test_duplicate_vertices_are_info_and_repaired() -> None:
    pts = [[0, 0], [4, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    ds = one(shp("polygon", pts, 0), shp("polyline", [[1, 1], [1, 1], [5, 5]], 1))
    report = validate(ds)
    dups = found(report, "duplicate-vertices")
    assert [(f.severity, f.shape, f.details["duplicates"]) for f in dups] == [
        ("info", 0, 2), ("info", 1, 1),
    ]  # fmt: skip
    assert report.exit_code(strict=True) == 0
    fixed, repairs = repair(ds, report)
    poly, line = next(iter(fixed)).shapes
    assert poly.points.tolist() == [[0, 0], [4, 0], [4, 4], [0, 4]]
    assert line.points.tolist() == [[1, 1], [5, 5]]
    assert [r.code for r in repairs] == ["repaired-duplicate-vertices"] * 2
    assert repairs[0].details["area_before"] == repairs[0].details["area_after"] == 16.0
    assert codes(validate(fixed)) == set()


def test_too_few_distinct_points() -> None:
    report = validate(
        one(
            shp("polygon", [[0, 0], [5, 5], [0, 0]], 0),
            shp("polygon", [[1, 1], [6, 6]], 1),
            shp("polygon", [[0, 0], [5, 5], [0, 0], [5, 5]], 2),
            shp("polyline", [[3, 3], [3, 3]], 3),
        )
    )
    few = found(report, "too-few-points")
    assert [(f.shape, f.details["distinct"]) for f in few] == [(0, 2), (1, 2), (2, 2), (3, 1)]
    assert all(f.severity == "error" for f in few)
    assert "polygon-self-intersection" not in codes(report)


def test_zero_area_shapes() -> None:
    bitmap = np.zeros((2, 3), dtype=bool)
    report = validate(
        one(
            shp("box", [[2, 2], [2, 8]], 0),
            shp("polygon", [[0, 0], [5, 5], [10, 10]], 1),
            shp("ellipse", [[10, 10], [0, 3]], 2),
            shp("mask", [[1, 1], [4, 3]], 3, bitmap=bitmap),
        )
    )
    zero = found(report, "zero-area")
    assert [f.shape for f in zero] == [1, 0, 2, 3]
    assert all(f.severity == "error" for f in zero)
    assert codes(report) == {"zero-area"}


def test_reversed_box_non_finite_malformed_and_vertex_cap() -> None:
    square = [[0, 0], [8, 0], [8, 8], [0, 8], [0, 4]]
    report = validate(
        one(
            shp("box", [[8, 8], [2, 2]], 0),
            shp("polygon", [[0, 0], [np.nan, 1], [2, 2]], 1),
            shp("ellipse", [[5, 5], [2, 2]], 2, rotation=math.inf),
            shp("ellipse", [[5, 5], [2, 2], [1, 1]], 3),
            shp("polygon", square, 4),
        ),
        ValidateOptions(max_vertices=4),
    )
    assert [(f.code, f.shape) for f in report.errors] == [
        ("non-finite", 1), ("non-finite", 2), ("malformed-shape", 3), ("too-many-vertices", 4),
        ("reversed-box", 0),
    ]  # fmt: skip
    # the non-finite shapes are not reported again by the table schema
    assert not found(report, "schema-shapes")


def test_rotated_geometry_is_used_for_outside_checks() -> None:
    # rotated by 45° about its centre, this box's corner pokes out of the 32 x 32 image
    report = validate(
        one(
            shp("box", [[2, 2], [12, 12]], 0, rotation=45),
            shp("box", [[2, 2], [12, 12]], 1),
            shp("ellipse", [[30, 16], [6, 1]], 2, rotation=90),
            shp("ellipse", [[30, 16], [6, 1]], 3),
        )
    )
    assert [f.shape for f in found(report, "partly-outside")] == [0, 3]


def test_partly_and_wholly_outside() -> None:
    corner = shp("box", [[-12, -12], [-2, -2]], 3, rotation=45)  # extent reaches the image
    report = validate(
        one(
            shp("box", [[28, 5], [40, 9]], 0),
            shp("polygon", [[40, 40], [50, 40], [45, 50]], 1),
            shp("polyline", [[-5, 10], [40, 10]], 2),
            corner,
            shp("points", [[-1, -1], [40, 40]], 4),
            shp("polyline", [[-5, 40], [40, 40]], 5),
        )
    )
    assert corner.extent()[2] > 0
    assert [f.shape for f in found(report, "partly-outside")] == [0, 2]
    assert [f.shape for f in found(report, "wholly-outside")] == [1, 3, 4, 5]
    assert {f.severity for f in found(report, "wholly-outside")} == {"error"}
    assert report.exit_code(strict=False) == 2


def test_repair_drops_wholly_outside_shapes() -> None:
    annotations = one(shp("box", [[28, 5], [40, 9]], 0), shp("box", [[100, 100], [110, 110]], 1))
    fixed, done = repair(annotations, validate(annotations))
    assert [f.code for f in done] == ["repaired-wholly-outside"]
    assert [s.order for s in next(iter(fixed)).shapes] == [0]
    assert validate(fixed).exit_code(strict=False) == 0


def test_shape_covering_no_pixel_centre() -> None:
    thin = shp("box", [[1.6, 1.0], [1.9, 9.0]], 0)  # between the centres x = 1.5 and 2.5
    sliver = shp("polygon", [[0, 0.6], [30, 0.7], [30, 0.9]], 1)
    small = shp("box", [[3.6, 3.6], [3.9, 3.9]], 2)
    ok = shp("box", [[5.0, 5.0], [5.6, 5.6]], 3)  # covers the centre (5.5, 5.5)
    report = validate(one(thin, sliver, small, ok))
    (f0, f1, f2) = found(report, "no-pixels")
    assert [f0.shape, f1.shape, f2.shape] == [0, 1, 2]
    assert f0.severity == "warning"
    for s in (thin, sliver, small):
        assert not rasterize_shape(s, 32, 32).mask.any()
    assert rasterize_shape(ok, 32, 32).mask.any()


# ----------------------------------------------------------------------------------- labels


def test_label_checks() -> None:
    labels = LabelMap((LabelSpec("grain"), LabelSpec("pore"), LabelSpec("crack", declared=False)))
    a = [shp("box", [[1, 1], [5, 5]], 0), shp("box", [[6, 6], [9, 9]], 1, label="crack")]
    ds = dataset(
        ("a.png", 32, 32, a),
        ("b.png", 32, 32, [shp("box", [[1, 1], [5, 5]], 2, label="ghost")]),
        labels=labels,
        warnings=["label 'crack' is not declared (annotations.xml:12)"],
    )
    report = validate(ds)
    (undeclared,) = found(report, "undeclared-label")
    assert (undeclared.severity, undeclared.label, undeclared.details) == (
        "warning", "crack", {"shapes": 1},
    )  # fmt: skip
    (unused,) = found(report, "unused-label")
    assert (unused.severity, unused.label) == ("info", "pore")
    (missing,) = found(report, "label-not-in-map")
    assert (missing.severity, missing.label) == ("error", "ghost")
    (reader,) = found(report, "reader-warning")
    assert reader.severity == "warning" and "crack" in reader.message


# ----------------------------------------------------------------------------------- images


def test_duplicate_names_and_identical_shapes() -> None:
    shapes = [shp("box", [[1, 1], [5, 5]], 0), shp("ellipse", [[9, 9], [2, 3]], 1)]
    ds = dataset(
        ("a.png", 32, 32, shapes),
        ("b.png", 32, 32, shapes),
        ("c.png", 32, 32, [shp("box", [[1, 1], [5, 5.01]], 0), shapes[1]]),
        ("a.png", 32, 32, []),
        ("d.png", 32, 32, []),
    )
    report = validate(ds)
    (dup,) = found(report, "duplicate-image-name")
    assert (dup.severity, dup.image, dup.details["count"]) == ("error", "a.png", 2)
    (same,) = found(report, "identical-shapes")
    assert (same.severity, same.image, same.details["same_as"]) == ("warning", "b.png", "a.png")
    (empty,) = found(report, "images-without-shapes")
    assert (empty.severity, empty.details["count"]) == ("info", 2)
    stack = dataset(("f0", 32, 32, shapes), ("f1", 32, 32, shapes), stack=StackInfo())
    assert not found(validate(stack), "identical-shapes")


def test_image_files(tmp_path: Path) -> None:
    Image.new("L", (32, 32)).save(tmp_path / "a.png")
    Image.new("L", (30, 32)).save(tmp_path / "b.png")
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((24, 16), dtype=np.uint16))
    (tmp_path / "d.png").write_bytes(b"not an image")
    box = [shp("box", [[1, 1], [5, 5]], 0)]
    ds = dataset(
        ("a.png", 32, 32, box), ("b.png", 32, 32, box), ("c.tif", 16, 24, box),
        ("d.png", 32, 32, box), ("e.png", 32, 32, box),
    )  # fmt: skip
    report = validate(ds, ValidateOptions(images=tmp_path, check_overlaps=False))
    errors = {f.code: f for f in report.errors}
    assert set(errors) == {"image-size-mismatch", "unreadable-image-file", "missing-image-file"}
    assert errors["image-size-mismatch"].image == "b.png"
    assert errors["image-size-mismatch"].details == {"export": [32, 32], "file": [30, 32]}
    assert errors["unreadable-image-file"].image == "d.png"
    assert errors["missing-image-file"].image == "e.png"
    table = report.images.set_index("name")
    assert table["file_exists"].tolist() == [True, True, True, True, False]
    assert table.loc["c.tif", "file_width"] == 16 and table.loc["c.tif", "file_height"] == 24
    assert validate(ds).images["file_exists"].isna().all()  # no folder: unknown


# --------------------------------------------------------------------------------- overlaps


def test_overlap_pairs_above_the_threshold() -> None:
    a = shp("box", [[0, 0], [10, 10]], 0)
    b = shp("box", [[1, 0], [11, 10]], 1, label="pore")  # IoU 90 / 110 = 0.818
    c = shp("box", [[20, 0], [30, 10]], 2)
    d = shp("box", [[25, 0], [35, 10]], 3)  # IoU with c: 50 / 150 = 0.333
    report = validate(one(a, b, c, d, size=(40, 40)))
    (f,) = found(report, "overlapping-objects")
    assert (f.severity, f.shape, f.details["other"], f.details["other_label"]) == (
        "warning", 0, 1, "pore",
    )  # fmt: skip
    assert f.details["iou"] == pytest.approx(90 / 110)
    low = validate(one(a, b, c, d, size=(40, 40)), ValidateOptions(iou_threshold=0.3))
    assert [(f.shape, f.details["other"]) for f in found(low, "overlapping-objects")] == [
        (0, 1), (2, 3),
    ]  # fmt: skip
    off = validate(one(a, b, size=(40, 40)), ValidateOptions(check_overlaps=False))
    assert not found(off, "overlapping-objects")


def test_overlaps_skip_parts_of_one_object_and_other_images() -> None:
    a = shp("box", [[0, 0], [10, 10]], 0, group=2)
    b = shp("box", [[1, 0], [11, 10]], 1, group=2)
    assert codes(validate(one(a, b))) == set()
    ds = dataset(("a.png", 32, 32, [replace(a, group=0)]), ("b.png", 32, 32, [replace(b, group=0)]))
    assert not found(validate(ds), "overlapping-objects")


def test_overlap_with_a_mask_uses_pixels() -> None:
    bitmap = np.ones((10, 10), dtype=bool)
    mask = shp("mask", [[0, 0], [10, 10]], 0, bitmap=bitmap, label="pore")
    ellipse = shp("ellipse", [[5, 5], [5, 5]], 1)
    report = validate(one(mask, ellipse))
    (f,) = found(report, "overlapping-objects")
    pixels = rasterize_shape(ellipse, 32, 32).area
    assert f.details["iou"] == pytest.approx(pixels / 100)


# ----------------------------------------------------------------------------------- report


def test_report_json_table_and_exit_codes() -> None:
    ds = one(shp("polygon", LOBES, 0), shp("box", [[28, 5], [40, 9]], 1))
    report = validate(ds)
    data = json.loads(json.dumps(report.to_json()))
    assert data["summary"]["errors"] == 1 and data["summary"]["warnings"] == 1
    assert data["summary"]["codes"]["polygon-self-intersection"] == {
        "severity": "error", "count": 1,
    }  # fmt: skip
    assert [f["severity"] for f in data["findings"]] == ["error", "warning", "info"]
    table = report.format_table()
    assert "\x1b" not in table
    lines = table.splitlines()
    assert lines[0].split() == ["severity", "code", "image", "shape", "message"]
    assert lines[1].startswith("error ") and lines[2].startswith("warning ")
    assert "polygon-self-intersection  error          1" in table
    assert report.exit_code(strict=False) == 2
    short = Report("x", "memory", findings=[Finding("warning", "w", "m")] * 3)
    assert "... 2 more w finding(s) not shown" in short.format_table(max_per_code=1)
    assert short.exit_code(strict=False) == 0 and short.exit_code(strict=True) == 1


def test_repair_of_a_streaming_set_iterates_again(write_cvat: Callable[..., Path]) -> None:
    export = write_cvat(
        '<image id="0" name="a.png" width="32" height="24">'
        '<polygon label="precipitate" points="0,0;5,5;0,10;0,0;5,5;10,0;10,10;5,5;0,10"'
        ' z_order="0"/>'
        '<box label="bubble" xtl="20" ytl="2" xbr="25" ybr="8" z_order="0"/></image>'
    )
    ds = read_annotations(export)
    fixed, repairs = repair(ds, validate(ds))
    assert len(repairs) == 1
    for _ in range(2):
        (item,) = list(fixed)
        assert [s.kind for s in item.shapes] == ["polygon", "polygon", "box"]
    assert validate(fixed).errors == []
    assert repair(fixed, validate(fixed)) == (fixed, [])


def test_stack_frames_take_the_folder_files_and_unsafe_names(tmp_path: Path) -> None:
    Image.new("L", (32, 32)).save(tmp_path / "slice_2.png")
    Image.new("L", (32, 20)).save(tmp_path / "slice_10.png")
    box = (shp("box", [[1, 1], [5, 5]], 0),)

    def stack(frames: int) -> AnnotationSet:
        items = [
            AnnotatedImage(ImageInfo(f"frame_{f:06d}", 32, 32, frame=f), box if f == 0 else ())
            for f in range(frames)
        ]
        return AnnotationSet.from_items(items, labels=LABELS, stack=StackInfo())

    report = validate(stack(2), ValidateOptions(images=tmp_path))
    (f,) = report.errors  # frame 1 is the second file in natural order: slice_10.png
    assert (f.code, f.image, f.details["file"]) == ("image-size-mismatch", "frame_000001", [32, 20])
    report = validate(stack(3), ValidateOptions(images=tmp_path))
    assert [f.code for f in report.errors] == ["image-files-mismatch"]
    report = validate(dataset(("../x.png", 32, 32, box)), ValidateOptions(images=tmp_path))
    assert [(f.code, f.image) for f in report.errors] == [("unsafe-image-name", "../x.png")]
