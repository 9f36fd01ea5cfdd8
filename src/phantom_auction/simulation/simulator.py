"""``PhantomSimulator`` and the object path: every auction through the real engine.

:func:`simulate_auction` is the reference implementation of one simulated auction. Its
bids, judged by the rule book, and each bidder's standing bid (the offer a bidder who
keeps revising would have sealed: the engine holds one sealed bid per bidder) come from
:mod:`.standing`, for one auction or a lot of consecutive ones. Here each standing bid
is committed to a real :class:`~phantom_auction.engine.auction.Auction` on a synthetic
clock at its arrival time (whole microseconds, as the engine keeps time), revealed when
the reveal window opens, and the auction finalized when it ends, with the simulation's
phantom draw in place of one drawn from a seed; the engine clears it and the result's
records and metrics are made from its fills. ``run_simulation`` keeps its next auctions
worked out ahead (:class:`_AuctionsAhead`). The fast path (:mod:`.kernels`) must give
the same numbers on the same seed.

One concept past 600 lines: the simulator object and the calls that drive it through
the engine (a result's records and its metrics need the engine's fills; the work before
the engine is :mod:`.standing`'s, already a module of its own).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from operator import is_
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..engine.auction import Auction
from ..engine.nonces import NonceRegistry
from ..engine.result import AuctionResult, Ranking
from ..mechanisms.rules import (
    BPS,
    REASON_CODES,
    improvement_bps,
    price_of,
)
from ..mechanisms.vcg import VCGAllocation, VCGResult
from .bidding import bidding_groups, bids_ahead
from .environment import (
    WINNER_NONE,
    WINNER_PHANTOM,
    AuctionEnvironment,
    ExogenousDraws,
    Streams,
    build_environment,
    draw_exogenous_each,
)
from .market import MarketConditions
from .results import (
    BuiltOnRead,
    SimulatedBid,
    SimulatedBids,
    SimulationMetrics,
    SimulationResult,
)
from .settings import SimulationConfig
from .standing import SIMULATED_OPEN, EnvironmentArrays, Standing, arrays_of, standing_bids
from .strategies.base import AuctionFeedback
from .strategies.registry import SEED_STRATEGIES, create_strategy

__all__ = ["PhantomSimulator", "run_simulation", "simulate_auction", "simulate_auctions"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


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
        # Checked here: a dict passed for either failed at the first run, far from here.
        for name, value, kind in (
            ("config", config, SimulationConfig),
            ("market", market, MarketConditions),
        ):
            if value is not None and not isinstance(value, kind):
                hint = f": {kind.__name__}(**fields)" if isinstance(value, Mapping) else ""
                raise TypeError(
                    f"PhantomSimulator: {name}={type(value).__name__} is not a "
                    f"{kind.__name__}{hint}"
                )
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
        self._ahead = _AuctionsAhead()

    def _default_strategy(self, i: int) -> Any:
        chosen = self.config.real_strategy
        if chosen is None:
            return create_strategy(SEED_STRATEGIES[i % len(SEED_STRATEGIES)])
        if isinstance(chosen, str):
            return create_strategy(chosen)
        return copy.deepcopy(chosen)

    def environment(self, baseline_price: float, baseline_quantity: float) -> AuctionEnvironment:
        """The resolved rules for this baseline (cached while nothing changes)."""
        env, seen = self._env, self._env_key
        if (
            env is not None
            and seen is not None
            and seen[0] == baseline_price
            and seen[1] == baseline_quantity
            and seen[2] is self.config  # frozen: the same object, the same rules
            and seen[3] is self.market
            and len(seen[5]) == len(self.strategies)
            and all(map(is_, seen[5], self.strategies))
        ):
            return env  # the common case, without comparing configs field by field
        key = (
            baseline_price,
            baseline_quantity,
            self.config,
            self.market,
            tuple(map(id, self.strategies)),
            list(self.strategies),  # held, so that the ids are not reused meanwhile
        )
        if env is None or seen is None or seen[:5] != key[:5]:
            env = self._env = build_environment(
                self.config, self.market, self.strategies, baseline_price, baseline_quantity
            )
        self._env_key = key  # (an equal config or market: the same rules, new objects)
        return env

    def streams(self) -> Streams:
        """The generators of ``run_simulation`` (created from ``config.seed`` on first use).

        They may be ahead of the auctions handed out: ``run_simulation`` works out its
        next auctions several at a time. Draw from them only after
        ``simulator.give_back()``."""
        if self._streams is None:
            self._streams = Streams.from_seed(
                np.random.SeedSequence(self.config.seed), len(self.strategies)
            )
        self._streams.ensure_bidders(len(self.strategies))
        return self._streams

    def give_back(self) -> None:
        """Set the streams back to where the auctions ``run_simulation`` handed out left
        them (it works out its next auctions ahead; the next call works them out again,
        the same numbers)."""
        if self._streams is not None:
            self._ahead.give_back(self._streams)

    def __repr__(self) -> str:
        return (
            f"PhantomSimulator(config={self.config!r}, market={self.market!r}, "
            f"strategies={self.strategies!r})"
        )


def check_simulator(simulator: object, function: str) -> None:
    """A ``TypeError`` naming ``function`` for a ``simulator`` that is not a
    :class:`PhantomSimulator` (a config passed as is failed deep inside, on a missing
    attribute)."""
    if isinstance(simulator, PhantomSimulator):
        return
    hint = ""
    if isinstance(simulator, SimulationConfig | MarketConditions):
        hint = ": wrap it, PhantomSimulator(config, market)"
    raise TypeError(
        f"{function}: simulator={type(simulator).__name__} is not a PhantomSimulator{hint}"
    )


def run_simulation(
    simulator: PhantomSimulator, baseline_price: float, baseline_quantity: float
) -> SimulationResult:
    """Simulate one auction with per-bid objects (token B per A, token A).

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` for a baseline price
    or quantity that is not finite and positive, ``TypeError`` for a ``simulator`` that
    is not a :class:`PhantomSimulator`.
    """
    check_simulator(simulator, "run_simulation")
    env = simulator.environment(baseline_price, baseline_quantity)
    return simulator._ahead.next_result(env, simulator.strategies, simulator.streams())


#: The most auctions ``run_simulation`` works out ahead, up to the engine, in one go.
AHEAD = 64


class _AuctionsAhead:
    """``run_simulation``'s next auctions, worked out up to the engine several at a time
    (:func:`~.standing.standing_bids`: numpy pays per call, and 200 bidders make many
    small calls),
    each then cleared by the engine when its call comes. The numbers are those of one
    auction a call: the market and phantom draws are drawn as auction-by-auction calls
    draw them (:func:`~.environment.draw_exogenous_each`), each bidder takes one block
    of uniforms an auction, and what a change of environment or strategies leaves
    unused is given back (the generators set back) before anything else draws. How many
    at a time doubles, up to :data:`AHEAD`, while each lot is used up, and starts again
    from one after a change (a caller who changes the baseline every call pays for no
    auction it does not run)."""

    __slots__ = (
        "_draws",
        "_env",
        "_marks",
        "_size",
        "_standing",
        "_states",
        "_strategies",
        "_used",
    )

    def __init__(self) -> None:
        self._standing: Standing | None = None
        self._used = 0
        self._size = 1

    def next_result(
        self, env: AuctionEnvironment, strategies: list[Any], streams: Streams
    ) -> SimulationResult:
        started = time.perf_counter()
        if self._standing is not None and not self._serves(env, strategies):
            self.give_back(streams)
        standing = self._standing
        if standing is None or self._used == len(standing.value_lists):
            standing = self._work_out(env, strategies, streams)
        j = self._used
        self._used += 1
        return _cleared(env, strategies, self._draws, standing, j, started)

    def _serves(self, env: AuctionEnvironment, strategies: list[Any]) -> bool:
        """Whether the auctions worked out are still this run's: the same environment,
        the same strategy objects, in the same state."""
        return (
            env is self._env
            and len(strategies) == len(self._strategies)
            and all(map(is_, strategies, self._strategies))
            and self._states == _batch_states(env, strategies)
        )

    def _work_out(
        self, env: AuctionEnvironment, strategies: list[Any], streams: Streams
    ) -> Standing:
        if self._standing is not None:  # the last lot was used up
            self._size = min(2 * self._size, AHEAD)
        k = self._size if bids_ahead(env, strategies) else 1
        self._env, self._strategies = env, list(strategies)
        self._states = _batch_states(env, strategies)
        if k > 1:  # where the market and phantom streams stood, to give back the unused
            self._marks = (streams.market.bit_generator.state, streams.phantom.bit_generator.state)
        self._draws = draw_exogenous_each(env, streams, k)
        self._standing = standing_bids(env, strategies, streams, self._draws, 0, k)
        self._used = 0
        return self._standing

    def give_back(self, streams: Streams) -> None:
        """Set every stream back to where the auctions handed out so far left it."""
        standing, used = self._standing, self._used
        self._standing, self._size = None, 1
        streams.ahead.give_back(streams.bidders, range(len(streams.bidders)))
        if standing is None or used == len(standing.value_lists):
            return
        unused = len(standing.value_lists) - used
        streams.market.bit_generator.state, streams.phantom.bit_generator.state = self._marks
        draw_exogenous_each(self._env, streams, used)  # the used auctions' draws again
        for members in bidding_groups(self._env, self._strategies).together:
            draws = self._strategies[members[0]].batch_draws(self._env.view)
            for i in members:
                streams.bidders[i].bit_generator.advance(-unused * draws)  # type: ignore[attr-defined]


def _batch_states(env: AuctionEnvironment, strategies: Sequence[Any]) -> list[Any]:
    """Each bidding group's :meth:`~.strategies.base.BidderStrategy.batch_state`."""
    return [
        strategies[members[0]].batch_state(env.view, env.market)
        for members in bidding_groups(env, strategies).together
    ]


_SALT = bytes(32)  # commitments need a salt; a simulated bidder has nothing to hide
_BIDDER_IDS: list[str] = []


def _bidder_ids(n: int) -> list[str]:
    """``real_0 .. real_{n-1}``, the real bidders' ids (made once)."""
    while len(_BIDDER_IDS) < n:
        _BIDDER_IDS.append(f"real_{len(_BIDDER_IDS)}")
    return _BIDDER_IDS


def _run_engine(
    env: AuctionEnvironment,
    arrays: EnvironmentArrays,
    a: int,
    ids: list[str],
    columns: tuple[FloatArray, FloatArray, FloatArray, list[int]],
    phantoms: tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]],
) -> AuctionResult:
    """Auction ``a`` through the engine on the synthetic clock: the standing bids of
    bidders ``ids`` (in arrival order; ``columns`` their prices in B per A, volumes,
    fees and arrival times in whole microseconds) committed at their arrival times,
    revealed as the reveal window opens and finalized when it ends, by the engine's
    batch entry (:meth:`~phantom_auction.engine.auction.Auction.commit_reveal_finalize`,
    the same as those commands one by one; it makes no record per bid that nobody
    reads, and its commitments only when read)."""
    auction = Auction(
        arrays.request,
        env.baseline_price,
        env.baseline_quantity,
        arrays.deadline,
        config=env.auction_config,
        auction_id=f"simulated-{a}",
        nonces=NonceRegistry(),
        now=SIMULATED_OPEN,
        phantom_seed=_SALT,
        rule_book=env.rules,
        phantom_model=env.phantom_model,
        phantom_columns=phantoms,
    )
    result = auction.commit_reveal_finalize(ids, *columns, nonce=1, salt=_SALT)
    if len(auction.reveals) != len(ids):
        raise AssertionError(
            f"the engine refused a bid the rule book accepted: {auction.audit[1:-3]}"
        )
    return result


_allocation = partial(tuple.__new__, VCGAllocation)  # VCGAllocation(*fields), without a frame


def _vcg_view(
    ids: list[str],
    prices: FloatArray,
    phantom_slots: Sequence[int],
    phantom_prices: Sequence[float],
    alloc: Sequence[float],
    result: AuctionResult,
) -> VCGResult:
    """The seed's ``vcg_result`` of an engine-cleared VCG auction, on prices (token B):
    one allocation per bid in clearing order (real bidders ``ids`` at ``prices``, then
    the phantoms of ``phantom_slots`` at ``phantom_prices``); a phantom's units are sold
    at the baseline. The allocation records are made when first read
    (:class:`~.results.BuiltOnRead`); welfare and revenue add up the allocated bids only
    (``math.fsum`` is exact: the zeros of the others change nothing)."""
    baseline = result.baseline_price
    fill_price = {f.bidder_id: f.price for f in result.fills if f.bidder_id is not None}
    n_real = len(ids)
    values, payments = [], []
    for j, units in enumerate(alloc):
        if units > 0.0:
            if j < n_real:
                values.append(float(prices[j]) * units)
                payments.append(units * fill_price.get(ids[j], baseline))
            else:
                values.append(phantom_prices[j - n_real] * units)
                payments.append(units * baseline)
    count = n_real + len(phantom_slots)

    def build() -> tuple[VCGAllocation, ...]:
        every_id = [*ids, *(f"phantom-{k}" for k in phantom_slots)]
        # Each bid's units sold at its fill price (a real winner's) or the baseline.
        unit_price = np.full(count, baseline)
        for fill in result.fills:
            if fill.bidder_id is not None:
                unit_price[ids.index(fill.bidder_id)] = fill.price
        units = np.asarray(alloc, dtype=np.float64)
        payment = units * unit_price
        value = np.concatenate((prices, np.asarray(phantom_prices, dtype=np.float64))) * units
        return tuple(
            map(
                _allocation,
                zip(every_id, alloc, payment.tolist(), (value - payment).tolist(), strict=True),
            )
        )

    return VCGResult(
        allocations=cast(tuple[VCGAllocation, ...], BuiltOnRead(build=build, count=count)),
        social_welfare=math.fsum(values),
        total_revenue=math.fsum(payments),
        efficiency=1.0,
        phantom_participation_rate=(count - n_real) / count if count else 0.0,
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
    standing = standing_bids(env, strategies, streams, draws, a, 1)
    return _cleared(env, strategies, draws, standing, 0, started)


def simulate_auctions(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    draws: ExogenousDraws,
    first: int = 0,
    count: int | None = None,
) -> Iterator[SimulationResult]:
    """Auctions ``first``, ``first + 1`` .. of ``draws`` (``count`` of them, by default
    the rest), in order: :func:`simulate_auction` of each, the same numbers, with the
    work before the engine done for up to :data:`AHEAD` auctions at once when every
    bidder bids in a group (:func:`~.bidding.bids_ahead`; a learner is told each outcome
    before its next auction's bids are made, as the results are taken)."""
    end = len(draws) if count is None else first + count
    a = first
    while a < end:
        started = time.perf_counter()
        k = min(AHEAD, end - a) if bids_ahead(env, strategies) else 1
        standing = standing_bids(env, strategies, streams, draws, a, k)
        for j in range(k):
            yield _cleared(env, strategies, draws, standing, j, started)
            started = time.perf_counter()
        a += k


def _cleared(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    draws: ExogenousDraws,
    standing: Standing,
    j: int,
    started: float,
) -> SimulationResult:
    """Auction ``j`` of ``standing`` through the engine, and its result (learning
    strategies are told the outcome when ``env.learning``); ``started``: when its work
    began (``perf_counter``), for ``execution_time_ms``."""
    a = standing.first + j
    bp, bq = env.baseline_price, env.baseline_quantity
    values = standing.value_lists[j]
    n = len(values)
    lo, hi = standing.starts[j], standing.starts[j + 1]
    real_order = standing.real_order[lo:hi]
    ids = list(map(_bidder_ids(n).__getitem__, real_order))
    prices, improvements = standing.prices[lo:hi], standing.improvements[lo:hi]
    quantities, fees = standing.quantities[lo:hi], standing.fees[lo:hi]
    times = standing.times[lo:hi]
    columns = standing.phantoms[j]
    arrays = arrays_of(env)
    result = _run_engine(
        env, arrays, a, ids, (prices, quantities, fees, standing.arrivals_us[lo:hi]), columns
    )
    labels = env.labels

    def real_bid(i: int) -> SimulatedBid:
        """The ``i``-th real bid in arrival order as a record."""
        bidder = real_order[i]
        return SimulatedBid(
            ids[i], labels[bidder], float(prices[i]), float(improvements[i]),
            float(quantities[i]), float(times[i]), float(fees[i]), False, values[bidder],
        )  # fmt: skip

    def every_bid() -> tuple[SimulatedBid, ...]:
        phantoms = [
            SimulatedBid(f"phantom-{k}", "phantom", price, improvement_bps(price, bp), vol,
                         0.0, fee, True, None)
            for k, price, vol, fee in zip(*columns, strict=True)
        ]  # fmt: skip
        return (*map(real_bid, range(len(ids))), *phantoms)

    all_bids = SimulatedBids(build=every_bid, count=len(ids) + len(columns[0]))

    # Allocation of each entry (the ranking's columns: clearing order) and the winner:
    # the best-ranked bid that received volume.
    n_real = len(real_order)
    winner = WINNER_NONE
    ranking = result.ranking
    table = ranking.columns if isinstance(ranking, Ranking) else None
    if table is not None and table.allocated is not None:
        alloc = list(table.allocated)
        for i in table.order:
            if alloc[i] > 0.0:
                winner = real_order[i] if i < n_real else WINNER_PHANTOM
                break
    else:
        alloc = [0.0] * len(all_bids)
        position = {b: i for i, b in enumerate(ids)}
        position.update((f"phantom-{k}", n_real + i) for i, k in enumerate(columns[0]))
        for ranked in ranking:
            if ranked.allocated > 0.0:
                i = position[ranked.bidder_id]
                alloc[i] = ranked.allocated
                if winner == WINNER_NONE:
                    winner = real_order[i] if i < n_real else WINNER_PHANTOM
    # What each real winner got (token A) and paid (bps x units), in bidder order.
    won: dict[int, tuple[float, float]] = {}
    winning_bid: SimulatedBid | None = None
    for fill in result.fills:
        if fill.bidder_id is not None:
            i = ids.index(fill.bidder_id)  # a few fills: no table of all bidders
            won[real_order[i]] = (fill.volume, fill.volume * improvement_bps(fill.price, bp))
            if winning_bid is None:
                winning_bid = real_bid(i)
    winners = sorted(won)
    x_won = [won[i][0] for i in winners]
    p_won = [won[i][1] for i in winners]
    vcg_result = (
        _vcg_view(ids, prices, columns[0], columns[1], alloc, result)
        if env.mechanism == "vcg"
        else None
    )

    # Metrics against the modelled values.
    improvement = sum(p_won) / bq
    clearing_price = price_of(improvement, bp)
    premium = float(draws.true_premium_bps[a])
    true_price = price_of(premium, bp)
    best_value = standing.best_value[j]
    competitive = standing.competitive[j]
    available = max(best_value, 0.0)
    welfare_bps = sum(values[i] * x for i, x in zip(winners, x_won, strict=True)) / bq
    shaded_sum, valued_sum = standing.shaded_sum[j], standing.valued_sum[j]
    convergence = standing.convergence[j]
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
        "num_real_bids": n_real,
        "num_phantom_bids": len(columns[0]),
        "refused_bids": sum(standing.refused[j]),
        "real_fill_fraction": sum(x_won) / bq,
        "best_real_value_bps": best_value,
        "competitive_bps": competitive,
        "available_surplus_bps": available,
        "shaded_bps": shaded_sum,
        "valued_bps": valued_sum,
    }
    x_real = np.zeros(n)
    p_real = np.zeros(n)
    x_real[winners] = x_won
    p_real[winners] = p_won
    profit = (standing.values[j] * x_real - p_real) / bq
    profits = np.bincount(arrays.label_of, weights=profit, minlength=len(env.label_groups))
    for (label, _), mine_shaded, mine_valued, mine_profit in zip(
        env.label_groups,
        standing.shaded_by_label[j],
        standing.valued_by_label[j],
        profits.tolist(),
        strict=True,
    ):
        row[f"bid_shading:{label}"] = mine_shaded / mine_valued if mine_valued > 0.0 else math.nan
        row[f"profit_bps:{label}"] = mine_profit

    if env.learning:
        has = standing.has[j]
        for i, strategy in enumerate(strategies):
            if env.learner_flags[i]:
                x, paid = won.get(i, (0.0, 0.0))
                feedback = AuctionFeedback(
                    bool(has[i]),
                    x,
                    paid / x if x > 0.0 else 0.0,
                    (values[i] * x - paid) / bq,
                    clearing_price,
                )
                observe = getattr(strategy, "observe", None)
                if callable(observe):
                    observe(feedback)

    refused = standing.refused[j]
    elapsed_ms = (time.perf_counter() - started) * 1e3
    metrics = SimulationMetrics(
        avg_price_improvement=improvement,
        mev_capture_rate=row["mev_capture_rate"],
        price_discovery_efficiency=row["price_discovery_efficiency"],
        bid_shading=row["bid_shading"],
        phantom_win_rate=1.0 if winner == WINNER_PHANTOM else 0.0,
        winner_diversity=_entropy_share(x_won, n_real),
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
        "submitted_bids": standing.submitted[j],
        "rejected_bids": {
            reason.value: count
            for reason, count in zip(REASON_CODES, refused, strict=True)
            if reason is not None and count
        },
        "time_grid_ms": arrays.time_grid_ms,
        "textbook": env.textbook,
        # Learners were told this outcome: the auctions after it depend on it.
        "learning": bool(env.learning and any(env.learner_flags)),
    }
    return SimulationResult(
        winning_bid=winning_bid,
        clearing_price=clearing_price,
        total_surplus=row["welfare"],
        metrics=metrics,
        all_bids=all_bids,
        vcg_result=vcg_result,
        convergence_path=standing.paths[j],
        execution_trace=trace,
        row=row,
    )
