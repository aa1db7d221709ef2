"""Does Datumaro 1.13 import what ``prep export-annotations --to cvat`` writes, shape for shape?

Usage::

    python benchmarks/compat_datumaro.py [--images 4] [--size 256] [--datumaro-venv DIR]

Steps:

1. write a semantic prediction store of ``--images`` random class maps (blobs of 3 classes,
   holes included) with microprep's own prediction writer;
2. ``prep export-annotations PRED --to cvat`` (pixel-edge polygons) and ``--as mask`` (CVAT
   RLE), each into a folder Datumaro's CVAT importer accepts (the file as ``default.xml``, an
   empty placeholder per image under ``images/``, as in ``bench_convert.py``);
3. read each file back with microprep's CVAT reader and with Datumaro
   (``Dataset.import_from(DIR, "cvat")``, in the venv of ``bench_convert.py``, created on first
   use), and compare, per image, the count of shapes of each label and kind (polygon or mask)
   and the image sizes. Prints one line per file and exits 1 on any difference.

Datumaro is not a dependency of microprep; this is a compatibility check, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_convert import DEFAULT_DATUMARO_VENV, ensure_datumaro  # noqa: E402
from microprep.cli.main import main  # noqa: E402
from microprep.predict.write import PredictionWriter  # noqa: E402
from microprep.readers import read_annotations  # noqa: E402

CLASSES = ["background", "pore", "grain", "crack"]
COLORS = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]

#: Run by the Datumaro venv's interpreter: DIR OUT.json. Counts per item of (label, kind).
_DATUMARO_COUNT = r"""
import json, sys
from datumaro import Dataset
dataset = Dataset.import_from(sys.argv[1], "cvat")
labels = dataset.categories()[__import__("datumaro").AnnotationType.label]
out = {}
for item in dataset:
    counts = {}
    for ann in item.annotations:
        name = labels[ann.label].name if ann.label is not None else ""
        key = name + "|" + ann.type.name
        counts[key] = counts.get(key, 0) + 1
    size = item.media.size if item.media is not None and item.media.has_size else None
    out[item.id] = {"counts": counts, "size": list(size) if size else None}
json.dump(out, open(sys.argv[2], "w"))
"""

#: Datumaro's annotation type names for the kinds microprep writes.
_KINDS = {"polygon": "polygon", "mask": "mask"}


def class_maps(count: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` maps of smoothed random blobs in 3 classes, with holes."""
    rng = np.random.default_rng(seed)
    maps = {}
    for i in range(count):
        noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=size / 24)
        m = np.zeros((size, size), np.uint8)
        m[noise > 0.02] = 1
        m[noise > 0.05] = 2
        m[noise < -0.06] = 3
        maps[f"img_{i}.png"] = m
    return maps


def prediction_store(path: Path, maps: dict[str, np.ndarray]) -> Path:
    writer = PredictionWriter(path, classes=CLASSES, colors=COLORS, kind="semantic")
    for name, class_map in maps.items():
        node = writer.begin(name, class_map.shape, probabilities=None)
        probs = np.eye(len(CLASSES), dtype=np.float32)[class_map].transpose(2, 0, 1)
        writer.write_rows(node, 0, class_map.shape[0], probs)
        writer.finish_node(node)
    writer.close()
    return path


def microprep_counts(xml: Path) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    annotations = read_annotations(xml, on_warning=lambda _m: None)
    for item in annotations:
        counts = Counter(f"{s.label}|{_KINDS.get(s.kind, s.kind)}" for s in item.shapes)
        name = item.image.name.rsplit(".", 1)[0]
        out[name] = {"counts": dict(counts), "size": [item.image.height, item.image.width]}
    return out


def datumaro_folder(xml: Path, folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "default.xml").write_bytes(xml.read_bytes())
    for name in names:
        placeholder = folder / "images" / name
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.touch()
    return folder


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datumaro-venv", type=Path, default=DEFAULT_DATUMARO_VENV)
    args = parser.parse_args()
    python, note = ensure_datumaro(args.datumaro_venv.resolve())
    print(note)
    if python is None:
        return 1
    work = Path(tempfile.mkdtemp(prefix="microprep-compat-"))
    maps = class_maps(args.images, args.size, args.seed)
    pred = prediction_store(work / "pred.zarr", maps)
    failed = 0
    for shape in ("polygon", "mask"):
        xml = work / f"{shape}.xml"
        code = main(["export-annotations", str(pred), "--to", "cvat", "--as", shape,
                     "--out", str(xml), "-q"])  # fmt: skip
        if code != 0:
            print(f"{shape}: prep export-annotations failed ({code})")
            return 1
        ours = microprep_counts(xml)
        folder = datumaro_folder(xml, work / f"dm-{shape}", list(maps))
        report = work / f"dm-{shape}.json"
        script = work / "count.py"
        script.write_text(_DATUMARO_COUNT)
        proc = subprocess.run([str(python), str(script), str(folder), str(report)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            print(f"{shape}: Datumaro failed: {proc.stderr.strip().splitlines()[-1:]}")
            failed += 1
            continue
        theirs = json.loads(report.read_text())
        shapes = sum(len(item.shapes) for item in read_annotations(xml, on_warning=print))
        same = ours.keys() == theirs.keys() and all(
            ours[k]["counts"] == theirs[k]["counts"] for k in ours
        )
        sizes = all(theirs[k]["size"] in (None, ours[k]["size"]) for k in ours if k in theirs)
        verdict = "PASS" if same and sizes else "FAIL"
        failed += verdict == "FAIL"
        imported = sum(sum(v["counts"].values()) for v in theirs.values())
        counts_word, sizes_word = ("equal" if same else "differ"), ("equal" if sizes else "differ")
        print(f"{verdict}  --as {shape}: {len(ours)} images, {shapes} shapes; Datumaro imports "
              f"{imported} annotations, counts per image, label and kind {counts_word}; sizes "
              f"{sizes_word}")  # fmt: skip
        if not same:
            for key in sorted(set(ours) | set(theirs)):
                a, b = ours.get(key, {}).get("counts"), theirs.get(key, {}).get("counts")
                if a != b:
                    print(f"    {key}: microprep {a} / Datumaro {b}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main_())
