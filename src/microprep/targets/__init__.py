"""Training targets: class-index maps, one-hot masks, boxes and instance masks."""

from microprep.targets.build import build_targets, build_volume_targets
from microprep.targets.raster import RasterOptions, rasterize_shape
from microprep.targets.types import Instances, Raster, Targets, one_hot

__all__ = [
    "Instances",
    "Raster",
    "RasterOptions",
    "Targets",
    "build_targets",
    "build_volume_targets",
    "one_hot",
    "rasterize_shape",
]
