"""``--like EXPORT``: the original export whose labels, image ids, names and sizes a written
file must match, read with microprep's own readers.

A predicted image is matched to the export's one image of the same name (or ``subset/name``,
the store's name for images of a project export with several subsets), else to the one image
whose file name (the last part of its name) is the same. A predicted image without a match, a
size that differs, or a predicted class that the export has no label for is a
:class:`~microprep.errors.UsageError`, raised before anything is written.

Example:
    >>> from microprep.model import LabelMap, LabelSpec
    >>> check_classes(("background", "pore"), LabelMap((LabelSpec("pore"),)), "x.xml")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from microprep.errors import UsageError
from microprep.model import AnnotationSet, ImageInfo, LabelMap
from microprep.readers import ReadOptions, read_annotations

__all__ = ["Like", "check_classes", "match_images", "read_like"]

logger = logging.getLogger(__name__)

#: Reader format names (``AnnotationSet.format``) by the tool they come from.
_TOOLS = {"cvat": "cvat", "via": "via", "labelbox": "labelbox"}


@dataclass(frozen=True, slots=True, eq=False)
class Like:
    """The original export: its path, tool (``cvat``, ``via``, ``labelbox``), labels, and the
    export's image for each predicted image name."""

    path: Path
    tool: str
    labels: LabelMap
    images: Mapping[str, ImageInfo]


def _tool(annotations: AnnotationSet) -> str:
    for prefix, tool in _TOOLS.items():
        if annotations.format.startswith(prefix):
            return tool
    return annotations.format


def check_classes(classes: Sequence[str], labels: LabelMap, where: str) -> None:
    """Every predicted class (background left out) must be a label of the export.

    Raises:
        UsageError: naming the classes without a label, and both sides.
    """
    known = {label.name for label in labels.labels if label.parent is None}
    missing = [c for c in classes[1:] if c not in known]
    if missing:
        raise UsageError(
            f"{where}: the prediction's classes {missing} have no label in the export "
            f"(prediction classes: {list(classes[1:])}; export labels: "
            f"{[label.name for label in labels.labels if label.parent is None]})"
        )


def match_images(
    sizes: Mapping[str, tuple[int, int]], images: Sequence[ImageInfo], where: str
) -> dict[str, ImageInfo]:
    """The export's image for each predicted image (``sizes``: name -> ``(height, width)``).

    Raises:
        UsageError: a predicted image with no match, or two matches, or another size.
    """
    by_name: dict[str, list[ImageInfo]] = {}
    for info in images:
        by_name.setdefault(info.name, []).append(info)
        if info.subset:  # the store's name of an image of a project export with subsets
            by_name.setdefault(f"{info.subset}/{info.name}", []).append(info)
    by_file: dict[str, list[ImageInfo]] = {}
    for info in images:
        by_file.setdefault(PurePosixPath(info.name).name, []).append(info)
    out: dict[str, ImageInfo] = {}
    for name, (height, width) in sizes.items():
        candidates = by_name.get(name) or by_file.get(
            PurePosixPath(name.replace("\\", "/")).name, []
        )
        if len(candidates) != 1:
            why = "no image" if not candidates else f"{len(candidates)} images"
            if len(candidates) > 1 and any(c.subset for c in candidates):
                subsets = sorted({str(c.subset) for c in candidates})
                why += f" (subsets {', '.join(subsets)}: name it SUBSET/{name})"
            raise UsageError(
                f"{where}: the predicted image {name!r} matches {why} of the export "
                f"(by name or file name); export the prediction of the export's images"
            )
        info = candidates[0]
        if (info.height, info.width) != (height, width):
            raise UsageError(
                f"{where}: image {info.name!r} is {info.width}x{info.height} in the export but "
                f"{width}x{height} in the prediction"
            )
        out[name] = info
    return out


def read_like(
    path: Path,
    *,
    sizes: Mapping[str, tuple[int, int]],
    classes: Sequence[str],
    format: str | None = None,
    options: ReadOptions | None = None,
) -> Like:
    """Read the export ``path`` and match it to the prediction (module docstring).

    Raises:
        UsageError: see :func:`check_classes` and :func:`match_images`; any reader error.
    """
    annotations = read_annotations(path, format=format, options=options)
    check_classes(classes, annotations.labels, str(path))
    images = match_images(sizes, annotations.images, str(path))
    return Like(path, _tool(annotations), annotations.labels, images)
