"""Labelbox segmentation masks, read from a local folder of PNGs only (URLs are never fetched).

A mask object's pixels come from ``<masks>/<per-object stem>.png`` (its nonzero pixels), else,
for an object with a ``composite_mask`` colour, from ``<masks>/<composite stem>.png`` (the
pixels of exactly that RGB colour; the file is read once per image). The stems come from the
object's feature id and its data row id. A mask without a file, or with no pixels, is skipped
and counted.

Example:
    >>> m = MaskReader("e.ndjson", masks=None, build=True, feature_id="feature_id")
    >>> m.read({"mask": {"url": "https://..."}}, ("objects", 0), 1, (8, 8), ("f1", None)), m.missing
    (None, 1)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.errors import ImageFileError, UnsafeInputError
from microprep.images import read_image
from microprep.paths import safe_join
from microprep.readers.jsonsafe import json_path, json_text
from microprep.readers.labelbox.checks import Checker, JsonPath, describe

logger = logging.getLogger(__name__)


def check_stem(stem: str, *, file: str, line: int | None, path: JsonPath) -> str:
    """``stem`` if it can be a file name in the masks folder, else an UnsafeInputError there."""
    if (
        not stem
        or stem in (".", "..")
        or any(ch in stem for ch in ("/", "\\", "\x00"))
        or len(stem) > 200
    ):
        raise UnsafeInputError(
            f"id {json_text(stem)} cannot name a mask file (empty, a path or too long)",
            file=file,
            line=line,
            where=json_path(path),
        )
    return stem


class MaskReader(Checker):
    """Finds and reads the mask of each mask object; counts the ones skipped.

    Args:
        file: the export's path, for messages.
        masks: the local folder of mask PNGs (None: every mask object is skipped).
        build: return the mask's pixels (False: only check them; the checking pass).
        feature_id: the key of an object's feature id (named in errors about its stem).
    """

    def __init__(self, file: str, *, masks: Path | None, build: bool, feature_id: str) -> None:
        super().__init__(file)
        self.masks = masks
        self.build = build
        self.feature_id = feature_id
        #: mask objects without a mask file, and with an empty mask
        self.missing = 0
        self.empty = 0
        self._composites: dict[Path, NDArray[Any]] = {}

    def new_image(self) -> None:
        """Forget the composite masks read for the previous image."""
        self._composites.clear()

    def read(
        self,
        obj: dict[str, Any],
        path: JsonPath,
        line: int | None,
        size: tuple[int, int],
        stems: tuple[str | None, str | None],
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None] | None:
        """The mask's box ``[[left, top], [right, bottom]]`` and, when building, its pixels.

        None (counted in ``missing`` or ``empty``) when there is no mask file or no pixel.
        """
        color = self._color(obj, line, path)
        own, composite = stems
        if own is not None:
            check_stem(own, file=self.file, line=line, path=(*path, self.feature_id))
        if color is not None and composite is not None:
            check_stem(composite, file=self.file, line=line, path=(*path, "composite_mask"))
        pixels: NDArray[np.bool_] | None = None
        if self.masks is not None:
            file = None if own is None else self._mask_file(self.masks, own, line, path)
            if file is not None and file.is_file():
                pixels = _nonzero(self._load(file, size, line, path))
            elif color is not None and composite is not None:
                file = self._mask_file(self.masks, composite, line, path)
                if file.is_file():
                    cached = self._composites.get(file)
                    if cached is None:
                        cached = self._composites[file] = self._load(file, size, line, path)
                    pixels = _of_color(cached, color)
        if pixels is None:
            self.missing += 1
            return None
        rows = np.flatnonzero(pixels.any(axis=1))
        if rows.size == 0:
            self.empty += 1
            return None
        cols = np.flatnonzero(pixels.any(axis=0))
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        left, right = int(cols[0]), int(cols[-1]) + 1
        pts = np.array([[left, top], [right, bottom]], dtype=np.float64)
        if not self.build:
            return pts, None
        return pts, np.ascontiguousarray(pixels[top:bottom, left:right])

    def _color(
        self, obj: dict[str, Any], line: int | None, path: JsonPath
    ) -> tuple[int, ...] | None:
        composite = obj.get("composite_mask")
        if composite is None:
            return None
        here = (*path, "composite_mask")
        if not isinstance(composite, dict):
            raise self.format_error(f"expected an object, got {describe(composite)}", line, here)
        rgb = composite.get("color_rgb")
        if (
            not isinstance(rgb, list)
            or len(rgb) != 3
            or not all(type(v) is int and 0 <= v <= 255 for v in rgb)
        ):
            raise self.format_error(
                f"color_rgb must be [r, g, b] with integers 0..255, got {describe(rgb)}",
                line,
                (*here, "color_rgb"),
            )
        return tuple(rgb)

    def _mask_file(self, root: Path, stem: str, line: int | None, path: JsonPath) -> Path:
        """``root / (stem + ".png")``, refused when it resolves outside ``root`` (a link)."""
        try:
            return safe_join(root, stem + ".png")
        except UnsafeInputError as exc:
            raise UnsafeInputError(
                exc.message, file=self.file, line=line, where=json_path(path)
            ) from exc

    def _load(
        self, file: Path, size: tuple[int, int], line: int | None, path: JsonPath
    ) -> NDArray[Any]:
        try:
            pixels = read_image(file)
        except ImageFileError as exc:
            raise ImageFileError(
                f"mask file {file}: {exc.message}",
                file=self.file,
                line=line,
                where=json_path(path),
            ) from exc
        width, height = size
        if pixels.shape[:2] != (height, width):
            raise ImageFileError(
                f"mask file {file} is {pixels.shape[1]}x{pixels.shape[0]} pixels "
                f"(width x height) but the image is {width}x{height}",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        logger.debug("mask %s read for %s", file, json_path(path))
        return pixels


def _nonzero(pixels: NDArray[Any]) -> NDArray[np.bool_]:
    """Nonzero pixels (any colour channel; alpha ignored) of a per-object mask."""
    if pixels.ndim == 2:
        return np.asarray(pixels != 0)
    return np.asarray((pixels[..., :3] != 0).any(axis=-1))


def _of_color(pixels: NDArray[Any], color: tuple[int, ...]) -> NDArray[np.bool_]:
    """Pixels of exactly ``color`` (RGB) in a composite mask; gray files match gray colours."""
    r, g, b = color
    if pixels.ndim == 2:
        if r == g == b:
            return np.asarray(pixels == r)
        return np.zeros(pixels.shape, dtype=np.bool_)
    return np.asarray((pixels[..., 0] == r) & (pixels[..., 1] == g) & (pixels[..., 2] == b))
