"""The ``stardist`` export: ``images/`` and ``masks/`` TIFFs of the same names.

Layout of the output folder (see ``docs/exports.md``)::

    OUT/classes.txt
    OUT/train/images/CASE.tif       the pixels, as stored
    OUT/train/masks/CASE.tif        uint16 instance ids 1..M (uint32 past 65535), 0 background
    OUT/val/... OUT/test/...        the other splits, when cases are split

StarDist wants every object as one star-convex piece, so the masks follow its documented
rules: each id is one connected piece (an object cut in pieces by one drawn over it keeps its
largest piece), holes are filled (``fill_label_holes``), and ids run ``1..M`` without gaps.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from microprep.exports.cellpose import CellposeSink
from microprep.exports.instancemap import instance_map, one_piece_per_id
from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = ["StarDistSink"]


class StarDistSink(CellposeSink):
    """StarDist training folders: ``SPLIT/images/CASE.tif`` + ``SPLIT/masks/CASE.tif``.

    Args:
        root: the existing (empty) output folder.
        labels: the label map (only ``classes.txt``).
        provenance: facts about the run; ``splits`` (image name -> split) is used.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from microprep.model import ImageInfo, LabelMap, LabelSpec
        >>> from microprep.targets.types import Instances
        >>> t = Targets("a.png", (ImageInfo("a.png", 2, 1),), np.zeros((1, 2), np.uint8),
        ...             Instances.empty((1, 2)), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sink = StarDistSink(Path(d), LabelMap((LabelSpec("nucleus"),)), provenance={})
        ...     sink.add(t, np.zeros((1, 2), np.uint8))
        ...     sorted(str(p.relative_to(d)) for p in Path(d).rglob("*.tif"))
        ['train/images/a.tif', 'train/masks/a.tif']
    """

    kind = "stardist"

    def paths(self, folder: Path, case: str) -> tuple[Path, Path]:
        """``images/CASE.tif`` and ``masks/CASE.tif`` in the split's ``folder``."""
        return folder / "images" / f"{case}.tif", folder / "masks" / f"{case}.tif"

    def ids(self, targets: Targets) -> NDArray[Any]:
        """One connected piece per id, holes filled, ids ``1..M``."""
        return one_piece_per_id(instance_map(targets), fill_holes=True)
