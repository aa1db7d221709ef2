"""``--like`` a CVAT project export: each image gets its subset and ``task_id`` from the export
(the layout of CVAT's ``dump_as_cvat_annotation`` for a project: ``<image id name subset
task_id width height>``), and images named alike in two subsets are told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from microprep.cli.main import main
from microprep.store.read import open_dataset
from writers.helpers import CLASSES, semantic_store, tricky_map

LABELS = "".join(
    f"<label><name>{n}</name><color>#{i:06x}</color><type>any</type><attributes/></label>"
    for i, n in enumerate(CLASSES[1:], start=1)
)


def _project_export(path: Path) -> Path:
    tasks = "".join(
        f"<task><id>{t}</id><name>t{t}</name><size>1</size><mode>annotation</mode>"
        f"<subset>{s}</subset></task>"
        for t, s in ((5, "Train"), (6, "Validation"))
    )
    images = "".join(
        f'<image id="0" name="a.png" subset="{s}" task_id="{t}" width="30" height="24"></image>'
        for t, s in ((5, "Train"), (6, "Validation"))
    )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
        f"<meta><project><id>3</id><name>p</name><labels>{LABELS}</labels>"
        f"<tasks>{tasks}</tasks></project></meta>{images}</annotations>\n"
    )
    return path


@pytest.fixture
def maps() -> dict[str, np.ndarray]:
    other = tricky_map()
    other[other == 1] = 2
    return {"Train/a.png": tricky_map(), "Validation/a.png": other}


def _export(pred: Path, like: Path, out: Path) -> int:
    args = ["export-annotations", str(pred), "--to", "cvat", "--like", str(like)]
    return main([*args, "--out", str(out), "-q"])


def test_project_like_writes_subset_and_task_per_image(
    tmp_path: Path, maps: dict[str, np.ndarray]
) -> None:
    pred = semantic_store(tmp_path / "pred.zarr", maps)
    like = _project_export(tmp_path / "project.xml")
    out = tmp_path / "pre.xml"
    assert _export(pred, like, out) == 0
    root = etree.parse(str(out)).getroot()
    images = {(i.get("subset"), i.get("task_id"), i.get("name")) for i in root.iter("image")}
    assert images == {("Train", "5", "a.png"), ("Validation", "6", "a.png")}
    assert root.find("meta/project/tasks/task/id").text == "5"  # the <meta> is the export's
    store = tmp_path / "back.zarr"
    assert main(["convert", str(out), "--out", str(store), "-q"]) == 0
    names = np.array(CLASSES, dtype=object)
    with open_dataset(store) as ds:
        classes = np.array(ds.classes, dtype=object)
        got = {node.attrs["name"]: classes[node["labels"].values] for node in ds}
    assert set(got) == set(maps)
    for name, class_map in maps.items():
        np.testing.assert_array_equal(got[name], names[class_map])


def test_bare_name_of_two_subsets_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = semantic_store(tmp_path / "pred.zarr", {"a.png": tricky_map()})
    like = _project_export(tmp_path / "project.xml")
    out = tmp_path / "pre.xml"
    assert _export(pred, like, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matches 2 images" in err and "Train, Validation" in err
    assert not out.exists()


def test_task_export_writes_no_task_id(tmp_path: Path) -> None:
    pred = semantic_store(tmp_path / "pred.zarr", {"a.png": tricky_map()})
    like = tmp_path / "task.xml"
    like.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
        f"<meta><task><id>9</id><name>t</name><labels>{LABELS}</labels></task></meta>"
        '<image id="3" name="a.png" width="30" height="24"></image></annotations>\n'
    )
    out = tmp_path / "pre.xml"
    assert _export(pred, like, out) == 0
    image = etree.parse(str(out)).getroot().find("image")
    assert image.get("id") == "3" and image.get("task_id") is None
