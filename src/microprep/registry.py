"""The two open tables of ``prep convert``: output kinds (sinks) and readers.

Every output kind of ``--to`` is a :class:`SinkKind`, every export format a :class:`ReaderKind`.
The built-in ones are registered in code (:mod:`microprep.exports.kinds`,
:mod:`microprep.readers`); other packages add theirs through the entry-point groups
``microprep.sinks`` and ``microprep.readers``, whose entries name a ``SinkKind`` / ``ReaderKind``
object (or a callable returning one)::

    [project.entry-points."microprep.sinks"]
    tiff = "microprep_tiff:KIND"

Discovery is lazy, as for trainers (:mod:`microprep.plugins`): entry points are loaded the first
time a table is asked for. A plugin that fails to load, or gives something else than a kind, is
logged and left out (:func:`broken` lists them); it never stops the others. A plugin may not
replace a built-in kind (a clash is logged, the built-in kept). Code can register a kind too
(:func:`register`), e.g. a test or a notebook, without installing a package.

Example:
    >>> [kind.name for kind in sink_kinds()][:5]
    ['zarr', 'masks', 'onehot', 'coco', 'yolo']
    >>> sink_kind("masks").output
    'masks'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from microprep.errors import UsageError

if TYPE_CHECKING:
    from microprep.exports import SinkFactory
    from microprep.readers import DetectFn, ReadFn

logger = logging.getLogger(__name__)

#: Entry-point groups of third-party output kinds and readers.
SINK_GROUP = "microprep.sinks"
READER_GROUP = "microprep.readers"


@dataclass(frozen=True, slots=True)
class SinkKind:
    """One output kind of ``prep convert --to``.

    ``factory(root, labels, provenance=...)`` builds the sink writing into ``root``. ``output``
    is what it writes, relative to the output folder (``"masks"``, ``"coco.json"``); ``store``
    marks the zarr store (written into ``OUT`` itself when it is the only kind, else into
    ``OUT/dataset.zarr``). ``description`` is the line shown by ``prep convert --help``;
    ``order`` the writing order (built-ins 10, 20, ...; third parties default to 100).
    ``bands``: the sink has a ``banded_writer(banded, pixels)`` and takes an image too large for
    the memory budget in bands of rows (:mod:`microprep.conversion.bands`); an image that needs
    bands is refused when any sink asked for cannot take them.
    """

    name: str
    factory: SinkFactory
    output: str
    description: str
    store: bool = False
    order: int = 100
    bands: bool = False


@dataclass(frozen=True, slots=True)
class ReaderKind:
    """One export format.

    ``detect(path) -> bool`` sniffs a file (or folder, for ``folder`` readers) and never raises;
    ``read(path, *, on_warning=None, options=None)`` reads it into an
    :class:`~microprep.model.AnnotationSet`. ``order`` is the detection order (built-ins 10,
    20, ...; third parties default to 100); ``folder`` marks readers whose input is a folder.
    """

    name: str
    detect: DetectFn
    read: ReadFn
    description: str
    order: int = 100
    folder: bool = False


K = TypeVar("K", SinkKind, ReaderKind)


class _Table:
    """Built-in kinds plus, loaded once, the kinds of one entry-point group."""

    def __init__(self, group: str, cls: type[SinkKind] | type[ReaderKind]) -> None:
        self.group = group
        self.cls = cls
        self.builtin: dict[str, Any] = {}
        self.added: dict[str, Any] = {}
        self.plugins: dict[str, Any] | None = None
        self.broken: dict[str, str] = {}

    def _load(self) -> dict[str, Any]:
        if self.plugins is None:
            self.plugins = {}
            for ep in sorted(entry_points(group=self.group), key=lambda ep: ep.name):
                try:
                    obj = ep.load()
                    kind = obj if isinstance(obj, self.cls) else obj()
                    if not isinstance(kind, self.cls):
                        raise TypeError(f"gives {type(kind).__name__}, not {self.cls.__name__}")
                except Exception as exc:  # a broken plugin must not take the CLI down
                    message = f"{ep.value} failed to load: {type(exc).__name__}: {exc}"
                    logger.warning("%s plugin %r: %s", self.group, ep.name, message)
                    self.broken[ep.name] = message
                    continue
                if kind.name in self.builtin or kind.name in self.plugins:
                    logger.warning(
                        "%s plugin %r: the name %r is taken; left out", self.group, ep, kind.name
                    )
                    continue
                self.plugins[kind.name] = kind
        return self.plugins

    def all(self) -> list[Any]:
        plugins = self._load()
        kinds = {**plugins, **self.added, **self.builtin}
        return sorted(kinds.values(), key=lambda kind: kind.order)

    def register(self, kind: Any) -> None:
        if kind.name in self.builtin:
            raise UsageError(f"{kind.name!r} is a built-in kind and cannot be replaced")
        self.added[kind.name] = kind


_SINKS = _Table(SINK_GROUP, SinkKind)
_READERS = _Table(READER_GROUP, ReaderKind)


def builtin(kind: K) -> K:
    """Register a built-in kind (done by microprep's own modules at import)."""
    table = _SINKS if isinstance(kind, SinkKind) else _READERS
    table.builtin[kind.name] = kind
    return kind


def register(kind: K) -> K:
    """Register a kind from code (replacing an earlier registration of that name).

    Raises:
        UsageError: the name is a built-in kind.
    """
    (_SINKS if isinstance(kind, SinkKind) else _READERS).register(kind)
    return kind


def unregister(name: str) -> None:
    """Forget a kind registered with :func:`register` (no error if there is none)."""
    _SINKS.added.pop(name, None)
    _READERS.added.pop(name, None)


def _ensure_builtins() -> None:
    for module in ("microprep.exports.kinds", "microprep.readers"):  # register the built-ins
        import_module(module)


def sink_kinds() -> list[SinkKind]:
    """Every output kind, in writing order."""
    _ensure_builtins()
    return _SINKS.all()


def reader_kinds() -> list[ReaderKind]:
    """Every reader, in detection order."""
    _ensure_builtins()
    return _READERS.all()


def broken() -> dict[str, str]:
    """``"group:name" -> why`` for each plugin that failed to load."""
    sink_kinds()
    reader_kinds()
    return {
        **{f"{SINK_GROUP}:{k}": v for k, v in _SINKS.broken.items()},
        **{f"{READER_GROUP}:{k}": v for k, v in _READERS.broken.items()},
    }


def sink_kind(name: str) -> SinkKind:
    """The output kind ``name``.

    Raises:
        UsageError: no such kind (the message lists the known ones).
    """
    for kind in sink_kinds():
        if kind.name == name:
            return kind
    raise UsageError(f"unknown output kind {name!r}; choose from {sink_names()}")


def sink_names() -> str:
    """The output kinds as a comma list, in writing order (for messages and ``--help``)."""
    return ", ".join(kind.name for kind in sink_kinds())


def sink_help() -> str:
    """One ``name: description`` entry per output kind, for ``prep convert --help``."""
    return "; ".join(f"{kind.name}: {kind.description}" for kind in sink_kinds())


def output_path(out: Path, kind: SinkKind, *, alone: bool) -> Path:
    """Where ``kind`` writes inside ``out`` (the store: ``out`` itself when it is ``alone``)."""
    if kind.store and alone:
        return out
    return out / kind.output


def resolve(names: list[str] | tuple[str, ...], table: Callable[[], list[K]], what: str) -> list[K]:
    """The kinds named in ``names``, in table order.

    Raises:
        UsageError: an unknown name, or no name at all (the message lists the known ones).
    """
    kinds = table()
    known = {kind.name for kind in kinds}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UsageError(
            f"unknown {what}(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(kind.name for kind in kinds)}"
        )
    return [kind for kind in kinds if kind.name in names]
