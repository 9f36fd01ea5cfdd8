"""phantom-auction: sealed-bid price-improvement auctions with calibrated phantom bids.

The seed API's names, re-exported. Each part owns one block below.
"""

from __future__ import annotations

from .config import AuctionConfig, load_config
from .errors import (
    AuctionTimeout,
    ConfigError,
    InsufficientParticipants,
    InvalidBidParameters,
    PhantomAuctionError,
)

# -- mechanisms --

# -- engine --

# -- simulation --

__version__ = "0.1.0"

__all__ = [
    "AuctionConfig",
    "AuctionTimeout",
    "ConfigError",
    "InsufficientParticipants",
    "InvalidBidParameters",
    "PhantomAuctionError",
    "load_config",
    # -- mechanisms --
    # -- engine --
    # -- simulation --
]
