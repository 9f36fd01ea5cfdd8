"""Simulator strategies as live bidders: :class:`StrategyBidder`, a bid source for the
in-process runner (:func:`phantom_auction.run_auction`), the bidder SDK
(:mod:`phantom_auction.client`) and the demo.

It adapts the seed's strategy interface (``generate_bid(baseline_price,
baseline_quantity, market, rng)``) to the engine's :class:`~phantom_auction.engine.
runner.BidSource` (``commit``/``reveal``); it lives with the strategies because it
knows both sides, so the engine takes bid sources and knows no strategies.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

import numpy as np

from ..config import load_config
from ..engine.bids import ImprovementBid, SealedBid, make_bid
from ..engine.phantoms import PhantomModel
from ..engine.result import AuctionAnnouncement
from ..errors import InvalidBidParameters
from .market import MarketConditions
from .strategies.base import AuctionView

__all__ = ["StrategyBidder", "announced_view", "served_view"]

#: Views a bidder keeps, one per set of announced rules (auction lengths vary by order).
_MAX_VIEWS: Final = 256
_MS: Final = timedelta(milliseconds=1)
#: Bids kept for a reveal that may never be asked for (commit refused, ...).
_MAX_PENDING: Final = 4096


@cache
def served_view() -> AuctionView:
    """The :class:`AuctionView` of a server on the packaged configuration: its mechanism
    (the simulator's default is VCG, the service's Vickrey), its phantom model, phantom
    policy and ``min_participants``, what an announcement does not state. The view a live
    bidder starts from, so that a default server's auctions need no new solve."""
    config = load_config(env={})
    pa = config.phantom_auction
    return AuctionView(
        mechanism=pa.mechanism,
        phantom_model=PhantomModel.from_config(config) if pa.max_phantom_bidders else None,
        phantom_policy=pa.phantom_policy,
        min_participants=pa.min_participants,
    )


def _announced_rules(announcement: AuctionAnnouncement) -> dict[str, Any]:
    """The :class:`AuctionView` fields ``announcement`` states: its mechanism, the accepted
    improvements (bps), the collection window and the whole auction (ms, from the
    opening), the volume cap as a share of the order, the priority fee cap and, where it
    states them, the phantoms' terms (policy, ``min_participants`` and model; a model of
    no slots is the view's None, as in :func:`served_view`)."""
    a = announcement
    rules = {
        "mechanism": a.mechanism,
        "min_improvement_bps": a.min_improvement_bps,
        "max_improvement_bps": a.max_improvement_bps,
        "window_ms": (a.commit_deadline - a.opened_at) / _MS,
        "duration_ms": (a.reveal_deadline - a.opened_at) / _MS,
        "max_volume_fraction": a.max_volume / a.amount,
        "priority_fee_max_ratio": a.priority_fee_max_ratio,
    }
    if a.phantom_policy is not None:
        rules["phantom_policy"] = a.phantom_policy
    if a.min_participants is not None:
        rules["min_participants"] = a.min_participants
    if a.phantom_model is not None:
        rules["phantom_model"] = a.phantom_model if a.phantom_model.max_phantom_bidders else None
    return rules


def announced_view(announcement: AuctionAnnouncement, base: AuctionView) -> AuctionView:
    """``base`` with the rules ``announcement`` states (see :func:`_announced_rules`)."""
    return replace(base, **_announced_rules(announcement))


def _accepts_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` takes keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class StrategyBidder:
    """A bid source driven by a simulator strategy (duck-typed, seed interface).

    On each announcement it calls ``strategy.generate_bid(baseline_price, amount, market,
    rng)``, which returns None (stay out) or an object with ``price`` (B per A),
    ``quantity`` (token A units), ``timestamp`` (ms after the auction opened at which the
    bid is sent) and ``priority_fee`` (token units). With ``honour_timing`` the commit is
    sent at that time (so a bid timed after the collection window arrives late). The bid
    is sealed with a fresh salt and the next nonce (``first_nonce``, by default the
    current time in microseconds, so that nonces keep increasing across restarts and stay
    below ``MAX_NONCE`` = 2**53 - 1 until the year 2255), kept, and
    revealed when asked. :meth:`commit`'s steps are public (:meth:`propose`,
    :meth:`send_delay`, :meth:`make`) for a caller that times the send itself (the SDK,
    without a task per auction).

    ``market`` defaults to ``MarketConditions()``; ``rng`` to a fresh
    ``numpy.random.default_rng()``. ``private_value`` (token B per token A) is the
    bidder's value of the order, a number or a callable ``(announcement, rng) -> value``;
    it reaches strategies whose ``generate_bid`` takes a ``private_value`` keyword (the
    simulator's do), others never see it. Those taking a ``view`` keyword (the
    simulator's do) are told each auction's rules as announced: :func:`announced_view`
    of ``view`` (default: :func:`served_view`), which also gives what an announcement
    does not say (rivals, value distribution; the phantoms' terms where a server does
    not announce them).
    A strategy with a ``bid_function`` (the equilibrium's, ~1 s to solve) solves it for
    ``view`` here: pass the rules your server runs, or its first auction solves again.
    """

    def __init__(
        self,
        strategy: Any,
        bidder_id: str,
        market: Any = None,
        rng: np.random.Generator | None = None,
        *,
        first_nonce: int | None = None,
        honour_timing: bool = True,
        private_value: float
        | Callable[[AuctionAnnouncement, np.random.Generator], float | None]
        | None = None,
        view: AuctionView | None = None,
    ) -> None:
        if not callable(getattr(strategy, "generate_bid", None)):
            raise InvalidBidParameters(
                "strategy",
                strategy,
                "needs a generate_bid(baseline_price, baseline_quantity, market, rng) method",
            )
        if not isinstance(bidder_id, str) or not bidder_id:
            raise InvalidBidParameters("bidder_id", bidder_id, "must be a non-empty string")
        self.strategy = strategy
        self.bidder_id = bidder_id
        self.market = MarketConditions() if market is None else market
        self.rng = np.random.default_rng() if rng is None else rng
        self.honour_timing = honour_timing
        # Microseconds, not ns: a ns clock (1.8e18) is past what JSON carries exactly.
        self._nonce = time.time_ns() // 1_000 if first_nonce is None else first_nonce
        self._pending: dict[str, ImprovementBid] = {}
        self.private_value = private_value
        self._takes_value = _accepts_keyword(strategy.generate_bid, "private_value")
        self.view = served_view() if view is None else view
        self._takes_view = _accepts_keyword(strategy.generate_bid, "view")
        # Made once per set of rules (a strategy would make its own on every call).
        self._views: dict[tuple[Any, ...], AuctionView] = {}
        # Solve a bid function now (the equilibrium's takes ~1 s, once), not on the event
        # loop inside the first auction's collection window, where it blocks every bidder.
        solve = getattr(strategy, "bid_function", None)
        if callable(solve):
            solve(self.view)

    def __repr__(self) -> str:
        return f"StrategyBidder({self.bidder_id!r}, {type(self.strategy).__name__})"

    async def commit(self, announcement: AuctionAnnouncement) -> SealedBid | None:
        """Generate, time, seal and send a bid for ``announcement`` (None: stays out)."""
        proposal = self.propose(announcement)
        if proposal is None:
            return None
        delay = self.send_delay(announcement, proposal)
        if delay > 0:
            await asyncio.sleep(delay)
        bid = self.make(announcement, proposal)
        self._pending[announcement.auction_id] = bid
        if len(self._pending) > _MAX_PENDING:  # bids never asked for (commit refused, ...)
            del self._pending[next(iter(self._pending))]
        return bid.sealed()

    def propose(self, announcement: AuctionAnnouncement) -> Any | None:
        """The strategy's bid for ``announcement``, not yet sealed (None: stays out)."""
        value = self.private_value
        if callable(value):
            value = value(announcement, self.rng)
        args = (announcement.baseline_price, announcement.amount, self.market, self.rng)
        kwargs: dict[str, Any] = {"view": self.view_of(announcement)} if self._takes_view else {}
        if value is not None and self._takes_value:
            kwargs["private_value"] = float(value)
        return self.strategy.generate_bid(*args, **kwargs)

    def view_of(self, announcement: AuctionAnnouncement) -> AuctionView:
        """:func:`announced_view` of :attr:`view`, made once per set of rules."""
        rules = _announced_rules(announcement)
        key = tuple(rules.items())
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= _MAX_VIEWS:
                self._views.clear()
            view = self._views[key] = replace(self.view, **rules)
        return view

    def send_delay(self, announcement: AuctionAnnouncement, proposal: Any) -> float:
        """Seconds until ``proposal`` is due to be sent: its ``timestamp`` after the auction
        opened with ``honour_timing``, else 0 (at once); <= 0 when the time has come."""
        if not self.honour_timing:
            return 0.0
        send_at = announcement.opened_at + timedelta(milliseconds=float(proposal.timestamp))
        return (send_at - datetime.now(UTC)).total_seconds()

    def make(self, announcement: AuctionAnnouncement, proposal: Any) -> ImprovementBid:
        """``proposal`` as a bid with a fresh salt and the next nonce (call it at send
        time: commits leave in nonce order)."""
        nonce = self._nonce
        self._nonce += 1
        return make_bid(
            announcement.auction_id,
            self.bidder_id,
            announcement.token_pair,
            float(proposal.price),
            float(proposal.quantity),
            float(proposal.priority_fee),
            nonce,
        )

    async def reveal(self, announcement: AuctionAnnouncement) -> ImprovementBid | None:
        """The bid committed to in ``announcement``'s auction (None if there was none)."""
        return self._pending.pop(announcement.auction_id, None)
