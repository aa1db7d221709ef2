"""Readers of annotation exports, one module per format, and the format registry.

Each format registers a ``detect(path) -> bool`` function that sniffs the start of a file (it
never raises) and a ``read(path, *, on_warning=None, options=None) -> AnnotationSet`` function
(``options`` is a :class:`~microprep.readers.options.ReadOptions`; readers ignore what they do not
need).

Example:
    >>> sorted(READERS)
    ['cvat', 'labelbox', 'via']
    >>> read_annotations("annotations.xml")  # doctest: +SKIP
    <microprep.model.AnnotationSet object at ...>
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from microprep.archive import is_archive
from microprep.errors import FormatError, UsageError
from microprep.model import AnnotationSet
from microprep.readers import cvat, labelbox, via
from microprep.readers.options import ReadOptions

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


#: Format name -> (detect, read), tried in this order by :func:`detect_format`.
READERS: dict[str, tuple[DetectFn, ReadFn]] = {
    "cvat": (cvat.detect, cvat.read_cvat),
    "via": (via.detect, via.read_via),
    "labelbox": (labelbox.detect, labelbox.read_labelbox),
}


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
    if path.is_dir():
        raise FormatError("is a folder; expected an annotation export file", file=path)
    if is_archive(path):
        # CVAT export archives are the archives read; its reader reports what is wrong with one.
        logger.debug("%s is a zip archive: read as a CVAT export", path)
        return "cvat"
    for name, (detect, _) in READERS.items():
        if detect(path):
            logger.debug("%s detected as %s", path, name)
            return name
    raise FormatError(
        f"not a recognised annotation export (formats tried: {', '.join(READERS)}); "
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
