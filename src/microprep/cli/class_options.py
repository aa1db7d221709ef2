"""The class options of ``convert`` and ``validate``: ``--classes``, ``--map``, ``--drop``,
``--ignore``, ``--annotated-region`` (see :mod:`microprep.classes`, docs/classes.md).

:func:`class_options` adds them to a command and hands the command one ``classes`` argument,
a :class:`~microprep.classes.ClassOptions`, instead of five.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])


def build_class_options(
    classes_file: Path | None,
    mapping: tuple[str, ...],
    drop: tuple[str, ...],
    ignore: tuple[str, ...],
    regions: tuple[str, ...],
) -> Any:
    """The :class:`~microprep.classes.ClassOptions` of the command-line values.

    Raises:
        InputError: an unreadable or malformed classes file.
        UsageError: a malformed ``--map`` or contradictory options.
    """
    from microprep.classes import ClassOptions, parse_map, read_classes_file, split_names

    return ClassOptions(
        classes=None if classes_file is None else read_classes_file(classes_file),
        mapping=parse_map(mapping),
        drop=split_names(drop),
        ignore=split_names(ignore),
        regions=split_names(regions),
        classes_file=None if classes_file is None else classes_file.name,
    )


def class_options(func: F) -> F:
    """Add the class options to a command; it receives them as ``classes`` (ClassOptions)."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        classes_file: Path | None,
        class_map: tuple[str, ...],
        drop: tuple[str, ...],
        ignore: tuple[str, ...],
        annotated_region: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        options = build_class_options(classes_file, class_map, drop, ignore, annotated_region)
        return func(*args, classes=options, **kwargs)

    decorators = [
        click.option(
            "--classes",
            "classes_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Class order: a classes.txt (one name a line, background first, as --to masks "
            "writes it). A label of the export missing from it is an error.",
        ),
        click.option(
            "--map",
            "class_map",
            multiple=True,
            metavar="OLD=NEW,...",
            help="Rename labels; several labels renamed to one name merge into one class.",
        ),
        click.option(
            "--drop",
            multiple=True,
            metavar="LABEL[,LABEL]",
            help="Leave the shapes of these labels out (repeatable).",
        ),
        click.option(
            "--ignore",
            multiple=True,
            metavar="LABEL[,LABEL]",
            help="Shapes of these labels mark pixels that are not annotated (255 in class maps; "
            "left out of losses and scores).",
        ),
        click.option(
            "--annotated-region",
            multiple=True,
            metavar="LABEL[,LABEL]",
            help="Shapes of these labels mark the annotated part of an image; pixels outside "
            "all of them are ignored (an image with none: all of it).",
        ),
    ]
    command: Callable[..., Any] = wrapper
    for decorator in reversed(decorators):
        command = decorator(command)
    return cast(F, command)
