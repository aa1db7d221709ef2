"""Writers: predictions back into annotation files that the tools import as pre-annotations.

One module per target format (the mirror of :mod:`microprep.readers`): :mod:`.cvat` (CVAT for
images 1.1 XML), :mod:`.via` (VIA 2 project JSON), :mod:`.labelbox` (Labelbox model-assisted
labelling NDJSON), :mod:`.coco` (COCO results or instances JSON). Each takes the
:class:`~microprep.writers.shapes.ImageShapes` of :mod:`.shapes` and returns the file's bytes;
:mod:`.like` reads the original export whose labels, ids and sizes the file must match.
"""

from __future__ import annotations
