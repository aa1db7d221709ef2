"""``prep predict``'s trainer options: each installed trainer's ``predict_schema()`` as click
options (``score_threshold`` -> ``--score-threshold``), added when the command parses or shows
its help.

The options of every trainer that loads are offered (the run directory, which names the
trainer, is only known once the arguments are parsed); a trainer reads its own from
``request.options`` and ignores the others'. Two trainers may declare the same option: the
first one's (by trainer name) is used, and a different declaration is logged.

Example:
    >>> opt = schema_option("mask_threshold", {"type": "number", "minimum": 0, "maximum": 1,
    ...                     "default": 0.5, "description": "Mask probability threshold."})
    >>> opt.opts, opt.default, opt.show_default
    (['--mask-threshold'], 0.5, True)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import click

logger = logging.getLogger(__name__)

_META_KEY = "microprep.trainer_options"


def schema_option(name: str, spec: Mapping[str, Any]) -> click.Option:
    """The click option of one property of a trainer's predict schema."""
    flag = "--" + name.replace("_", "-")
    help_text = spec.get("description")
    default = spec.get("default")
    kind = spec["type"]
    if kind == "boolean":
        return click.Option([flag, name], is_flag=True, default=bool(default), help=help_text)
    low, high = spec.get("minimum"), spec.get("maximum")
    ranged = low is not None or high is not None
    param_type: Any
    if kind == "number":
        param_type = click.FloatRange(low, high) if ranged else float
    elif kind == "integer":
        param_type = click.IntRange(low, high) if ranged else int
    else:
        param_type = click.Choice([str(v) for v in spec["enum"]]) if spec.get("enum") else str
    return click.Option(
        [flag, name],
        type=param_type,
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def trainer_options(taken: set[str]) -> list[click.Option]:
    """The options of every installed trainer's predict schema, except names in ``taken``."""
    from microprep.plugins import all_predict_options

    out: list[click.Option] = []
    seen: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for trainer, options in all_predict_options().items():
        for name, spec in options.items():
            if name in seen:
                first, first_spec = seen[name]
                if dict(first_spec) != dict(spec):
                    logger.warning(
                        "prep predict --%s: trainers %s and %s declare it differently; "
                        "%s's declaration is used",
                        name.replace("_", "-"),
                        first,
                        trainer,
                        first,
                    )
                continue
            seen[name] = (trainer, spec)
            if name not in taken:
                out.append(schema_option(name, spec))
    return out


class TrainerOptionsCommand(click.Command):
    """A click command that also takes every installed trainer's predict options, listed
    before its ``--quiet`` option."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The command's own parameters with the trainers' options inserted."""
        params = super().get_params(ctx)
        added = ctx.meta.get(_META_KEY)
        if added is None:
            added = trainer_options({p.name for p in params if p.name})
            ctx.meta[_META_KEY] = added
        at = next((i for i, p in enumerate(params) if p.name == "quiet"), len(params))
        return [*params[:at], *added, *params[at:]]
