"""Write a large synthetic CVAT for images 1.1 export for benchmarks (deterministic).

Usage::

    python benchmarks/stress_export.py OUT.xml [--images 20] [--size 2048] [--seed 7]

Per image (``--size`` x ``--size`` pixels): 300 polygons (star-convex blobs, radius 8-40 px,
20-28 vertices, float coordinates), 50 ellipses (random rotation) and 20 RLE masks (blobs of
about 60x60 px), labelled with 3 classes (bubble, precipitate, grain) and their attributes, with
random ``z_order`` and random placement (so some overlap). No image files are written: the export
carries the image sizes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
sys.path.insert(0, str(SAMPLE_DATA))

import synth  # noqa: E402

LABELS: tuple[synth.LabelDef, ...] = synth.MICROGRAPH_LABELS[:3]
POLYGONS_PER_IMAGE = 300
ELLIPSES_PER_IMAGE = 50
MASKS_PER_IMAGE = 20
DEFAULT_SEED = 7


def _attributes(rng: np.random.Generator, label: str) -> dict[str, str]:
    if label == "bubble":
        return {"contrast": "dark" if rng.random() < 0.7 else "bright"}
    if label == "precipitate":
        return {"phase": "alpha" if rng.random() < 0.6 else "beta"}
    return {"twinned": "true" if rng.random() < 0.2 else "false"}


def stress_image(
    rng: np.random.Generator, index: int, size: int, *, name_prefix: str = "stress"
) -> synth.ImageAnnotations:
    """One image's worth of shapes (polygons, then ellipses, then masks, shuffled together)."""
    names = [label.name for label in LABELS]
    shapes: list[synth.Shape] = []
    for _ in range(POLYGONS_PER_IMAGE):
        radius = rng.uniform(8, 40)
        cx, cy = rng.uniform(0, size, 2)
        pts = synth.star_polygon(
            rng,
            cx=cx,
            cy=cy,
            radius=radius,
            vertices=int(rng.integers(20, 29)),
            roughness=0.4,
            elongation=rng.uniform(1.0, 1.6),
            angle=rng.uniform(0, 180),
        )
        label = names[int(rng.integers(len(names)))]
        shapes.append(
            synth.Polygon(
                label=label,
                points=synth.shift_inside(pts, size),
                z_order=int(rng.integers(0, 5)),
                occluded=bool(rng.random() < 0.05),
                attributes=_attributes(rng, label),
            )
        )
    for _ in range(ELLIPSES_PER_IMAGE):
        label = names[int(rng.integers(len(names)))]
        shapes.append(
            synth.Ellipse(
                label=label,
                cx=synth.r2(rng.uniform(0, size)),
                cy=synth.r2(rng.uniform(0, size)),
                rx=synth.r2(rng.uniform(6, 35)),
                ry=synth.r2(rng.uniform(6, 35)),
                rotation=synth.r2(rng.uniform(0, 360)),
                z_order=int(rng.integers(0, 5)),
                attributes=_attributes(rng, label),
            )
        )
    grid = np.arange(60, dtype=np.float64) + 0.5
    for _ in range(MASKS_PER_IMAGE):
        blob = synth.star_polygon(
            rng, cx=30.0, cy=30.0, radius=rng.uniform(20, 28), vertices=48, roughness=0.5
        )
        bitmap = synth.polygon_inside(blob, grid[None, :], grid[:, None])
        left, top = (int(v) for v in rng.integers(0, size - 60, 2))
        label = names[int(rng.integers(len(names)))]
        shapes.append(
            synth.tight_mask(
                bitmap,
                left,
                top,
                label=label,
                z_order=int(rng.integers(0, 5)),
                attributes=_attributes(rng, label),
            )
        )
    order = rng.permutation(len(shapes))
    return synth.ImageAnnotations(
        id=index,
        name=f"{name_prefix}/img_{index:04d}.png",
        width=size,
        height=size,
        shapes=[shapes[i] for i in order],
    )


def write_stress_export(
    path: Path | str, *, images: int = 20, size: int = 2048, seed: int = DEFAULT_SEED
) -> dict[str, int]:
    """Write the export to ``path``; return the shape counts per element name."""
    if size < 128:
        raise ValueError(f"--size {size} is too small: use at least 128 pixels")
    seeds = np.random.SeedSequence(seed).spawn(images)
    meta = synth.meta_element(
        task_id=1, name="stress", size=images, mode="annotation", labels=LABELS
    )
    counts: Counter[str] = Counter()
    with synth.cvat_xml(path, meta) as writer:
        for index, s in enumerate(seeds):
            image = stress_image(np.random.default_rng(s), index, size)
            counts.update(type(shape).__name__.lower() for shape in image.shapes)
            writer.write(synth.image_element(image))
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the XML file to write")
    parser.add_argument("--images", type=int, default=20, help="number of images (20)")
    parser.add_argument("--size", type=int, default=2048, help="image width = height (2048)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (7)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = write_stress_export(args.out, images=args.images, size=args.size, seed=args.seed)
    mb = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({mb:.1f} MB, {args.images} images of {args.size}x{args.size}, "
        + ", ".join(f"{n} {k}s" for k, n in counts.items())
        + f") in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
