"""Child processes that die with their parent.

A worker started by microprep (the checker of :mod:`microprep.conversion.precheck`) must not
outlive the
run that started it, however the run ends: an exception, Ctrl-C, SIGTERM or kill -9.
:func:`die_with_parent` is the initializer of such a worker. On Linux the kernel sends the
worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
in the worker polls its parent and exits when it is gone.

Example:
    >>> from concurrent.futures import ProcessPoolExecutor
    >>> import multiprocessing, os
    >>> with ProcessPoolExecutor(
    ...     1, mp_context=multiprocessing.get_context("spawn"),
    ...     initializer=die_with_parent, initargs=(os.getpid(),),
    ... ) as pool:  # doctest: +SKIP
    ...     pool.submit(abs, -3).result()
    3
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: How often the fallback watcher looks at its parent (s).
_POLL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """In a child process: make sure it ends when the process ``parent_pid`` does.

    Call it first thing in the child (as a pool ``initializer``). When the parent is already
    gone (it died before this ran) the child exits at once.
    """
    if not (sys.platform.startswith("linux") and _set_parent_death_signal()):
        threading.Thread(target=_watch, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _set_parent_death_signal() -> bool:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl.restype = ctypes.c_int
    ok = bool(prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0) == 0)
    if not ok:
        logger.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    return ok


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_POLL_S)
    os._exit(1)
