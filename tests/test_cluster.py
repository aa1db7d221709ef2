"""The LocalCluster behind --workers: starts beside a busy port 8787, refuses 0 workers."""

from __future__ import annotations

import socket
import warnings

import pytest

from microprep.cluster import local_cluster
from microprep.errors import UsageError


def test_a_taken_dashboard_port_is_no_clash() -> None:
    busy = socket.socket()
    try:
        busy.bind(("", 8787))
    except OSError:
        pytest.skip("port 8787 is taken by something else here")  # the clash exists anyway
    busy.listen()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "Port 8787 is already in use" would fail
            with local_cluster(1, processes=False) as client:
                assert client.submit(sum, [1, 2]).result() == 3
                assert ":8787/" not in client.dashboard_link
    finally:
        busy.close()


def test_workers_must_be_positive() -> None:
    with pytest.raises(UsageError, match="workers must be >= 1"), local_cluster(0):
        pass
