"""What to predict on: the images of a dataset store, an image file, a folder, a TIFF stack.

:func:`iter_inputs` yields one :class:`PredictionInput` per image or volume, in a fixed order:

* a **dataset store** (``DATASET.zarr``): every node with pixels, in store order; the name is
  the node's image name, the pixels are read lazily (dask) from the node's ``image``.
* a **folder**: every image file below it (``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``,
  ``.bmp``), recursively, sorted by relative path; hidden files and folders are skipped. The
  name is the path relative to the folder, with ``/`` separators (``"grid 1/a.png"``).
* an **image file**: one input named by the file name.

A TIFF file with more than one plane along a non-channel axis (a multi-page stack, or a series
with a ``Z`` / ``I`` / ``Q`` / ``T`` axis) is a **volume** ``(z, y, x[, c])``; every other file is a
2D image ``(y, x[, c])`` read with :func:`microprep.images.read_image` (dtype kept).

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.new("L", (6, 4)).save(folder / "b.png")
    >>> stack = np.zeros((5, 4, 6), np.uint16)
    >>> tifffile.imwrite(folder / "a.tif", stack, photometric="minisblack")
    >>> [(r.name, r.ndim, r.image.shape) for r in iter_inputs(folder)]
    [('a.tif', 3, (5, 4, 6)), ('b.png', 2, (4, 6))]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray

from microprep.errors import ImageFileError, InputError, StoreError
from microprep.images import read_image
from microprep.store.layout import ATTRS_KEY

__all__ = ["IMAGE_SUFFIXES", "PredictionInput", "is_dataset_store", "iter_inputs", "read_stack"]

logger = logging.getLogger(__name__)

#: File suffixes taken as images in a folder (compared case-insensitively).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
_TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
#: TIFF series axes that run along depth (z, image index, generic, time).
_DEPTH_AXES = frozenset("ZIQT")


@dataclass(frozen=True, slots=True)
class PredictionInput:
    """One image or volume to predict on.

    Attributes:
        name: the image name (a store node's ``name``, a path relative to the folder, or the
            file name).
        ndim: spatial axes: 2 (``(y, x[, c])``) or 3 (``(z, y, x[, c])``).
        source: where it comes from, for messages (``"store.zarr: node 'a.png'"``, a path).
        node: the store's group name for store inputs, else None.
        image: the pixels, channels last, dtype as stored: a lazy dask array for store nodes,
            a numpy array for files (read on each access).
        truth: the store node's ground truth by name (``"labels"``: the class map,
            ``"instances"``: the instance id map ``(layer, ...)``), lazy; empty for files.
    """

    name: str
    ndim: int
    source: str
    node: str | None = None
    _load: Callable[[], Any] = field(default=lambda: None, repr=False)
    _truth: Callable[[], dict[str, Any]] = field(default=dict, repr=False)

    @property
    def image(self) -> Any:
        """The pixels ``(y, x[, c])`` or ``(z, y, x[, c])`` (see the class docstring)."""
        return self._load()

    @property
    def truth(self) -> dict[str, Any]:
        """The ground truth of a store node (see the class docstring); ``{}`` when none."""
        return self._truth()


def is_dataset_store(path: Path) -> bool:
    """Whether ``path`` is a folder holding a zarr ``zarr.json`` with microprep store attrs."""
    meta = Path(path) / "zarr.json"
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    attrs = data.get("attributes") if isinstance(data, dict) else None
    return isinstance(attrs, dict) and ATTRS_KEY in attrs


def _tiff_layout(path: Path) -> tuple[str, tuple[int, ...]] | None:
    """``(axes, shape)`` of the first series of a TIFF; None when the file is not a TIFF."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return str(series.axes), tuple(int(s) for s in series.shape)
    except tifffile.TiffFileError:
        return None
    except (OSError, IndexError, ValueError) as exc:
        raise ImageFileError(
            f"cannot read the TIFF: {type(exc).__name__}: {exc}", file=path
        ) from exc


def _is_stack(axes: str, shape: tuple[int, ...]) -> bool:
    depth = [n for a, n in zip(axes, shape, strict=True) if a in _DEPTH_AXES and n > 1]
    return bool(depth)


def read_stack(path: Path) -> NDArray[Any]:
    """A TIFF stack as ``(z, y, x)`` or ``(z, y, x, c)``, dtype kept.

    Singleton axes are dropped; samples (``S``) or channels (``C``) go last; one depth axis
    (``Z``, ``I``, ``Q`` or ``T``) of more than one plane is allowed.

    Raises:
        ImageFileError: the file cannot be read or has another layout.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "s.tif"
        >>> tifffile.imwrite(p, np.zeros((4, 8, 9, 3), np.uint8), photometric="rgb")
        >>> read_stack(p).shape
        (4, 8, 9, 3)
    """
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = str(series.axes)
            arr = np.asarray(series.asarray())
    except Exception as exc:  # decoders raise many types for corrupt files
        raise ImageFileError(
            f"cannot read the TIFF stack: {type(exc).__name__}: {exc}", file=path
        ) from exc
    keep = [i for i, n in enumerate(arr.shape) if n > 1 or axes[i] in "YX"]
    arr = arr.reshape([arr.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    channel = [i for i, a in enumerate(axes) if a in "SC"]
    depth = [i for i, a in enumerate(axes) if a in _DEPTH_AXES]
    if len(channel) > 1 or len(depth) != 1 or "Y" not in axes or "X" not in axes or len(axes) > 4:
        raise ImageFileError(
            f"the TIFF series has axes {axes} and shape {arr.shape}; a stack must be "
            "(z, y, x) or (z, y, x, c)",
            file=path,
        )
    order = [depth[0], axes.index("Y"), axes.index("X"), *channel]
    return np.ascontiguousarray(np.transpose(arr, order))


def _file_input(path: Path, name: str) -> PredictionInput:
    """One image or stack file, checked enough to know its kind (pixels read later)."""
    if not path.is_file():
        raise ImageFileError("file not found", file=path)
    layout = _tiff_layout(path) if path.suffix.lower() in _TIFF_SUFFIXES else None
    if layout is None and path.suffix.lower() in _TIFF_SUFFIXES:
        with path.open("rb") as fh:
            head = fh.read(4)
        if head[:2] in (b"II", b"MM"):
            raise ImageFileError("not a readable TIFF file", file=path)
    if layout is not None and _is_stack(*layout):
        return PredictionInput(name, 3, str(path), None, lambda: read_stack(path))
    return PredictionInput(name, 2, str(path), None, lambda: read_image(path))


def _constant(value: Any) -> Callable[[], Any]:
    def get() -> Any:
        return value

    return get


def _store_inputs(path: Path) -> Iterator[PredictionInput]:
    from microprep.store.read import open_dataset

    dataset = open_dataset(path)
    for node in dataset.nodes:
        data = dataset[node]
        name = str(data.attrs.get("name", node))
        if "image" not in data:
            raise InputError(
                "the node has no pixels (the store was converted without --images); convert "
                "it again with --images to predict on it",
                file=path,
                where=f"node {node!r}",
            )
        pixels = data["image"].data
        ndim = 3 if "z" in data["image"].dims else 2
        truth = {key: data[key].data for key in ("labels", "instances") if key in data}
        yield PredictionInput(
            name, ndim, f"{path}: node {node!r}", node, _constant(pixels), _constant(truth)
        )


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def iter_inputs(source: str | Path) -> Iterator[PredictionInput]:
    """The images or volumes of ``source`` (a store, a folder or a file), see the module docs.

    Args:
        source: a dataset store folder, a folder of image files, or one image / TIFF stack.

    Yields:
        :class:`PredictionInput` records; their pixels are read only when ``image`` is used.

    Raises:
        ImageFileError: a file is missing, unreadable or has an unsupported layout.
        InputError: a folder without images, or a store node without pixels.
        StoreError: a store that cannot be opened.
    """
    path = Path(source)
    if not path.exists():
        raise InputError("no such file or folder", file=path)
    if path.is_dir():
        if is_dataset_store(path):
            yield from _store_inputs(path)
            return
        if (path / "zarr.json").is_file():
            raise StoreError(f"{path} is a zarr store but not a microprep dataset store")
        files = _folder_files(path)
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(f"the folder holds no image files ({suffixes})", file=path)
        for file in files:
            yield _file_input(file, file.relative_to(path).as_posix())
        return
    yield _file_input(path, path.name)
