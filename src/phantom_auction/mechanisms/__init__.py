"""Clearing mechanisms: pure functions on bids (one auction) and on arrays (many).

- :mod:`.clearing`: :func:`clear` for one auction, every rule (VCG, second price,
  uniform, pay-as-bid) on (value per unit, quantity) arrays.
- :mod:`.vcg`: the seed's objects (:class:`VCGBid`, :class:`VCGAuction`, ...) and
  :func:`run_vcg_auction`, :func:`individual_rationality_check`.
- :mod:`.truthfulness`: :func:`verify_truthfulness`.
- :mod:`.batch`: :func:`clear_batch`, the same rules on (auctions, bidders) arrays.
- :mod:`.pricing`: what winners pay under each rule, the only code of each price
  (``docs/mechanisms.md`` states the rules).
"""

from __future__ import annotations

from .batch import BatchClearing, clear_batch
from .clearing import MECHANISMS, Clearing, canonical_mechanism, clear
from .truthfulness import verify_truthfulness
from .vcg import (
    VCGAllocation,
    VCGAuction,
    VCGBid,
    VCGResult,
    individual_rationality_check,
    run_vcg_auction,
)

__all__ = [
    "MECHANISMS",
    "BatchClearing",
    "Clearing",
    "VCGAllocation",
    "VCGAuction",
    "VCGBid",
    "VCGResult",
    "canonical_mechanism",
    "clear",
    "clear_batch",
    "individual_rationality_check",
    "run_vcg_auction",
    "verify_truthfulness",
]
