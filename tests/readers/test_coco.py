"""The COCO instances reader, through the CLI and on the model: corpus files, mapping rules,
RLE decoding against pycocotools, hardened JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as coco_mask

from microprep.cli.main import cli, main
from microprep.errors import FormatError, GeometryError
from microprep.readers import detect_format, read_annotations
from microprep.readers.coco import detect, read_coco
from microprep.readers.coco_rle import RleError, crop_mask, string_counts
from microprep.store import open_dataset
from microprep.targets import build_targets

CORPUS = Path(__file__).parent.parent / "corpus" / "coco"
GOOD = sorted(p for p in CORPUS.glob("*.json") if not p.name.startswith("bad_"))
BAD = sorted(CORPUS.glob("bad_*.json"))


def doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 12}],
        "categories": [{"id": 1, "name": "pore"}],
        "annotations": [],
    }
    base.update(changes)
    return base


def write(tmp_path: Path, data: Any, name: str = "instances.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_corpus_files_convert(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["convert", str(path), "--to", "zarr,coco", "-q", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    ds = open_dataset(out / "dataset.zarr")
    assert ds.attrs["source_format"] == "coco-instances"
    assert len(json.loads((out / "coco.json").read_text())["annotations"]) >= 3


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_corpus_files_exit_2_with_one_line(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(path), "-o", str(tmp_path / "o.zarr")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert path.name in lines[0] and "$." in lines[0]
    assert not (tmp_path / "o.zarr").exists()


def test_val2017_excerpt_classes_by_id_groups_and_crowd() -> None:
    ds = read_annotations(CORPUS / "instances_val2017_excerpt.json")
    assert ds.format == "coco-instances"
    # ids 64, 1, 3 in the file: classes in id order, the unused "car" kept
    assert ds.labels.class_names == ("background", "person", "car", "potted plant")
    first, second = list(ds)
    assert [s.kind for s in first.shapes] == ["polygon", "polygon", "polygon"]
    plant, *person = first.shapes
    assert plant.label == "potted plant" and plant.group == 0
    assert plant.points.tolist() == [[10.5, 5.0], [30.25, 5.0], [30.25, 20.0], [10.5, 20.0]]
    assert {s.group for s in person} == {2} and {s.label for s in person} == {"person"}
    targets = build_targets(first, ds.labels)
    assert len(targets.instances.rasters) == 2  # the two polygons of one annotation: one object
    (crowd,) = second.shapes
    assert crowd.kind == "mask" and crowd.attributes == {"iscrowd": "1"}
    assert crowd.points.tolist() == [[10.0, 5.0], [13.0, 11.0]]
    assert crowd.bitmap is not None and crowd.bitmap.all()


def test_cvat_export_boxes_attributes_folders_and_compressed_rle() -> None:
    (item,) = read_annotations(CORPUS / "cvat_coco_1.0_instances_default.json")
    assert item.image.name == "grid 1/mg_01.png" and item.image.id == 1
    box, polygon, mask = item.shapes
    assert box.kind == "box" and box.points.tolist() == [[30.0, 2.0], [42.0, 12.0]]
    assert box.attributes == {"twinned": "false", "rotation": "0.0"}
    assert polygon.occluded and polygon.z_order == -1 and polygon.attributes == {"contrast": "dark"}
    assert mask.kind == "mask" and mask.points.tolist() == [[5.0, 20.0], [15.0, 30.0]]
    assert [s.order for s in item.shapes] == [0, 1, 2]


def test_rle_decoding_matches_pycocotools() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        full = np.asfortranarray((rng.random((h, w)) > 0.7).astype(np.uint8))
        rle = coco_mask.encode(full)
        top, left, bitmap = crop_mask(string_counts(rle["counts"].decode()), height=h, width=w)
        back = np.zeros((h, w), bool)
        back[top : top + bitmap.shape[0], left : left + bitmap.shape[1]] = bitmap
        np.testing.assert_array_equal(back, full.astype(bool))


def test_rle_refusals() -> None:
    with pytest.raises(RleError, match="not an RLE character"):
        string_counts("5 2")
    with pytest.raises(RleError, match="ends inside a count"):
        string_counts("5o")
    with pytest.raises(RleError, match="add up to 5"):
        crop_mask([2, 3], height=2, width=2)
    assert crop_mask([4], height=2, width=2)[2].shape == (0, 0)


@pytest.mark.parametrize(
    ("change", "error", "where", "message"),
    [
        ({"images": {}}, FormatError, "$.images", "expected an array"),
        ({"images": [{"id": 1, "file_name": "a.png", "width": 0, "height": 2}]}, FormatError,
         "$.images[0].width", "positive integer"),
        ({"categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]}, FormatError,
         "$.categories[1].name", "used twice"),
        ({"annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}]},
         FormatError, "$.annotations[0].category_id", "not the id of a category"),
        ({"annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}, GeometryError,
         "$.annotations[0]", "no segmentation and no bbox"),
        ({"annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1]}]},
         GeometryError, "$.annotations[0].bbox", "positive size"),
        ({"annotations": [{"image_id": 1, "category_id": 1,
                           "segmentation": [[0, 0, "1", 2, 3, 3]]}]},
         FormatError, "$.annotations[0].segmentation[0][2]", "expected a number"),
        ({"annotations": [{"image_id": 1, "category_id": 1,
                           "segmentation": {"size": [16, 12], "counts": [192]}}]},
         GeometryError, "$.annotations[0].segmentation.size", "[height, width] [12, 16]"),
        ({"annotations": [{"image_id": 1, "category_id": 1, "iscrowd": 2, "bbox": [0, 0, 1, 1]}]},
         FormatError, "$.annotations[0].iscrowd", "0 or 1"),
    ],
)  # fmt: skip
def test_errors_name_the_json_path(
    tmp_path: Path, change: dict[str, Any], error: type[Exception], where: str, message: str
) -> None:
    path = write(tmp_path, doc(**change))
    with pytest.raises(error) as info:
        read_coco(path)
    assert f"{path}: {where}: " in str(info.value)
    assert message in str(info.value)


def test_hardened_json(tmp_path: Path) -> None:
    text = json.dumps(doc()).replace('"width": 16', '"width": 16, "width": 17')
    with pytest.raises(FormatError, match=r"\$\.images\[0\]\.width: duplicate key"):
        read_coco(write(tmp_path, text))
    deep = json.dumps(doc(annotations=[{"x": json.loads("[" * 70 + "]" * 70)}]))
    with pytest.raises(FormatError, match="nested deeper"):
        read_coco(write(tmp_path, deep))


def test_detection(tmp_path: Path) -> None:
    assert detect_format(write(tmp_path, doc())) == "coco-instances"
    assert not detect(write(tmp_path, {"images": [], "annotations": []}, "two.json"))
    assert not detect(write(tmp_path, "[1, 2]", "list.json"))
    assert not detect(tmp_path / "missing.json")


def test_validate_accepts_a_coco_file(tmp_path: Path) -> None:
    annotations = [{"image_id": 1, "category_id": 1, "segmentation": [[1, 1, 6, 1, 6, 6]]}]
    path = write(tmp_path, doc(annotations=annotations))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_detection_of_a_large_file_with_categories_last(tmp_path: Path) -> None:
    """COCO 2017 writes categories last, after megabytes of images and annotations."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 8, "height": 8} for i in range(4000)]
    annotations = [{"image_id": i, "category_id": 1, "bbox": [0, 0, 2, 2]} for i in range(4000)]
    text = json.dumps({"info": {}, "images": images, "annotations": annotations,
                       "categories": [{"id": 1, "name": "pore"}]})  # fmt: skip
    path = write(tmp_path, text)
    assert path.stat().st_size > 300_000
    assert detect_format(path) == "coco-instances"
    assert len(read_coco(path)) == 4000
