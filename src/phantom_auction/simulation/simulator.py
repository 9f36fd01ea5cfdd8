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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from itertools import pairwise
from operator import is_
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from ..engine.auction import Auction
from ..engine.bids import SettlementRequest
from ..engine.nonces import NonceRegistry
from ..engine.result import AuctionResult, Ranking
from ..mechanisms.rules import (
    BPS,
    REASON_CODES,
    fee_bps,
    improvement_bps,
    price_of,
    reveal_accepted,
    reveal_verdicts,
    score,
)
from ..mechanisms.vcg import VCGAllocation, VCGResult
from .bidding import auction_bids, bidding_groups, bids_ahead
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


def run_simulation(
    simulator: PhantomSimulator, baseline_price: float, baseline_quantity: float
) -> SimulationResult:
    """Simulate one auction with per-bid objects (token B per A, token A).

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` for a baseline price
    or quantity that is not finite and positive.
    """
    env = simulator.environment(baseline_price, baseline_quantity)
    return simulator._ahead.next_result(env, simulator.strategies, simulator.streams())


#: The most auctions ``run_simulation`` works out ahead, up to the engine, in one go.
AHEAD = 64


class _AuctionsAhead:
    """``run_simulation``'s next auctions, worked out up to the engine several at a time
    (:func:`_standing`: numpy pays per call, and 200 bidders make many small calls),
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
        self._standing: _Standing | None = None
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
    ) -> _Standing:
        if self._standing is not None:  # the last lot was used up
            self._size = min(2 * self._size, AHEAD)
        k = self._size if bids_ahead(env, strategies) else 1
        self._env, self._strategies = env, list(strategies)
        self._states = _batch_states(env, strategies)
        if k > 1:  # where the market and phantom streams stood, to give back the unused
            self._marks = (streams.market.bit_generator.state, streams.phantom.bit_generator.state)
        self._draws = draw_exogenous_each(env, streams, k)
        self._standing = _standing(env, strategies, streams, self._draws, 0, k)
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


#: The synthetic clock's epoch: every simulated auction opens at this instant.
SIMULATED_OPEN = datetime(2000, 1, 1, tzinfo=UTC)
_SALT = bytes(32)  # commitments need a salt; a simulated bidder has nothing to hide
_PAIR = (0, 1)
_BIDDER_IDS: list[str] = []


def _bidder_ids(n: int) -> list[str]:
    """``real_0 .. real_{n-1}``, the real bidders' ids (made once)."""
    while len(_BIDDER_IDS) < n:
        _BIDDER_IDS.append(f"real_{len(_BIDDER_IDS)}")
    return _BIDDER_IDS


def _run_engine(
    env: AuctionEnvironment,
    arrays: _EnvironmentArrays,
    a: int,
    ids: list[str],
    columns: tuple[list[float], list[float], list[float], list[int]],
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
    prices: list[float],
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
                values.append(prices[j] * units)
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
        value = np.asarray([*prices, *phantom_prices], dtype=np.float64) * units
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


class _EnvironmentArrays(NamedTuple):
    """What every auction of an environment reuses: the convergence path's time grid (ms,
    read-only), each bidder's index in ``env.label_groups``, and the engine's order
    (immutable) and deadline on the synthetic clock."""

    time_grid_ms: NDArray[np.float64]
    #: The grid between -inf and +inf: ``padded[i + 1]`` is ``grid[i]``.
    padded_grid_ms: NDArray[np.float64]
    label_of: NDArray[np.intp]
    request: SettlementRequest
    deadline: datetime


_arrays_seen: dict[int, tuple[AuctionEnvironment, _EnvironmentArrays]] = {}


def _arrays_of(env: AuctionEnvironment) -> _EnvironmentArrays:
    seen = _arrays_seen.get(id(env))
    if seen is not None and seen[0] is env:
        return seen[1]
    grid = env.time_grid_ms
    grid.setflags(write=False)  # shared by every result's trace
    label_of = np.zeros(env.num_bidders, dtype=np.intp)
    for k, (_, members) in enumerate(env.label_groups):
        label_of[list(members)] = k
    if len(_arrays_seen) >= 16:
        _arrays_seen.clear()
    request = SettlementRequest(*_PAIR, env.baseline_quantity)
    deadline = SIMULATED_OPEN + timedelta(milliseconds=env.duration_ms)
    padded = np.concatenate([[-np.inf], grid, [np.inf]])
    arrays = _arrays_seen[id(env)] = (
        env,
        _EnvironmentArrays(grid, padded, label_of, request, deadline),
    )
    return arrays[1]


def _at(a: FloatArray, index: IntArray) -> FloatArray:
    """``a.take(index)``, but a number broadcast over ``a`` (a strategy's one volume or
    fee for every bid) stays one number broadcast: no copy of it to take from, and the
    rule book judges it once (:func:`~phantom_auction.mechanisms.rules.reveal_accepted`)."""
    if a.size and not any(a.strides):
        return np.broadcast_to(a.reshape(-1)[0], index.shape)
    return a.take(index)


@lru_cache(maxsize=64)
def _auction_of_slot(shape: tuple[int, int], k: int) -> IntArray:
    """The auction of each slot of a group's rows (row ``b * k + j``: auction ``j``), flat:
    one take instead of a division and a remainder for every bid."""
    rows, slots = shape
    auction: IntArray = np.repeat(np.tile(np.arange(k), rows // k), slots)
    auction.flags.writeable = False  # shared by every call with this shape
    return auction


def _first_point_at_or_after(arrays: _EnvironmentArrays, times_ms: FloatArray) -> IntArray:
    """``np.searchsorted(grid, times_ms)`` for times in the window (>= 0), by arithmetic
    on the evenly spaced grid then one check each way (a third of its cost on 20,000
    unsorted times): the first grid index whose time is at or after each time."""
    grid, padded = arrays.time_grid_ms, arrays.padded_grid_ms
    if grid.size < 2 or not grid[1] > 0.0:  # (no steps to divide by)
        found: IntArray = np.searchsorted(grid, times_ms)
        return found
    guess = np.ceil(times_ms * (1.0 / grid[1]))
    np.clip(guess, 0.0, grid.size, out=guess)
    at: IntArray = guess.astype(np.intp)
    at += padded.take(at + 1) < times_ms  # grid[at] < t: one further
    at -= padded.take(at) >= times_ms  # grid[at - 1] >= t: one back
    return at


def _entropy_share(amounts: Sequence[float], bidders: int) -> float:
    """Normalised Shannon entropy of positive ``amounts`` over ``bidders`` (0 if <= 1)."""
    total = sum(amounts)
    if bidders <= 1 or total <= 0.0:
        return 0.0
    h = -sum(a / total * math.log(a / total) for a in amounts if a > 0.0)
    return h / math.log(bidders)


class _Standing(NamedTuple):
    """What the object path works out for ``k`` consecutive auctions before the engine
    runs (:func:`_standing`), and what of their metrics does not depend on the engine.
    Per auction ``j``: its committed bids are entries ``starts[j]:starts[j + 1]`` of the
    flat lists, in commit order (arrival order, ties by bidder index)."""

    first: int  # the first auction's index in the draws
    values: FloatArray  # (k, bidders) bps
    value_lists: list[list[float]]
    starts: list[int]
    real_order: list[int]  # the committed bidders
    prices: list[float]
    improvements: list[float]
    quantities: list[float]
    fees: list[float]
    times: list[float]
    arrivals_us: list[int]
    #: Per auction: its phantoms' slots, prices, volumes and fees.
    phantoms: list[tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]]
    has: NDArray[np.bool_]  # (k, bidders): a bidder has a standing bid
    submitted: list[int]
    refused: list[list[int]]  # per auction, counts by REASON_CODES
    best_value: list[float]
    competitive: list[float]
    shaded_sum: list[float]
    valued_sum: list[float]
    shaded_by_label: list[list[float]]
    valued_by_label: list[list[float]]
    convergence: list[float]
    paths: FloatArray  # (k, grid points)


def _standing(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    draws: ExogenousDraws,
    first: int,
    k: int,
) -> _Standing:
    """Auctions ``first .. first + k - 1`` of ``draws`` up to the engine: every bid, judged
    by the rule book (arrival before the deadline, then the reveal), and each bidder's
    standing bid (the one it commits: its best accepted score, earliest on ties). ``k`` >
    1 only when :func:`~.bidding.bids_ahead` (one call for all: numpy pays per call)."""
    bq, rules = env.baseline_quantity, env.rules
    values = draws.values_bps[first : first + k]
    n = values.shape[1]
    reasons = len(REASON_CODES)
    # Per auction and bidder: its standing bid (improvement, time, price, volume, fee).
    standing = np.zeros((5, k, n))
    has = np.zeros((k, n), dtype=bool)
    submitted = np.zeros(k, dtype=np.intp)
    refused_flat = np.zeros(k * reasons, dtype=np.intp)
    # The accepted bids' auctions, times and improvements (for the convergence paths).
    kept_in: list[IntArray] = [np.zeros(0, dtype=np.intp)]
    kept_time: list[FloatArray] = [np.zeros(0)]
    kept_imp: list[FloatArray] = [np.zeros(0)]
    # Group by group (each padded to its own widest, rows bidder by bidder then auction):
    # every bid judged by the rule book where it is, then each bidder's standing bid.
    for group in auction_bids(env, strategies, streams, values):
        imp, times, fees, present = (
            group.improvement_bps,
            group.timestamp_ms,
            group.priority_fee,
            group.present,
        )
        qty = np.broadcast_to(bq, imp.shape) if env.textbook else group.quantity
        slots = present.shape[1]
        sent = np.flatnonzero(present)
        judged = (imp.take(sent), _at(qty, sent), _at(fees, sent), times.take(sent))
        accepted = reveal_accepted(env.limits, *judged, env.deadline_us)
        kept = sent[accepted]
        sent_in = _auction_of_slot(present.shape, k).take(sent)
        submitted += np.bincount(sent_in, minlength=k)
        # The reasons of the refused (a tenth of the bids at 200 bidders) alone.
        out = np.flatnonzero(~accepted)
        imp_out, qty_out, fee_out, time_out = (_at(x, out) for x in judged)
        _, codes = reveal_verdicts(env.limits, imp_out, qty_out, fee_out, time_out, env.deadline_us)
        refused_flat += np.bincount(sent_in.take(out) * reasons + codes, minlength=k * reasons)
        valid = np.zeros(present.shape, dtype=bool)
        valid.reshape(-1)[kept] = True
        kept_in.append(sent_in[accepted])
        kept_time.append(times.take(kept))
        kept_imp.append(imp.take(kept))
        # Its best accepted score, earliest on ties.
        if rules.price_weight == 1.0 and rules.fee_weight == 0.0:
            scores = np.where(valid, imp, -np.inf)  # the score is the improvement, to the bit
        else:
            with np.errstate(invalid="ignore"):
                scores = np.where(valid, score(rules, imp, fee_bps(fees, bq)), -np.inf)
        if bool((times[:, 1:] >= times[:, :-1]).all()):
            # Slots in time order (as strategies send them; padding last): the first best
            # is the earliest.
            pick = np.argmax(scores, axis=1)
        else:
            best = scores.max(axis=1)
            pick = np.argmin(np.where(valid & (scores == best[:, None]), times, np.inf), axis=1)
        flat = pick + np.arange(0, pick.shape[0] * slots, slots)
        m = group.bidders.shape[0]
        for whole, part in zip(standing, (imp, times, group.price, qty, fees), strict=True):
            whole[:, group.bidders] = _at(part, flat).reshape(m, k).T
        has[:, group.bidders] = valid.any(axis=1).reshape(m, k).T
    s_imp, s_time, s_price, s_qty, s_fee = standing
    refused = refused_flat.reshape(k, reasons)

    # Commit order = arrival order (ties: bidder index), auction after auction: a stable
    # sort of each auction's standing times, those with none last.
    counts = has.sum(axis=1)
    by_time = np.argsort(np.where(has, s_time, np.inf), axis=1, kind="stable")
    bidder = by_time[np.arange(has.shape[1]) < counts[:, None]]
    committed = bidder + np.repeat(np.arange(k) * n, counts)  # flat [auction, bidder]
    starts = [0, *np.cumsum(counts).tolist()]
    s_times = s_time.take(committed)
    ph = draws.phantoms
    phantom_at, phantom_slot = np.nonzero(ph.present[first : first + k])
    phantom_at += first
    phantom_starts = np.searchsorted(phantom_at, np.arange(first, first + k + 1)).tolist()
    slot = phantom_slot.tolist()
    price = ph.price[phantom_at, phantom_slot].tolist()
    volume = ph.volume[phantom_at, phantom_slot].tolist()
    fee = ph.priority_fee[phantom_at, phantom_slot].tolist()
    phantoms = [
        (tuple(slot[lo:hi]), tuple(price[lo:hi]), tuple(volume[lo:hi]), tuple(fee[lo:hi]))
        for lo, hi in pairwise(phantom_starts)
    ]

    # The metrics that do not depend on the engine, against the modelled values.
    if n >= 2:  # competitive price = 2nd-highest value (as kernels.py)
        second = np.partition(values, n - 2, axis=1)[:, n - 2].tolist()
        competitive = [max(c, 0.0) for c in second]
    else:
        competitive = [0.0] * k
    shading = has & (values > 0.0)
    shaded = np.where(shading, values - s_imp, 0.0)
    valued = np.where(shading, values, 0.0)
    arrays = _arrays_of(env)
    labels = len(env.label_groups)
    label_in = (arrays.label_of + (np.arange(k) * labels)[:, None]).reshape(-1)
    by_label = [
        np.bincount(label_in, weights=w.reshape(-1), minlength=k * labels)
        .reshape(k, labels)
        .astype(np.float64, copy=False)  # (weighted: floats already; for the type checker)
        for w in (shaded, valued)
    ]
    standing_imp = np.where(has, s_imp, -np.inf)
    top = standing_imp.max(axis=1, initial=-np.inf)
    first_top = np.where(has & (standing_imp == top[:, None]), s_time, np.inf).min(
        axis=1, initial=np.inf
    )
    convergence = np.where(counts > 0, first_top, np.nan)
    # Best standing real improvement at each grid time (0 = the baseline before any bid).
    # A bid counts from the first grid time at or after its arrival.
    grid = arrays.time_grid_ms
    points = grid.size + 1  # the last: after the grid
    best_from = np.zeros((k, points))
    times_kept = np.concatenate(kept_time)
    at_point = _first_point_at_or_after(arrays, times_kept)
    at_point += np.concatenate(kept_in) * points
    np.maximum.at(best_from.reshape(-1), at_point, np.concatenate(kept_imp))
    paths = np.maximum.accumulate(best_from[:, :-1], axis=1)
    return _Standing(
        first=first,
        values=values,
        value_lists=values.tolist(),
        starts=starts,
        real_order=bidder.tolist(),
        prices=s_price.take(committed).tolist(),
        improvements=s_imp.take(committed).tolist(),
        quantities=s_qty.take(committed).tolist(),
        fees=s_fee.take(committed).tolist(),
        times=s_times.tolist(),
        arrivals_us=np.rint(s_times * 1000.0).astype(np.int64).tolist(),  # to_us()
        phantoms=phantoms,
        has=has,
        submitted=submitted.tolist(),
        refused=refused.tolist(),
        best_value=values.max(axis=1, initial=-np.inf).tolist(),
        competitive=competitive,
        shaded_sum=shaded.sum(axis=1).tolist(),
        valued_sum=valued.sum(axis=1).tolist(),
        shaded_by_label=by_label[0].tolist(),
        valued_by_label=by_label[1].tolist(),
        convergence=convergence.tolist(),
        paths=paths,
    )


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
    standing = _standing(env, strategies, streams, draws, a, 1)
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
        standing = _standing(env, strategies, streams, draws, a, k)
        for j in range(k):
            yield _cleared(env, strategies, draws, standing, j, started)
            started = time.perf_counter()
        a += k


def _cleared(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    draws: ExogenousDraws,
    standing: _Standing,
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
    price_list, imp_list = standing.prices[lo:hi], standing.improvements[lo:hi]
    qty_list, fee_list = standing.quantities[lo:hi], standing.fees[lo:hi]
    times_list = standing.times[lo:hi]
    columns = standing.phantoms[j]
    arrays = _arrays_of(env)
    result = _run_engine(
        env, arrays, a, ids, (price_list, qty_list, fee_list, standing.arrivals_us[lo:hi]), columns
    )
    labels = env.labels

    def real_bid(i: int) -> SimulatedBid:
        """The ``i``-th real bid in arrival order as a record."""
        bidder = real_order[i]
        return SimulatedBid(
            ids[i], labels[bidder], price_list[i], imp_list[i], qty_list[i], times_list[i],
            fee_list[i], False, values[bidder],
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
        _vcg_view(ids, price_list, columns[0], columns[1], alloc, result)
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
