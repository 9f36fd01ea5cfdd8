"""Shared helpers for the engine tests: configs, a fixed clock, bids by price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from phantom_auction.config import (
    AuctionConfig,
    AuctionMechanicsConfig,
    PhantomAuctionConfig,
    load_config,
)
from phantom_auction.engine import (
    Auction,
    AuctionResult,
    ImprovementBid,
    NonceRegistry,
    finalize_auction,
    make_bid,
    reveal_bid,
    submit_bid,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PAIR = (1, 2)
SEED = bytes(range(32))


def ms(value: float) -> timedelta:
    return timedelta(milliseconds=value)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def config(**overrides: Any) -> AuctionConfig:
    """Defaults (environment ignored) with ``key=value`` overrides, section found by key."""
    env = {}
    for key, value in overrides.items():
        if key in PhantomAuctionConfig.model_fields:
            section = "PHANTOM_AUCTION"
        elif key in AuctionMechanicsConfig.model_fields:
            section = "AUCTION_MECHANICS"
        else:
            raise KeyError(key)
        env[f"AUCTION_{section}_{key.upper()}"] = _toml(value)
    if overrides.get("mechanism") == "discriminatory":
        env["AUCTION_PHANTOM_AUCTION_ENABLE_DISCRIMINATORY"] = "true"
    return load_config(env=env)


def no_phantoms(**overrides: Any) -> AuctionConfig:
    return config(max_phantom_bidders=0, **overrides)


def open_auction(
    cfg: AuctionConfig,
    *,
    amount: float = 1000.0,
    baseline: float = 100.0,
    auction_id: str = "auction-1",
    seed: bytes = SEED,
    nonces: NonceRegistry | None = None,
    deadline_ms: float = 100.0,
) -> Auction:
    from phantom_auction.engine import SettlementRequest

    return Auction(
        SettlementRequest(PAIR[0], PAIR[1], amount),
        baseline,
        amount,
        T0 + ms(deadline_ms),
        config=cfg,
        auction_id=auction_id,
        nonces=nonces,
        now=T0,
        phantom_seed=seed,
    )


def offer(
    auction: Auction,
    bidder: str,
    price: float,
    volume: float,
    fee: float = 0.0,
    nonce: int = 1,
    pair: tuple[int, int] = PAIR,
) -> ImprovementBid:
    return make_bid(
        auction.auction_id, bidder, pair, price, volume, fee, nonce, timestamp=auction.opened_at
    )


def clear_bids(auction: Auction, bids: list[ImprovementBid]) -> AuctionResult:
    """Commit every bid, reveal every bid, finalize; each step must be accepted."""
    for bid in bids:
        assert submit_bid(auction, bid.sealed(), now=auction.opened_at + ms(1)), auction.last_event
    for bid in bids:
        assert reveal_bid(auction, bid, now=auction.commit_deadline), auction.last_event
    return finalize_auction(auction, now=auction.reveal_deadline)
