"""Class map -> pixel-edge polygons, and the CVAT XML of 20 such images.

Compares :func:`microprep.writers.vectorize.class_regions` (plus the hole-free pieces the
writers use,
cut in one pass by :func:`~microprep.writers.vectorize.hole_free_all`)
with ``rasterio.features.shapes`` alone on a 2048x2048 map of 500 regions, then times writing
the CVAT XML of 20 such images. Run: ``python benchmarks/bench_vectorize.py`` (about 30 s).
"""

from __future__ import annotations

import tempfile
import time
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


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    m = class_map(0)
    n = sum(1 for _ in rasterio.features.shapes(m, mask=m != 0, connectivity=4))
    base = best(lambda: list(rasterio.features.shapes(m, mask=m != 0, connectivity=4)))
    ours = best(lambda: hole_free_all([r.polygon for r in class_regions(m)]))
    print(f"2048x2048, {n} regions: rasterio.features.shapes {base:.3f} s, "
          f"class_regions + hole_free_all {ours:.3f} s ({ours / base:.2f}x)")  # fmt: skip
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
        t = time.perf_counter()
        summary = export_annotations(pred, Path(tmp) / "pre.xml", ExportOptions(to="cvat"))
        took = time.perf_counter() - t
        size = (Path(tmp) / "pre.xml").stat().st_size / 1e6
    print(f"CVAT XML of 20 images ({summary.shapes} polygons, {size:.1f} MB): {took:.2f} s")


if __name__ == "__main__":
    main()
