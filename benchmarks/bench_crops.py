"""Crop speed and memory, side by side with plain copies, direct zarr reads and xbatcher.

Goals (PASS/FAIL printed per goal; exit status 1 when one fails). Contenders run in turn,
``--repeat`` rounds, each call after the CPU caches were flushed (a 128 MiB buffer written
through; ``--evict-mib`` for a larger last-level cache), and each keeps its best time.

1. 2D tiling of a 4096x4096 uint8 image into 256x256 tiles at stride 128: within 1.5x of a
   memcpy of the same output bytes (np.copyto into a preallocated (N, 256, 256) buffer), and at
   least 10x xbatcher's tile rate for the same product, every tile copied into one (N, 256, 256)
   array (BatchGenerator, input_dims 256, input_overlap 128, concat_input_dims=True). xbatcher's
   per-tile iteration is shown too: it hands out views and copies nothing, so no copying tiler
   can be 10x its rate (that would be several times faster than memcpy).
2. 64^3 windows from a 1024^3 uint8 zarr: within 1.5x of reading and decoding its chunks
   directly, for cube chunks (64, 64, 64) and slice chunks (1, 1024, 1024) alike; the naive
   per-window read of the slice-chunked array is shown too (timed on a subset, extrapolated).
   Each volume is written twice: zstd only, read by zarr directly, and as the dataset store
   writes it (zstd then a crc32c per chunk, read through the checking store of
   :mod:`microprep.store.integrity`). The goals compare like with like: windows of the plain
   volume with its direct read, and windows of the checked volume with the direct read of the
   checked volume (the same bytes decoded and verified). What the checksums cost is shown on its
   own, and the checked windows against the plain direct read beside it.
3. Peak memory (VmHWM, fresh subprocess) while cropping a 2048^3 uint8 zarr stays < 512 MiB.

Usage::

    .venv/bin/python benchmarks/bench_crops.py [--size3d 1024] [--size 2048] [--repeat 5]
        [--skip-memory] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.storage import LocalStore

from microprep.crops.scale import crop_array
from microprep.crops.slabs import iter_windows
from microprep.crops.windows import window_grid
from microprep.store.integrity import CheckedStore
from microprep.store.layout import COMPRESSORS

RESULTS: list[tuple[str, bool]] = []


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` runs, seconds."""
    return interleaved({"fn": fn}, repeat)["fn"]


#: Written through before every timed call, so every contender starts with cold CPU caches.
#: Four times a 32 MiB last-level cache; a larger one can be set with --evict-mib.
EVICT_BYTES = 128 << 20
_evict: list[np.ndarray] = []


def evict_caches() -> None:
    """Push the inputs of the previous call out of the CPU caches (read and write a buffer
    several times the last-level cache): otherwise a contender whose input fits in the cache
    (the 16 MiB image) would time faster right after itself than after another contender."""
    if not _evict or _evict[0].nbytes != EVICT_BYTES:
        _evict[:] = [np.zeros(EVICT_BYTES, np.uint8)]
    np.add(_evict[0], 1, out=_evict[0])


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each of ``fns`` over ``repeat`` rounds that run each once in turn (so
    a slow spell of a shared machine hits every contender alike), each after
    :func:`evict_caches`."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            evict_caches()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: min(v) for name, v in times.items()}


def goal(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok))
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")


def bench_2d(repeat: int) -> None:
    print("2D tiling: 4096x4096 uint8, 256x256 tiles, stride 128")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (4096, 4096), dtype=np.uint8)
    origins = window_grid(shape=image.shape, window=256, stride=128)
    n = len(origins)
    out = np.empty((n, 256, 256), np.uint8)
    source = np.ascontiguousarray(rng.integers(0, 255, out.shape, dtype=np.uint8))
    out.fill(0)
    import xarray as xr

    try:
        import xbatcher
    except ImportError:
        xbatcher = None
        print("  xbatcher is not installed: its contenders and goal are left out")
    da = xr.DataArray(image, dims=("y", "x"))
    dims = {"input_dims": {"y": 256, "x": 256}, "input_overlap": {"y": 128, "x": 128}}

    def run_xbatcher_stack() -> None:
        # the same product as ours: every tile copied into one (N, 256, 256) array
        (batch,) = xbatcher.BatchGenerator(da, concat_input_dims=True, **dims)
        assert batch.shape == out.shape

    def run_xbatcher_views() -> int:
        return sum(int(b.values.size > 0) for b in xbatcher.BatchGenerator(da, **dims))

    def run_xbatcher_copy() -> None:
        for k, b in enumerate(xbatcher.BatchGenerator(da, **dims)):
            np.copyto(out[k], b.values)

    contenders: dict[str, Callable[[], Any]] = {
        "memcpy": lambda: np.copyto(out, source),
        "ours": lambda: crop_array(image, origins, (256, 256), out=out),
    }
    if xbatcher is not None:
        contenders.update(
            xb_stack=run_xbatcher_stack, xb_views=run_xbatcher_views, xb_copy=run_xbatcher_copy
        )
    t = interleaved(contenders, repeat)
    assert np.array_equal(out[-1], image[-256:, -256:])
    ours = t["ours"]
    print(f"  tiles: {n}, {out.nbytes / 2**20:.0f} MiB out")
    rate = out.nbytes / t["memcpy"] / 2**30
    print(f"  memcpy        {t['memcpy'] * 1e3:7.1f} ms  ({rate:.2f} GiB/s)")
    print(f"  microprep     {ours * 1e3:7.1f} ms  ({n / ours:,.0f} tiles/s)")
    goal("2D within 1.5x of memcpy", ours <= 1.5 * t["memcpy"], f"{ours / t['memcpy']:.2f}x")
    if xbatcher is None:
        return
    for key, label, note in (
        ("xb_stack", "xbatcher", "concat_input_dims=True: one (N, 256, 256) array, as ours"),
        ("xb_views", "xb views", "one DataArray per tile, a view: nothing copied"),
        ("xb_copy", "xb + copy", "one view per tile, each copied into one (N, 256, 256) array"),
    ):
        print(
            f"  {label:<12}{t[key] * 1e3:7.1f} ms  ({n / t[key]:,.0f} tiles/s, "
            f"microprep {t[key] / ours:.1f}x; {note})"
        )
    goal(
        "2D >= 10x xbatcher tile rate (same product)",
        t["xb_stack"] >= 10 * ours,
        f"{t['xb_stack'] / ours:.0f}x",
    )


def make_volume(
    path: Path, size: int, chunks: tuple[int, ...], shards: Any = None, *, checked: bool = False
) -> Any:
    """A size^3 uint8 zarr with a compressible pattern, written slab by slab.

    ``checked``: encoded as the dataset store encodes (zstd, crc32c), at ``node/volume`` in a
    group, and returned opened through the store's checking reader.
    """
    arr = zarr.create_array(
        store=LocalStore(path),
        name="node/volume" if checked else None,
        shape=(size,) * 3,
        chunks=chunks,
        shards=shards,
        dtype=np.uint8,
        compressors=COMPRESSORS if checked else (ZstdCodec(level=1),),
        overwrite=True,
    )
    step = max(chunks[0], 64 if chunks[0] < 64 else chunks[0])
    yx = (np.add.outer(np.arange(size) // 7, np.arange(size) // 5) % 13).astype(np.uint8)
    for z in range(0, size, step):
        depth = min(step, size - z)
        slab = yx[None] + (np.arange(z, z + depth) // 3 % 5).astype(np.uint8)[:, None, None]
        arr[z : z + depth] = slab
    if checked:
        store = CheckedStore(LocalStore(path, read_only=True), root=path)
        return zarr.open_array(store, path="node/volume", mode="r")
    return arr


def bench_3d(workdir: Path, size: int, repeat: int) -> None:
    print(f"3D windows: {size}^3 uint8 zarr, 64^3 windows, stride 64")
    origins = window_grid(shape=(size,) * 3, window=64, stride=64)
    for label, chunks in (("cube", (64, 64, 64)), ("slice", (1, size, size))):
        t = time.perf_counter()
        plain = make_volume(workdir / f"vol-{label}.zarr", size, chunks)
        checked = make_volume(workdir / f"vol-{label}-crc.zarr", size, chunks, checked=True)
        print(f"  [{label} chunks {chunks}] both written in {time.perf_counter() - t:.1f} s")

        def direct(arr: Any) -> Callable[[], None]:
            def run() -> None:
                for z in range(0, size, 64):
                    arr[z : z + 64]

            return run

        def ours(arr: Any) -> Callable[[], None]:
            def run() -> None:
                for _ in iter_windows(arr, origins, (64, 64, 64)):
                    pass

            return run

        times = interleaved(
            {
                "direct": direct(plain),
                "ours": ours(plain),
                "direct_crc": direct(checked),
                "ours_crc": ours(checked),
            },
            repeat,
        )
        t_direct, t_ours, t_crc = times["direct"], times["ours"], times["ours_crc"]
        print(f"    direct chunk read  {t_direct:7.2f} s  (zstd)")
        print(
            f"    direct, checked    {times['direct_crc']:7.2f} s  (zstd + crc32c, checking "
            f"store: {times['direct_crc'] / t_direct:.2f}x)"
        )
        print(f"    microprep windows  {t_ours:7.2f} s  ({len(origins) / t_ours:,.0f} windows/s)")
        print(
            f"    windows, checked   {t_crc:7.2f} s  ({len(origins) / t_crc:,.0f} windows/s; "
            f"checksums {t_crc / t_ours:.2f}x)"
        )
        if label == "slice":
            subset = origins[: max(1, min(32, len(origins)))]

            def naive(arr: Any = plain, subset: Any = subset) -> None:
                for z, y, x in subset:
                    arr[z : z + 64, y : y + 64, x : x + 64]

            t_naive = best(naive, 1) * len(origins) / len(subset)
            print(
                f"    naive per-window   {t_naive:7.2f} s  (extrapolated from {len(subset)}"
                f" windows; {t_naive / t_ours:.0f}x slower)"
            )
        t_direct_crc = times["direct_crc"]
        goal(f"3D {label} chunks within 1.5x of direct read", t_ours <= 1.5 * t_direct,
             f"{t_ours / t_direct:.2f}x")  # fmt: skip
        goal(f"3D {label} chunks (checked) within 1.5x of direct read (checked)",
             t_crc <= 1.5 * t_direct_crc, f"{t_crc / t_direct_crc:.2f}x; against the plain "
             f"direct read {t_crc / t_direct:.2f}x")  # fmt: skip


CHILD = """
import sys, numpy as np, zarr
from microprep.crops.slabs import iter_windows
from microprep.crops.windows import window_grid
arr = zarr.open_array(sys.argv[1], mode="r")
origins = window_grid(shape=arr.shape, window=64, stride=64)
n = 0
for w in iter_windows(arr, origins, (64, 64, 64)):
    n += 1
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print(n, int(line.split()[1]))
"""


def bench_memory(workdir: Path, size: int) -> None:
    print(f"Memory: cropping a {size}^3 uint8 zarr (chunks 64^3) into 64^3 windows")
    need = size**3 // 8  # generous: the pattern compresses far better than 8:1
    free = shutil.disk_usage(workdir).free
    if free < need:
        print(f"  skipped: {free / 2**30:.1f} GiB free, need about {need / 2**30:.1f} GiB")
        return
    t = time.perf_counter()
    path = workdir / "big.zarr"
    shards = (64, min(size, 1024), min(size, 1024))
    make_volume(path, size, (64, 64, 64), shards=shards)
    print(f"  written in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    windows, hwm_kib = map(int, res.stdout.split())
    print(f"  {windows} windows in {time.perf_counter() - t:.1f} s, VmHWM {hwm_kib / 1024:.0f} MiB")
    goal("peak memory < 512 MiB", hwm_kib < 512 * 1024, f"{hwm_kib / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size3d", type=int, default=1024, help="edge of the speed volume")
    parser.add_argument("--size", type=int, default=2048, help="edge of the memory volume")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--evict-mib", type=int, default=128, help="cache-flush buffer, MiB")
    parser.add_argument("--workdir", type=Path, help="keep the volumes here (default: temp)")
    args = parser.parse_args(argv)
    global EVICT_BYTES
    EVICT_BYTES = args.evict_mib << 20
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="bench-crops-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        bench_2d(args.repeat)
        bench_3d(tmp, args.size3d, args.repeat)
        if not args.skip_memory:
            bench_memory(tmp, args.size)
    finally:
        if args.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [name for name, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} goals met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
