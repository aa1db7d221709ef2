"""Mask R-CNN for microprep: torchvision's network built offline, gray input, local weights.

The network itself is in :mod:`microprep_maskrcnn.model`; tiled prediction on large images is
:mod:`microprep.predict.instances` and COCO evaluation :mod:`microprep.evaluate.coco` (both in
the core package, torch-free). The trainer registered under the entry point
``microprep.trainers: maskrcnn`` lives in :mod:`microprep_maskrcnn.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"
