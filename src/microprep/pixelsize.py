"""The physical size of a pixel: length units, and reading it from TIFF / OME-TIFF metadata.

A pixel size is ``(size, unit)`` or ``(size, unit, z)``: the size of one pixel along ``y`` and
``x`` in an NGFF length unit (``"nanometer"``...), and for stacks the distance between slices
``z`` in the same unit (None: not known). Sources, in order (docs/ome-zarr.md):

* OME-TIFF: the first ``Pixels`` element of the OME-XML, ``PhysicalSizeX`` (``Y`` is taken
  equal) and ``PhysicalSizeZ`` with their units (``PhysicalSizeXUnit``, default ``µm``);
* ImageJ TIFF: ``XResolution`` (pixels per unit) with the ``unit`` of the ImageJ metadata, and
  its ``spacing`` for stacks;
* other TIFFs: ``XResolution`` with ``ResolutionUnit`` centimeter (or tifffile's millimeter /
  micrometer). Inch resolutions are print settings (72 dpi ...), not pixel sizes: ignored.

PNG, JPEG and the rest carry no pixel size here.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.tif"
    >>> tifffile.imwrite(path, np.zeros((4, 4), np.uint8), imagej=True,
    ...                  resolution=(2.0, 2.0), metadata={"unit": "um"})
    >>> tiff_pixel_size(path)
    (0.5, 'micrometer', None)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tifffile
from lxml import etree

from microprep.errors import PrepError

__all__ = ["UNITS", "PixelSize", "images_pixel_size", "tiff_pixel_size", "unit_name"]

logger = logging.getLogger(__name__)

#: ``(size, unit[, z])``: see the module docstring.
PixelSize = tuple[Any, ...]

#: Spellings of length units (lower case) -> NGFF unit names.
UNITS = {
    "pm": "picometer",
    "nm": "nanometer",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "\\u00b5m": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "a": "angstrom",
    "å": "angstrom",
    "angstrom": "angstrom",
}
UNITS.update({name: name for name in set(UNITS.values())})
_METERS = {
    "picometer": 1e-12,
    "nanometer": 1e-9,
    "micrometer": 1e-6,
    "millimeter": 1e-3,
    "centimeter": 1e-2,
    "meter": 1.0,
    "angstrom": 1e-10,
}
#: TIFF ResolutionUnit values read (3: centimeter; 4, 5: tifffile's millimeter, micrometer).
_RESOLUTION_UNITS = {3: "centimeter", 4: "millimeter", 5: "micrometer"}
_TIFF_SUFFIXES = (".tif", ".tiff")


def unit_name(text: str) -> str | None:
    """The NGFF name of a length unit (``"um"`` -> ``"micrometer"``), None when unknown.

    Example:
        >>> unit_name("micron"), unit_name("pixel")
        ('micrometer', None)
    """
    return UNITS.get(text.strip().lower())


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _ome(xml: str) -> PixelSize | None:
    root = etree.fromstring(xml.encode("utf-8"))
    pixels = next((e for e in root.iter() if etree.QName(e).localname == "Pixels"), None)
    if pixels is None:
        return None
    size = _positive(pixels.get("PhysicalSizeX"))
    unit = unit_name(pixels.get("PhysicalSizeXUnit", "µm"))
    if size is None or unit is None:
        return None
    z = _positive(pixels.get("PhysicalSizeZ"))
    z_unit = unit_name(pixels.get("PhysicalSizeZUnit", "µm"))
    if z is not None and z_unit is not None:
        z = z * _METERS[z_unit] / _METERS[unit]
    return size, unit, z if z_unit is not None else None


def _resolution(page: Any, unit: str | None) -> float | None:
    tag = page.tags.get("XResolution")
    if tag is None or unit is None:
        return None
    num, den = tag.value
    per_unit = _positive(num / den) if den else None
    return 1.0 / per_unit if per_unit else None


def _read(tif: tifffile.TiffFile) -> PixelSize | None:
    if not tif.pages:
        return None
    if tif.is_ome and tif.ome_metadata:
        found = _ome(tif.ome_metadata)
        if found is not None:
            return found
    page = tif.pages.first
    if tif.is_imagej and tif.imagej_metadata:
        meta = tif.imagej_metadata
        unit = unit_name(str(meta.get("unit", "")))
        size = _resolution(page, unit)
        if size is not None and unit is not None:
            return size, unit, _positive(meta.get("spacing"))
    res_unit = page.tags.get("ResolutionUnit")
    unit = _RESOLUTION_UNITS.get(int(res_unit.value)) if res_unit is not None else None
    size = _resolution(page, unit)
    return (size, unit, None) if size is not None and unit is not None else None


def tiff_pixel_size(source: Path | BinaryIO) -> PixelSize | None:
    """``(size, unit, z)`` from a TIFF's metadata (see the module docstring), None when the
    file records none or is not a TIFF (never raises on a bad file: the pixels' reader does)."""
    try:
        with tifffile.TiffFile(source) as tif:
            return _read(tif)
    except Exception as exc:  # corrupt files are reported when their pixels are read
        logger.debug("%s: no pixel size read: %s", source, exc)
        return None


def _meters(size: PixelSize) -> list[float]:
    scale = _METERS[size[1]]
    return [size[0] * scale, (size[2] or 0.0) * scale if len(size) > 2 else 0.0]


def _text(size: PixelSize) -> str:
    z = f", {size[2]:g} between slices" if len(size) > 2 and size[2] else ""
    return f"{size[0]:g} {size[1]}{z}"


def images_pixel_size(
    source: Any, names: Sequence[str], *, on_warning: Callable[[str], None] | None = None
) -> PixelSize | None:
    """The pixel size recorded by the TIFF files ``names`` of the image source ``source``.

    The first TIFF that records one gives it; TIFFs that record another one are reported in
    one warning (the first is kept: give ``--pixel-size`` to choose). None when no file records
    one.

    Example:
        >>> images_pixel_size(None, [])
    """
    found: PixelSize | None = None
    first = ""
    other: list[str] = []
    for name in names:
        if Path(name).suffix.lower() not in _TIFF_SUFFIXES:
            continue
        try:
            with source.open(name) as fh:
                size = tiff_pixel_size(fh)
        except (OSError, PrepError):
            continue
        if size is None:
            continue
        if found is None:
            found, first = size, name
        elif not np.allclose(_meters(size), _meters(found), rtol=1e-6, atol=0):
            other.append(f"{name} ({_text(size)})")
    if other:
        line = (
            f"images record different pixel sizes: {first} has {_text(found or ())}, "
            f"{', '.join(other[:3])}{' ...' if len(other) > 3 else ''}; using the first "
            "(give --pixel-size to choose)"
        )
        (on_warning or logger.warning)(line)
    return found
