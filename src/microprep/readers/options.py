"""Options some readers need because their format leaves things out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a reader may need beyond the export file.

    ``images``: folder of the image files (VIA stores no image size: it is read from the files).
    ``size``: ``(width, height)`` in pixels of every image, when all have one size (VIA).
    ``label_attribute``: the region attribute that holds the class (VIA).
    ``label``: the class of regions that have no class value (VIA); when the regions carry no
    class attribute at all and ``label`` is None, they are read as one class ``object``.
    ``masks``: local folder of mask PNGs (Labelbox exports only link masks by URL; microprep never
    fetches URLs).
    ``label_suffix``, ``label_kind``, ``instance_class``, ``classes``: folders of label images
    (see :mod:`microprep.readers.label_folders`): the suffix that ties a label file to its image
    (``"_masks"``), ``"class"`` or ``"instance"``, the class of every instance, and the class
    names of the values 1..K (from ``--classes``). ``class_suffix``: instance folders whose
    instances take the majority class of a class-index image beside them (``"_classes"``).

    Example:
        >>> ReadOptions(size=(512, 512)).size
        (512, 512)
    """

    images: Path | None = None
    size: tuple[int, int] | None = None
    label_attribute: str | None = None
    masks: Path | None = None
    label: str | None = None
    label_suffix: str | None = None
    label_kind: str | None = None
    instance_class: str | None = None
    class_suffix: str | None = None
    classes: tuple[str, ...] | None = None
