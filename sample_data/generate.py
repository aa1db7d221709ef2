"""Regenerate everything in sample_data/ (deterministic: fixed seed).

Usage::

    python sample_data/generate.py [--out sample_data] [--seed 20240514]

Writes, under ``--out``:

* ``micrographs/``: 6 TEM-like 512x512 micrographs (8-bit PNG, one 16-bit TIFF), in folders
  whose names have spaces;
* ``cvat/annotations.xml``: their CVAT for images 1.1 export;
* ``stack/slices/slice_000.png`` ... ``slice_031.png``: a 32-slice 128x128 tomography-like stack;
* ``stack/annotations.xml``: its CVAT for video 1.1 export (tracks);
* ``via/`` and ``labelbox/``: the micrographs' annotations as VIA 2 project JSON, VIA CSV and
  Labelbox NDJSON with local mask PNGs (see ``export_formats.py``).

The images are drawn from the same shapes that are written to the exports (see ``synth.py``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export_formats
import synth

DEFAULT_SEED = 20240514

#: Names of the micrographs as the export has them (folders and a space on purpose).
MICROGRAPH_NAMES: tuple[str, ...] = (
    "grid 1/mg_01.png",
    "grid 1/mg_02.png",
    "grid 1/mg_03.png",
    "grid_2/mg_04.png",
    "grid_2/mg_05.tif",
    "grid_2/mg 06.png",
)
MICROGRAPH_SIZE = 512
#: Micrographs in the training set (``training/``).
TRAINING_IMAGES = 36
STACK_FRAMES = 32
STACK_SIZE = 128


def to_uint8(img: synth.FloatArray) -> np.ndarray:
    """Float image (about 0..1) to 8-bit."""
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def to_uint16(img: synth.FloatArray) -> np.ndarray:
    """Float image (about 0..1) to 16-bit counts, as a 14-bit camera with a dark offset."""
    return np.clip(np.round(img * 16000.0 + 200.0), 0, 65535).astype(np.uint16)


def save_image(path: Path, pixels: np.ndarray) -> None:
    """PNG for 8-bit, zlib-compressed TIFF for 16-bit (no timestamps: reproducible bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, pixels, compression="zlib", metadata=None)
    else:
        Image.fromarray(pixels).save(path)


def write_micrograph_set(
    images_dir: Path,
    export: Path,
    names: list[str],
    seeds: list[np.random.SeedSequence],
    *,
    first_scene: int,
    task: tuple[str, int],
) -> list[synth.Shape]:
    """Draw one micrograph per name (scene numbers from ``first_scene``), write the images under
    ``images_dir`` and their CVAT for images export to ``export``; return all shapes."""
    images: list[synth.ImageAnnotations] = []
    for index, (name, seed) in enumerate(zip(names, seeds, strict=True)):
        scene_rng, render_rng = (np.random.default_rng(s) for s in seed.spawn(2))
        shapes = synth.micrograph_scene(scene_rng, first_scene + index, MICROGRAPH_SIZE)
        img = synth.render_micrograph(
            shapes, render_rng, height=MICROGRAPH_SIZE, width=MICROGRAPH_SIZE
        )
        pixels = to_uint16(img) if name.endswith(".tif") else to_uint8(img)
        save_image(images_dir / name, pixels)
        images.append(
            synth.ImageAnnotations(
                id=index, name=name, width=MICROGRAPH_SIZE, height=MICROGRAPH_SIZE, shapes=shapes
            )
        )
    task_name, task_id = task
    synth.write_cvat_images(
        export, images, labels=synth.MICROGRAPH_LABELS, task_name=task_name, task_id=task_id
    )
    return [shape for image in images for shape in image.shapes]


def generate_micrographs(out: Path, seeds: list[np.random.SeedSequence]) -> list[synth.Shape]:
    """Write the micrographs and their CVAT for images export; return all shapes."""
    return write_micrograph_set(
        out / "micrographs",
        out / "cvat" / "annotations.xml",
        list(MICROGRAPH_NAMES),
        seeds,
        first_scene=0,
        task=("micrographs", 1),
    )


def generate_training_set(out: Path, seeds: list[np.random.SeedSequence]) -> list[synth.Shape]:
    """Write ``training/``: more micrographs and their CVAT export; return all shapes.

    Scene numbers start after the 6 feature micrographs, so these scenes hold grains,
    precipitates and bubbles without the fixed extras (groups, RLE masks, dislocations, tags).
    """
    return write_micrograph_set(
        out / "training" / "micrographs",
        out / "training" / "annotations.xml",
        [f"train_{index:03d}.png" for index in range(len(seeds))],
        seeds,
        first_scene=len(MICROGRAPH_NAMES),
        task=("training", 3),
    )


def generate_stack(out: Path, seed: np.random.SeedSequence) -> list[synth.Track]:
    """Write the slice stack and its CVAT for video export; return the tracks."""
    scene_rng, render_rng = (np.random.default_rng(s) for s in seed.spawn(2))
    tracks = synth.stack_tracks(scene_rng, frames=STACK_FRAMES, size=STACK_SIZE)
    background = synth.stack_background(render_rng, STACK_FRAMES, STACK_SIZE)
    for frame in range(STACK_FRAMES):
        img = synth.render_slice(frame, tracks, background[frame], render_rng)
        save_image(out / "stack" / "slices" / f"slice_{frame:03d}.png", to_uint8(img))
    synth.write_cvat_video(
        out / "stack" / "annotations.xml",
        tracks,
        labels=synth.STACK_LABELS,
        task_name="stack",
        size=STACK_FRAMES,
        width=STACK_SIZE,
        height=STACK_SIZE,
        task_id=2,
    )
    return tracks


def summary(shapes: list[synth.Shape], tracks: list[synth.Track]) -> str:
    """Counts of what was written, one line per export."""
    kinds = Counter(f"{type(s).__name__.lower()}:{s.label}" for s in shapes)
    per_track = Counter(
        f"{t.label}: {len(t.frames)} frames ({sum(f.keyframe for f in t.frames)} key, "
        f"{sum(f.outside for f in t.frames)} outside)"
        for t in tracks
    )
    return (
        "cvat/annotations.xml: "
        + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
        + "\nstack/annotations.xml: "
        + "; ".join(f"{k} x{v}" for k, v in sorted(per_track.items()))
    )


def main(argv: list[str] | None = None) -> int:
    """Regenerate the sample data; print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent, help="output folder"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    out: Path = args.out
    for sub in ("micrographs", "cvat", "stack", "training"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    root = np.random.SeedSequence(args.seed)
    micrograph_seeds, stack_seed = root.spawn(2)
    (training_seed,) = root.spawn(1)  # a third child: the first two (and their files) unchanged
    shapes = generate_micrographs(out, micrograph_seeds.spawn(len(MICROGRAPH_NAMES)))
    tracks = generate_stack(out, stack_seed)
    print(summary(shapes, tracks))
    training = generate_training_set(out, training_seed.spawn(TRAINING_IMAGES))
    kinds = Counter(shape.label for shape in training)
    print(
        f"training/annotations.xml: {TRAINING_IMAGES} images, "
        + ", ".join(f"{label}={n}" for label, n in sorted(kinds.items()))
    )
    # the same scenes in the other formats, from the CVAT export just written
    count = export_formats.export_all(out)
    print(f"via/, labelbox/: VIA 2 project JSON, VIA CSV, Labelbox NDJSON of {count} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
