"""The Labelbox corpus through ``prep convert``: legacy (v1) and NDJSON (v2) exports with every
kind of classification, bare rows and video rows convert; every ``bad_*`` file exits 2 with one
line naming the file, the place and the reason, quoting JSON as JSON.

The files and the structures they follow are listed in tests/corpus/labelbox/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from microprep.model import AnnotationSet
from microprep.readers.labelbox import detect, read_labelbox
from microprep.readers.options import ReadOptions
from readers.corpus import coco, convert, corpus_files

CORPUS, FILES, GOOD, BAD = corpus_files("labelbox", (".json", ".ndjson"))

Capture = pytest.CaptureFixture[str]


def read(name: str) -> AnnotationSet:
    return read_labelbox(
        CORPUS / name, options=ReadOptions(size=(64, 64)), on_warning=lambda _m: None
    )


def attributes(name: str) -> dict[tuple[str, str], dict[str, str]]:
    """``(image, class) -> attributes`` of the first shape of each class in each image."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for item in read(name):
        for shape in item.shapes:
            out.setdefault((item.image.name, shape.label), dict(shape.attributes))
    return out


def test_the_corpus_is_documented() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert GOOD and BAD
    assert all(f"`{p.name}`" in readme for p in FILES)


@pytest.mark.parametrize("export", GOOD, ids=lambda p: p.name)
def test_corpus_file_converts(export: Path, tmp_path: Path, capsys: Capture) -> None:
    assert detect(export)
    out = tmp_path / "out"
    assert convert(export, out) == 0, capsys.readouterr().err
    assert coco(out)["annotations"]


@pytest.mark.parametrize("export", BAD, ids=lambda p: p.name)
def test_bad_corpus_file_exits_2_with_one_line(
    export: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out"
    assert convert(export, out) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert f"{export}" in err and ": $" in err, err
    assert len(err.rsplit(": ", 1)[-1]) > 10, err
    assert "'" not in err and "NoneType" not in err and "ReadOptions" not in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bad_legacy_v1_bbox_string.json",
            '$[0].Label.objects[0].bbox.top: expected a number, got a string "10"',
        ),
        ("bad_legacy_v1_frame_number.json", "$[0].Label[0].frameNumber: expected a frame number"),
        (
            "bad_ndjson_v2_polygon_point.ndjson",
            ':1: $.projects.clp00001.labels[0].annotations.objects[0].polygon[1]: missing "y"',
        ),
    ],
)
def test_bad_corpus_messages(name: str, message: str, tmp_path: Path, capsys: Capture) -> None:
    assert convert(CORPUS / name, tmp_path / "out") == 2
    assert message in capsys.readouterr().err


def test_messages_quote_json_as_json(tmp_path: Path, capsys: Capture) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"DataRow ID": "d", "External ID": "a.png", "Label": True}]))
    assert convert(export, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert 'expected an object, a list of frames or "Skip", got a boolean true' in err
    export.write_text(json.dumps({"DataRow ID": "d", "External ID": "a.png", "Label": 2.5}))
    assert convert(export, tmp_path / "out") == 2
    assert '$.Label: expected an object, a list of frames or "Skip", got a number 2.5' in (
        capsys.readouterr().err
    )
    export.write_text(
        json.dumps([{"DataRow ID": "d", "Label": {"objects": [{"title": "p", "bbox": {"a": 1}}]}}])
    )
    assert convert(export, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert '$[0].Label.objects[0].bbox: missing "top"' in err


# -- legacy (v1) ------------------------------------------------------------------------------


def test_legacy_classifications_of_every_kind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "legacy_v1_classifications.json", out) == 0
    assert [c["name"] for c in coco(out)["categories"]] == ["Cell", "Nucleus", "Centre", "Crack"]
    assert [i["file_name"] for i in coco(out)["images"]] == ["a.png", "b.png", "c.png"]
    attrs = attributes("legacy_v1_classifications.json")
    label_level = {
        "Image quality": "Good",  # radio: answer an object
        "Artefacts": "Scratch,Dust",  # checklist: answers
        "Stain": "DAPI,GFP",  # dropdown: answer a list
        "Comment": "slightly out of focus, left",  # text: answer a string
    }
    assert attrs["a.png", "Nucleus"] == label_level
    assert attrs["a.png", "Cell"] == label_level | {"Stage": "G1", "Marks": "Edge"}
    assert attrs["a.png", "Centre"] == label_level | {
        "Phase": "Alpha",
        "Phase/Confidence": "High",
        "Phase/Note": "near a grain boundary",
    }


def test_bare_legacy_row_reads_like_a_list_of_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "legacy_v1_bare_row.json", out) == 0
    assert [i["file_name"] for i in coco(out)["images"]] == ["single.png"]
    assert attributes("legacy_v1_bare_row.json")["single.png", "Cell"]["Image quality"] == "Good"


def test_bare_row_errors_have_no_index(tmp_path: Path, capsys: Capture) -> None:
    row = json.loads((CORPUS / "legacy_v1_bare_row.json").read_text())
    row["Label"]["objects"][0]["bbox"]["width"] = "wide"
    export = tmp_path / "row.json"
    export.write_text(json.dumps(row))
    assert convert(export, tmp_path / "out") == 2
    assert '$.Label.objects[0].bbox.width: expected a number, got a string "wide"' in (
        capsys.readouterr().err
    )


def test_legacy_video_rows_are_read_as_frames(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "legacy_v1_video_frames.json", out) == 0
    names = [i["file_name"] for i in coco(out)["images"]]
    assert names == ["run4.mp4#frame_000001", "run4.mp4#frame_000002", "run4.mp4#frame_000005"]
    err = capsys.readouterr().err
    assert "1 video label(s) skipped" in err and "NDJSON (export v2)" in err
    shapes = [
        (item.image.frame, s) for item in read("legacy_v1_video_frames.json") for s in item.shapes
    ]
    cells = [(frame, s.track_id, s.keyframe) for frame, s in shapes if s.label == "Cell"]
    assert cells == [(1, 1, True), (2, 1, False), (5, 1, True)]
    assert [s.track_id for _, s in shapes if s.label == "Debris"] == [2]
    assert dict(shapes[0][1].attributes) == {"Focus": "Sharp"}
    assert dict(shapes[-1][1].attributes) == {"Events": "Division"}


# -- NDJSON (v2) ------------------------------------------------------------------------------


def test_ndjson_classifications_global_and_nested() -> None:
    attrs = attributes("ndjson_v2_classifications.ndjson")
    global_ = {
        "Image quality": "Good",
        "Image quality/Contrast": "High",
        "Image quality/Issues": "Drift,Charging",
        "Artefacts": "Scratch,Dust",
        "Artefacts/Where": "top left",
        "Comment": "tilted 5 degrees",
    }
    assert attrs["a.png", "Nucleus"] == global_
    assert attrs["a.png", "Cell"] == global_ | {
        "Stage": "G1",
        "Stage/Why": "small nucleus",
        "Marks": "Edge,Blurred",
        "Note": "",
    }


def test_ndjson_video_frames(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(CORPUS / "ndjson_v2_video.ndjson", out) == 0
    names = [i["file_name"] for i in coco(out)["images"]]
    assert names == ["run4.mp4#frame_000001", "run4.mp4#frame_000003"]
    attrs = attributes("ndjson_v2_video.ndjson")
    assert attrs["run4.mp4#frame_000001", "Cell"] == {
        "Run": "run 4",
        "Focus": "Sharp",
        "Stage": "G2",
    }


@pytest.mark.parametrize(
    ("classification", "value"),
    [
        ({"name": "q", "answer": {"name": "yes"}}, "yes"),
        ({"name": "q", "answer": [{"name": "a"}, {"name": "b"}]}, "a,b"),
        ({"name": "q", "answer": "free text"}, "free text"),
        ({"name": "q", "answers": [{"title": "a"}, {"value": "b"}]}, "a,b"),
        ({"name": "q", "radio_answer": "yes"}, "yes"),
        ({"name": "q", "checklist_answers": ["a", "b"]}, "a,b"),
        ({"name": "q", "text_answer": {"content": "x"}}, "x"),
        ({"name": "q", "text_answer": "x"}, "x"),
        ({"name": "q", "answer": 1}, "1"),
        ({"name": "q", "answer": True}, "true"),
    ],
)
def test_every_answer_form_is_an_attribute(
    classification: dict[str, Any], value: str, tmp_path: Path
) -> None:
    row = {
        "data_row": {"id": "d1", "external_id": "a.png"},
        "media_attributes": {"width": 8, "height": 8},
        "projects": {
            "p": {
                "labels": [
                    {
                        "annotations": {
                            "objects": [
                                {
                                    "name": "pore",
                                    "annotation_kind": "ImagePoint",
                                    "point": {"x": 1, "y": 2},
                                    "classifications": [classification],
                                }
                            ],
                            "classifications": [dict(classification, name="g")],
                        }
                    }
                ]
            }
        },
    }
    export = tmp_path / "e.ndjson"
    export.write_text(json.dumps(row) + "\n")
    (shape,) = [s for item in read_labelbox(export) for s in item.shapes]
    assert dict(shape.attributes) == {"g": value, "q": value}
    assert convert(export, tmp_path / "out") == 0


def test_unreadable_classifications_are_a_warning(tmp_path: Path, capsys: Capture) -> None:
    label = {"objects": [{"title": "p", "point": {"x": 1, "y": 2}}], "classifications": [3, {}]}
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"DataRow ID": "d", "External ID": "a.png", "Label": label}]))
    assert convert(export, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "2 classification(s) or answer(s) without a name" in err
    assert "first at $[0].Label.classifications[0]" in err
