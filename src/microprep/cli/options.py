"""Options shared by several commands: reading exports (``convert``, ``validate``), and
choosing a split (``crop``, ``augment``, ``evaluate``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from microprep.readers.options import ReadOptions

F = TypeVar("F", bound=Callable[..., Any])


def parse_size(
    _ctx: click.Context | None, _param: click.Parameter | None, value: str | None
) -> tuple[int, int] | None:
    """``"512x512"`` (or ``512X384``) to ``(width, height)``; None stays None.

    Example:
        >>> parse_size(None, None, "640x480")
        (640, 480)
    """
    if value is None:
        return None
    parts = value.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 512x512")
    width, height = int(parts[0]), int(parts[1])
    if width <= 0 or height <= 0:
        raise click.BadParameter(f"{value!r}: width and height must be positive")
    return width, height


def parse_ints(
    _ctx: click.Context | None, _param: click.Parameter | None, value: str | None
) -> tuple[int, ...] | None:
    """``"256"`` or ``"16,64,64"`` (one per axis) to a tuple of positive ints; None stays None.

    Example:
        >>> parse_ints(None, None, "16,64,64"), parse_ints(None, None, "256")
        ((16, 64, 64), (256,))
    """
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"{value!r}: give positive integers, e.g. 256 or 64,64,64")
    return tuple(int(p) for p in parts)


def window_value(value: object) -> int | list[int] | None:
    """A parsed ``--window`` as configs and trainers take it: one int, or one per axis.

    Example:
        >>> window_value((256,)), window_value((16, 64, 64)), window_value(None)
        (256, [16, 64, 64], None)
    """
    if not isinstance(value, tuple) or not value:
        return None
    return int(value[0]) if len(value) == 1 else [int(v) for v in value]


def kinds_option(table: Callable[[], Sequence[Any]]) -> Callable[..., tuple[str, ...]]:
    """A click callback for ``--to a,b``: the names, each one a ``.name`` of ``table()`` (a
    registry table, read when the option is parsed so that plugins are included)."""

    def parse(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
        names = [kind.name for kind in table()]
        kinds = tuple(k.strip() for k in value.split(",") if k.strip())
        unknown = [k for k in kinds if k not in names]
        if unknown or not kinds:
            raise click.BadParameter(
                f"{', '.join(unknown) or 'nothing'}; choose from {','.join(names)}"
            )
        return kinds

    return parse


#: The reader options that :func:`reader_options` collects into one ``read`` argument.
READ_FIELDS = (
    "size",
    "label_attribute",
    "label",
    "masks",
    "label_suffix",
    "label_kind",
    "instance_class",
    "class_suffix",
)


def reader_options(func: F) -> F:
    """Add ``--format``, ``--size``, ``--label-attribute``, ``--label``, ``--masks`` and the
    label-folder options ``--label-suffix``, ``--label-kind``, ``--instance-class``,
    ``--class-suffix`` to a command.

    ``--label`` is the VIA class of regions without a class value. The command receives them
    as one ``read`` argument, a :class:`~microprep.readers.options.ReadOptions` (without
    ``images`` and ``classes``, which come from options of their own), and ``fmt``.
    """
    decorators = [
        click.option("--format", "fmt", help="Reader to use (default: detected from the file)."),
        click.option(
            "--size",
            callback=parse_size,
            metavar="WxH",
            help="Size of every image, for formats that store none (VIA), e.g. 512x512.",
        ),
        click.option("--label-attribute", help="Region attribute that holds the class (VIA)."),
        click.option(
            "--label",
            metavar="NAME",
            help="Class of regions without a class attribute value (VIA; default: object).",
        ),
        click.option(
            "--masks",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Local folder of the mask PNGs of a Labelbox export (URLs are never fetched).",
        ),
        click.option(
            "--label-suffix",
            metavar="SUFFIX",
            help="Label folders: the suffix tying a label file to its image, e.g. _masks "
            "(default: tries none, _masks, _mask, _labels, _label).",
        ),
        click.option(
            "--label-kind",
            type=click.Choice(("class", "instance")),
            help="Label folders: class-index or instance-id images (default: class with "
            "class names, instance with --instance-class).",
        ),
        click.option(
            "--instance-class",
            metavar="NAME",
            help="Label folders of instance ids: the class of every instance (default: object).",
        ),
        click.option(
            "--class-suffix",
            metavar="SUFFIX",
            help="Label folders of instance ids: each instance takes the majority class of the "
            "class-index image IMAGE<SUFFIX>.png/.tif beside it (e.g. _classes).",
        ),
    ]

    @functools.wraps(func)
    def collected(*args: Any, **kwargs: Any) -> Any:
        fields = {name: kwargs.pop(name) for name in READ_FIELDS}
        kwargs["read"] = ReadOptions(**fields)
        return func(*args, **kwargs)

    command: Any = collected
    for decorator in reversed(decorators):
        command = decorator(command)
    return cast(F, command)


def split_options(what: str, store: str = "DATASET") -> Callable[[F], F]:
    """Add ``--split train|val|test`` and ``--splits FILE`` (as ``split``, ``splits_path``).

    ``what`` completes the help of ``--split`` (e.g. ``"Crop only"``); ``store`` names the
    argument whose splits file is the default.
    """

    def add(func: F) -> F:
        func = click.option(
            "--splits",
            "splits_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"The splits file (default: {store}.splits.json beside the store).",
        )(func)
        return click.option(
            "--split",
            type=click.Choice(("train", "val", "test")),
            help=f"{what} the regions of this split (written by `prep split`).",
        )(func)

    return add


def _memory(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    from microprep.memory import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def max_memory_option(func: F) -> F:
    """``--max-memory SIZE``: the memory budget of the arrays built for one image."""
    return click.option(
        "--max-memory",
        callback=_memory,
        metavar="SIZE",
        help="Memory budget for the arrays of one image, e.g. 2GB or 512MiB (default: half of "
        "the available memory). Larger images are built in bands of rows, or refused.",
    )(func)


def force_option(func: F) -> F:
    """Add ``--force``: replace an existing ``--out`` folder that is not a microprep output."""
    return click.option(
        "--force",
        is_flag=True,
        help="Replace an existing --out folder even when it is not a microprep output.",
    )(func)


def guard_outputs(*outputs: str, force: bool = False) -> None:
    """Refuse (exit 2) an output option among ``outputs`` that is, holds or lies inside an
    input of the running command: every other path-valued parameter. The rest of the command
    runs under :func:`microprep.outputs.output_policy`, so every output folder it writes is
    checked the same way, and ``force`` lets it replace a folder that is not a microprep output.
    """
    from microprep.outputs import check_not_inputs, output_policy

    ctx = click.get_current_context()
    inputs: list[Path] = []
    for name, value in ctx.params.items():
        if name in outputs:
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        inputs += [v for v in values if isinstance(v, Path)]
    for name in outputs:
        out = ctx.params.get(name)
        if isinstance(out, Path):
            check_not_inputs(out, inputs)
    ctx.with_resource(output_policy(inputs=inputs, force=force))
