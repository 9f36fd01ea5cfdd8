"""``PhantomSimulator`` and the object path: one auction with per-bid objects.

:func:`simulate_auction` is the reference implementation of one simulated auction:
each real bidder's strategy is called in its scalar form, every bid becomes a
:class:`SimulatedBid`, bids are validated and cleared one auction at a time with
:func:`~phantom_auction.mechanisms.vcg.run_vcg_auction` on prices (valuation = price,
reserve = baseline, supply = the order), and the metrics are computed from those
objects. The fast path (:mod:`.kernels`) must give the same numbers on the same seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..mechanisms.vcg import VCGAuction, _trusted_bid, run_vcg_auction
from .environment import (
    BOUND_TOLERANCE_BPS,
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
from .strategies.base import BPS, AuctionFeedback, call_generate_bids
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


def _rejection(env: AuctionEnvironment, imp: float, qty: float, t: float) -> str:
    """Why the engine rejects a bid that failed the reveal checks (a reason code)."""
    if not (math.isfinite(imp) and math.isfinite(qty) and math.isfinite(t)):
        return "non_finite"
    if t < 0.0 or t > env.window_ms:
        return "late"
    if not env.min_bps - BOUND_TOLERANCE_BPS <= imp <= env.max_bps + BOUND_TOLERANCE_BPS:
        return "improvement_out_of_bounds"
    if not 0.0 < qty <= env.max_volume * (1.0 + 1e-12):
        return "volume"
    return "priority_fee"


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
    # The engine's reveal checks, hoisted (same expressions as kernels.valid_bids).
    window, min_bps, max_bps = env.window_ms, env.min_bps, env.max_bps
    lowest, highest = min_bps - BOUND_TOLERANCE_BPS, max_bps + BOUND_TOLERANCE_BPS
    max_volume = env.max_volume * (1.0 + 1e-12)
    fee_ratio, slack = env.fee_max_ratio, 1.0 + 1e-12
    textbook, market, view, rngs = env.textbook, env.market, env.view, streams.bidders
    # Bound methods and plain locals in the per-bid loop: it runs ~1,000 times per auction.
    add_t, add_v, labels, inf = path_t.append, path_v.append, env.labels, math.inf
    for i, strategy in enumerate(strategies):
        v = values[i]
        bids = call_generate_bids(strategy, bp, bq, market, rngs[i], bp * (1.0 + v / BPS), view)
        submitted += len(bids)
        found = False
        best_price = best_imp = best_qty = best_t = best_fee = 0.0
        for price, quantity, t, fee in bids:
            imp = (price / bp - 1.0) * BPS
            qty = bq if textbook else quantity
            # Chained comparisons are False for NaN; only an infinite improvement
            # needs its own test (the textbook upper bound is infinite).
            if not (
                0.0 <= t <= window
                and lowest <= imp <= highest
                and imp < inf
                and 0.0 < qty <= max_volume
                and 0.0 <= fee <= qty * fee_ratio * slack
            ):
                reason = _rejection(env, imp, qty, t)
                rejected[reason] = rejected.get(reason, 0) + 1
                continue
            imp = min_bps if imp < min_bps else max_bps if imp > max_bps else imp
            add_t(t)
            add_v(imp)
            if not found or imp > best_imp or (imp == best_imp and t < best_t):
                found, best_price, best_imp, best_qty, best_t, best_fee = (
                    True,
                    price,
                    imp,
                    qty,
                    t,
                    fee,
                )
        standing.append(
            SimulatedBid(
                f"real_{i}",
                labels[i],
                best_price,
                best_imp,
                best_qty,
                best_t,
                best_fee,
                False,
                v,
            )
            if found
            else None
        )

    ph = draws.phantoms
    phantom_bids = [
        SimulatedBid(
            f"phantom_{k}",
            "phantom",
            float(ph.price[a, k]),
            float(ph.improvement_bps[a, k]),
            float(ph.volume[a, k]),
            0.0,
            float(ph.priority_fee[a, k]),
            True,
            None,
        )
        for k in np.flatnonzero(ph.present[a]).tolist()
    ]
    # Clearing order = submission order: phantoms (drawn at the open), then arrival.
    real_order = sorted(
        (i for i, s in enumerate(standing) if s is not None),
        key=lambda i: (standing[i].timestamp_ms, i),  # type: ignore[union-attr]
    )
    entries: list[tuple[SimulatedBid, int]] = [(b, WINNER_PHANTOM) for b in phantom_bids]
    entries += [(standing[i], i) for i in real_order]  # type: ignore[misc]
    all_bids = tuple(b for b, _ in entries)

    alloc = [0.0] * len(entries)
    pay_bps = [0.0] * len(entries)
    vcg_result = None
    if entries and len(entries) >= env.min_participants:
        auction = VCGAuction(
            bq,
            bp,
            enable_multi_unit=True,
            # Accepted bids and drawn phantoms: run_vcg_auction checks the values.
            bids=[_trusted_bid(b.bidder_id, b.price, b.quantity, b.is_phantom) for b, _ in entries],
        )
        result = run_vcg_auction(auction, env.mechanism)
        if env.mechanism == "vcg":
            vcg_result = result
        for j, allocation in enumerate(result.allocations):
            alloc[j] = allocation.quantity
            # Total payment in token B -> bps over baseline x token A.
            pay_bps[j] = (allocation.payment - bp * allocation.quantity) / bp * BPS

    # Metrics against the modelled values.
    n = len(strategies)
    x_real = [0.0] * n
    p_real = [0.0] * n
    top: tuple[float, int] | None = None
    winning_bid: SimulatedBid | None = None
    for j, (entry, owner) in enumerate(entries):
        if alloc[j] > 0.0:
            if top is None or entry.improvement_bps > top[0]:
                top = (entry.improvement_bps, owner)
            if owner >= 0:
                x_real[owner] = alloc[j]
                p_real[owner] = pay_bps[j]
                if winning_bid is None or entry.improvement_bps > winning_bid.improvement_bps:
                    winning_bid = entry
    winner = WINNER_NONE if top is None else top[1]
    improvement = sum(p_real) / bq
    clearing_price = bp * (1.0 + improvement / BPS)
    premium = float(draws.true_premium_bps[a])
    true_price = bp * (1.0 + premium / BPS)
    best_value = max(values) if n else -math.inf
    available = max(best_value, 0.0)
    welfare_bps = sum(values[i] * x_real[i] for i in range(n)) / bq
    shadings = [
        (values[i] - s.improvement_bps) / values[i]
        for i, s in enumerate(standing)
        if s is not None and values[i] > 0.0
    ]
    real_standing = [s for s in standing if s is not None]
    if real_standing:
        best_imp = max(s.improvement_bps for s in real_standing)
        convergence = min(s.timestamp_ms for s in real_standing if s.improvement_bps == best_imp)
    else:
        convergence = math.nan
    row: dict[str, Any] = {
        "improvement_bps": improvement,
        "mev_capture_rate": min(max(improvement / available, 0.0), 1.0)
        if available > 0.0
        else math.nan,
        "price_discovery_efficiency": 1.0 - abs(clearing_price - true_price) / true_price,
        "bid_shading": sum(shadings) / len(shadings) if shadings else math.nan,
        "phantom_won": winner == WINNER_PHANTOM,
        "winner_index": winner,
        "clearing_price": clearing_price,
        "baseline_price": bp,
        "true_price": true_price,
        "welfare": welfare_bps * bq * bp / BPS,
        "welfare_improvement": welfare_bps / available if available > 0.0 else math.nan,
        "convergence_speed_ms": convergence,
        "num_real_bids": len(real_standing),
        "num_phantom_bids": len(phantom_bids),
        "real_fill_fraction": sum(x_real) / bq,
        "best_real_value_bps": best_value,
    }
    for label, idx in env.label_groups:
        mine = [
            (values[i] - s.improvement_bps) / values[i]
            for i in idx
            if (s := standing[i]) is not None and values[i] > 0.0
        ]
        row[f"bid_shading:{label}"] = sum(mine) / len(mine) if mine else math.nan
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
