"""The image and shape tables, and their pandera schemas read from schemas/*.yaml."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.validate import ValidateOptions, validate
from microprep.validate.tables import (
    IMAGE_COLUMNS,
    SHAPE_COLUMNS,
    finite_unless_kind,
    load_table_schema,
    reference_schemas,
    schema_findings,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
LABELS = LabelMap((LabelSpec("grain"),))
POLYGON = [[10.0, 10.0], [20.0, 10.0], [22.0, 18.0], [12.0, 16.0]]


def shp(kind: str, points: object, order: int, **kw: object) -> Shape:
    return Shape(kind=kind, label="grain", points=np.asarray(points, float), order=order, **kw)  # type: ignore[arg-type]


def every_kind() -> AnnotationSet:
    bitmap = np.zeros((3, 4), dtype=bool)
    bitmap[1, 1:3] = True
    shapes = (
        shp("box", [[1, 2], [5, 8]], 0, z_order=2, occluded=True, group=3),
        shp("polygon", POLYGON, 1),
        shp("ellipse", [[20, 20], [4, 3]], 2, rotation=90, track_id=7),
        shp("polyline", [[1, 30], [30, 30], [30, 2]], 3),
        shp("points", [[3, 3], [4, 4]], 4),
        shp("mask", [[2, 20], [6, 23]], 5, bitmap=bitmap),
        shp("tag", np.zeros((0, 2)), 6),
    )
    items = [
        AnnotatedImage(ImageInfo("a.png", 32, 40, frame=4, subset="train"), shapes),
        AnnotatedImage(ImageInfo("b.png", 16, 16), ()),
    ]
    return AnnotationSet.from_items(items, labels=LABELS)


def test_tables_have_one_row_per_image_and_shape() -> None:
    report = validate(every_kind())
    images, shapes = report.images, report.shapes
    assert tuple(images.columns) == IMAGE_COLUMNS
    assert tuple(shapes.columns) == SHAPE_COLUMNS
    assert images["name"].tolist() == ["a.png", "b.png"]
    assert images["n_shapes"].tolist() == [7, 0]
    assert images["frame"].tolist() == [4, pd.NA]
    assert images.loc[0, "subset"] == "train" and pd.isna(images.loc[1, "subset"])
    assert str(images["file_exists"].dtype) == "boolean"
    assert shapes["kind"].tolist() == ["box", "polygon", "ellipse", "polyline", "points", "mask",
                                       "tag"]  # fmt: skip
    area = dict(zip(shapes["kind"], shapes["area"], strict=True))
    assert area["box"] == 24.0
    assert area["polygon"] == pytest.approx(shapely.Polygon(POLYGON).area)
    assert area["ellipse"] == pytest.approx(math.pi * 12)
    assert area["mask"] == 2.0
    assert area["polyline"] == area["points"] == area["tag"] == 0.0
    ellipse = shapes.iloc[2]
    assert [ellipse.x_min, ellipse.y_min, ellipse.x_max, ellipse.y_max] == pytest.approx(
        [17, 16, 23, 24]
    )  # rotated by 90°: the radii swap
    assert shapes["track_id"].tolist()[2] == 7 and pd.isna(shapes["track_id"].iloc[0])
    box = shapes.iloc[0]
    assert (box.z_order, box.occluded, box.group, box.n_vertices) == (2, True, 3, 2)
    assert shapes.iloc[6][["x_min", "y_min", "x_max", "y_max"]].isna().all()
    assert shapes["n_vertices"].tolist() == [2, 4, 2, 3, 2, 2, 0]
    assert not [f for f in report.findings if f.code.startswith("schema-")]


def test_shipped_yaml_files_match_the_reference_definitions() -> None:
    for table, schema in reference_schemas().items():
        text = (SCHEMAS / f"{table}.yaml").read_text(encoding="utf-8")
        assert yaml.safe_load(text) == yaml.safe_load(schema.to_yaml()), table
        assert load_table_schema(table).to_yaml() == schema.to_yaml()


def test_schemas_are_read_from_the_yaml_files(tmp_path: Path) -> None:
    for name in ("images.yaml", "shapes.yaml"):
        shutil.copy(SCHEMAS / name, tmp_path / name)
    ds = every_kind()
    assert not [f for f in validate(ds).findings if f.code == "schema-shapes"]
    spec = yaml.safe_load((tmp_path / "shapes.yaml").read_text(encoding="utf-8"))
    spec["columns"]["area"]["less_than_or_equal_to"] = 20.0
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    stricter = validate(ds, ValidateOptions(schemas=tmp_path))
    found = [f for f in stricter.findings if f.code == "schema-shapes"]
    assert [(f.severity, f.image, f.shape, f.details["column"]) for f in found] == [
        ("error", "a.png", 0, "area"), ("error", "a.png", 1, "area"),
        ("error", "a.png", 2, "area"),
    ]  # fmt: skip
    assert (
        found[0].message
        == "box #0 in frame 4 has area 24 (it must be at most 20.0) (label 'grain')"
    )
    assert "less_than" not in found[0].message
    assert stricter.exit_code(strict=False) == 2


def test_image_schema_failures_name_the_image() -> None:
    items = [
        AnnotatedImage(ImageInfo("zero.png", 0, 8), ()),
        AnnotatedImage(ImageInfo("", 8, 8), ()),
    ]
    report = validate(AnnotationSet.from_items(items, labels=LABELS))
    found = [f for f in report.findings if f.code == "schema-images"]
    assert sorted((f.image, f.details["column"]) for f in found) == [
        ("", "name"), ("zero.png", "width"),
    ]  # fmt: skip


def test_row_checks_are_reported_once_per_row() -> None:
    df = validate(every_kind()).shapes.copy()
    df.loc[1, "x_max"] = 0.0  # below x_min: the whole-row check fails on 1 row
    df.loc[3, "y_min"] = -np.inf  # not finite
    df.loc[6, "x_min"] = np.nan  # a tag: fine
    found = schema_findings("shapes", df, load_table_schema("shapes"))
    checks = sorted((f.shape, f.details["check"].split("(")[0]) for f in found)
    assert checks == [(1, "not_less_than"), (3, "finite_unless_kind")]
    assert schema_findings("shapes", df, load_table_schema("shapes"), frozenset({1, 3})) == []


def test_finite_unless_kind() -> None:
    df = pd.DataFrame({"kind": ["box", "tag", "box"], "x": [1.0, np.nan, np.inf]})
    assert finite_unless_kind(df, columns=["x"], kinds=["tag"]).tolist() == [True, True, False]
