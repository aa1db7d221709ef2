"""Readers of annotation exports, one module per format, and the format registry.

Each format registers a :class:`~microprep.registry.ReaderKind` in :mod:`microprep.registry`
(built-ins here, other packages through the entry-point group ``microprep.readers``): a
``detect(path) -> bool`` function that sniffs the start of a file (it never raises) and a
``read(path, *, on_warning=None, options=None) -> AnnotationSet`` function (``options`` is a
:class:`~microprep.readers.options.ReadOptions`; readers ignore what they do not need).
:data:`READERS` is a live view of that table.

Example:
    >>> list(READERS)[:5]
    ['cvat', 'via', 'labelbox', 'coco-instances', 'label-folder']
    >>> read_annotations("annotations.xml")  # doctest: +SKIP
    <microprep.model.AnnotationSet object at ...>
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from microprep.archive import is_archive
from microprep.errors import FormatError, UsageError
from microprep.model import AnnotationSet
from microprep.readers import coco, cvat, label_folders, labelbox, via
from microprep.readers.options import ReadOptions
from microprep.registry import ReaderKind, builtin, reader_kinds

__all__ = ["READERS", "DetectFn", "ReadFn", "ReadOptions", "detect_format", "read_annotations"]

logger = logging.getLogger(__name__)


class DetectFn(Protocol):
    """``detect(path) -> bool``: True when the file looks like the reader's format."""

    def __call__(self, path: Path, /) -> bool: ...


class ReadFn(Protocol):
    """``read(path, *, on_warning=None, options=None) -> AnnotationSet``."""

    def __call__(
        self,
        path: str | Path,
        /,
        *,
        on_warning: Callable[[str], None] | None = None,
        options: ReadOptions | None = None,
    ) -> AnnotationSet: ...


class _Readers(Mapping[str, tuple[DetectFn, ReadFn]]):
    """Format name -> (detect, read), in detection order: a live view of the reader table."""

    def _table(self) -> dict[str, ReaderKind]:
        return {kind.name: kind for kind in reader_kinds()}

    def __getitem__(self, name: str) -> tuple[DetectFn, ReadFn]:
        kind = self._table()[name]
        return kind.detect, kind.read

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: Format name -> (detect, read), tried in this order by :func:`detect_format`.
READERS: Mapping[str, tuple[DetectFn, ReadFn]] = _Readers()

for _kind in (
    ReaderKind("cvat", cvat.detect, cvat.read_cvat, "CVAT for images / video 1.1 XML", order=10),
    ReaderKind("via", via.detect, via.read_via, "VGG Image Annotator JSON / CSV", order=20),
    ReaderKind("labelbox", labelbox.detect, labelbox.read_labelbox, "Labelbox NDJSON", order=30),
    ReaderKind("coco-instances", coco.detect, coco.read_coco, "COCO instances JSON", order=40),
    ReaderKind(
        "label-folder",
        label_folders.detect,
        label_folders.read_label_folder,
        "a folder of class-index or instance label images (with --images)",
        order=50,
        folder=True,
    ),
):
    builtin(_kind)


def detect_format(path: str | Path) -> str:
    """The name of the first format in :data:`READERS` whose ``detect`` accepts ``path``.

    A zip archive is a CVAT export archive (the only archives read).

    Raises:
        FormatError: the file does not exist, is a folder, or no format matches (the message
            lists the formats tried).
    """
    path = Path(path)
    if not path.exists():
        raise FormatError("annotation file not found", file=path)
    kinds = reader_kinds()
    if path.is_dir():
        for kind in kinds:
            if kind.folder and kind.detect(path):
                return kind.name
        raise FormatError(
            "is a folder; expected an annotation export file or a folder of label images",
            file=path,
        )
    if is_archive(path):
        # CVAT export archives are the archives read; its reader reports what is wrong with one.
        logger.debug("%s is a zip archive: read as a CVAT export", path)
        return "cvat"
    tried = [kind for kind in kinds if not kind.folder]
    for kind in tried:
        if kind.detect(path):
            logger.debug("%s detected as %s", path, kind.name)
            return kind.name
    raise FormatError(
        f"not a recognised annotation export (formats tried: "
        f"{', '.join(kind.name for kind in tried)}); "
        "pass the format explicitly if the file is one of them",
        file=path,
    )


def read_annotations(
    path: str | Path,
    *,
    format: str | None = None,
    on_warning: Callable[[str], None] | None = None,
    options: ReadOptions | None = None,
) -> AnnotationSet:
    """Read an annotation export into the common model.

    Args:
        path: the export file.
        format: a key of :data:`READERS`; None detects it with :func:`detect_format`.
        on_warning: called with each non-fatal finding (also kept in ``AnnotationSet.warnings``).
        options: what formats without image sizes or classes need (see ``ReadOptions``).

    Raises:
        UsageError: ``format`` is not a known format.
        FormatError: the format cannot be detected; any InputError from the reader.
    """
    if format is None:
        format = detect_format(path)
    elif format not in READERS:
        raise UsageError(f"unknown annotation format {format!r}; known: {', '.join(READERS)}")
    _, read = READERS[format]
    return read(path, on_warning=on_warning, options=options)
