"""The ``masks`` and ``onehot`` exports: one file per image (per slice for volumes).

``masks``::

    OUT/classes.txt                 one class name a line; line 1 is "background"
    OUT/masks/<name>.png            class-index PNG, 8-bit ("L") or 16-bit ("I;16")

``onehot``::

    OUT/classes.txt
    OUT/onehot/<name>.npy           (C, H, W) uint8, np.save format

``<name>`` is the image name (or, for a volume, each slice's image name) with its last
extension replaced: ``"grid 1/a b.tif"`` becomes ``masks/grid 1/a b.png``. Folders in names are
kept; names that could escape the output folder raise
:class:`~microprep.errors.UnsafeInputError`, and two images that would write the same file
raise :class:`~microprep.errors.InputError`.

Example:
    >>> str(output_name("grid 1/a b.tif", ".png"))
    'grid 1/a b.png'
"""

from __future__ import annotations

import logging
import unicodedata
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from microprep.errors import InputError, UnsafeInputError
from microprep.exports.pngrows import PngRows
from microprep.model import ImageInfo, LabelMap
from microprep.paths import check_relative_name, safe_join
from microprep.targets.bands import Band, BandedTargets
from microprep.targets.types import Targets, class_dtype, one_hot

logger = logging.getLogger(__name__)

__all__ = ["MasksSink", "OneHotSink", "image_planes", "output_name", "write_classes"]

#: zlib level and strategy of the PNGs: the fastest level; run-length matching suits label maps
#: (same speed as the default strategy, about half the size).
PNG_COMPRESS_LEVEL = 1
PNG_COMPRESS_TYPE = zlib.Z_RLE


def output_name(name: str, suffix: str) -> PurePosixPath:
    """The relative output name of image ``name`` with its last extension replaced by ``suffix``.

    Raises:
        UnsafeInputError: ``name`` is empty, absolute, or has a ``..`` component.

    Example:
        >>> str(output_name("a.b.png", ".npy")), str(output_name("noext", ".txt"))
        ('a.b.npy', 'noext.txt')
    """
    rel = check_relative_name(name)
    if not rel.name or rel.name in (".", ".."):
        raise UnsafeInputError(f"image name {name!r} does not name a file")
    return rel.with_suffix(suffix)


def image_planes(
    targets: Targets,
) -> Iterator[tuple[ImageInfo, NDArray[np.unsignedinteger]]]:
    """``(image, class_map)`` per 2D plane: the image itself, or each slice of a volume.

    Raises:
        ValueError: the class map is neither 2D nor 3D or does not match ``targets.images``.
    """
    cmap = targets.class_map
    if cmap.ndim not in (2, 3):
        raise ValueError(f"class map of {targets.name!r} has shape {cmap.shape}: need 2D or 3D")
    planes = cmap[None] if cmap.ndim == 2 else cmap
    if len(targets.images) != planes.shape[0]:
        raise ValueError(
            f"{targets.name!r}: {len(targets.images)} image entries for {planes.shape[0]} plane(s)"
        )
    yield from zip(targets.images, planes, strict=True)


def one_line(name: str) -> str:
    """``name`` with control characters and line separators written as Python escapes, so
    that it takes exactly one line of a text file (readers refuse such names; a ``--map``
    rename could still bring one). Other names are unchanged.

    Example:
        >>> print(one_line("two\\nlines"), one_line("pore"))
        two\\nlines pore
    """
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in ("Cc", "Zl", "Zp")
        else char
        for char in name
    )


def write_classes(root: Path, labels: LabelMap) -> None:
    """Write ``root/classes.txt``: the class names, one a line, ``background`` first (names
    holding a control character escaped by :func:`one_line`)."""
    text = "".join(f"{one_line(name)}\n" for name in labels.class_names)
    (root / "classes.txt").write_text(text, encoding="utf-8")


class _PerImageSink:
    """Shared part of the one-file-per-image sinks."""

    folder = ""
    suffix = ""

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.labels = labels
        self.provenance = dict(provenance)
        self.num_classes = labels.num_classes
        self.dir = self.root / self.folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self._written: dict[PurePosixPath, str] = {}
        write_classes(self.root, labels)

    def _path(self, image: ImageInfo) -> Path:
        rel = output_name(image.name, self.suffix)
        other = self._written.get(rel)
        if other is not None:
            raise InputError(
                f"images {other!r} and {image.name!r} would both be written to "
                f"{self.folder}/{rel}; rename one of them"
            )
        self._written[rel] = image.name
        path = safe_join(self.dir, str(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _check(self, targets: Targets | BandedTargets) -> None:
        if targets.num_classes != self.num_classes:
            raise ValueError(
                f"{targets.name!r} has {targets.num_classes} classes, "
                f"the label map {self.num_classes}"
            )

    def close(self) -> None:
        """Nothing to finish: every file is written by ``add``."""


class MasksSink(_PerImageSink):
    """Class-index PNGs: ``OUT/masks/<name>.png`` and ``OUT/classes.txt``.

    Pixel value = class index (0 background, 1..K in label-map order). The PNG is 8-bit
    grayscale (mode ``"L"``) when ``labels.num_classes <= 256``, else 16-bit (``"I;16"``), for
    every image of the export. Volumes give one PNG per slice, named after the slice images.

    Args:
        root: the existing output folder.
        labels: the label map (fixes the classes and the bit depth).
        provenance: facts about the run (not written by this export).

    Example:
        >>> import tempfile
        >>> from microprep.model import LabelSpec
        >>> from microprep.targets.types import Instances
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> t = Targets("d/a.tif", (ImageInfo("d/a.tif", 3, 2),), np.ones((2, 3), np.uint8),
        ...             Instances.empty((2, 3)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = MasksSink(Path(d), lm, provenance={})
        ...     sink.add(t, None)
        ...     sink.close()
        ...     np.asarray(Image.open(Path(d) / "masks/d/a.png")).tolist()
        [[1, 1, 1], [1, 1, 1]]
    """

    folder = "masks"
    suffix = ".png"

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        super().__init__(root, labels, provenance=provenance)
        self.dtype = class_dtype(self.num_classes + (labels.ignore_index is not None))

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write one PNG per plane of ``targets``. ``pixels`` is not used."""
        self._check(targets)
        for image, cmap in image_planes(targets):
            path = self._path(image)
            arr = np.ascontiguousarray(cmap, dtype=self.dtype)
            Image.fromarray(arr).save(
                path,
                format="PNG",
                compress_level=PNG_COMPRESS_LEVEL,
                compress_type=PNG_COMPRESS_TYPE,
            )

    def banded_writer(self, banded: BandedTargets, pixels: NDArray[np.generic] | None) -> _MaskRows:
        """Write the PNG of ``banded`` row by row (:mod:`microprep.exports.pngrows`); it
        decodes to the same pixels as :meth:`add`'s."""
        self._check(banded)
        height, width = banded.shape
        return _MaskRows(self._path(banded.images[0]), width, height, self.dtype)


class _MaskRows:
    """One mask PNG being written band by band."""

    def __init__(self, path: Path, width: int, height: int, dtype: Any) -> None:
        self._file = path.open("wb")
        self._png = PngRows(self._file, width=width, height=height, dtype=dtype)

    def write(self, band: Band) -> None:
        self._png.write(band.class_map)

    def close(self) -> None:
        with self._file:
            self._png.close()


class OneHotSink(_PerImageSink):
    """One-hot arrays: ``OUT/onehot/<name>.npy`` holding ``(C, H, W)`` uint8, and ``classes.txt``.

    ``C = labels.num_classes`` (background is channel 0); every pixel has exactly one 1.
    Volumes give one ``.npy`` per slice, named after the slice images.

    Example:
        >>> import tempfile
        >>> from microprep.model import LabelSpec
        >>> from microprep.targets.types import Instances
        >>> lm = LabelMap((LabelSpec("pore"),))
        >>> t = Targets("a.png", (ImageInfo("a.png", 2, 1),), np.array([[0, 1]], np.uint8),
        ...             Instances.empty((1, 2)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = OneHotSink(Path(d), lm, provenance={})
        ...     sink.add(t, None)
        ...     np.load(Path(d) / "onehot/a.npy").tolist()
        [[[1, 0]], [[0, 1]]]
    """

    folder = "onehot"
    suffix = ".npy"

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write one ``.npy`` per plane of ``targets``. ``pixels`` is not used."""
        self._check(targets)
        for image, cmap in image_planes(targets):
            path = self._path(image)
            np.save(path, one_hot(cmap, self.num_classes), allow_pickle=False)
