"""Every error of ``phantom_auction.errors`` survives pickling (a worker process or a
Dask worker sends it back to the caller): before, ``InvalidBidParameters`` raised in a
worker could not be unpickled and the run died with ``BrokenProcessPool``."""

from __future__ import annotations

import pickle

import pytest

from phantom_auction.errors import (
    AuctionTimeout,
    ConfigError,
    InsufficientParticipants,
    InvalidBidParameters,
)


@pytest.mark.parametrize(
    "error",
    [
        InvalidBidParameters("price", float("inf"), "must be finite"),
        InsufficientParticipants(1, 2),
        AuctionTimeout(3.5, 10.0),
        ConfigError("service.port", 70000, "AUCTION_SERVICE_PORT", "must be at most 65535"),
    ],
    ids=type,
)
def test_an_error_pickles_with_its_message_and_fields(error: Exception) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)
