"""Shared fixture of the Dask tests: a LocalCluster for the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cluster_client() -> Iterator[Any]:
    """A ``distributed.Client`` of a LocalCluster of 2 single-threaded worker processes."""
    # "distributed.client", not "distributed": without Dask, this test directory itself
    # would import as a namespace package called "distributed".
    pytest.importorskip("distributed.client", reason="the distributed extra is not installed")
    from phantom_auction.simulation.distributed import open_client

    with open_client(cluster="local:2") as client:
        yield client


@pytest.fixture
def runner() -> Any:
    """A typer ``CliRunner`` (stdout and stderr apart) for in-process CLI runs."""
    from typer.testing import CliRunner

    return CliRunner()
