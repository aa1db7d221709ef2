"""Writers of converted targets: the zarr store and the file exports (masks, onehot, coco, yolo).

Every writer is a *sink*: built with the output folder and the label map, fed one
:class:`~microprep.targets.types.Targets` at a time (so memory stays bounded by one image or
volume), then closed. ``close`` writes whatever needs the whole set (``coco.json``,
``data.yaml``). Sinks write into a folder that :mod:`microprep.outputs` later swaps into place, so
they never need to be atomic themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from microprep.model import LabelMap
from microprep.targets.types import Targets


class Sink(Protocol):
    """One output kind. ``pixels`` is the image data when images were given, else None."""

    def add(self, targets: Targets, pixels: NDArray[np.generic] | None) -> None: ...

    def close(self) -> None: ...


class SinkFactory(Protocol):
    def __call__(self, root: Path, labels: LabelMap, *, provenance: Mapping[str, Any]) -> Sink: ...
