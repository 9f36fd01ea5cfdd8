"""The seed's VCG object API: bids, an auction holding them, and its result.

``run_vcg_auction`` clears an auction's bids with :func:`~.clearing.clear` (VCG by
default; ``vickrey``, ``uniform`` and ``discriminatory`` on the same objects) and
reports one :class:`VCGAllocation` per bid in submission order, losers with quantity 0.

Ties in value go to the earlier bid: a bid's position in ``VCGAuction.bids`` is its
submission order. Several bids with one ``bidder_id`` are the steps of that bidder's
demand curve (non-increasing in value, else :class:`InvalidBidParameters` naming it):
VCG charges the bidder once for all of them (see :func:`~.clearing.clear`), and
:meth:`VCGResult.payment_by_bidder` sums them. Positions are unique, so the SPEC's
second key (``bidder_id``) only matters to a caller that builds the list from
timestamps, which should sort by ``(timestamp, bidder_id)`` first.

Definitions (SPEC, "Mechanisms"): ``social_welfare = Σ v_i x_i`` over all bids
(phantoms included), ``efficiency`` = that over the first-best bidders' welfare (the
efficient allocation among bids at or above the reserve; 1.0 when that is 0),
``total_revenue = Σ p_i``, ``phantom_participation_rate`` = phantom bids / all bids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

from .clearing import FloatArray, check_scalar, clear

__all__ = [
    "VCGAllocation",
    "VCGAuction",
    "VCGBid",
    "VCGResult",
    "individual_rationality_check",
    "run_vcg_auction",
]

IR_TOLERANCE = 1e-9
"""Relative tolerance of :func:`individual_rationality_check` (SPEC)."""


@dataclass(frozen=True, slots=True)
class VCGBid:
    """A sealed bid: ``quantity`` units wanted at ``valuation`` per unit.

    Raises :class:`InvalidBidParameters` on a NaN, infinite or negative valuation or
    quantity. ``metadata`` is free-form (copied into a new dict).
    """

    bidder_id: str
    valuation: float
    quantity: float = 1.0
    is_phantom: bool = field(default=False, kw_only=True)
    metadata: Mapping[str, Any] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        check_scalar("valuation", self.valuation)
        check_scalar("quantity", self.quantity)
        object.__setattr__(self, "metadata", dict(self.metadata or {}))


@dataclass(slots=True)
class VCGAuction:
    """``supply`` units for sale, the seller keeping each unsold unit at ``reserve_price``.

    ``bids`` is a plain list to append to; a bid's position is its submission order.
    ``enable_multi_unit=False`` is unit demand: ``floor(supply)`` units, one per winner.
    Values are checked here and again by :func:`run_vcg_auction` (fields can be reset).
    """

    supply: float
    reserve_price: float = 0.0
    enable_multi_unit: bool = field(default=False, kw_only=True)
    bids: list[VCGBid] = field(default_factory=list, kw_only=True)

    def __post_init__(self) -> None:
        check_scalar("supply", self.supply)
        check_scalar("reserve_price", self.reserve_price)
        if not isinstance(self.bids, list):
            self.bids = list(self.bids)


class VCGAllocation(NamedTuple):
    """What one bid got: ``quantity`` units for ``payment`` (total), ``utility`` = value - payment.

    A named tuple: immutable and cheap to build for hundreds of bids per auction.
    """

    bidder_id: str
    quantity: float
    payment: float
    utility: float


@dataclass(frozen=True, slots=True)
class VCGResult:
    """The outcome of :func:`run_vcg_auction`; ``allocations`` in submission order.

    ``social_welfare``: ``Σ valuation * allocated quantity`` over all bids, phantoms
    included (the valuation's unit, e.g. token B per A, times the quantity's, token A);
    ``total_revenue``: the payments' total (same unit); ``efficiency``: that welfare over
    the efficient allocation's among bids at or above the reserve, in [0, 1];
    ``phantom_participation_rate``: the share of bids that are phantom (0.75 for 15
    phantoms among 20 bids).
    """

    allocations: tuple[VCGAllocation, ...]
    social_welfare: float
    total_revenue: float
    efficiency: float
    phantom_participation_rate: float
    mechanism: str = "vcg"

    def payment_by_bidder(self) -> dict[str, float]:
        """Each bidder's total payment (a stepped bidder's steps summed)."""
        totals: dict[str, float] = {}
        for allocation in self.allocations:
            totals[allocation.bidder_id] = (
                totals.get(allocation.bidder_id, 0.0) + allocation.payment
            )
        return totals


_bidder_id = attrgetter("bidder_id")
_valuation = attrgetter("valuation")
_quantity = attrgetter("quantity")
_is_phantom = attrgetter("is_phantom")
_allocation = partial(tuple.__new__, VCGAllocation)


def bid_arrays(bids: Iterable[VCGBid]) -> tuple[list[str], FloatArray, FloatArray]:
    """``(bidder_ids, valuations, quantities)`` in submission order (ids may repeat: steps)."""
    bids = list(bids)
    n = len(bids)
    ids = list(map(_bidder_id, bids))
    values = np.fromiter(map(_valuation, bids), np.float64, n)
    quantities = np.fromiter(map(_quantity, bids), np.float64, n)
    return ids, values, quantities


def run_vcg_auction(auction: VCGAuction, mechanism: str = "vcg") -> VCGResult:
    """Clear ``auction`` with ``mechanism`` (default VCG); O(n log n).

    Raises :class:`InvalidBidParameters` on a bad value, or on a bidder whose steps
    (bids sharing its ``bidder_id``) increase in value.
    """
    bids = auction.bids
    ids, values, quantities = bid_arrays(bids)
    cleared = clear(
        values,
        quantities,
        supply=auction.supply,
        reserve=auction.reserve_price,
        mechanism=mechanism,
        multi_unit=auction.enable_multi_unit,
        owners=ids if len(set(ids)) < len(ids) else None,
    )
    x, pay = cleared.allocation, cleared.payment
    utility = values * x - pay
    welfare = float(values @ x)
    efficiency = 1.0
    if cleared.mechanism == "vickrey" and auction.enable_multi_unit:
        # Only single-winner second price departs from the efficient allocation,
        # which pay-as-bid shares with VCG.
        best = clear(
            values,
            quantities,
            supply=auction.supply,
            reserve=auction.reserve_price,
            mechanism="discriminatory",
        )
        first_best = float(values @ best.allocation)
        efficiency = welfare / first_best if first_best > 0 else 1.0
    n = len(bids)
    return VCGResult(
        allocations=tuple(
            map(_allocation, zip(ids, x.tolist(), pay.tolist(), utility.tolist(), strict=True))
        ),
        social_welfare=welfare,
        total_revenue=float(pay.sum()),
        efficiency=efficiency,
        phantom_participation_rate=sum(map(_is_phantom, bids)) / n if n else 0.0,
        mechanism=cleared.mechanism,
    )


def individual_rationality_check(result: VCGResult) -> bool:
    """True iff every utility is >= 0, up to ``1e-9`` relative to the payment (SPEC)."""
    return all(a.utility >= -IR_TOLERANCE * max(1.0, abs(a.payment)) for a in result.allocations)
