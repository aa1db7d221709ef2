"""Pictures of the data: overlays of class maps, instance outlines and boxes, volume montages
and augmentation galleries, written as PNGs.

The drawing functions take plain arrays, so any layout can be previewed:

* :func:`render_overlay` (``overlay.py``): one 2D image + class map + objects -> ``PIL.Image``.
* :func:`with_legend`, :func:`grid`, :func:`volume_montage` (``montage.py``).
* :func:`augmentation_gallery` (``gallery.py``): one variant per noise kind.
* :func:`write_previews` (``write.py``): every node of a dataset store -> ``DIR/<node>.png``.

Example:
    >>> import numpy as np
    >>> labels = np.zeros((8, 8), np.uint8); labels[2:5, 2:5] = 1
    >>> picture = render_overlay(None, labels, None, colors=[(0, 0, 0), (0, 200, 0)])
    >>> with_legend(picture, [(0, 0, 0), (0, 200, 0)], ["background", "pore"]).mode
    'RGB'
"""

from __future__ import annotations

from microprep.preview.gallery import PreviewError, augmentation_gallery
from microprep.preview.montage import grid, slice_instances, volume_montage, with_legend
from microprep.preview.overlay import render_overlay, to_display
from microprep.preview.write import PreviewSummary, node_picture, write_previews

__all__ = [
    "PreviewError",
    "PreviewSummary",
    "augmentation_gallery",
    "grid",
    "node_picture",
    "render_overlay",
    "slice_instances",
    "to_display",
    "volume_montage",
    "with_legend",
    "write_previews",
]
