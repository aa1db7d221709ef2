"""``--like``: labels, ids, names, sizes and subsets from the original export; mismatches and
incomplete stores exit 2 with one line and write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from microprep.cli.main import main
from microprep.predict.write import PREDICTION_KEY
from microprep.readers import ReadOptions, read_annotations
from microprep.targets import build_targets
from writers.helpers import semantic_store, tricky_map

LABELS = "".join(
    f"<label><name>{n}</name><color>{c}</color><type>any</type><attributes>{a}</attributes></label>"
    for n, c, a in [
        ("pore", "#112233", "<attribute><name>score</name><mutable>False</mutable>"
         "<input_type>text</input_type><default_value></default_value><values></values></attribute>"),
        ("grain", "#445566", ""),
        ("crack", "#778899", ""),
        ("dust", "#000000", ""),
    ]
)  # fmt: skip


def _cvat_like(path: Path, width: int = 30, height: int = 24) -> Path:
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
        f"<meta><project><id>7</id><name>p</name><labels>{LABELS}</labels></project></meta>"
        f'<image id="41" name="grid 1/a.png" width="{width}" height="{height}" subset="Train">'
        '<box label="grain" source="manual" occluded="0" xtl="1" ytl="1" xbr="3" ybr="3" '
        'z_order="0"></box></image></annotations>\n'
    )
    return path


@pytest.fixture
def pred(tmp_path: Path) -> Path:
    return semantic_store(tmp_path / "pred.zarr", {"a.png": tricky_map()})


def test_cvat_like_keeps_meta_ids_names_and_subsets(pred: Path, tmp_path: Path) -> None:
    like = _cvat_like(tmp_path / "task.xml")
    out = tmp_path / "pre.xml"
    assert (
        main(
            [
                "export-annotations",
                str(pred),
                "--to",
                "cvat",
                "--like",
                str(like),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "<id>7</id>" in text and "#112233" in text and "dust" in text
    assert '<image id="41" name="grid 1/a.png" width="30" height="24" subset="Train">' in text
    back = read_annotations(out)
    assert back.labels.class_names == ("background", "pore", "grain", "crack", "dust")
    item = next(iter(back))
    assert item.image.subset == "Train"
    scored = {s.label for s in item.shapes if "score" in s.attributes}
    assert scored <= {"pore"}  # only the label that declares score


def test_like_with_other_sizes_exits_2_and_writes_nothing(
    pred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    like = _cvat_like(tmp_path / "task.xml", width=32)
    out = tmp_path / "pre.xml"
    assert (
        main(
            [
                "export-annotations",
                str(pred),
                "--to",
                "cvat",
                "--like",
                str(like),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "32x24 in the export but 30x24 in the prediction" in err
    assert not out.exists()


def test_class_without_label_lists_both_sides(
    pred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    like = _cvat_like(tmp_path / "task.xml")
    like.write_text(like.read_text().replace("<name>crack</name>", "<name>scratch</name>"))
    out = tmp_path / "pre.xml"
    assert (
        main(
            [
                "export-annotations",
                str(pred),
                "--to",
                "cvat",
                "--like",
                str(like),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "['crack'] have no label" in err and "scratch" in err and "'grain'" in err
    assert not out.exists()


def test_incomplete_store_exits_2_and_writes_nothing(
    pred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.zarr"
    shutil.copytree(pred, broken)
    meta = json.loads((broken / "zarr.json").read_text())
    meta["attributes"][PREDICTION_KEY]["complete"] = False
    (broken / "zarr.json").write_text(json.dumps(meta))
    out = tmp_path / "pre.xml"
    assert main(["export-annotations", str(broken), "--to", "cvat", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "incomplete" in err
    assert not out.exists()


def test_via_like_keeps_the_project(pred: Path, tmp_path: Path) -> None:
    project = {
        "_via_settings": {"project": {"name": "lab"}},
        "_via_img_metadata": {
            "a.png1234": {"filename": "a.png", "size": 1234, "regions": [], "file_attributes": {}},
            "b.png99": {"filename": "b.png", "size": 99, "regions": [], "file_attributes": {}},
        },
        "_via_attributes": {
            "region": {"phase": {"type": "radio", "description": "", "default_options": {},
                                 "options": {"pore": "", "grain": "", "crack": ""}}},
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": ["a.png1234", "b.png99"],
    }  # fmt: skip
    like = tmp_path / "via.json"
    like.write_text(json.dumps(project))
    out = tmp_path / "pre.json"
    args = ["export-annotations", str(pred), "--to", "via", "--like", str(like), "--out", str(out)]
    assert main([*args, "--size", "30x24"]) == 0
    data = json.loads(out.read_text())
    assert data["_via_settings"] == project["_via_settings"]
    assert list(data["_via_img_metadata"]) == ["a.png1234", "b.png99"]
    regions = data["_via_img_metadata"]["a.png1234"]["regions"]
    assert regions and set(regions[0]["region_attributes"]) == {"phase"}
    back = read_annotations(out, options=ReadOptions(size=(30, 24)))
    assert set(back.labels.class_names) >= {"pore", "grain", "crack"}


def test_labelbox_like_uses_data_row_ids(pred: Path, tmp_path: Path) -> None:
    row = {
        "data_row": {"id": "ckrow1", "external_id": "a.png"},
        "media_attributes": {"height": 24, "width": 30, "mime_type": "image/png"},
        "projects": {"p": {"name": "p", "labels": [{"annotations": {"objects": [
            {"feature_id": "f", "name": n, "annotation_kind": "ImageBoundingBox",
             "bounding_box": {"top": 0, "left": 0, "height": 1, "width": 1}}
            for n in ("pore", "grain", "crack")]}}]}},
    }  # fmt: skip
    like = tmp_path / "export.ndjson"
    like.write_text(json.dumps(row) + "\n")
    out = tmp_path / "mal.ndjson"
    args = [
        "export-annotations",
        str(pred),
        "--to",
        "labelbox",
        "--like",
        str(like),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {json.dumps(line["dataRow"]) for line in lines} == {'{"id": "ckrow1"}'}
    assert {line["name"] for line in lines} == {"pore", "grain", "crack"}


def test_like_of_another_tool_is_refused(
    pred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    like = _cvat_like(tmp_path / "task.xml")
    out = tmp_path / "pre.ndjson"
    args = [
        "export-annotations",
        str(pred),
        "--to",
        "labelbox",
        "--like",
        str(like),
        "--out",
        str(out),
    ]
    assert main(args) == 2
    assert "is a cvat export" in capsys.readouterr().err
    assert not out.exists()


def test_mask_for_via_is_refused(pred: Path, tmp_path: Path) -> None:
    out = tmp_path / "pre.json"
    assert (
        main(["export-annotations", str(pred), "--to", "via", "--as", "mask", "--out", str(out)])
        == 2
    )
    assert not out.exists()


def test_written_like_file_matches_prediction(pred: Path, tmp_path: Path) -> None:
    like = _cvat_like(tmp_path / "task.xml")
    out = tmp_path / "pre.xml"
    assert (
        main(
            [
                "export-annotations",
                str(pred),
                "--to",
                "cvat",
                "--like",
                str(like),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    annotations = read_annotations(out)
    names = np.array(annotations.labels.class_names, dtype=object)
    item = next(iter(annotations))
    got = names[build_targets(item, annotations.labels).class_map]
    want = np.array(["background", "pore", "grain", "crack"], dtype=object)[tricky_map()]
    np.testing.assert_array_equal(got, want)
