"""The memory budget of a conversion: how many rows of an image are built at a time.

The budget (``--max-memory``, default :func:`default_budget`: half of the memory available when
the run starts, from ``/proc/meminfo``'s ``MemAvailable`` or ``os.sysconf``) bounds the arrays
built for one image on top of the process itself (Python, numpy, zarr, shapely: about 150 MB).
:func:`plan_image` estimates what an image's targets cost per row of pixels
(:data:`BYTES_PER_PIXEL` for the class map, the fill's temporaries, the instance layers and the
sinks' copies, plus one byte per row and object column for the object masks) and its pixels:

* it fits, and needs at most :data:`BAND_ABOVE` (or an output cannot take bands): the image is
  built whole, as always;
* it needs more, and every output takes bands: it is built and written in bands of rows (class
  map, instance layers, mask PNG rows, zarr chunks) of at most :data:`BAND_ABOVE` each (or the
  budget, when smaller), aligned to the store's chunk rows where they allow. Banding is about
  as fast as building whole, so a huge image never takes more than it needs, whatever memory
  the machine has free;
* not even one row (or its pixels, which are loaded whole) fits: it is refused before anything
  is built, with a :class:`MemoryBudgetError` naming the image, its size and what it would need.

Example:
    >>> parse_size("2GB"), parse_size("512 MiB"), parse_size("1e6")
    (2000000000, 536870912, 1000000)
    >>> plan_image(name="a.png", height=1000, width=1000, budget=10**9).band_rows is None
    True
    >>> plan_image(name="a.png", height=20000, width=20000, budget=300_000_000).band_rows
    279
    >>> plan_image(name="a.png", height=20000, width=20000, budget=200_000_000).band_rows
    208
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from microprep.errors import PrepError

logger = logging.getLogger(__name__)

#: Images whose targets need more than this are built in bands of at most this much, when every
#: output takes bands (a 20000x20000 image then peaks near 400 MB instead of several GB).
BAND_ABOVE = 256 << 20
#: Share of the available memory that the default budget takes.
DEFAULT_FRACTION = 0.5
#: Budget when the available memory cannot be read.
FALLBACK_BUDGET = 4 << 30
#: Estimated bytes per image pixel of building and writing the targets of one image: class map
#: (1-2), the scanline fill's temporaries (about 26, one shape at a time), the class count
#: (8), the instance layers (4 per layer, 2 layers counted) and the sinks' copies (4).
BYTES_PER_PIXEL = 48
#: Estimated bytes per pixel and class of the one-hot export (a comparison and its copy).
ONEHOT_BYTES_PER_CLASS = 2
#: Band heights are rounded down to a multiple of these rows where the band allows
#: (the store's chunk rows), so zarr writes whole chunks.
ALIGN_ROWS = (512,)

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}  # fmt: skip


class MemoryBudgetError(PrepError):
    """An image (or volume) whose targets cannot be built within the memory budget."""


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """How one image is built: whole (``band_rows`` None) or in bands of ``band_rows`` rows.

    ``needed`` is the estimated bytes of building it whole.
    """

    band_rows: int | None
    needed: int


def parse_size(text: str) -> int:
    """Bytes of a size such as ``"2GB"``, ``"512MiB"``, ``"300M"`` or ``"1e9"``.

    Units: B, kB/MB/GB/TB (powers of 1000; K/M/G/T alone too) and KiB/MiB/GiB/TiB (powers of
    1024), any case.

    Raises:
        ValueError: not a positive size.
    """
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 2GB, 512MiB, 300M)")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r}: the size must be positive")
    return value


def format_size(n: int) -> str:
    """``n`` bytes in MB or GB, e.g. ``"1.6 GB"``."""
    return f"{n / 1e9:.1f} GB" if n >= 10**9 else f"{n / 1e6:.0f} MB"


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes of memory available now (``MemAvailable``, else free pages), None if unknown."""
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """:data:`DEFAULT_FRACTION` of :func:`available_memory` (:data:`FALLBACK_BUDGET` if unknown)."""
    available = available_memory()
    return FALLBACK_BUDGET if available is None else int(available * DEFAULT_FRACTION)


def plan_image(
    *,
    name: str,
    height: int,
    width: int,
    budget: int,
    depth: int = 1,
    pixel_bytes: int = 0,
    object_columns: int = 0,
    onehot_classes: int = 0,
    can_band: bool = True,
) -> ImagePlan:
    """Whether image ``name`` (``depth`` slices of ``height`` x ``width``) fits ``budget`` whole,
    else the rows of one band.

    ``pixel_bytes``: its image file's pixels (loaded whole; 0 without images).
    ``object_columns``: the sum over its objects of their widths in pixels.
    ``onehot_classes``: the classes of a one-hot export (0: none). ``can_band``: False when an
    output (or a volume) cannot be written in bands: then the image must fit whole.

    Raises:
        MemoryBudgetError: it does not fit, not even one row of it.
    """
    per_row = width * (BYTES_PER_PIXEL + ONEHOT_BYTES_PER_CLASS * onehot_classes) + object_columns
    per_row *= depth
    # the pixels are held and written (compressed) whole: counted twice
    fixed = 2 * pixel_bytes
    needed = fixed + per_row * height
    if needed <= budget and (needed <= BAND_ABOVE or not can_band):
        return ImagePlan(None, needed)
    size = f"{width}x{height}" + (f"x{depth}" if depth > 1 else "")
    if not can_band or fixed + per_row > budget:
        what = "whole" if not can_band else "in bands of one row"
        least = needed if not can_band else fixed + per_row
        raise MemoryBudgetError(
            f"image {name!r} ({size} px): building its targets {what} needs about "
            f"{format_size(least)}, more than the memory budget of {format_size(budget)} "
            f"(whole: about {format_size(needed)}); raise --max-memory"
            + ("" if can_band else " or leave out the outputs that cannot be banded (onehot, coco)")
        )
    budget = min(budget, max(BAND_ABOVE, fixed + per_row))
    rows = (budget - fixed) // per_row
    for align in ALIGN_ROWS:
        if rows >= align:
            rows -= rows % align
            break
    return ImagePlan(int(max(1, min(rows, height))), needed)
