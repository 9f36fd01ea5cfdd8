"""The live half of ``phantom-auction demo``: one real-time phantom auction, told as a timeline.

Five in-process bidders, one per seed strategy, each wrapped in the engine's
:class:`~phantom_auction.simulation.live.StrategyBidder` with a private value drawn from the
simulator's market model, take part in one auction run by
:func:`~phantom_auction.engine.arun_auction` on the wall clock (the configured
``duration_ms`` windows). A thin recorder around each bidder notes when its sealed
commit and its reveal leave; the engine's :class:`~phantom_auction.engine.AuctionResult`
gives the rest: windows, phantom bids (drawn from the committed seed and revealed at
clearing), the ranking, the fills and the user's improvement in bps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from .engine import (
    AuctionAnnouncement,
    AuctionResult,
    ImprovementBid,
    SealedBid,
    SettlementRequest,
    arun_auction,
)
from .engine.clock import LoopClock
from .simulation import MarketConditions, create_strategy
from .simulation.live import StrategyBidder
from .simulation.market import ValueModel
from .simulation.strategies.registry import SEED_STRATEGIES

__all__ = ["LiveDemo", "TimelineEntry", "live_auction_timeline", "run_live_auction"]

BPS = 10_000.0


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline: ``at`` (UTC), ``what`` happened, to ``who``, ``detail``."""

    at: datetime
    what: str
    who: str
    detail: str


@dataclass
class _Recorder:
    """A bid source that forwards to a :class:`StrategyBidder` and notes what it sent."""

    bidder: StrategyBidder
    #: The engine's clock: timeline entries from both sort in one time order (the wall
    #: clock may be stepped while the engine's, monotonic, is not).
    clock: LoopClock
    entries: list[TimelineEntry] = field(default_factory=list)
    asked_to_reveal: datetime | None = None

    async def commit(self, announcement: AuctionAnnouncement) -> SealedBid | None:
        sealed = await self.bidder.commit(announcement)
        now = self.clock.now()
        if sealed is None:
            self.entries.append(TimelineEntry(now, "abstain", self.bidder.bidder_id, "no bid"))
        else:
            digest = sealed.commitment_hash.hex()[:10]
            self.entries.append(
                TimelineEntry(now, "commit", self.bidder.bidder_id, f"sealed {digest}…")
            )
        return sealed

    async def reveal(self, announcement: AuctionAnnouncement) -> ImprovementBid | None:
        # The engine asks for reveals the moment collection closes.
        self.asked_to_reveal = self.clock.now()
        bid = await self.bidder.reveal(announcement)
        if bid is not None:
            bps = (bid.improved_price / announcement.baseline_price - 1.0) * BPS
            self.entries.append(
                TimelineEntry(
                    self.clock.now(),
                    "reveal",
                    self.bidder.bidder_id,
                    f"{bid.improved_price:.4f} B/A ({bps:+.1f} bps), {bid.volume:,.0f} A",
                )
            )
        return bid


@dataclass(frozen=True, slots=True)
class LiveDemo:
    """A finished live auction: its result and the timeline, in time order."""

    result: AuctionResult
    timeline: tuple[TimelineEntry, ...]


async def _arun(
    seed: int, baseline_price: float, amount: float, market: MarketConditions
) -> LiveDemo:
    seeds = np.random.SeedSequence(seed).spawn(len(SEED_STRATEGIES) + 1)
    # Each filler's private value of the order, from the simulator's market model.
    values_bps = (
        ValueModel.build(market, len(SEED_STRATEGIES), amount)
        .draw(np.random.default_rng(seeds[-1]), 1)
        .values_bps[0]
    )
    clock = LoopClock(asyncio.get_running_loop())
    recorders = [
        _Recorder(
            StrategyBidder(
                create_strategy(name),
                f"{name}-{i + 1}",
                market=market,
                rng=np.random.default_rng(child),
                first_nonce=1,
                private_value=baseline_price * (1.0 + value / BPS),
            ),
            clock,
        )
        for i, (name, child, value) in enumerate(
            zip(SEED_STRATEGIES, seeds[:-1], values_bps, strict=True)
        )
    ]
    request = SettlementRequest(token_in=1, token_out=2, amount=amount, request_id="demo")
    # Room past the configured window, so the engine runs its full duration.
    deadline = clock.now() + timedelta(milliseconds=250)
    result = await arun_auction(
        request,
        baseline_price,
        amount,
        deadline,
        bidders=recorders,
        clock=clock,
        phantom_seed=np.random.default_rng(seed).bytes(32),
    )
    entries = [e for r in recorders for e in r.entries]
    asked = [r.asked_to_reveal for r in recorders if r.asked_to_reveal is not None]
    if asked and min(asked) < result.commit_deadline:
        closed = TimelineEntry(
            min(asked), "close", "engine", "every bidder answered: collection closes early"
        )
    else:
        closed = TimelineEntry(result.commit_deadline, "close", "engine", "collection window ends")
    return LiveDemo(result, tuple(_with_engine_events([*entries, closed], result)))


def _with_engine_events(entries: list[TimelineEntry], result: AuctionResult) -> list[TimelineEntry]:
    phantoms = sorted(
        ((p.improved_price / result.baseline_price - 1.0) * BPS for p in result.phantom_bids),
        reverse=True,
    )
    shown = ", ".join(f"{bps:+.1f}" for bps in phantoms[:4])
    more = ", …" if len(phantoms) > 4 else ""
    engine = [
        TimelineEntry(
            result.opened_at,
            "open",
            "engine",
            f"sell {result.amount:,.0f} A, baseline {result.baseline_price:.4f} B/A, "
            f"{result.mechanism}; phantom seed hash {result.phantom_commitment.hex()[:10]}…",
        ),
        TimelineEntry(
            result.finalized_at,
            "phantoms",
            "engine",
            f"{len(phantoms)} phantom bids from the revealed seed"
            + (f": {shown}{more} bps" if phantoms else ""),
        ),
        TimelineEntry(
            result.finalized_at,
            "clear",
            "engine",
            f"{result.outcome.value}: user gets {result.price:.4f} B/A "
            f"({result.improvement_bps:+.2f} bps)",
        ),
    ]
    return sorted([*entries, *engine], key=lambda e: e.at)


def run_live_auction(
    *,
    seed: int = 2024,
    baseline_price: float = 100.0,
    amount: float = 1000.0,
    market: MarketConditions | None = None,
) -> LiveDemo:
    """Run one real-time auction with the five seed strategies (prices B per A, amount A)."""
    return asyncio.run(_arun(seed, baseline_price, amount, market or MarketConditions()))


_STYLES = {
    "open": "bold",
    "commit": "cyan",
    "abstain": "dim",
    "close": "bold",
    "reveal": "green",
    "phantoms": "yellow",
    "clear": "bold magenta",
}


def live_auction_timeline(console: Console, *, seed: int = 2024) -> LiveDemo:
    """Run :func:`run_live_auction` and print its timeline, ranking and fills."""
    demo = run_live_auction(seed=seed)
    result = demo.result
    start = result.opened_at
    timeline = Table(box=box.SIMPLE_HEAD, title="Timeline", title_justify="left")
    timeline.add_column("t (ms)", justify="right", no_wrap=True)
    timeline.add_column("event", no_wrap=True)
    timeline.add_column("who", no_wrap=True)
    timeline.add_column("detail")
    for entry in demo.timeline:
        ms = (entry.at - start).total_seconds() * 1e3
        style = _STYLES.get(entry.what, "")
        timeline.add_row(f"{ms:7.2f}", entry.what, entry.who, entry.detail, style=style)
    console.print(timeline)
    console.print(_ranking_table(result))
    phantom_note = (
        " (a phantom ranked first: its share went to the CFMM)" if result.phantom_won else ""
    )
    console.print(
        f"Result: {result.outcome.value}, price {result.price:.4f} B/A, "
        f"improvement [bold]{result.improvement_bps:+.2f} bps[/bold] over the CFMM baseline, "
        f"{result.num_participants} participants, {result.auction_duration_ms:.1f} ms{phantom_note}"
    )
    return demo


def _ranking_table(result: AuctionResult) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="Ranking and fills", title_justify="left")
    for column, justify in (
        ("rank", "right"),
        ("bidder", "left"),
        ("bps", "right"),
        ("volume A", "right"),
        ("filled A", "right"),
        ("fill price", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for ranked in result.ranking:
        style = "yellow" if ranked.is_phantom else ("green" if ranked.filled > 0 else "")
        table.add_row(
            str(ranked.rank),
            ranked.bidder_id,
            f"{ranked.improvement_bps:+.1f}",
            f"{ranked.volume:,.0f}",
            f"{ranked.filled:,.0f}",
            "" if ranked.fill_price is None else f"{ranked.fill_price:.4f}",
            style=style,
        )
    cfmm = sum(f.volume for f in result.fills if f.is_cfmm)
    if cfmm > 0:
        table.add_row("", "CFMM", "+0.0", "", f"{cfmm:,.0f}", f"{result.baseline_price:.4f}")
    return table
