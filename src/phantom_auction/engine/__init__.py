"""The live auction engine: sealed commit-reveal bids, verifiable phantom bids, clearing,
deadlines. ``auction`` is the sans-IO core; ``runner`` drives it on asyncio."""

from __future__ import annotations

from .auction import (
    TRANSITIONS,
    Auction,
    AuctionPhaseError,
    abort_auction,
    close_collection,
    finalize_auction,
    reveal_bid,
    submit_bid,
)
from .audit import (
    AuctionAborted,
    AuctionFinalized,
    AuctionOpened,
    AuditEvent,
    Command,
    CommitAccepted,
    CommitRejected,
    Outcome,
    Phase,
    PhaseChanged,
    RejectReason,
    RevealAccepted,
    RevealRejected,
)
from .bids import ImprovementBid, SealedBid, SettlementRequest, make_bid
from .codec import event_from_jsonable, to_jsonable
from .commitment import canonical_decimal, commitment_preimage, make_commitment, new_salt
from .nonces import NonceRegistry
from .phantoms import (
    PhantomArrays,
    PhantomBid,
    PhantomModel,
    draw_phantom_arrays,
    draw_phantom_bids,
    phantom_commitment,
    phantom_uniforms,
    verify_phantoms,
)
from .result import AuctionAnnouncement, AuctionResult, Fill, RankedBid, Ranking, RankingColumns
from .runner import BidSource, arun_auction, run_auction

__all__ = [
    "TRANSITIONS",
    "Auction",
    "AuctionAborted",
    "AuctionAnnouncement",
    "AuctionFinalized",
    "AuctionOpened",
    "AuctionPhaseError",
    "AuctionResult",
    "AuditEvent",
    "BidSource",
    "Command",
    "CommitAccepted",
    "CommitRejected",
    "Fill",
    "ImprovementBid",
    "NonceRegistry",
    "Outcome",
    "PhantomArrays",
    "PhantomBid",
    "PhantomModel",
    "Phase",
    "PhaseChanged",
    "RankedBid",
    "Ranking",
    "RankingColumns",
    "RejectReason",
    "RevealAccepted",
    "RevealRejected",
    "SealedBid",
    "SettlementRequest",
    "abort_auction",
    "arun_auction",
    "canonical_decimal",
    "close_collection",
    "commitment_preimage",
    "draw_phantom_arrays",
    "draw_phantom_bids",
    "event_from_jsonable",
    "finalize_auction",
    "make_bid",
    "make_commitment",
    "new_salt",
    "phantom_commitment",
    "phantom_uniforms",
    "reveal_bid",
    "run_auction",
    "submit_bid",
    "to_jsonable",
    "verify_phantoms",
]
