"""A predicted volume as a Labelbox video mask import (MAL): the NDJSON v2 export of the
imported masks, read with ``prep convert --volume``, gives the volume's class maps back voxel
for voxel."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from microprep.cli.main import main
from microprep.predict.write import PredictionWriter
from microprep.store.read import open_dataset
from writers.helpers import CLASSES, COLORS, tricky_map


def _volume() -> np.ndarray:
    """Every slice has foreground (a Labelbox export lists only the frames with objects)."""
    base = tricky_map()
    v = np.stack([base, base, np.roll(base, 3, axis=1), np.roll(base, 5, axis=0), base])
    v[3:5, 2:12, 2:12] = 0
    v[3, 3:5, 3:8] = 2
    v[4, 3:10, 3:5] = 3
    return v


def _store(path: Path, volumes: dict[str, np.ndarray], colors: Any = COLORS) -> Path:
    writer = PredictionWriter(path, classes=CLASSES, colors=colors, kind="semantic")
    for name, volume in volumes.items():
        node = writer.begin(name, volume.shape, probabilities=None)
        probs = np.moveaxis(np.eye(len(CLASSES), dtype=np.float32)[volume], -1, 0)
        writer.write_rows(node, 0, volume.shape[0], probs)
        writer.finish_node(node)
    writer.close()
    return path


def _export(pred: Path, out: Path) -> list[dict[str, Any]]:
    assert main(["export-annotations", str(pred), "--to", "labelbox", "--out", str(out), "-q"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _labelbox_export(mal: list[dict[str, Any]], shape: tuple[int, ...], out: Path) -> Path:
    """The NDJSON v2 export of the imported video masks, as Labelbox writes it: per frame
    (``annotations.frames["<n>"].objects``, keyed by feature id) one ``VideoSegmentationMask``
    per instance with its ``composite_mask`` colour; the composite masks (fetched from their
    URLs) saved as ``<data row id>#frame_<n>.png``. The structure follows labelbox-python's
    ``examples/exports/composite_mask_export.ipynb`` (video export)."""
    masks = out.parent / "masks"
    masks.mkdir()
    rows = []
    for r, line in enumerate(mal):
        row_id = f"row-{r}"
        features = {
            tuple(i["colorRGB"]): (f"feature-{r}-{k}", i["name"])
            for k, i in enumerate(line["masks"]["instances"])
        }
        frames = {}
        for frame in line["masks"]["frames"]:
            png = base64.b64decode(frame["imBytes"])
            n = frame["index"]
            (masks / f"{row_id}#frame_{n:06d}.png").write_bytes(png)
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            objects = {}
            for color in {tuple(int(v) for v in c) for c in pixels.reshape(-1, 3)} - {(0, 0, 0)}:
                fid, name = features[color]
                objects[fid] = {
                    "feature_id": fid,
                    "name": name,
                    "annotation_kind": "VideoSegmentationMask",
                    "classifications": [],
                    "composite_mask": {
                        "url": f"https://api.labelbox.com/api/v1/tasks/t/masks/m/index/{n}",
                        "color_rgb": list(color),
                    },
                }
            frames[str(n)] = {"objects": objects, "classifications": []}
        rows.append(
            {
                "data_row": {"id": row_id, "global_key": line["dataRow"]["globalKey"]},
                "media_attributes": {
                    "height": shape[1],
                    "width": shape[2],
                    "mime_type": "video/mp4",
                    "frame_count": shape[0],
                },
                "projects": {
                    "p": {
                        "name": "p",
                        "labels": [
                            {
                                "annotations": {
                                    "frames": frames,
                                    "segments": {},
                                    "key_frame_feature_map": {},
                                }
                            }
                        ],
                    }
                },
            }
        )
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def _convert(export: Path, store: Path) -> np.ndarray:
    masks = export.parent / "masks"
    args = ["convert", str(export), "--masks", str(masks), "--volume", "--out", str(store), "-q"]
    assert main(args) == 0
    with open_dataset(store) as ds:
        classes = np.array(ds.classes, dtype=object)
        (node,) = list(ds)
        return np.asarray(classes[node["labels"].values])


def test_labelbox_video_round_trip_voxel_for_voxel(tmp_path: Path) -> None:
    volume = _volume()
    pred = _store(tmp_path / "pred.zarr", {"stack.tif": volume})
    (line,) = _export(pred, tmp_path / "pre.ndjson")
    assert line["dataRow"] == {"globalKey": "stack.tif"}
    assert [f["index"] for f in line["masks"]["frames"]] == [1, 2, 3, 4, 5]  # 1-based
    assert line["masks"]["instances"] == [
        {"colorRGB": COLORS[k], "name": CLASSES[k]} for k in (1, 2, 3)
    ]
    export = _labelbox_export([line], volume.shape, tmp_path / "export.ndjson")
    got = _convert(export, tmp_path / "back.zarr")
    np.testing.assert_array_equal(got, np.array(CLASSES, dtype=object)[volume])


def test_black_or_shared_colours_are_replaced(tmp_path: Path) -> None:
    volume = _volume()
    colors = [[0, 0, 0], [0, 0, 0], [7, 7, 7], [7, 7, 7]]
    pred = _store(tmp_path / "pred.zarr", {"stack.tif": volume}, colors)
    (line,) = _export(pred, tmp_path / "pre.ndjson")
    rgb = [tuple(i["colorRGB"]) for i in line["masks"]["instances"]]
    assert len(set(rgb)) == 3 and (0, 0, 0) not in rgb and rgb[1] == (7, 7, 7)
    export = _labelbox_export([line], volume.shape, tmp_path / "export.ndjson")
    got = _convert(export, tmp_path / "back.zarr")
    np.testing.assert_array_equal(got, np.array(CLASSES, dtype=object)[volume])


def test_empty_slices_get_no_frame_and_each_volume_one_line(tmp_path: Path) -> None:
    volume = _volume()
    volume[2] = 0
    empty = np.zeros_like(volume)
    pred = _store(tmp_path / "pred.zarr", {"a.tif": volume, "b.tif": empty, "c.tif": volume})
    lines = _export(pred, tmp_path / "pre.ndjson")
    assert [line["dataRow"]["globalKey"] for line in lines] == ["a.tif", "c.tif"]
    assert [f["index"] for f in lines[0]["masks"]["frames"]] == [1, 2, 4, 5]
    png = base64.b64decode(lines[0]["masks"]["frames"][2]["imBytes"])
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    expected = np.array(COLORS, np.uint8)[volume[3]]
    np.testing.assert_array_equal(pixels, expected)


def test_a_store_of_images_and_volumes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "mixed.zarr"
    writer = PredictionWriter(store, classes=CLASSES, colors=COLORS, kind="semantic")
    for name, labels in (("a.tif", _volume()), ("b.png", tricky_map())):
        node = writer.begin(name, labels.shape, probabilities=None)
        probs = np.moveaxis(np.eye(len(CLASSES), dtype=np.float32)[labels], -1, 0)
        writer.write_rows(node, 0, labels.shape[0], probs)
        writer.finish_node(node)
    writer.close()
    out = tmp_path / "pre.ndjson"
    assert main(["export-annotations", str(store), "--to", "labelbox", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds images and volumes" in err
    assert not out.exists()
