"""Schema failures of the image and shape tables read as sentences in the user's terms."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from microprep.model import AnnotatedImage, AnnotationSet, ImageInfo, LabelMap, LabelSpec, Shape
from microprep.validate import validate
from microprep.validate.schema_messages import schema_message
from microprep.validate.tables import load_table_schema, schema_findings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
LABELS = LabelMap((LabelSpec("fly"), LabelSpec("head", parent="fly")))


def check_names(table: str) -> set[str]:
    """The names of every check in ``schemas/<table>.yaml`` (column and whole-row checks)."""
    spec = yaml.safe_load((SCHEMAS / f"{table}.yaml").read_text(encoding="utf-8"))
    names = {c["options"]["check_name"] for c in spec.get("checks") or []}
    for column in spec["columns"].values():
        names |= {k for k in column if k not in ("dtype", "nullable", "title", "description")}
    return names


def leaks_a_check_name(message: str, names: set[str]) -> bool:
    return any(re.search(rf"\b{name}\b", message) for name in names)


def bad_shapes() -> pd.DataFrame:
    """Two rows that fail every check of schemas/shapes.yaml between them."""
    return pd.DataFrame(
        {
            "image": pd.Series(["frame_000010", ""], dtype="str"),
            "order": np.array([4, -1]),
            "label": pd.Series(["fly", ""], dtype="str"),
            "kind": pd.Series(["skeleton", "blob"], dtype="str"),
            "x_min": [np.nan, 5.0],
            "y_min": [np.nan, 1.0],
            "x_max": [np.nan, 1.0],
            "y_max": [np.nan, 2.0],
            "area": [np.nan, -1.0],
            "n_vertices": np.array([0, -1]),
            "z_order": np.array([0, 0]),
            "occluded": np.array([False, False]),
            "group": np.array([0, -2]),
            "track_id": pd.array([3, -1], dtype="Int64"),
            "rotation": [0.0, 1e9],
        }
    )


def test_every_shapes_check_reads_as_a_sentence() -> None:
    found = schema_findings(
        "shapes", bad_shapes(), load_table_schema("shapes"), frames={"frame_000010": 10}
    )
    messages = sorted({f.message for f in found})
    names = check_names("shapes")
    assert names >= {"finite_unless_kind", "not_less_than", "str_length", "isin", "in_range"}
    assert not [m for m in messages if leaks_a_check_name(m, names)], messages
    assert not [m for m in messages if "schema does not allow" in m], messages
    covered = {f.details["check"].split("(")[0] for f in found}
    assert covered == names
    assert "skeleton track 3 in frame 10 has no points (label 'fly')" in messages
    assert "blob track -1 in image '' has a reversed extent (x_max 1 < x_min 5)" in messages
    assert "blob track -1 in image '' has an empty label" in messages
    assert "blob track -1 in image '' has a negative group id (-2)" in messages
    assert (
        "blob track -1 in image '' has rotation (degrees) 1e+09 (it must be within -1e+06..1e+06)"
        in messages
    )
    assert any(
        m.startswith("blob track -1 in image '' has an unknown kind 'blob'") for m in messages
    )


def test_every_images_check_reads_as_a_sentence() -> None:
    df = pd.DataFrame(
        {
            "name": pd.Series(["", "b.png"], dtype="str"),
            "width": np.array([0, 8]),
            "height": np.array([-1, 8]),
            "frame": pd.array([-1, 2], dtype="Int64"),
            "subset": pd.Series([None, "train"], dtype="str"),
            "n_shapes": np.array([-1, 0]),
            "file_exists": pd.array([None, True], dtype="boolean"),
            "file_width": pd.array([0, 8], dtype="Int64"),
            "file_height": pd.array([0, 8], dtype="Int64"),
        }
    )
    found = schema_findings("images", df, load_table_schema("images"))
    messages = sorted(f.message for f in found)
    names = check_names("images")
    assert {f.details["check"].split("(")[0] for f in found} == names
    assert not [m for m in messages if leaks_a_check_name(m, names)], messages
    assert "image '' has width 0 (it must be more than 0)" in messages
    assert "image '' has a negative frame number (-1)" in messages
    assert "image '' has an empty name" in messages
    assert "image '' has image file height 0 (it must be more than 0)" in messages


def test_table_level_failures_name_the_column() -> None:
    df = bad_shapes().drop(columns=["label"]).assign(extra=1)
    found = schema_findings("shapes", df, load_table_schema("shapes"))
    messages = {f.message for f in found}
    assert "the shapes table has no column 'label'" in messages
    assert "the shapes table has a column 'extra' that the schema does not know" in messages
    assert schema_message("images", "dtype('int64')", "width", "float64", None) == (
        "the images table's column 'width' holds float64, not int64"
    )


def test_an_empty_skeleton_in_a_video_frame_is_named_by_track_and_frame() -> None:
    empty = Shape("skeleton", "fly", np.zeros((0, 2)), order=0, track_id=3, frame=10)
    box = Shape("box", "fly", np.array([[1.0, 1.0], [0.5, 3.0]]), order=1)
    items = [
        AnnotatedImage(ImageInfo("frame_000010", 16, 16, frame=10), (empty,)),
        AnnotatedImage(ImageInfo("a.png", 16, 16), (box,)),
    ]
    report = validate(AnnotationSet.from_items(items, labels=LABELS))
    schema = [f.message for f in report.findings if f.code == "schema-shapes"]
    assert schema == ["skeleton track 3 in frame 10 has no points (label 'fly')"]
