"""Progress lines for long loops, for logs and redirected output where no progress bar shows.

Lines go to the ``microprep.progress`` logger, which the CLI prints to stderr without ``-v``
(and a command's ``-q`` keeps from being used). A loop over N items logs after items 1-10,
then every 10th up to 100, then every 100th, and after the last when the total is known:
frequent enough to show life at the start, few enough for thousands of items.

Example:
    >>> [n for n in range(1, 300) if due(n)][:12], due(200), due(250)
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30], True, False)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["due", "lines_wanted", "progress_logger", "with_progress_lines"]

progress_logger = logging.getLogger("microprep.progress")

T = TypeVar("T")


def lines_wanted(progress: bool) -> bool:
    """Progress lines are for output without a terminal (a log file, a batch job): on a
    terminal the progress bar shows the same and a line would break it."""
    return progress and not sys.stderr.isatty()


def due(count: int) -> bool:
    """True when the ``count``-th item (1-based) gets a line."""
    step = 1 if count <= 10 else 10 if count <= 100 else 100
    return count % step == 0


def with_progress_lines(
    items: Iterable[T],
    *,
    what: str,
    total: int | None = None,
    enabled: bool = True,
    name: Callable[[T], str] | None = None,
) -> Iterator[T]:
    """Yield ``items`` unchanged; after each item that is :func:`due` (and the last of
    ``total``) log ``"{what} 3/36 (name): 12.3 s, ETA 1 min 5 s"``. The line is logged once the
    caller has finished with the item (when the next one is asked for)."""
    if not enabled:
        yield from items
        return
    start = time.monotonic()
    for count, item in enumerate(items, start=1):
        yield item
        if due(count) or count == total:
            elapsed = time.monotonic() - start
            of = f"/{total}" if total else ""
            label = f" ({name(item)})" if name is not None else ""
            eta = ""
            if total:
                left = elapsed / count * (total - count)
                minutes, seconds = divmod(round(left), 60)
                eta = f", ETA {minutes} min {seconds} s"
            progress_logger.info("%s %d%s%s: %.1f s%s", what, count, of, label, elapsed, eta)
