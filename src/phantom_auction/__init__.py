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
# isort: split
from .engine import (
    Auction,
    AuctionAnnouncement,
    AuctionPhaseError,
    AuctionResult,
    BidSource,
    Fill,
    ImprovementBid,
    NonceRegistry,
    Outcome,
    Phase,
    RankedBid,
    RejectReason,
    SealedBid,
    SettlementRequest,
    StrategyBidder,
    abort_auction,
    arun_auction,
    finalize_auction,
    make_bid,
    make_commitment,
    reveal_bid,
    run_auction,
    submit_bid,
    verify_phantoms,
)

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
    "Auction",
    "AuctionAnnouncement",
    "AuctionPhaseError",
    "AuctionResult",
    "BidSource",
    "Fill",
    "ImprovementBid",
    "NonceRegistry",
    "Outcome",
    "Phase",
    "RankedBid",
    "RejectReason",
    "SealedBid",
    "SettlementRequest",
    "StrategyBidder",
    "abort_auction",
    "arun_auction",
    "finalize_auction",
    "make_bid",
    "make_commitment",
    "reveal_bid",
    "run_auction",
    "submit_bid",
    "verify_phantoms",
    # -- simulation --
]
