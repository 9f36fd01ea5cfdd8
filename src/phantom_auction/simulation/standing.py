"""The object path up to the engine, for one auction or a lot of consecutive ones.

:func:`standing_bids` makes every real bid of ``k`` consecutive auctions (strategy group
by strategy group, :func:`~.bidding.auction_bids`), judges each by the rule book
(arrival before the collection deadline, then the reveal verdict), keeps each bidder's
standing bid (its best accepted score, earliest on ties: the one it commits; the engine
holds one sealed bid per bidder), puts them in commit order, and works out the metrics
and convergence paths that do not depend on the engine. The simulator
(:mod:`.simulator`) then runs each auction through the engine when its call comes.
Working out several auctions at once gives the numbers of one at a time: numpy pays per
call, and 200 bidders make many small calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..engine.bids import SettlementRequest
from ..mechanisms.rules import REASON_CODES, fee_bps, reveal_accepted, reveal_verdicts, score
from .bidding import auction_bids
from .environment import AuctionEnvironment, ExogenousDraws, Streams

__all__ = [
    "SIMULATED_OPEN",
    "EnvironmentArrays",
    "Standing",
    "arrays_of",
    "first_point_at_or_after",
    "standing_bids",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: The synthetic clock's epoch: every simulated auction opens at this instant.
SIMULATED_OPEN = datetime(2000, 1, 1, tzinfo=UTC)
_PAIR = (0, 1)


class EnvironmentArrays(NamedTuple):
    """What every auction of an environment reuses: the convergence path's time grid (ms,
    read-only), each bidder's index in ``env.label_groups``, and the engine's order
    (immutable) and deadline on the synthetic clock."""

    time_grid_ms: NDArray[np.float64]
    #: The grid between -inf and +inf: ``padded[i + 1]`` is ``grid[i]``.
    padded_grid_ms: NDArray[np.float64]
    label_of: NDArray[np.intp]
    request: SettlementRequest
    deadline: datetime


_arrays_seen: dict[int, tuple[AuctionEnvironment, EnvironmentArrays]] = {}


def arrays_of(env: AuctionEnvironment) -> EnvironmentArrays:
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
        EnvironmentArrays(grid, padded, label_of, request, deadline),
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


def first_point_at_or_after(arrays: EnvironmentArrays, times_ms: FloatArray) -> IntArray:
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


class Standing(NamedTuple):
    """What the object path works out for ``k`` consecutive auctions before the engine
    runs (:func:`_standing`), and what of their metrics does not depend on the engine.
    Per auction ``j``: its committed bids are entries ``starts[j]:starts[j + 1]`` of the
    flat lists, in commit order (arrival order, ties by bidder index)."""

    first: int  # the first auction's index in the draws
    values: FloatArray  # (k, bidders) bps
    value_lists: list[list[float]]
    starts: list[int]
    real_order: list[int]  # the committed bidders
    # The committed bids' columns as arrays: the engine takes each auction's slice as it
    # is (no list to check and copy back into an array), the records read a few entries.
    prices: FloatArray
    improvements: FloatArray
    quantities: FloatArray
    fees: FloatArray
    times: FloatArray
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


def standing_bids(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    draws: ExogenousDraws,
    first: int,
    k: int,
) -> Standing:
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
    arrays = arrays_of(env)
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
    at_point = first_point_at_or_after(arrays, times_kept)
    at_point += np.concatenate(kept_in) * points
    np.maximum.at(best_from.reshape(-1), at_point, np.concatenate(kept_imp))
    paths = np.maximum.accumulate(best_from[:, :-1], axis=1)
    return Standing(
        first=first,
        values=values,
        value_lists=values.tolist(),
        starts=starts,
        real_order=bidder.tolist(),
        prices=s_price.take(committed),
        improvements=s_imp.take(committed),
        quantities=s_qty.take(committed),
        fees=s_fee.take(committed),
        times=s_times,
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
