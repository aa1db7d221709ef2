"""Benchmark ``prep convert`` against Datumaro 1.13 on a large CVAT export.

Usage::

    python benchmarks/bench_convert.py [--quick] [--images 20] [--size 2048] [--repeat 3]
                                       [--baseline-repeat N] [--no-baseline] [--archive-only]
                                       [--ome-zarr] [--workdir DIR] [--keep] [--json OUT]

Steps:

1. write the stress export (``stress_export.py``: 20 images of 2048x2048, 370 shapes each) into
   a temporary folder;
2. time ``python -m microprep convert STRESS.xml --to masks,coco --out OUT`` and
   ``--to zarr`` (same interpreter as this script), best of ``--repeat`` runs, and the peak
   resident memory of the child process;
3. time the baseline, Datumaro 1.13's CVAT -> VOC semantic-segmentation path
   (``Dataset.import_from(DIR, "cvat")``, the ``polygons_to_masks`` and ``boxes_to_masks``
   transforms, then ``.export(OUT, "voc_segmentation", save_media=False)``), in
   its own virtual environment ``benchmarks/.venv-datumaro`` (created on first use with
   ``pip install datumaro==1.13.0``; ``--no-baseline`` skips it);
4. zip the export as CVAT does (``annotations.xml`` at the top, deflated) and time
   ``convert STRESS.zip --to zarr``, read in place, beside the ``--to zarr`` run of the extracted
   file (``--archive-only`` runs just these two);
   with ``--ome-zarr`` instead: write a smooth synthetic grayscale PNG per image and time
   ``convert --images IMGS --to ome-zarr`` against ``--to zarr``, in turn;
5. print a table and the goals: microprep ``masks,coco`` at least 20x faster than Datumaro and
   under 500 MB peak memory; the archive within 1.1x of the extracted file; ome-zarr within
   1.5x of zarr (``--ome-zarr``). The exit status is 1
   when a goal fails or a microprep run fails.

Every run is a fresh process started by a small wrapper, which reads the wall time around the
child and ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it (the largest resident set of the
child and its descendants). Output folders are removed before each run.

Datumaro's CVAT reader needs an image file for every ``<image>`` (it only checks that it
exists; sizes come from the XML), and keeps only images whose ``subset`` matches the XML file
name. Its input folder therefore holds the same export as ``default.xml`` plus empty placeholder
files under ``images/``. Its VOC exporter draws only mask annotations, hence the transforms:
without them the class maps would hold the RLE masks alone. Datumaro's CVAT reader skips
``<ellipse>`` shapes, so its run rasterises fewer shapes (6000 polygons + 400 masks on the full
stress file, against 7400 shapes for microprep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import stress_export  # noqa: E402

DATUMARO_VERSION = "1.13.0"
DEFAULT_DATUMARO_VENV = HERE / ".venv-datumaro"
SPEEDUP_GOAL = 20.0
MEMORY_GOAL_MB = 500.0
#: The export as a zip archive converts within this factor of the extracted export.
ARCHIVE_GOAL = 1.1
#: ``--to ome-zarr`` (pyramids, label images) converts within this factor of ``--to zarr``.
OME_ZARR_GOAL = 1.5

#: Runs one command, then writes its wall time, peak RSS and exit status as JSON.
_WRAPPER = r"""
import json, resource, subprocess, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
seconds = time.perf_counter() - t0
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024
with open(report, "w") as f:
    json.dump({"seconds": seconds, "peak_rss_bytes": maxrss * scale,
               "returncode": proc.returncode,
               "output_tail": proc.stdout[-3000:].decode("utf-8", "replace")}, f)
"""

#: The Datumaro baseline, run by the Datumaro venv's interpreter: IN_DIR OUT_DIR.
_DATUMARO_SCRIPT = r"""
import sys
from datumaro import Dataset
dataset = Dataset.import_from(sys.argv[1], "cvat")
if len(dataset) == 0:
    sys.exit("datumaro imported no items from " + sys.argv[1])
# The VOC exporter draws only mask annotations: rasterise polygons (and boxes) first.
dataset.transform("polygons_to_masks")
dataset.transform("boxes_to_masks")
dataset.export(sys.argv[2], "voc_segmentation", save_media=False, label_map="source")
"""


@dataclass
class RunResult:
    """Best-of-N measurement of one command."""

    tool: str
    target: str
    command: list[str]
    seconds: float | None = None
    peak_rss_mb: float | None = None
    runs: list[float] = field(default_factory=list)
    files: int = 0
    output_mb: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return self.error is None and self.seconds is not None


def measure_once(
    cmd: list[str], report: Path, env: dict[str, str] | None = None
) -> dict[str, object]:
    """Run ``cmd`` once under the wrapper; return its report."""
    subprocess.run([sys.executable, "-c", _WRAPPER, str(report), *cmd], check=True, env=env)
    data: dict[str, object] = json.loads(report.read_text())
    return data


def folder_stats(path: Path) -> tuple[int, float]:
    """Number of files under ``path`` and their total size in MB."""
    if not path.exists():
        return 0, 0.0
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def measure(
    tool: str,
    target: str,
    cmd: list[str],
    out: Path,
    *,
    repeat: int,
    scratch: Path,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Best wall time of ``repeat`` runs of ``cmd`` (each into a fresh ``out``), max peak RSS."""
    result = RunResult(tool=tool, target=target, command=cmd)
    peak = 0
    for i in range(repeat):
        if out.exists():
            shutil.rmtree(out)
        data = measure_once(cmd, scratch / f"{tool}-{target.replace(',', '_')}-{i}.json", env)
        if data["returncode"] != 0:
            tail = str(data["output_tail"]).strip().splitlines()
            result.error = f"exit {data['returncode']}: " + (tail[-1] if tail else "no output")
            print(f"  {tool} {target} failed ({result.error})", file=sys.stderr)
            print("  " + "\n  ".join(tail[-15:]), file=sys.stderr)
            return result
        seconds = float(data["seconds"])  # type: ignore[arg-type]
        result.runs.append(seconds)
        peak = max(peak, int(data["peak_rss_bytes"]))  # type: ignore[call-overload]
        print(f"  {tool} {target} run {i + 1}/{repeat}: {seconds:.2f} s", file=sys.stderr)
    result.seconds = min(result.runs)
    result.peak_rss_mb = peak / 2**20
    result.files, result.output_mb = folder_stats(out)
    return result


def ensure_datumaro(venv: Path) -> tuple[Path | None, str]:
    """The Python of a venv with Datumaro |version| (created if missing), or None and why."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    check = [
        str(python),
        "-c",
        f"import datumaro; assert datumaro.__version__ == {DATUMARO_VERSION!r}",
    ]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, f"datumaro {DATUMARO_VERSION} in {venv}"
    print(f"installing datumaro=={DATUMARO_VERSION} into {venv} ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", f"datumaro=={DATUMARO_VERSION}"],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            return None, f"`{' '.join(step)}` failed: {last[-1] if last else proc.returncode}"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, f"datumaro {DATUMARO_VERSION} does not import in {venv}"
    return python, f"datumaro {DATUMARO_VERSION} installed in {venv}"


def image_names(xml: Path) -> list[str]:
    """The ``name`` of every ``<image>`` in a CVAT for images export."""
    names: list[str] = []
    for _, el in etree.iterparse(str(xml), events=("end",), tag="image"):
        names.append(el.get("name", ""))
        el.clear()
    return names


def datumaro_input(xml: Path, folder: Path) -> Path:
    """A folder Datumaro's CVAT importer accepts: the export as ``default.xml`` (matching the
    images' ``subset="default"``) and an empty placeholder file per image under ``images/``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "default.xml"
    if not target.exists():
        try:
            os.link(xml, target)
        except OSError:
            shutil.copyfile(xml, target)
    for name in image_names(xml):
        placeholder = folder / "images" / name
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.touch()
    return folder


def print_table(results: list[RunResult], baseline: RunResult | None) -> None:
    """Side-by-side table on stdout."""
    header = (
        f"{'tool':<10} {'target':<17} {'seconds':>9} {'peak RSS MB':>12} {'files':>6} "
        f"{'out MB':>8} {'speed-up':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if not r.ok:
            print(f"{r.tool:<10} {r.target:<17} {'failed':>9}   {r.error}")
            continue
        assert r.seconds is not None and r.peak_rss_mb is not None
        speedup = "n/a"
        if baseline is not None and baseline.ok and baseline.seconds:
            speedup = f"{baseline.seconds / r.seconds:.1f}x"
        print(
            f"{r.tool:<10} {r.target:<17} {r.seconds:>9.2f} {r.peak_rss_mb:>12.0f} "
            f"{r.files:>6} {r.output_mb:>8.1f} {speedup:>9}"
        )


def evaluate_goals(main_run: RunResult | None, baseline: RunResult | None) -> list[tuple[str, str]]:
    """(goal, verdict) pairs; verdict is PASS, FAIL or 'not evaluated (...)'."""
    speed_goal = f"microprep masks,coco >= {SPEEDUP_GOAL:.0f}x faster than Datumaro"
    memory_goal = f"microprep masks,coco peak RSS < {MEMORY_GOAL_MB:.0f} MB"
    if main_run is None or not main_run.ok:
        reason = "not evaluated (microprep masks,coco did not run)"
        return [(speed_goal, reason), (memory_goal, reason)]
    assert main_run.seconds is not None and main_run.peak_rss_mb is not None
    goals = []
    if baseline is None or not baseline.ok or baseline.seconds is None:
        goals.append((speed_goal, "not evaluated (no baseline)"))
    else:
        speedup = baseline.seconds / main_run.seconds
        verdict = "PASS" if speedup >= SPEEDUP_GOAL else "FAIL"
        goals.append((speed_goal, f"{verdict} ({speedup:.1f}x)"))
    verdict = "PASS" if main_run.peak_rss_mb < MEMORY_GOAL_MB else "FAIL"
    goals.append((memory_goal, f"{verdict} ({main_run.peak_rss_mb:.0f} MB)"))
    return goals


def write_images(xml: Path, folder: Path, size: int) -> Path:
    """A smooth synthetic 8-bit grayscale PNG of ``size`` x ``size`` per image of the export."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size]
    for index, name in enumerate(image_names(xml)):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(index)
        base = 96 + 64 * np.sin((xx + 37 * index) / 97.0) * np.cos(yy / 131.0)
        pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, compress_level=1)
    return folder


def ome_zarr_goal(zarr_run: RunResult | None, ome: RunResult | None) -> tuple[str, str]:
    """(goal, verdict) for ``--to ome-zarr`` against ``--to zarr`` (both with images)."""
    goal = f"microprep ome-zarr within {OME_ZARR_GOAL:.1f}x of zarr (with images)"
    if zarr_run is None or ome is None or not zarr_run.ok or not ome.ok:
        return goal, "not evaluated (a run failed or was skipped)"
    assert zarr_run.seconds is not None and ome.seconds is not None
    ratio = ome.seconds / zarr_run.seconds
    return goal, f"{'PASS' if ratio <= OME_ZARR_GOAL else 'FAIL'} ({ratio:.3f}x)"


def write_archive(xml: Path, archive: Path) -> Path:
    """Zip the export as CVAT's exporter does: ``annotations.xml`` at the top, deflated."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(xml, "annotations.xml")
    return archive


def archive_goal(extracted: RunResult | None, zipped: RunResult | None) -> tuple[str, str]:
    """(goal, verdict) for the archive against the extracted export (both ``--to zarr``)."""
    goal = f"microprep zarr from the zip within {ARCHIVE_GOAL:.1f}x of the extracted file"
    if extracted is None or zipped is None or not extracted.ok or not zipped.ok:
        return goal, "not evaluated (a run failed or was skipped)"
    assert extracted.seconds is not None and zipped.seconds is not None
    ratio = zipped.seconds / extracted.seconds
    return goal, f"{'PASS' if ratio <= ARCHIVE_GOAL else 'FAIL'} ({ratio:.3f}x)"


def measure_alternating(
    runs: list[tuple[str, str, list[str], Path]], *, repeat: int, scratch: Path
) -> list[RunResult]:
    """Like :func:`measure` for several commands, run in turn (A, B, A, B, ...), so that a slow
    spell of a shared machine hits them alike; each keeps its best time."""
    rounds: list[list[RunResult]] = []
    for i in range(repeat):
        folder = scratch / f"round-{i}"
        folder.mkdir(exist_ok=True)
        rounds.append(
            [
                measure(tool, target, cmd, out, repeat=1, scratch=folder)
                for tool, target, cmd, out in runs
            ]
        )
    merged = []
    for k, (tool, target, cmd, _) in enumerate(runs):
        mine = [r[k] for r in rounds]
        result = RunResult(tool=tool, target=target, command=cmd)
        failed = next((r for r in mine if not r.ok), None)
        if failed is not None:
            result.error = failed.error
        else:
            result.runs = [r.seconds for r in mine if r.seconds is not None]
            result.seconds = min(result.runs)
            result.peak_rss_mb = max(r.peak_rss_mb or 0.0 for r in mine)
            result.files, result.output_mb = mine[-1].files, mine[-1].output_mb
        merged.append(result)
    return merged


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 images, 1 repeat")
    parser.add_argument("--images", type=int, default=None, help="images in the export (20)")
    parser.add_argument("--size", type=int, default=2048, help="image width = height (2048)")
    parser.add_argument("--seed", type=int, default=stress_export.DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=None, help="runs per command, best kept (3)")
    parser.add_argument(
        "--baseline-repeat", type=int, default=None, help="runs of Datumaro (as --repeat)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the Datumaro baseline")
    parser.add_argument(
        "--archive-only",
        action="store_true",
        help="only the zip archive against the extracted file (--to zarr; no baseline)",
    )
    parser.add_argument(
        "--ome-zarr",
        action="store_true",
        help="only --to ome-zarr against --to zarr, with synthetic images (no baseline)",
    )
    parser.add_argument("--datumaro-venv", type=Path, default=DEFAULT_DATUMARO_VENV)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep files here (implies --keep)"
    )
    parser.add_argument("--keep", action="store_true", help="do not delete the work folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    images = args.images if args.images is not None else (2 if args.quick else 20)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="microprep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keep = args.keep or args.workdir is not None
    try:
        xml = work / "stress" / "annotations.xml"
        print(f"writing the stress export to {xml} ...", file=sys.stderr)
        counts = stress_export.write_stress_export(
            xml, images=images, size=args.size, seed=args.seed
        )
        size_mb = xml.stat().st_size / 1e6
        scratch = work / "reports"
        scratch.mkdir(exist_ok=True)

        if args.ome_zarr:
            imgs = write_images(xml, work / "images", args.size)
            pair = []
            for target in ("zarr", "ome-zarr"):
                out = work / "out" / f"microprep-images-{target}"
                cmd = [sys.executable, "-m", "microprep", "convert", str(xml), "--images"]
                pair.append(
                    (
                        "microprep",
                        f"{target} +images",
                        [*cmd, str(imgs), "--to", target, "--out", str(out)],
                        out,
                    )
                )
            both = measure_alternating(pair, repeat=repeat, scratch=scratch)
            print(
                f"\nstress export: {images} images of {args.size}x{args.size} with images; "
                f"best of {repeat}, alternating"
            )
            print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs\n")
            print_table(both, None)
            goal, verdict = ome_zarr_goal(*both)
            print(f"\ngoal: {goal}: {verdict}")
            return 0 if verdict.startswith("PASS") else 1

        results: list[RunResult] = []
        main_run: RunResult | None = None
        extracted: RunResult | None = None
        for target in () if args.archive_only else ("masks,coco",):
            out = work / "out" / f"microprep-{target.replace(',', '_')}"
            cmd = [
                sys.executable,
                "-m",
                "microprep",
                "convert",
                str(xml),
                "--to",
                target,
                "--out",
                str(out),
            ]
            r = measure("microprep", target, cmd, out, repeat=repeat, scratch=scratch)
            results.append(r)
            main_run = r

        # --to zarr from the extracted file and from the zip, in turn
        zipped_export = write_archive(xml, work / "stress.zip")
        pair = []
        for target, export in (("zarr", xml), ("zarr (zip)", zipped_export)):
            out = work / "out" / f"microprep-{'zip-' if export != xml else ''}zarr"
            cmd = [sys.executable, "-m", "microprep", "convert", str(export)]
            pair.append(("microprep", target, [*cmd, "--to", "zarr", "--out", str(out)], out))
        extracted, zipped = measure_alternating(pair, repeat=repeat, scratch=scratch)
        results += [extracted, zipped]

        baseline: RunResult | None = None
        baseline_note = "skipped (--no-baseline)"
        if args.archive_only:
            baseline_note = "skipped (--archive-only)"
        elif not args.no_baseline:
            python, baseline_note = ensure_datumaro(args.datumaro_venv.resolve())
            if python is not None:
                dm_in = datumaro_input(xml, work / "datumaro_in")
                script = work / "datumaro_convert.py"
                script.write_text(_DATUMARO_SCRIPT)
                out = work / "out" / "datumaro-voc_segmentation"
                env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
                cmd = [str(python), str(script), str(dm_in), str(out)]
                baseline = measure(
                    "datumaro",
                    "voc_segmentation",
                    cmd,
                    out,
                    repeat=args.baseline_repeat or repeat,
                    scratch=scratch,
                    env=env,
                )
                results.append(baseline)

        print()
        print(
            f"stress export: {images} images of {args.size}x{args.size}, "
            + ", ".join(f"{n} {k}s" for k, n in counts.items())
            + f", {size_mb:.1f} MB; best of {repeat} (Datumaro: {args.baseline_repeat or repeat})"
        )
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}"
        )
        print(f"baseline: {baseline_note}")
        print()
        print_table(results, baseline)
        print()
        goals = [] if args.archive_only else evaluate_goals(main_run, baseline)
        goals.append(archive_goal(extracted, zipped))
        for goal, verdict in goals:
            print(f"goal: {goal}: {verdict}")
        if args.quick:
            print("(quick run: a smoke test on 2 images, not the goal measurement)")
        if keep:
            print(f"files kept in {work}")

        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "images": images,
                        "size": args.size,
                        "shapes": counts,
                        "export_mb": size_mb,
                        "repeat": repeat,
                        "baseline": baseline_note,
                        "results": [asdict(r) for r in results],
                        "goals": dict(goals),
                    },
                    indent=2,
                )
            )
        failed = any(not r.ok for r in results if r.tool == "microprep")
        failed = failed or any(verdict.startswith("FAIL") for _, verdict in goals)
        return 1 if failed else 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
