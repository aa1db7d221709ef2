"""Peak memory and wall time of ``prep validate`` / ``prep convert`` on hostile sizes.

Cases (exports written to a temporary folder, deterministic):

* ``random-polygon``: one CVAT polygon of 9,999 random vertices (about 136 KB) in a 1000x1000
  image: ``prep validate`` and ``prep convert`` (refused as ``too-complex``).
* ``huge-image``: one declared 20000x20000 image with a single triangle:
  ``prep convert --to zarr,masks,yolo`` with the default budget and with ``--max-memory``.

Each run is a child process; its peak resident memory is ``resource.getrusage``
(``RUSAGE_CHILDREN``) taken after it, which is the largest of the children so far, so the cases
run in order of growing memory. Usage::

    python benchmarks/bench_memory.py [--budget 250MB] [--skip-default]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = (
    '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task>'
    "<labels><label><name>grain</name><type>polygon</type><attributes/></label></labels>"
    "</task></meta>\n"
)


def export(path: Path, points: np.ndarray, size: int) -> Path:
    pts = ";".join(f"{x:.2f},{y:.2f}" for x, y in points)
    path.write_text(
        f'{HEADER}<image id="0" name="a.png" width="{size}" height="{size}">'
        f'<polygon label="grain" occluded="0" source="manual" points="{pts}" z_order="0"/>'
        "</image></annotations>\n",
        encoding="utf-8",
    )
    return path


def run(label: str, args: list[str]) -> None:
    start = time.perf_counter()
    done = subprocess.run(["prep", *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()
    tail = last[-1][:110] if last else ""
    print(f"{label:<44} exit {done.returncode}  {seconds:6.1f} s  peak {peak:7.0f} MB  {tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="250MB", help="--max-memory of the banded run")
    parser.add_argument(
        "--skip-default", action="store_true", help="skip the huge image at the default budget"
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        poly = export(root / "random.xml", np.random.default_rng(0).random((9_999, 2)) * 1000, 1000)
        tri = export(
            root / "triangle.xml", np.array([[10.0, 10], [19990, 500], [9000, 19990]]), 20000
        )
        print(f"random polygon export: {poly.stat().st_size / 1e3:.0f} KB")
        run("validate random-polygon", ["validate", str(poly)])
        run("convert random-polygon", ["convert", str(poly), "-o", str(root / "p.zarr"), "-q"])
        to = ["--to", "zarr,masks,yolo", "-q"]
        run(
            f"convert huge-image --max-memory {opts.budget}",
            ["convert", str(tri), "-o", str(root / "b"), *to, "--max-memory", opts.budget],
        )
        if not opts.skip_default:
            run(
                "convert huge-image (default budget)",
                ["convert", str(tri), "-o", str(root / "w"), *to],
            )


if __name__ == "__main__":
    main()
