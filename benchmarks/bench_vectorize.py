"""Class map -> pixel-edge polygons, and the CVAT XML of 20 such images.

Compares :func:`microprep.writers.vectorize.class_regions` plus the hole-free pieces the
writers use (:func:`~microprep.writers.vectorize.hole_free_all`) with
``rasterio.features.shapes`` alone on a 2048x2048 map of 500 regions: the two are timed in
turns, several runs each, and the best and the median of each shown side by side with their
ratio (the aim: within 1.5x). Then times writing the CVAT XML of 20 such images (the aim:
under 5 s), 3 runs. Run: ``python benchmarks/bench_vectorize.py`` (about 30 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio.features

from microprep.predict.write import PredictionWriter
from microprep.writers.export import ExportOptions, export_annotations
from microprep.writers.vectorize import class_regions, hole_free_all


def class_map(seed: int, size: int = 2048, regions: int = 500) -> np.ndarray:
    """``regions`` discs and squares of 3 classes, some with holes, on background."""
    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), np.uint8)
    yy, xx = np.ogrid[:size, :size]
    for _ in range(regions):
        cy, cx = rng.integers(0, size, 2)
        r = int(rng.integers(8, 40))
        y0, y1, x0, x1 = max(0, cy - r), min(size, cy + r), max(0, cx - r), min(size, cx + r)
        disc = (yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2 < r * r
        m[y0:y1, x0:x1][disc] = rng.integers(1, 4)
        if rng.random() < 0.2:
            hole = (yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2 < (r // 3) ** 2
            m[y0:y1, x0:x1][hole] = 0
    return m


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(repeat: int = 9) -> None:
    m = class_map(0)
    n = sum(1 for _ in rasterio.features.shapes(m, mask=m != 0, connectivity=4))
    holed = sum(1 for r in class_regions(m) if r.polygon.interiors)
    base: list[float] = []
    ours: list[float] = []
    for _ in range(repeat):  # interleaved, so that load from elsewhere hits both alike
        base.append(timed(lambda: list(rasterio.features.shapes(m, mask=m != 0, connectivity=4))))
        ours.append(timed(lambda: hole_free_all([r.polygon for r in class_regions(m)])))
    print(f"2048x2048, {n} regions ({holed} with holes), {repeat} runs each:")
    print(f"{'':8} {'rasterio.features.shapes':>26} {'class_regions + hole_free_all':>31} ratio")
    for name, pick in (("best", min), ("median", statistics.median)):
        b, o = pick(base), pick(ours)
        print(f"{name:8} {b:25.3f}s {o:30.3f}s {o / b:5.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        pred = Path(tmp) / "pred.zarr"
        writer = PredictionWriter(
            pred, classes=["bg", "a", "b", "c"], colors=[[0, 0, 0]] * 4, kind="semantic"
        )
        for i in range(20):
            cm = class_map(i)
            node = writer.begin(f"img_{i:02d}.png", cm.shape, probabilities=None)
            probs = np.zeros((4, *cm.shape), np.float32)
            for k in range(4):
                probs[k][cm == k] = 1
            writer.write_rows(node, 0, cm.shape[0], probs)
            writer.finish_node(node)
        writer.close()
        xml = Path(tmp) / "pre.xml"
        took = [
            timed(lambda: export_annotations(pred, xml, ExportOptions(to="cvat"))) for _ in range(3)
        ]
        summary = export_annotations(pred, xml, ExportOptions(to="cvat"))
        maps = [class_map(i) for i in range(20)]
        trace = timed(
            lambda: [list(rasterio.features.shapes(c, mask=c != 0, connectivity=4)) for c in maps]
        )
        size = xml.stat().st_size / 1e6
    print(
        f"CVAT XML of 20 images ({summary.shapes} polygons, {size:.1f} MB), 3 runs: "
        f"best {min(took):.2f} s, median {statistics.median(took):.2f} s "
        f"(rasterio.features.shapes alone on the 20 maps: {trace:.2f} s)"
    )


if __name__ == "__main__":
    main()
