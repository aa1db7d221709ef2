"""The VIA corpus through ``prep convert``: every export variant converts, every ``bad_*`` file
exits 2 with one line naming the file, the place and the reason.

The files and the structures they follow are listed in tests/corpus/via/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microprep.cli.main import main
from readers.corpus import coco, convert, corpus_files

CORPUS, FILES, GOOD, BAD = corpus_files("via", (".json", ".csv"))

Capture = pytest.CaptureFixture[str]


def categories(out: Path) -> list[str]:
    return [c["name"] for c in coco(out)["categories"]]


def test_the_corpus_has_every_variant() -> None:
    names = {p.name for p in FILES}
    assert {"via1_regions_object.json", "via1_export.csv", "via2_export.csv"} <= names
    assert {"via2_project_attributes.json", "via3_project.json", "via3_no_attributes.json"} <= names
    assert BAD and (CORPUS / "README.md").is_file()
    readme = (CORPUS / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in FILES)


@pytest.mark.parametrize("export", GOOD, ids=lambda p: p.name)
def test_corpus_file_converts(export: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "out"
    assert convert(export, out) == 0, capsys.readouterr().err
    data = coco(out)
    assert data["images"] and data["annotations"]


@pytest.mark.parametrize("export", BAD, ids=lambda p: p.name)
def test_bad_corpus_file_exits_2_with_one_line(
    export: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out"
    assert convert(export, out) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert f"{export}" in err
    place = "$" in err or f"{export}:" in err  # a JSON path, or a CSV line
    assert place, err
    reason = err.rsplit(": ", 1)[-1]
    assert len(reason) > 10, err
    assert "'" not in err and "ReadOptions" not in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bad_via2_coordinate_string.json",
            '.all_points_x[1]: expected a number, got a string "5"',
        ),
        ("bad_via2_class_object.json", 'holds an object {"pore": true, "grain": true}'),
        ("bad_via3_rectangle_short.json", '$.metadata["1_short001"].xy: RECTANGLE needs 4'),
        ("bad_via_csv_cell_json.csv", ":2: column region_shape_attributes: invalid JSON"),
    ],
)
def test_bad_corpus_messages(name: str, message: str, tmp_path: Path, capsys: Capture) -> None:
    assert convert(CORPUS / name, tmp_path / "out") == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "via1_export.csv",
        "via2_annotations_no_attributes.json",
        "via2_project_no_attributes.json",
        "via3_no_attributes.json",
    ],
)
def test_regions_without_attributes_are_one_class_object(
    name: str, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / name, out) == 0
    assert categories(out) == ["object"]
    err = capsys.readouterr().err
    assert 'read as one class "object"' in err and "--label NAME" in err


def test_label_names_the_one_class(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "out"
    export = CORPUS / "via2_project_no_attributes.json"
    assert convert(export, out, "--label", "grain boundary") == 0
    assert categories(out) == ["grain boundary"]
    assert len(coco(out)["annotations"]) == 4
    assert 'one class "object"' not in capsys.readouterr().err


def test_label_gives_unlabelled_regions_a_class(tmp_path: Path) -> None:
    export = CORPUS / "via2_project_attributes.json"
    assert convert(export, tmp_path / "a") == 0
    assert categories(tmp_path / "a") == ["pore", "grain", "crack"]
    assert len(coco(tmp_path / "a")["annotations"]) == 3
    assert convert(export, tmp_path / "b", "--label", "other") == 0
    assert categories(tmp_path / "b") == ["pore", "grain", "other", "crack"]
    assert len(coco(tmp_path / "b")["annotations"]) == 4


def test_via1_regions_object(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "via1_regions_object.json", out) == 0
    assert categories(out) == ["cell", "nucleus"]
    assert [i["file_name"] for i in coco(out)["images"]] == ["cells 1.png", "cells 2.png"]
    assert len(coco(out)["annotations"]) == 4  # the region with an empty class is skipped


def test_via3_every_shape_id(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "via3_project.json", out) == 0
    assert categories(out) == ["pore", "grain"]
    assert len(coco(out)["annotations"]) == 9


def test_label_attribute_with_several_candidates(tmp_path: Path, capsys: Capture) -> None:
    export = tmp_path / "two.json"
    region = {
        "shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 5, "height": 5},
        "region_attributes": {"phase": "alpha", "who": "ann"},
    }
    export.write_text(json.dumps({"a.png1": {"filename": "a.png", "regions": [region]}}))
    assert convert(export, tmp_path / "a") == 2
    err = capsys.readouterr().err
    assert '"phase", "who"' in err and "--label-attribute NAME" in err
    assert "ReadOptions" not in err and ".label_attribute" not in err
    assert convert(export, tmp_path / "b", "--label-attribute", "phase") == 0
    assert categories(tmp_path / "b") == ["alpha"]


def test_validate_takes_label_too(tmp_path: Path, capsys: Capture) -> None:
    export = CORPUS / "via2_project_attributes.json"
    shapes = []
    for extra in ([], ["--label", "other"]):
        report = tmp_path / "report.json"
        args = ["validate", str(export), "--size", "64x64", "--json", str(report), *extra]
        assert main(args) == 0, capsys.readouterr().err
        shapes.append(json.loads(report.read_text())["summary"]["shapes"])
    assert shapes == [3, 4]
