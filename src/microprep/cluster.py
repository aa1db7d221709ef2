"""A ``dask.distributed`` LocalCluster for the ``--workers N`` options (crop, augment).

Example:
    >>> with local_cluster(2) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from microprep.errors import UsageError


@contextmanager
def local_cluster(workers: int, *, processes: bool = True) -> Iterator[Any]:
    """A ``dask.distributed`` client on a LocalCluster of ``workers`` single-thread workers.

    Args:
        workers: the number of workers (1 or more).
        processes: worker processes (default) or threads of this process.

    Yields:
        The client; the cluster is closed on leaving the block. Its dashboard listens on any
        free port (see ``client.dashboard_link``), so a dashboard already on 8787 is no clash.

    Raises:
        UsageError: ``workers`` is below 1.
    """
    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    import distributed

    cluster_type: Any = distributed.LocalCluster
    client_type: Any = distributed.Client

    quiet = logging.getLogger("distributed")
    before = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with (
            cluster_type(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",  # any free port: 8787 may be taken
                silence_logs=logging.ERROR,
            ) as cluster,
            client_type(cluster) as client,
        ):
            yield client
    finally:
        quiet.setLevel(before)
