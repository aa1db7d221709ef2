"""The ``cellpose`` export: image and instance-mask TIFF pairs, as Cellpose trains on them.

Layout of the output folder (see ``docs/exports.md``)::

    OUT/classes.txt
    OUT/train/CASE.tif              the pixels, as stored ((Y, X[, C]) or (Z, Y, X[, C]))
    OUT/train/CASE_masks.tif        uint16 instance ids 1..N (uint32 past 65535), 0 background
    OUT/val/... OUT/test/...        the other splits, when cases are split

Cases not in a split go to ``train/``. Train with
``cellpose --train --dir OUT/train --test_dir OUT/val --mask_filter _masks``. Objects that
overlap cannot both own a pixel: the later one (drawn on top) keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray

from microprep.exports.cases import case_name, case_split, need_pixels
from microprep.exports.instancemap import instance_map
from microprep.exports.masks import write_classes
from microprep.model import LabelMap
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = ["CellposeSink", "write_pair"]


def write_pair(image_path: Path, mask_path: Path, pixels: NDArray[Any], ids: NDArray[Any]) -> None:
    """Write ``pixels`` and the instance ids (uint16 when they fit, else uint32) as TIFFs."""
    dtype = np.uint16 if ids.size == 0 or int(ids.max()) <= 65535 else np.uint32
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    photometric = "minisblack" if pixels.ndim == ids.ndim else None  # else RGB as tifffile sees it
    tifffile.imwrite(
        image_path, np.ascontiguousarray(pixels), compression="zlib", photometric=photometric
    )
    tifffile.imwrite(mask_path, ids.astype(dtype), compression="zlib", photometric="minisblack")


class CellposeSink:
    """Cellpose training folders: ``SPLIT/CASE.tif`` + ``SPLIT/CASE_masks.tif``.

    Args:
        root: the existing (empty) output folder.
        labels: the label map (only ``classes.txt``: Cellpose masks have no classes).
        provenance: facts about the run; ``splits`` (image name -> split) is used.

    Example:
        >>> import tempfile
        >>> from microprep.model import ImageInfo, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> t = Targets("a.png", (ImageInfo("a.png", 2, 1),), np.zeros((1, 2), np.uint8),
        ...             Instances.empty((1, 2)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = CellposeSink(Path(d), LabelMap((LabelSpec("cell"),)), provenance={})
        ...     sink.add(t, np.zeros((1, 2), np.uint8))
        ...     sorted(p.name for p in (Path(d) / "train").iterdir())
        ['a.tif', 'a_masks.tif']
    """

    def __init__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.provenance = dict(provenance)
        self._taken: set[str] = set()
        self.root.mkdir(parents=True, exist_ok=True)
        write_classes(self.root, labels)

    #: The output kind, for messages.
    kind = "cellpose"

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None:
        """Write the image and its instance mask."""
        image = need_pixels(self.kind, targets, pixels)
        folder = self.root / (case_split(targets, self.provenance) or "train")
        case = case_name(targets.name, self._taken)
        image_path, mask_path = self.paths(folder, case)
        write_pair(image_path, mask_path, image, self.ids(targets))

    def paths(self, folder: Path, case: str) -> tuple[Path, Path]:
        """Where the image and the mask of ``case`` go in a split's ``folder``."""
        return folder / f"{case}.tif", folder / f"{case}_masks.tif"

    def ids(self, targets: Targets) -> NDArray[Any]:
        """The instance-id map written as the mask."""
        return instance_map(targets)

    def close(self) -> None:
        """Nothing to finish: every file is written by ``add``."""
