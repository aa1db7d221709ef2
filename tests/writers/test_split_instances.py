"""An instance whose mask is in several pieces (disconnected parts, holes cut out) reads back
as one object from VIA and Labelbox files: the pieces share a ``group_id``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from microprep.cli.main import main
from microprep.predict.instances import InstancePrediction
from microprep.readers import ReadOptions
from microprep.store.read import open_dataset
from microprep.targets.types import Raster
from writers.helpers import CLASSES, instance_store, objects


def _prediction() -> InstancePrediction:
    split = np.zeros((8, 12), bool)
    split[1:4, 1:4] = True
    split[5:8, 8:12] = True  # a second part, not touching the first
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False  # a hole: cut into hole-free pieces
    whole = np.ones((3, 3), bool)
    return InstancePrediction.from_rasters(
        (20, 20),
        [Raster((0, 0), split), Raster((12, 12), ring), Raster((10, 2), whole)],
        labels=[1, 2, 1],
        scores=[0.9, 0.8, 0.7],
    )


def _store(path: Path) -> Path:
    return instance_store(path, _prediction(), name="a.png")


def _objects(path: Path, options: ReadOptions | None = None) -> list[tuple[str, bytes]]:
    return sorted((name, mask.tobytes()) for name, mask in objects(path, options))


def _expected() -> list[tuple[str, bytes]]:
    pred = _prediction()
    ids = pred.id_map()
    return sorted((CLASSES[int(pred.labels[i])], (ids == i + 1).tobytes()) for i in range(3))


def _export(pred: Path, to: str, out: Path) -> None:
    assert main(["export-annotations", str(pred), "--to", to, "--out", str(out), "-q"]) == 0


def test_via_keeps_the_pieces_of_an_instance_together(tmp_path: Path) -> None:
    pred = _store(tmp_path / "p.zarr")
    out = tmp_path / "pre.json"
    _export(pred, "via", out)
    data = json.loads(out.read_text())
    regions = data["_via_img_metadata"]["a.png-1"]["regions"]
    groups = [r["region_attributes"].get("group_id") for r in regions]
    assert len(regions) > 3  # pieces were written
    assert groups.count(None) == 1  # only the one-piece instance has no group
    assert "group_id" in data["_via_attributes"]["region"]
    options = ReadOptions(size=(20, 20), label_attribute="class")
    assert _objects(out, options) == _expected()
    store = tmp_path / "back.zarr"
    assert main(["convert", str(out), "--size", "20x20", "--out", str(store), "-q"]) == 0
    with open_dataset(store) as ds:
        assert len(ds) == 1


def test_via_without_group_attribute_splits_the_instance(tmp_path: Path) -> None:
    """The check that the attribute is what joins the pieces."""
    pred = _store(tmp_path / "p.zarr")
    out = tmp_path / "pre.json"
    _export(pred, "via", out)
    data = json.loads(out.read_text())
    for region in data["_via_img_metadata"]["a.png-1"]["regions"]:
        region["region_attributes"].pop("group_id", None)
    out.write_text(json.dumps(data))
    assert len(_objects(out, ReadOptions(size=(20, 20), label_attribute="class"))) > 3


def _labelbox_export(mal: Path, out: Path) -> Path:
    """The NDJSON v2 export of the submitted MAL annotations (a text sub-classification is
    exported as ``text_answer.content``)."""
    objects = []
    for line in mal.read_text().splitlines():
        ann = json.loads(line)
        obj = {
            "feature_id": ann["uuid"],
            "name": ann["name"],
            "annotation_kind": "ImagePolygon",
            "polygon": ann["polygon"],
            "classifications": [
                {"name": c["name"], "value": c["name"], "text_answer": {"content": c["answer"]}}
                for c in ann.get("classifications", [])
            ],
        }
        objects.append(obj)
    row = {
        "data_row": {"id": "row-a", "global_key": "a.png"},
        "media_attributes": {"height": 20, "width": 20, "mime_type": "image/png"},
        "projects": {"p": {"name": "p", "labels": [{"annotations": {"objects": objects}}]}},
    }
    out.write_text(json.dumps(row) + "\n")
    return out


def test_labelbox_keeps_the_pieces_of_an_instance_together(tmp_path: Path) -> None:
    pred = _store(tmp_path / "p.zarr")
    out = tmp_path / "pre.ndjson"
    _export(pred, "labelbox", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    grouped = [line for line in lines if "classifications" in line]
    assert len(grouped) == len(lines) - 1
    assert grouped[0]["classifications"][0]["name"] == "group_id"
    assert _objects(_labelbox_export(out, tmp_path / "export.ndjson")) == _expected()


@pytest.mark.parametrize("to", ["via", "labelbox"])
def test_semantic_regions_carry_no_group(tmp_path: Path, to: str) -> None:
    from writers.helpers import semantic_store, tricky_map

    pred = semantic_store(tmp_path / "p.zarr", {"a.png": tricky_map()})
    out = tmp_path / "pre.json"
    _export(pred, to, out)
    assert "group_id" not in out.read_text().replace('"group_id":{"type"', "")
