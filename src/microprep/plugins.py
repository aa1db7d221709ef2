"""Trainer plugins: the :class:`Trainer` protocol and discovery through entry points.

A trainer is any object with a ``name``, a one-line ``summary``, a JSON Schema for its own
configuration keys (:meth:`Trainer.config_schema`), ``fit`` and ``predict``, and optionally a
JSON Schema of its own ``prep predict`` options (:meth:`Trainer.predict_schema`, see
:mod:`microprep.training.predict_options`). :class:`microprep.training.trainer.BaseTrainer`
gives the shared scaffolding of ``fit``. Packages register
a trainer *class* (or factory) in the entry-point group ``microprep.trainers``::

    [project.entry-points."microprep.trainers"]
    unet = "microprep_unet.plugin:UNetTrainer"

A trainer with ``prep predict`` options may also register their schema, torch-free, in the
group ``microprep.predict_options`` under the same name::

    [project.entry-points."microprep.predict_options"]
    unet = "microprep_unet.predict_options:PREDICT_SCHEMA"

so that ``prep predict`` builds its options (and ``--help``) without importing the trainer.

Discovery only reads the installed packages' metadata: a plugin module (and torch) is imported
when that trainer is actually used. A plugin that fails to import or to build is reported as
broken (:func:`discover`) and never stops the other trainers from working.

Example:
    >>> found = discover()
    >>> isinstance(found, dict)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from microprep.errors import UsageError

if TYPE_CHECKING:
    from microprep.training.job import PredictRequest, TrainJob

logger = logging.getLogger(__name__)

#: The entry-point group trainers register in.
GROUP = "microprep.trainers"
#: The entry-point group of the trainers' torch-free ``prep predict`` option schemas.
OPTIONS_GROUP = "microprep.predict_options"


class PluginError(UsageError):
    """A trainer plugin is unknown, cannot be imported, or does not follow the protocol."""


@runtime_checkable
class Trainer(Protocol):
    """What a trainer plugin provides.

    Attributes:
        name: the name users type (``prep train NAME``); the same as the entry-point name.
        summary: one line shown by ``prep train --list``.
    """

    name: str
    summary: str

    def config_schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the trainer's own configuration keys.

        It is merged with the shared schema (``schemas/train-config.schema.json``): its
        ``properties`` add keys, or add sub-keys to shared objects such as ``data``.
        """
        ...

    def predict_schema(self) -> dict[str, Any]:
        """JSON Schema of the trainer's own ``prep predict`` options (optional: a trainer
        without it has none).

        Its ``properties`` are flat options (boolean flags, numbers, integers, strings) with a
        ``default`` and a ``description``; each becomes a ``prep predict`` option
        (``score_threshold``: ``--score-threshold``) whose value reaches ``predict`` in
        ``request.options``. See :mod:`microprep.training.predict_options`.
        """
        ...

    def fit(self, job: TrainJob) -> dict[str, Any]:
        """Train on ``job.dataset`` into ``job.run``; return the final metrics (JSON-safe)."""
        ...

    def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Predict ``request.source`` with the run's weights into ``request.out``; a summary."""
        ...


@dataclass(frozen=True)
class PluginInfo:
    """One registered trainer: where it comes from, and why it is broken if it is."""

    name: str
    target: str
    distribution: str | None
    error: str | None = None
    entry_point: EntryPoint | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True unless loading the trainer failed."""
        return self.error is None


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _option_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=OPTIONS_GROUP)}


def discover() -> dict[str, PluginInfo]:
    """The registered trainers by name, without importing any of them.

    When two distributions register the same name, the first one (by distribution name) is
    kept and the clash is logged.
    """
    found: dict[str, PluginInfo] = {}
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else None
        if ep.name in found:
            logger.warning(
                "trainer %r is registered twice (%s and %s); using the first",
                ep.name,
                found[ep.name].distribution,
                dist,
            )
            continue
        found[ep.name] = PluginInfo(ep.name, ep.value, dist, entry_point=ep)
    return found


def check_trainer(obj: Any, name: str) -> Trainer:
    """``obj`` if it follows the :class:`Trainer` protocol, else :class:`PluginError`."""
    missing = [
        attr
        for attr in ("name", "summary", "config_schema", "fit", "predict")
        if not hasattr(obj, attr)
    ]
    if missing:
        raise PluginError(f"trainer plugin {name!r} does not provide {', '.join(missing)}")
    schema = obj.config_schema()
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise PluginError(f"trainer plugin {name!r}: config_schema() must be an object schema")
    try:
        predict_options_of(obj, name)
    except UsageError as exc:
        raise PluginError(str(exc)) from exc
    return obj  # type: ignore[no-any-return]


def predict_options_of(trainer: Any, name: str) -> dict[str, dict[str, Any]]:
    """The ``prep predict`` options trainer ``name`` declares (option -> property schema);
    none when it has no ``predict_schema``.

    Raises:
        UsageError: the schema is not one of flat options (see
            :func:`microprep.training.predict_options.check_predict_schema`).
    """
    from microprep.training.predict_options import check_predict_schema

    method = getattr(trainer, "predict_schema", None)
    if not callable(method):
        return {}
    return check_predict_schema(method(), name)


def all_predict_options() -> dict[str, dict[str, dict[str, Any]]]:
    """The ``prep predict`` options of every installed trainer that loads, by trainer name
    (a broken trainer is left out here; it is reported when a run of it is predicted).

    A trainer that registers its schema in :data:`OPTIONS_GROUP` is not imported; the others
    are loaded to ask their ``predict_schema()``.
    """
    from microprep.training.predict_options import check_predict_schema

    declared = _option_entry_points()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in discover():
        try:
            if name in declared:
                out[name] = check_predict_schema(declared[name].load(), name)
            else:
                out[name] = predict_options_of(load_trainer(name), name)
        except Exception as exc:  # a broken plugin must not take `prep predict` down
            logger.debug("trainer %s left out of the predict options: %s", name, exc)
    return out


def load_trainer(name: str) -> Trainer:
    """Import and build the trainer ``name``.

    Raises:
        PluginError: no such trainer (the message lists the installed ones), or the plugin
            fails to import, to build, or to follow the protocol (the message says how).
    """
    plugins = discover()
    if name not in plugins:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise PluginError(
            f"no trainer named {name!r} (installed: {known}); see `prep train --list`"
        )
    info = plugins[name]
    assert info.entry_point is not None  # set by discover()
    try:
        factory = info.entry_point.load()
        obj = factory() if isinstance(factory, type) or callable(factory) else factory
    except Exception as exc:  # a broken plugin must not take the CLI down with a traceback
        raise PluginError(
            f"trainer plugin {name!r} ({info.target}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return check_trainer(obj, name)


def list_trainers() -> list[PluginInfo]:
    """Every registered trainer, each loaded once to see whether it works (for ``--list``)."""
    out: list[PluginInfo] = []
    for name, info in discover().items():
        try:
            trainer = load_trainer(name)
        except PluginError as exc:
            out.append(PluginInfo(name, info.target, info.distribution, error=str(exc)))
            continue
        out.append(PluginInfo(name, info.target, info.distribution, error=None))
        logger.debug("trainer %s: %s", name, trainer.summary)
    return out


def trainer_summary(name: str) -> str:
    """The one-line summary of trainer ``name`` (loads it)."""
    return load_trainer(name).summary


def run_trainer_name(run_dir: Path) -> str:
    """The trainer that made the run directory ``run_dir`` (from its ``config.json``)."""
    from microprep.training.rundir import RunDir

    return RunDir.open(run_dir).trainer
