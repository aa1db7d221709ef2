"""Per-process, lazily opened access to the zarr arrays of a dataset store.

:class:`StoreReader` opens the store's root zarr group on first use in each process (it
remembers the process id and opens again after a fork) and never pickles an open handle: a
pickled reader is just the store path. :meth:`StoreReader.read` cuts one window limited to a
box (a split region), so pixels outside the box are never read; the part of the window past
the box is padded.

Example:
    >>> reader = StoreReader("dataset.zarr")  # doctest: +SKIP
    >>> reader.read("a.png", "labels", origin=(0, 0), stop=(40, 64), window=(64, 64)).shape
    ... # doctest: +SKIP
    (64, 64)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microprep.crops.cut import cut_window
from microprep.crops.instances import SourceTables
from microprep.store.integrity import open_root

__all__ = ["StoreReader", "box_stop", "valid_mask"]


def box_stop(
    origin: tuple[int, ...], stop: tuple[int, ...], window: tuple[int, ...]
) -> tuple[int, ...]:
    """The exclusive end of the part of a window at ``origin`` inside a box ending at ``stop``.

    Example:
        >>> box_stop((0, 10), (5, 100), (8, 8))
        (5, 18)
    """
    return tuple(min(o + w, s) for o, w, s in zip(origin, window, stop, strict=True))


def valid_mask(
    origin: tuple[int, ...], stop: tuple[int, ...], window: tuple[int, ...]
) -> NDArray[np.bool_]:
    """Bool ``window`` array: True on the pixels inside the box, False on the padding.

    Example:
        >>> valid_mask((0, 0), (2, 3), (3, 4)).astype(int).tolist()
        [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    """
    mask = np.zeros(window, bool)
    end = box_stop(origin, stop, window)
    mask[tuple(slice(0, e - o) for o, e in zip(origin, end, strict=True))] = True
    return mask


class StoreReader:
    """Lazy reads from the store at ``path``; safe to pickle and to use after a fork.

    Args:
        path: the store folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._root: Any = None
        self._pid: int | None = None
        self._tables: dict[str, SourceTables] = {}

    def root(self) -> Any:
        """The root zarr group, opened in this process (again after a fork)."""
        if self._root is None or self._pid != os.getpid():
            # chunks are checked as they are read (a missing or damaged one: StoreDamageError)
            self._root = open_root(self.path)
            self._pid = os.getpid()
            self._tables = {}
        return self._root

    def array(self, name: str, var: str) -> Any:
        """The zarr array ``var`` of node ``name`` (lazy: nothing is read)."""
        return self.root()[name][var]

    def has(self, name: str, var: str) -> bool:
        """Whether node ``name`` has an array ``var``."""
        return var in self.root()[name]

    def tables(self, name: str) -> SourceTables:
        """The per-object tables of node ``name`` (read once per process)."""
        self.root()
        if name not in self._tables:
            group = self.root()[name]

            def read(var: str, dtype: Any) -> Any:
                return np.asarray(group[var][...], dtype)

            self._tables[name] = SourceTables(
                read("instance_label", np.int64),
                read("instance_area", np.int64),
                read("instance_occluded", np.bool_),
                read("instance_group", np.int64),
                read("instance_track", np.int64),
            )
        return self._tables[name]

    def read(
        self,
        name: str,
        var: str,
        *,
        origin: tuple[int, ...],
        stop: tuple[int, ...],
        window: tuple[int, ...],
        pad: str = "constant",
        lead: int = 0,
    ) -> NDArray[Any]:
        """One window of array ``var`` of node ``name``, reading only the box part.

        Args:
            origin: the window origin per spatial axis, in node pixels.
            stop: the exclusive end of the box the window is limited to (a region's stop,
                at most the node's shape).
            window: the window size per spatial axis.
            pad: ``"constant"`` (zeros) or ``"reflect"`` for the part past the box.
            lead: leading non-spatial axes kept whole (1 for instance layers).

        Returns:
            A new array ``(*lead, *window, *trailing)`` of the stored dtype.
        """
        end = box_stop(origin, stop, window)
        sel = (slice(None),) * lead + tuple(slice(o, e) for o, e in zip(origin, end, strict=True))
        part = np.asarray(self.array(name, var)[sel])
        return cut_window(part, (0,) * len(window), window, pad=pad, lead=lead)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
