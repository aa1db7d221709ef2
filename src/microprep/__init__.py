"""microprep: microscopy and tomography annotations in, segmentation training data out.

The library's entry points::

    from microprep import read_annotations, convert, open_dataset

See docs/ for the data model, the store layout and the CLI (``prep``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("microprep")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from microprep.conversion import convert
    from microprep.readers import read_annotations
    from microprep.store import open_dataset

__all__ = ["__version__", "convert", "open_dataset", "read_annotations"]


def __getattr__(name: str) -> Any:
    # lazy: ``import microprep`` stays cheap (xarray and zarr load only when a store is opened)
    if name == "convert":
        from microprep.conversion import convert

        return convert
    if name == "read_annotations":
        from microprep.readers import read_annotations

        return read_annotations
    if name == "open_dataset":
        from microprep.store import open_dataset

        return open_dataset
    raise AttributeError(f"module 'microprep' has no attribute {name!r}")
