"""``PhantomSimulator`` and the object path: one auction through the real engine.

:func:`simulate_auction` is the reference implementation of one simulated auction:
each real bidder's strategy is called in its scalar form and each bid judged by the
rule book (:mod:`phantom_auction.mechanisms.rules`: arrival before the collection
deadline, then the reveal verdict). A bidder's standing bid (its best accepted score,
earliest on ties: the offer a bidder who keeps revising would have sealed) is committed
to a real :class:`~phantom_auction.engine.auction.Auction` on a synthetic clock at its
arrival time (whole microseconds, as the engine keeps time), revealed when the reveal
window opens, and the auction is finalized when it ends, with the simulation's phantom
draw in place of one drawn from a seed. The engine clears it; the metrics are computed
from its fills. (The engine holds one sealed bid per bidder, which is why the
simulator, not the engine, picks the standing bid among a strategy's bids.) The fast
path (:mod:`.kernels`) must give the same numbers on the same seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ..engine.auction import Auction
from ..engine.bids import ImprovementBid, SettlementRequest
from ..engine.commitment import auction_prefix, revealed_digest
from ..engine.nonces import NonceRegistry
from ..engine.result import AuctionResult, Ranking
from ..mechanisms.rules import (
    BPS,
    RejectReason,
    fee_bps,
    improvement_bps,
    in_window,
    price_of,
    reveal_verdict,
    score,
    to_us,
)
from ..mechanisms.vcg import VCGAllocation, VCGResult
from .environment import (
    WINNER_NONE,
    WINNER_PHANTOM,
    AuctionEnvironment,
    ExogenousDraws,
    Streams,
    build_environment,
    draw_exogenous,
)
from .market import MarketConditions
from .results import SimulatedBid, SimulationMetrics, SimulationResult
from .settings import SimulationConfig
from .strategies.base import AuctionFeedback, call_generate_bids
from .strategies.registry import SEED_STRATEGIES, create_strategy

__all__ = ["PhantomSimulator", "run_simulation", "simulate_auction"]


class PhantomSimulator:
    """A configured simulator: config, market and the real bidders' ``strategies``.

    ``strategies`` holds one strategy per real bidder; users may append their own
    (any object with the seed's ``generate_bid``). It starts with
    ``config.num_real_bidders`` bidders playing ``config.real_strategy`` (a registered
    name, or an object copied per bidder), or else the seed's five strategies in turn.
    Successive :func:`run_simulation` calls continue one random stream (from
    ``config.seed``), and learning strategies keep what they learnt.
    """

    def __init__(
        self,
        config: SimulationConfig | None = None,
        market: MarketConditions | None = None,
        strategies: Sequence[Any] | None = None,
    ) -> None:
        self.config = config if config is not None else SimulationConfig()
        self.market = market if market is not None else MarketConditions()
        if strategies is not None:
            self.strategies: list[Any] = list(strategies)
        else:
            self.strategies = [
                self._default_strategy(i) for i in range(self.config.num_real_bidders)
            ]
        #: What :func:`calibrate_parameters` fitted, when this simulator came from it.
        self.calibration: dict[str, Any] | None = None
        self._streams: Streams | None = None
        self._env_key: tuple[Any, ...] | None = None
        self._env: AuctionEnvironment | None = None

    def _default_strategy(self, i: int) -> Any:
        chosen = self.config.real_strategy
        if chosen is None:
            return create_strategy(SEED_STRATEGIES[i % len(SEED_STRATEGIES)])
        if isinstance(chosen, str):
            return create_strategy(chosen)
        return copy.deepcopy(chosen)

    def environment(self, baseline_price: float, baseline_quantity: float) -> AuctionEnvironment:
        """The resolved rules for this baseline (cached while nothing changes)."""
        key = (
            baseline_price,
            baseline_quantity,
            self.config,
            self.market,
            tuple(id(s) for s in self.strategies),
        )
        if self._env is None or self._env_key != key:
            self._env = build_environment(
                self.config, self.market, self.strategies, baseline_price, baseline_quantity
            )
            self._env_key = key
        return self._env

    def streams(self) -> Streams:
        """The generators of ``run_simulation`` (created from ``config.seed`` on first use)."""
        if self._streams is None:
            self._streams = Streams.from_seed(
                np.random.SeedSequence(self.config.seed), len(self.strategies)
            )
        self._streams.ensure_bidders(len(self.strategies))
        return self._streams

    def __repr__(self) -> str:
        return (
            f"PhantomSimulator(config={self.config!r}, market={self.market!r}, "
            f"strategies={self.strategies!r})"
        )


def run_simulation(
    simulator: PhantomSimulator, baseline_price: float, baseline_quantity: float
) -> SimulationResult:
    """Simulate one auction with per-bid objects (token B per A, token A).

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` for a baseline price
    or quantity that is not finite and positive.
    """
    env = simulator.environment(baseline_price, baseline_quantity)
    streams = simulator.streams()
    draws = draw_exogenous(env, streams, 1)
    return simulate_auction(env, simulator.strategies, streams, draws, 0)


#: The synthetic clock's epoch: every simulated auction opens at this instant.
SIMULATED_OPEN = datetime(2000, 1, 1, tzinfo=UTC)
_SALT = bytes(32)  # commitments need a salt; a simulated bidder has nothing to hide
_PAIR = (0, 1)


def _run_engine(
    env: AuctionEnvironment,
    a: int,
    standing: Sequence[SimulatedBid],
    phantoms: tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]],
) -> AuctionResult:
    """Auction ``a`` through the engine on the synthetic clock: the ``standing`` bids
    (in arrival order) committed at their arrival times, revealed, finalized."""
    bq = env.baseline_quantity
    auction = Auction(
        SettlementRequest(*_PAIR, bq),
        env.baseline_price,
        bq,
        SIMULATED_OPEN + timedelta(milliseconds=env.duration_ms),
        config=env.auction_config,
        auction_id=f"simulated-{a}",
        nonces=NonceRegistry(),
        now=SIMULATED_OPEN,
        phantom_seed=_SALT,
        rule_book=env.rules,
        phantom_model=env.phantom_model,
        phantom_columns=phantoms,
    )
    prefix = auction_prefix(auction.auction_id)
    full = []
    for bid in standing:
        at = SIMULATED_OPEN + timedelta(microseconds=to_us(bid.timestamp_ms))
        sealed = ImprovementBid(
            bid.bidder_id, _PAIR, bid.price, bid.quantity, bid.priority_fee, _SALT, 1, at, _SALT
        )
        # The commitment hashes the other fields: made with the engine's own digest
        # (frozen dataclass, so set after the fact) rather than a second encoder.
        object.__setattr__(sealed, "commitment_hash", revealed_digest(prefix, sealed))
        if not auction.commit(sealed, at):
            raise AssertionError(f"the engine refused a commit the rule book accepted: {bid}")
        full.append(sealed)
    for sealed in full:
        if not auction.reveal(sealed, auction.commit_deadline):
            raise AssertionError(f"the engine refused a reveal the rule book accepted: {sealed}")
    return auction.finalize(auction.reveal_deadline)


def _vcg_view(
    entries: Sequence[tuple[SimulatedBid, int]], alloc: Sequence[float], result: AuctionResult
) -> VCGResult:
    """The seed's ``vcg_result`` of an engine-cleared VCG auction, on prices (token B):
    one allocation per bid in clearing order; a phantom's units are sold at the baseline."""
    paid = {f.bidder_id: f.price for f in result.fills if f.bidder_id is not None}
    baseline = result.baseline_price
    allocations = []
    for (bid, _), units in zip(entries, alloc, strict=True):
        payment = units * paid.get(bid.bidder_id, baseline)
        allocations.append(
            VCGAllocation(bid.bidder_id, units, payment, bid.price * units - payment)
        )
    return VCGResult(
        allocations=tuple(allocations),
        social_welfare=math.fsum(b.price * x for (b, _), x in zip(entries, alloc, strict=True)),
        total_revenue=math.fsum(a.payment for a in allocations),
        efficiency=1.0,
        phantom_participation_rate=(
            sum(b.is_phantom for b, _ in entries) / len(entries) if entries else 0.0
        ),
    )


def _entropy_share(amounts: Sequence[float], bidders: int) -> float:
    """Normalised Shannon entropy of positive ``amounts`` over ``bidders`` (0 if <= 1)."""
    total = sum(amounts)
    if bidders <= 1 or total <= 0.0:
        return 0.0
    h = -sum(a / total * math.log(a / total) for a in amounts if a > 0.0)
    return h / math.log(bidders)


def simulate_auction(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    draws: ExogenousDraws,
    a: int,
) -> SimulationResult:
    """Auction ``a`` of ``draws``, bid by ``strategies`` from ``streams`` (the object path).

    Learning strategies are told the outcome when ``env.learning``.
    """
    started = time.perf_counter()
    bp, bq = env.baseline_price, env.baseline_quantity
    values = draws.values_bps[a].tolist()
    rejected: dict[str, int] = {}
    submitted = 0
    standing: list[SimulatedBid | None] = []
    path_t: list[float] = []
    path_v: list[float] = []
    rules, limits, deadline_us = env.rules, env.limits, env.deadline_us
    textbook, market, view, rngs = env.textbook, env.market, env.view, streams.bidders
    add_t, add_v, labels = path_t.append, path_v.append, env.labels
    for i, strategy in enumerate(strategies):
        v = values[i]
        bids = call_generate_bids(strategy, bp, bq, market, rngs[i], price_of(v, bp), view)
        submitted += len(bids)
        best: tuple[float, float, float, float, float, float] | None = None
        for price, quantity, t, fee in bids:
            imp = improvement_bps(price, bp)
            qty = bq if textbook else quantity
            reason = (
                reveal_verdict(limits, imp, qty, fee)
                if in_window(t, deadline_us)
                else RejectReason.LATE
            )
            if reason is not None:
                rejected[reason.value] = rejected.get(reason.value, 0) + 1
                continue
            add_t(t)
            add_v(imp)
            rank_score = score(rules, imp, fee_bps(fee, bq))
            if best is None or rank_score > best[0] or (rank_score == best[0] and t < best[4]):
                best = (rank_score, price, imp, qty, t, fee)
        standing.append(
            None
            if best is None
            else SimulatedBid(
                f"real_{i}", labels[i], best[1], best[2], best[3], best[4], best[5], False, v
            )
        )

    # Commit order = arrival order (ties: bidder index); phantoms rank after real bids.
    real_order = sorted(
        (i for i, s in enumerate(standing) if s is not None),
        key=lambda i: (standing[i].timestamp_ms, i),  # type: ignore[union-attr]
    )
    ph = draws.phantoms
    slots = np.flatnonzero(ph.present[a])
    columns = (
        tuple(slots.tolist()),
        tuple(ph.price[a, slots].tolist()),
        tuple(ph.volume[a, slots].tolist()),
        tuple(ph.priority_fee[a, slots].tolist()),
    )
    phantom_bids = [
        SimulatedBid(f"phantom-{k}", "phantom", price, improvement_bps(price, bp), vol, 0.0, fee,
                     True, None)
        for k, price, vol, fee in zip(*columns, strict=True)
    ]  # fmt: skip
    real_bids: list[SimulatedBid] = [s for i in real_order if (s := standing[i]) is not None]
    entries = list(zip(real_bids, real_order, strict=True))
    entries += [(b, WINNER_PHANTOM) for b in phantom_bids]
    all_bids = tuple(b for b, _ in entries)
    result = _run_engine(env, a, real_bids, columns)

    # Allocation of each entry (clearing order) and what each real bidder pays, bps x units.
    owner_of = {b.bidder_id: owner for b, owner in entries}
    alloc = [0.0] * len(entries)
    position = {b.bidder_id: j for j, (b, _) in enumerate(entries)}
    winner = WINNER_NONE
    ranking = result.ranking
    table = ranking.columns if isinstance(ranking, Ranking) else None
    if table is not None and table.allocated is not None:
        ids, allocated = table.bidder_ids, table.allocated
        ranked = [(ids[i], allocated[i]) for i in table.order]
    else:
        ranked = [(r.bidder_id, r.allocated) for r in ranking]
    for bidder_id, units in ranked:
        if units > 0.0:
            alloc[position[bidder_id]] = units
            if winner == WINNER_NONE:
                winner = owner_of[bidder_id]
    n = len(strategies)
    x_real = [0.0] * n
    p_real = [0.0] * n
    winning_bid: SimulatedBid | None = None
    for fill in result.fills:
        if fill.bidder_id is not None:
            owner = owner_of[fill.bidder_id]
            x_real[owner] = fill.volume
            p_real[owner] = fill.volume * improvement_bps(fill.price, bp)
            if winning_bid is None:
                winning_bid = entries[position[fill.bidder_id]][0]
    vcg_result = _vcg_view(entries, alloc, result) if env.mechanism == "vcg" else None

    # Metrics against the modelled values.
    improvement = sum(p_real) / bq
    clearing_price = price_of(improvement, bp)
    premium = float(draws.true_premium_bps[a])
    true_price = price_of(premium, bp)
    best_value = max(values) if n else -math.inf
    # Same definitions as the fast path (kernels.py): competitive price = 2nd-highest value.
    competitive = max(sorted(values)[-2], 0.0) if n >= 2 else 0.0
    available = max(best_value, 0.0)
    welfare_bps = sum(values[i] * x_real[i] for i in range(n)) / bq
    shaded_pairs = [
        (values[i] - s.improvement_bps, values[i])
        for i, s in enumerate(standing)
        if s is not None and values[i] > 0.0
    ]
    shaded_sum = sum(d for d, _ in shaded_pairs)
    valued_sum = sum(v for _, v in shaded_pairs)
    real_standing = [s for s in standing if s is not None]
    if real_standing:
        best_imp = max(s.improvement_bps for s in real_standing)
        convergence = min(s.timestamp_ms for s in real_standing if s.improvement_bps == best_imp)
    else:
        convergence = math.nan
    row: dict[str, Any] = {
        "improvement_bps": improvement,
        "mev_capture_rate": improvement / available if available > 0.0 else math.nan,
        "price_discovery_efficiency": improvement - competitive,
        "bid_shading": shaded_sum / valued_sum if valued_sum > 0.0 else math.nan,
        "phantom_won": winner == WINNER_PHANTOM,
        "winner_index": winner,
        "clearing_price": clearing_price,
        "baseline_price": bp,
        "true_price": true_price,
        "welfare": welfare_bps * bq * bp / BPS,
        "welfare_improvement": welfare_bps / available if available > 0.0 else math.nan,
        "best_bid_time_ms": convergence,
        "num_real_bids": len(real_standing),
        "num_phantom_bids": len(phantom_bids),
        "real_fill_fraction": sum(x_real) / bq,
        "best_real_value_bps": best_value,
        "competitive_bps": competitive,
        "available_surplus_bps": available,
        "shaded_bps": shaded_sum,
        "valued_bps": valued_sum,
    }
    for label, idx in env.label_groups:
        mine = [
            (values[i] - s.improvement_bps, values[i])
            for i in idx
            if (s := standing[i]) is not None and values[i] > 0.0
        ]
        mine_valued = sum(v for _, v in mine)
        row[f"bid_shading:{label}"] = (
            sum(d for d, _ in mine) / mine_valued if mine_valued > 0.0 else math.nan
        )
        row[f"profit_bps:{label}"] = sum((values[i] * x_real[i] - p_real[i]) / bq for i in idx)

    if env.learning:
        for i, strategy in enumerate(strategies):
            if env.learner_flags[i]:
                x = x_real[i]
                feedback = AuctionFeedback(
                    standing[i] is not None,
                    x,
                    p_real[i] / x if x > 0.0 else 0.0,
                    (values[i] * x - p_real[i]) / bq,
                    clearing_price,
                )
                observe = getattr(strategy, "observe", None)
                if callable(observe):
                    observe(feedback)

    # Best standing real improvement at each grid time (0 = the baseline before any bid).
    grid = env.time_grid_ms  # a property that builds the array
    path = np.zeros(grid.size)
    if path_t:
        times = np.asarray(path_t)
        order = np.argsort(times, kind="stable")
        running = np.maximum.accumulate(np.asarray(path_v)[order])
        arrived = np.searchsorted(times[order], grid, side="right")
        path = np.maximum(np.where(arrived > 0, running[np.maximum(arrived - 1, 0)], 0.0), 0.0)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    metrics = SimulationMetrics(
        avg_price_improvement=improvement,
        mev_capture_rate=row["mev_capture_rate"],
        price_discovery_efficiency=row["price_discovery_efficiency"],
        bid_shading=row["bid_shading"],
        phantom_win_rate=1.0 if winner == WINNER_PHANTOM else 0.0,
        winner_diversity=_entropy_share(x_real, len(real_standing)),
        convergence_speed=convergence,
        welfare=row["welfare"],
        welfare_improvement=row["welfare_improvement"],
        real_fill_fraction=row["real_fill_fraction"],
        execution_time_ms=elapsed_ms,
    )
    trace: dict[str, Any] = {
        "mechanism": env.mechanism,
        "true_premium_bps": premium,
        "values_bps": values,
        "submitted_bids": submitted,
        "rejected_bids": rejected,
        "time_grid_ms": grid,
        "textbook": env.textbook,
    }
    return SimulationResult(
        winning_bid=winning_bid,
        clearing_price=clearing_price,
        total_surplus=row["welfare"],
        metrics=metrics,
        all_bids=all_bids,
        vcg_result=vcg_result,
        convergence_path=path,
        execution_trace=trace,
        row=row,
    )
