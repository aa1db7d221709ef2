"""The checks of ``prep validate``, run before a conversion writes anything (or beside it).

``convert`` refuses an export with errors. Small exports are checked first, in the same
process. Large ones (:data:`PARALLEL_CHECK_BYTES` and more) are checked in a second process
while the first builds the targets into the temporary output; the swap into place waits for the
checks, and errors discard the temporary output, so the result is the same either way, only
sooner on a multi-core machine. Repairs always run first: the targets need the repaired shapes.
The second process dies with the first, even on kill -9 (:mod:`microprep.conversion.children`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from microprep.archive import annotations_size
from microprep.classes import ClassOptions, apply_classes
from microprep.conversion.children import die_with_parent
from microprep.errors import ValidationError
from microprep.model import AnnotationSet
from microprep.readers import ReadOptions, read_annotations

if TYPE_CHECKING:
    from microprep.validate.report import Report

#: Exports at least this large are checked in a second process (when there are 2+ cores).
PARALLEL_CHECK_BYTES = 2 * 1024 * 1024


def checked(
    annotations: AnnotationSet,
    *,
    repair: bool,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[AnnotationSet, list[str]]:
    """Run the checks of ``prep validate``; refuse on errors, or repair what can be repaired.

    Returns the (possibly repaired) set and one line per repair applied. Invalid polygons that
    convert as drawn (their repair covers the same pixels) are reported to ``on_warning`` in
    one counted line. Raises
    :class:`~microprep.errors.ValidationError` naming the first error when any remain.
    Image files are not checked here: ``convert`` checks them itself (see ``--skip-missing``).
    """
    from microprep.validate import REPAIRABLE, ValidateOptions, validate
    from microprep.validate import repair as apply_repairs

    report = validate(annotations, ValidateOptions(check_overlaps=False))
    lines: list[str] = []
    if repair and any(f.code in REPAIRABLE for f in report.errors):
        annotations, done = apply_repairs(annotations, report)
        lines = [f"{f.image}: shape {f.shape}: {f.message}" for f in done]
        report = validate(annotations, ValidateOptions(check_overlaps=False))
    errors = report.errors
    if errors:
        first = errors[0]
        place = f"image {first.image!r}" if first.image else "export"
        if first.shape is not None:
            place += f", shape #{first.shape}"
        fixable = sum(f.code in REPAIRABLE for f in errors)
        hint = " (--repair fixes some of them)" if fixable and not repair else ""
        raise ValidationError(
            f"{annotations.source}: {place}: {first.code}: {first.message} "
            f"[{len(errors)} error(s) in all{hint}; 'prep validate' lists them]"
        )
    if on_warning is not None and (line := _harmless_line(report)) is not None:
        on_warning(line)
    return annotations, lines


def _harmless_line(report: Report) -> str | None:
    """One line for the invalid polygons that convert as drawn, naming the first."""
    from microprep.validate.invalid import HARMLESS

    found = [f for f in report.warnings if f.code == HARMLESS]
    if not found:
        return None
    first = found[0]
    return (
        f"{len(found)} invalid polygon(s) converted as drawn, their repair covering the same "
        f"pixels (first: image {first.image!r}, shape #{first.shape}: {first.message}); "
        "'prep validate' lists them"
    )


def check_beside_worthwhile(export: Path) -> bool:
    """True when checking in a second process pays: a large export (for an archive, its
    annotations member) and more than one core."""
    return (os.cpu_count() or 1) > 1 and annotations_size(export) >= PARALLEL_CHECK_BYTES


def _check_file(
    path: str, fmt: str | None, read: ReadOptions | None, classes: ClassOptions = ClassOptions()
) -> tuple[str | None, list[str]]:
    """In the second process: read, apply the class step and check; the error message (None
    when clean) and the warning lines."""
    annotations = apply_classes(read_annotations(path, format=fmt, options=read), classes)
    warnings: list[str] = []
    try:
        checked(annotations, repair=False, on_warning=warnings.append)
    except ValidationError as exc:
        return str(exc), warnings
    return None, warnings


@contextmanager
def checks_beside(
    export: Path,
    fmt: str | None,
    read: ReadOptions | None,
    *,
    classes: ClassOptions = ClassOptions(),
) -> Iterator[Callable[[], list[str]]]:
    """Check ``export`` in a second process; the yielded function waits for the result,
    returns the warning lines, and raises :class:`~microprep.errors.ValidationError` when the
    export has errors."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        future = pool.submit(_check_file, str(export), fmt, read, classes)

        def wait() -> list[str]:
            message, warnings = future.result()
            if message is not None:
                raise ValidationError(message)
            return warnings

        try:
            yield wait
        except BaseException:
            future.cancel()
            raise
