"""Shared helpers for the engine tests (the SDK's tests take `announcement` too): configs, a
fixed clock, bids by price, announcements made by hand."""

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
    AuctionAnnouncement,
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


def announcement(
    opened: datetime, commit_ms: float, reveal_ms: float, **fields: Any
) -> AuctionAnnouncement:
    """An ``auction_opened`` announcement made by hand: the commit and reveal deadlines
    ``commit_ms`` and ``reveal_ms`` after ``opened``; other fields as given, else a
    Vickrey auction of 1,000 A at 100 B/A accepting 10-50 bps."""
    values: dict[str, Any] = {
        "auction_id": "a1",
        "token_pair": PAIR,
        "baseline_price": 100.0,
        "amount": 1000.0,
        "opened_at": opened,
        "commit_deadline": opened + ms(commit_ms),
        "reveal_deadline": opened + ms(reveal_ms),
        "phantom_commitment": bytes(32),
        "mechanism": "vickrey",
        "min_improvement_bps": 10.0,
        "max_improvement_bps": 50.0,
        "max_volume": 1000.0,
        "priority_fee_max_ratio": 0.01,
    }
    return AuctionAnnouncement(**(values | fields))


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
