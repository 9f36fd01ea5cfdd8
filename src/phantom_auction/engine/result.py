"""What an auction tells the world: its announcement at open and its result at the end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .audit import Outcome
from .bids import ImprovementBid
from .phantoms import PhantomBid, PhantomModel

__all__ = ["AuctionAnnouncement", "AuctionResult", "Fill", "RankedBid"]


@dataclass(frozen=True, slots=True)
class AuctionAnnouncement:
    """Pushed to every bidder when an auction opens: what is for sale, the limits a bid
    must meet and when the windows end.

    ``baseline_price`` in B per A; ``amount`` and ``max_volume`` in token A units;
    improvement limits in bps over the baseline; a priority fee may be at most
    ``priority_fee_max_ratio * volume``. ``phantom_commitment`` is SHA-256 of the seed
    the phantom bids are drawn from (revealed in the result).
    """

    auction_id: str
    token_pair: tuple[int, int]
    baseline_price: float
    amount: float
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    phantom_commitment: bytes
    mechanism: str
    min_improvement_bps: float
    max_improvement_bps: float
    max_volume: float
    priority_fee_max_ratio: float


@dataclass(frozen=True, slots=True)
class Fill:
    """``volume`` token A units sold at ``price`` (B per A) to ``bidder_id``; ``bidder_id``
    None is the CFMM, which takes whatever the bidders do not, at the baseline price."""

    bidder_id: str | None
    volume: float
    price: float

    @property
    def is_cfmm(self) -> bool:
        """True for the CFMM remainder at the baseline price."""
        return self.bidder_id is None


@dataclass(frozen=True, slots=True)
class RankedBid:
    """One bid's place in the competition (real or phantom), for per-auction publication.

    ``score = price_weight * improvement_bps + fee_weight * fee_bps`` with
    ``fee_bps = priority_fee / amount * 10_000``; ``rank`` 1 is the best score (ties:
    earlier commit first, real bids before phantoms). ``allocated`` is what the clearing
    rule gave the bid (token A units; a phantom's allocation goes to the CFMM),
    ``filled`` what the bidder actually buys, at ``fill_price`` B per A (None if nothing).
    """

    rank: int
    bidder_id: str
    is_phantom: bool
    improved_price: float
    volume: float
    priority_fee: float
    improvement_bps: float
    fee_bps: float
    score: float
    allocated: float
    filled: float
    fill_price: float | None


@dataclass(frozen=True, slots=True)
class AuctionResult:
    """The outcome of one auction.

    Seed fields: ``winning_bid`` (the best-ranked real bid that fills, else None),
    ``price`` (the user's volume-weighted price over the whole ``amount``, CFMM remainder
    included, B per A), ``amount`` (token A units), ``improvement_bps`` (``(price -
    baseline) / baseline * 10_000``), ``num_participants`` (revealed real bids + present
    phantoms), ``auction_duration_ms`` (open to finalize, engine time).

    Then: ``auction_id``, ``mechanism``, ``outcome``, ``fills`` (summing to ``amount``),
    ``phantom_won`` (a phantom ranked first, so its share went to the CFMM),
    ``phantom_seed`` (revealed; check with ``verify_phantoms``), ``unrevealed``
    (bidders who committed and never revealed, in commit order), and for publication
    and verification ``phantom_commitment``, ``phantom_bids``, ``ranking``,
    ``baseline_price``, ``token_pair``, the window times and the ``phantom_model``.
    """

    winning_bid: ImprovementBid | None
    price: float
    amount: float
    improvement_bps: float
    num_participants: int
    auction_duration_ms: float
    auction_id: str
    mechanism: str
    outcome: Outcome
    fills: tuple[Fill, ...]
    phantom_won: bool
    phantom_seed: bytes
    unrevealed: tuple[str, ...]
    phantom_commitment: bytes
    phantom_bids: tuple[PhantomBid, ...]
    ranking: tuple[RankedBid, ...]
    baseline_price: float
    token_pair: tuple[int, int]
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    finalized_at: datetime
    phantom_model: PhantomModel
