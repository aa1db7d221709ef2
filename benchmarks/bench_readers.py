"""Readers side by side: CVAT XML vs VIA 2 JSON vs Labelbox NDJSON vs COCO, and validate vs convert.

Usage::

    python benchmarks/bench_readers.py [--images 10000] [--polygons 50] [--vertices 24]
                                       [--stress-images 20] [--workdir DIR]

1. Writes the same synthetic scene (``--images`` images of 2048x2048, ``--polygons`` polygons of
   ``--vertices`` float vertices each) as a CVAT for images export, a VIA 2 JSON export, a
   Labelbox NDJSON export and a COCO instances file, then reads each completely (checking pass +
   iterating every shape), every reader in a fresh process, and prints the time per shape, the
   ratio to the CVAT reader and the peak memory (RSS). Goal: VIA, Labelbox and COCO within 2x of
   CVAT per shape, NDJSON memory bounded (streamed).
2. On the stress export of ``stress_export.py`` (20 images x 370 shapes): ``prep validate``
   vs ``prep convert --to masks``. Goal: validate under 2x of convert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZE = 2048

READ = """
import sys, time
from microprep.readers import ReadOptions, read_annotations
start = time.perf_counter()
ds = read_annotations(sys.argv[1], options=ReadOptions(size=(2048, 2048)))
shapes = sum(len(item.shapes) for item in ds)
seconds = time.perf_counter() - start
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's at fork time)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()
print(ds.format, shapes, seconds, int(status[0]) / 1024)
"""


def polygons(rng: np.random.Generator, count: int, vertices: int) -> np.ndarray:
    """``(count, vertices, 2)`` star-shaped polygons with float coordinates (2 decimals)."""
    centres = rng.uniform(50, SIZE - 50, (count, 1, 2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, (count, vertices)), axis=1)
    radii = rng.uniform(8, 40, (count, 1)) * rng.uniform(0.7, 1.0, (count, vertices))
    pts = centres + np.stack((radii * np.cos(angles), radii * np.sin(angles)), axis=-1)
    return np.round(pts, 2)


def write_exports(folder: Path, images: int, per_image: int, vertices: int) -> dict[str, Path]:
    """The same scene as CVAT XML, VIA 2 JSON, Labelbox NDJSON and COCO instances JSON."""
    rng = np.random.default_rng(11)
    labels = ("bubble", "precipitate", "grain")
    paths = {
        "cvat": folder / "scene.xml",
        "via": folder / "scene_via.json",
        "labelbox": folder / "scene.ndjson",
        "coco": folder / "scene_coco.json",
    }
    via: dict[str, object] = {}
    coco: dict[str, list[object]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(labels)],
    }
    with paths["cvat"].open("w") as xml, paths["labelbox"].open("w") as ndjson:
        xml.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>')
        xml.write("<meta><task><labels>")
        xml.write("".join(f"<label><name>{n}</name></label>" for n in labels))
        xml.write("</labels></task></meta>\n")
        for i in range(images):
            name = f"img_{i:05d}.png"
            polys = polygons(rng, per_image, vertices)
            classes = rng.integers(0, 3, per_image)
            xml.write(f'<image id="{i}" name="{name}" width="{SIZE}" height="{SIZE}">\n')
            regions, objects = [], []
            for k, (poly, cls) in enumerate(zip(polys, classes, strict=True)):
                pts = ";".join(f"{x:.2f},{y:.2f}" for x, y in poly)
                xml.write(f'<polygon label="{labels[cls]}" points="{pts}" z_order="0"/>\n')
                xs, ys = poly[:, 0].tolist(), poly[:, 1].tolist()
                regions.append(
                    {
                        "shape_attributes": {
                            "name": "polygon",
                            "all_points_x": xs,
                            "all_points_y": ys,
                        },
                        "region_attributes": {"class": labels[cls]},
                    }
                )
                coco["annotations"].append(
                    {
                        "id": len(coco["annotations"]) + 1,
                        "image_id": i + 1,
                        "category_id": int(cls) + 1,
                        "segmentation": [poly.ravel().round(2).tolist()],
                        "iscrowd": 0,
                    }
                )
                objects.append(
                    {
                        "feature_id": f"f{i}-{k}",
                        "name": labels[cls],
                        "annotation_kind": "ImagePolygon",
                        "polygon": [{"x": x, "y": y} for x, y in zip(xs, ys, strict=True)],
                    }
                )
            xml.write("</image>\n")
            coco["images"].append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
            via[f"{name}0"] = {
                "filename": name,
                "size": 0,
                "regions": regions,
                "file_attributes": {},
            }
            row = {
                "data_row": {"id": f"r{i}", "external_id": name},
                "media_attributes": {"height": SIZE, "width": SIZE},
                "projects": {"p": {"labels": [{"annotations": {"objects": objects}}]}},
            }
            ndjson.write(json.dumps(row) + "\n")
        xml.write("</annotations>\n")
    paths["via"].write_text(json.dumps(via))
    paths["coco"].write_text(json.dumps(coco))
    return paths


def run_reader(path: Path) -> tuple[str, int, float, float]:
    done = subprocess.run(
        [sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True
    )
    fmt, shapes, seconds, peak = done.stdout.split()
    return fmt, int(shapes), float(seconds), float(peak)


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "microprep", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--polygons", type=int, default=50)
    parser.add_argument("--vertices", type=int, default=24)
    parser.add_argument("--stress-images", type=int, default=20)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="microprep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"writing {args.images} images x {args.polygons} polygons in four formats to {work}")
    paths = write_exports(work, args.images, args.polygons, args.vertices)
    rows = []
    for name, path in paths.items():
        fmt, shapes, seconds, peak = run_reader(path)
        size = path.stat().st_size / 2**20
        rows.append((name, fmt, shapes, seconds, peak, size))
    cvat_us = rows[0][3] / rows[0][2] * 1e6
    print(f"\n{'reader':<10} {'format':<16} {'MB':>7} {'shapes':>9} {'s':>7} {'µs/shape':>9}"
          f" {'vs CVAT':>8} {'peak MB':>8}")  # fmt: skip
    verdicts = []
    for name, fmt, shapes, seconds, peak, size in rows:
        us = seconds / shapes * 1e6
        ratio = us / cvat_us
        print(f"{name:<10} {fmt:<16} {size:>7.0f} {shapes:>9} {seconds:>7.2f} {us:>9.1f}"
              f" {ratio:>7.2f}x {peak:>8.0f}")  # fmt: skip
        if name != "cvat":
            verdicts.append((f"{name} within 2x of CVAT per shape", ratio <= 2.0))
    stress = work / "stress.xml"
    subprocess.run(
        [sys.executable, str(HERE / "stress_export.py"), str(stress), "--images",
         str(args.stress_images)],
        check=True, capture_output=True,
    )  # fmt: skip
    convert = min(
        timed(["convert", str(stress), "--to", "masks", "-q", "--out", str(work / f"m{i}")])
        for i in range(3)
    )
    validate = min(timed(["validate", str(stress)]) for _ in range(3))
    ratio = validate / convert
    print(
        f"\nstress export ({args.stress_images} images): prep convert --to masks "
        f"{convert:.2f} s, prep validate {validate:.2f} s ({ratio:.2f}x)"
    )
    verdicts.append(("validate under 2x of convert --to masks", validate < 2 * convert))
    print()
    for goal, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {goal}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
