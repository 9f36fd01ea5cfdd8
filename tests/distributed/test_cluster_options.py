"""Cluster addresses, the install hint without Dask, and unreachable schedulers."""

from __future__ import annotations

import socket
import sys

import pytest

from phantom_auction._extras import MissingExtra
from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import run_monte_carlo
from phantom_auction.simulation.distributed import (
    open_client,
    parse_cluster,
    parse_scheduler,
    run_monte_carlo_on_cluster,
    sweep_on_cluster,
)

from .cluster_helpers import BASELINE_PRICE, BASELINE_QUANTITY, simulator

HINT = "pip install 'phantom-auction[distributed]'"


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "tcp://scheduler.example.org:1", "tcp://[::1]:65535"],
)
def test_scheduler_addresses_are_accepted(address: str) -> None:
    assert parse_scheduler(f" {address} ") == address


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1:8786", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1", "tcp://HOST:PORT"),
        ("tcp://:8786", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1:http", "tcp://HOST:PORT"),
        ("inproc://127.0.0.1:8786", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1:0", "1-65535"),
        ("tcp://127.0.0.1:70000", "1-65535"),
    ],
)
def test_bad_scheduler_addresses_name_the_value(address: str, reason: str) -> None:
    with pytest.raises(InvalidBidParameters, match=reason) as caught:
        parse_scheduler(address)
    assert caught.value.field == "scheduler" and caught.value.value == address


def test_local_cluster_specs() -> None:
    assert parse_cluster("local:1") == 1
    assert parse_cluster("local:16") == 16
    for bad in ("local", "local:", "local:0", "local:-2", "local:two", "2", "remote:2"):
        with pytest.raises(InvalidBidParameters, match=r"local:N|>= 1") as caught:
            parse_cluster(bad)
        assert caught.value.field == "cluster" and caught.value.value == bad


def test_exactly_one_of_scheduler_and_cluster() -> None:
    with pytest.raises(InvalidBidParameters, match="exactly one"):
        open_client().__enter__()
    with pytest.raises(InvalidBidParameters, match="exactly one"):
        open_client("tcp://127.0.0.1:8786", "local:2").__enter__()


def test_without_the_extra_every_entry_point_gives_the_install_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes "import distributed" fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "distributed", None)
    sim = simulator(100)
    attempts = [
        lambda: open_client(cluster="local:2").__enter__(),
        lambda: open_client(scheduler="tcp://127.0.0.1:8786").__enter__(),
        lambda: run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, client=object()),
        lambda: run_monte_carlo_on_cluster(sim, BASELINE_PRICE, BASELINE_QUANTITY, object()),
        lambda: sweep_on_cluster([sim], BASELINE_PRICE, BASELINE_QUANTITY, object()),
    ]
    for attempt in attempts:
        with pytest.raises(MissingExtra) as caught:
            attempt()
        assert HINT in str(caught.value)
        assert isinstance(caught.value, ImportError)


def test_a_scheduler_that_does_not_answer_is_named() -> None:
    pytest.importorskip("distributed.client", reason="the distributed extra is not installed")
    with socket.socket() as sock:
        # A port just freed on loopback: nothing listens there.
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with (
        pytest.raises(InvalidBidParameters, match="no Dask scheduler answered") as caught,
        open_client(scheduler=address, timeout_s=1.0),
    ):
        pass
    assert caught.value.field == "scheduler" and caught.value.value == address
