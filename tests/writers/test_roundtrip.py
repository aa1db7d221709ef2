"""``prep export-annotations`` then the matching reader (or pycocotools) gives the prediction
back: class maps pixel for pixel, every instance's mask exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from microprep.cli.main import main
from microprep.readers import ReadOptions, read_annotations
from microprep.store.read import open_dataset
from microprep.targets import build_targets
from writers.helpers import (
    CLASSES,
    instance_prediction,
    instance_store,
    objects,
    semantic_store,
    tricky_map,
)


def _named_maps(path: Path, options: ReadOptions | None = None) -> dict[str, np.ndarray]:
    annotations = read_annotations(path, options=options)
    names = np.array(annotations.labels.class_names, dtype=object)
    out = {}
    for item in annotations:
        out[item.image.name] = names[build_targets(item, annotations.labels).class_map]
    return out


def _expected_objects() -> list[tuple[str, np.ndarray]]:
    ids = instance_prediction().id_map()
    pred = instance_prediction()
    return sorted(
        ((CLASSES[int(pred.labels[i])], ids == i + 1) for i in range(len(pred))),
        key=lambda o: int(o[1].sum()),
    )


def _labelbox_export(mal: Path, out: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """The NDJSON export Labelbox gives once the MAL annotations are submitted."""
    rows: dict[str, list[dict[str, object]]] = {}
    for line in mal.read_text().splitlines():
        ann = json.loads(line)
        rows.setdefault(ann["dataRow"]["globalKey"], []).append(
            {
                "feature_id": ann["uuid"],
                "name": ann["name"],
                "annotation_kind": "ImagePolygon",
                "polygon": ann["polygon"],
            }
        )
    lines = []
    for key, row_objects in rows.items():
        height, width = sizes[key]
        row = {
            "data_row": {"id": f"row-{key}", "global_key": key},
            "media_attributes": {"height": height, "width": width, "mime_type": "image/png"},
            "projects": {"p": {"name": "p", "labels": [{"annotations": {"objects": row_objects}}]}},
        }
        lines.append(json.dumps(row))
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture
def semantic(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    maps = {"a.png": tricky_map(), "b.png": np.rot90(tricky_map()).copy()}
    return semantic_store(tmp_path / "pred.zarr", maps), maps


def _names(class_map: np.ndarray) -> np.ndarray:
    return np.array(CLASSES, dtype=object)[class_map]


@pytest.mark.parametrize("as_shape", ["polygon", "mask"])
def test_cvat_semantic_round_trip(
    semantic: tuple[Path, dict], tmp_path: Path, as_shape: str
) -> None:
    pred, maps = semantic
    out = tmp_path / "pre.xml"
    assert (
        main(["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "--as", as_shape])
        == 0
    )
    back = _named_maps(out)
    assert set(back) == set(maps)
    for name, class_map in maps.items():
        np.testing.assert_array_equal(back[name], _names(class_map))


def test_cvat_through_prep_convert(semantic: tuple[Path, dict], tmp_path: Path) -> None:
    pred, maps = semantic
    out = tmp_path / "pre.xml"
    assert main(["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "-q"]) == 0
    store = tmp_path / "back.zarr"
    assert main(["convert", str(out), "--out", str(store), "-q"]) == 0
    with open_dataset(store) as ds:
        classes = np.array(ds.classes, dtype=object)
        for node in ds:
            name = node.attrs["name"]
            np.testing.assert_array_equal(classes[node["labels"].values], _names(maps[name]))


def test_via_semantic_round_trip(semantic: tuple[Path, dict], tmp_path: Path) -> None:
    pred, maps = semantic
    out = tmp_path / "pre.json"
    assert main(["export-annotations", str(pred), "--to", "via", "--out", str(out), "-q"]) == 0
    # both maps are 24x30 / 30x24: read each with its own size
    for name, class_map in maps.items():
        h, w = class_map.shape
        back = _named_maps(out, ReadOptions(size=(w, h), label_attribute="class"))
        np.testing.assert_array_equal(back[name], _names(class_map))


def test_labelbox_semantic_round_trip(semantic: tuple[Path, dict], tmp_path: Path) -> None:
    pred, maps = semantic
    out = tmp_path / "pre.ndjson"
    assert main(["export-annotations", str(pred), "--to", "labelbox", "--out", str(out), "-q"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({line["uuid"] for line in lines}) == len(lines)
    sizes = {name: m.shape for name, m in maps.items()}
    back = _named_maps(_labelbox_export(out, tmp_path / "export.ndjson", sizes))
    for name, class_map in maps.items():
        np.testing.assert_array_equal(back[name], _names(class_map))


@pytest.mark.parametrize("kind", ["results", "instances"])
def test_coco_semantic_decodes_to_the_class_maps(
    semantic: tuple[Path, dict], tmp_path: Path, kind: str
) -> None:
    pred, maps = semantic
    out = tmp_path / "pre.json"
    args = ["export-annotations", str(pred), "--to", "coco", "--coco-kind", kind, "--out", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    records = data if kind == "results" else data["annotations"]
    names = ["a.png", "b.png"]
    painted = {name: np.zeros_like(m, dtype=np.int64) for name, m in maps.items()}
    for record in records:
        m = coco_mask.decode(record["segmentation"]).astype(bool)
        target = painted[names[record["image_id"] - 1]]
        assert not target[m].any()  # regions never overlap
        target[m] = record["category_id"]
    for name, class_map in maps.items():
        np.testing.assert_array_equal(painted[name], class_map)


@pytest.mark.parametrize("as_shape", ["polygon", "mask"])
def test_cvat_instances_round_trip(tmp_path: Path, as_shape: str) -> None:
    pred = instance_store(tmp_path / "inst.zarr")
    out = tmp_path / "pre.xml"
    assert (
        main(["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "--as", as_shape])
        == 0
    )
    back = objects(out)
    expected = _expected_objects()
    assert [b[0] for b in back] == [e[0] for e in expected]
    for (_, got), (_, want) in zip(back, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    text = out.read_text()
    assert '<attribute name="score">0.9000</attribute>' in text
    assert text.index('z_order="3"') < text.index('z_order="2"')  # highest score on top


def test_score_threshold_leaves_out_low_scores(tmp_path: Path) -> None:
    pred = instance_store(tmp_path / "inst.zarr")
    out = tmp_path / "pre.xml"
    args = [
        "export-annotations",
        str(pred),
        "--to",
        "cvat",
        "--out",
        str(out),
        "--score-threshold",
        "0.5",
    ]
    assert main(args) == 0
    assert len(objects(out)) == 2


def test_coco_instances_decode_to_every_mask(tmp_path: Path) -> None:
    pred = instance_store(tmp_path / "inst.zarr")
    out = tmp_path / "coco.json"
    assert (
        main(
            [
                "export-annotations",
                str(pred),
                "--to",
                "coco",
                "--coco-kind",
                "instances",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    got = sorted(
        (
            (CLASSES[a["category_id"]], coco_mask.decode(a["segmentation"]).astype(bool))
            for a in data["annotations"]
        ),
        key=lambda o: int(o[1].sum()),
    )
    for (gname, gmask), (wname, wmask) in zip(got, _expected_objects(), strict=True):
        assert gname == wname
        np.testing.assert_array_equal(gmask, wmask)
    assert [a["score"] for a in data["annotations"]] == pytest.approx([0.9, 0.8, 0.3])


def test_simplify_reports_the_changed_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yy, xx = np.mgrid[:64, :64]
    disk = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2).astype(np.uint8)
    pred = semantic_store(tmp_path / "pred.zarr", {"d.png": disk})
    out = tmp_path / "pre.xml"
    assert (
        main(
            ["export-annotations", str(pred), "--to", "cvat", "--out", str(out), "--simplify", "2"]
        )
        == 0
    )
    line = capsys.readouterr().out
    changed = int(line.split("changed ")[1].split(" pixels")[0])
    back = _named_maps(out)["d.png"]
    assert changed == int(np.count_nonzero(back != _names(disk)))
    assert changed > 0
    assert out.read_text().count(";") < 4 * 20 * 2  # far fewer vertices than the staircase
