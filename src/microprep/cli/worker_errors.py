"""One line for an exception that a data-loading worker raised.

PyTorch's ``DataLoader`` re-raises a worker's exception in the main process with the worker's
whole traceback in its message (``Caught ValueError in DataLoader worker process 0.\\nOriginal
Traceback (most recent call last): ...``). :func:`worker_failure` finds that form and keeps what
the user needs: the exception's name, its message and where it was raised; ``prep``'s main
prints it as one line (the traceback only with ``-v``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WorkerFailure", "worker_failure"]

_CAUGHT = re.compile(
    r"\ACaught (?P<name>\w+) (?P<where>in [^\n]+?)\.\n"
    r"Original Traceback \(most recent call last\):\n"
)


@dataclass(frozen=True, slots=True)
class WorkerFailure:
    """What a worker raised: the exception's class ``name``, its ``message`` (one line) and
    ``where`` (``"in DataLoader worker process 0"``)."""

    name: str
    message: str
    where: str

    def __str__(self) -> str:
        return f"{self.name} {self.where}: {self.message}" if self.message else self.name


def worker_failure(exc: BaseException) -> WorkerFailure | None:
    """The failure behind ``exc`` when it is a worker's exception re-raised by the
    ``DataLoader``; None for any other exception.

    Example:
        >>> exc = ValueError(
        ...     "Caught ValueError in DataLoader worker process 0.\\n"
        ...     "Original Traceback (most recent call last):\\n"
        ...     '  File "x.py", line 1, in f\\n'
        ...     "ValueError: window 36 is not a multiple of 8\\n"
        ... )
        >>> str(worker_failure(exc))
        'ValueError in DataLoader worker process 0: window 36 is not a multiple of 8'
        >>> worker_failure(ValueError("plain")) is None
        True
    """
    text = str(exc)
    found = _CAUGHT.match(text)
    if found is None:
        return None
    name, where = found["name"], found["where"]
    lines = text[found.end() :].rstrip("\n").splitlines()
    # the last line naming the exception (module-qualified for non-builtins) starts its message
    for index in range(len(lines) - 1, -1, -1):
        head, _, rest = lines[index].partition(":")
        if not lines[index].startswith(" ") and (head == name or head.endswith("." + name)):
            message = " ".join(part.strip() for part in [rest, *lines[index + 1 :]] if part.strip())
            return WorkerFailure(name=name, message=message, where=where)
    return WorkerFailure(name=name, message=lines[-1].strip() if lines else "", where=where)
