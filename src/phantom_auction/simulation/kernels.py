"""The fast path: whole chunks of auctions generated, cleared and measured on arrays.

One concept past 600 lines: its stages (draws, bids, standing bids, clearing, metrics,
feedback) pass the chunk's arrays from one to the next and are pinned together against
the object path; the narrow column reductions at the top serve only them.

Same model, same random streams and same rules as the object path
(:func:`phantom_auction.simulation.simulator.simulate_auction`), which a test pins:

1. market and phantom draws for the chunk (:func:`draw_exogenous`'s numbers; the phantom
   bids made block by block, as the blocks are simulated);
2. each bidder's bids for every auction (the strategy's batch form, or its scalar form
   once per auction; a NaN, an infinite value or a negative quantity raises, see
   :func:`_bids`), judged by the rule book's array twin
   (:func:`~phantom_auction.mechanisms.rules.reveal_verdicts`: arrival before the
   collection deadline, then the engine's reveal checks; the refused are counted in
   ``refused_bids``); the standing bid is the best accepted score (earliest on ties);
3. clearing as the engine clears (:mod:`phantom_auction.mechanisms.rules`): real
   standing bids in arrival order, then phantoms in slot order (the engine's tie order),
   cleared on their scores by :func:`~phantom_auction.mechanisms.batch.clear_batch`
   against the reserve (:func:`~phantom_auction.mechanisms.rules.reserve_score`), each
   real fill priced by
   :func:`~phantom_auction.mechanisms.rules.fill_improvements`; under the ``floor``
   policy phantoms are left out and the best phantom score floors every fill; an
   auction with fewer than ``min_participants`` bids is not cleared (the CFMM fills it);
4. metrics against the modelled values (see :mod:`phantom_auction.simulation.results`).

Learning bidders (``enable_learning``) make auctions depend on earlier ones; the chunk
is then cleared in blocks over which every learner's policy stays fixed
(``auctions_until_refresh``), feeding each block's outcomes back in auction order.

One module for the fast path's four steps over one chunk: they share its arrays and
block buffers, and a test pins the whole to the object path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.phantoms import PhantomArrays
from ..mechanisms.batch import clear_batch
from ..mechanisms.rules import (
    AuctionRules,
    RevealLimits,
    fee_bps,
    fill_improvements,
    improvement_bps,
    price_of,
    reserve_score,
    reveal_accepted,
    score,
)
from .environment import (
    WINNER_NONE,
    WINNER_PHANTOM,
    AuctionEnvironment,
    ExogenousDraws,
    Streams,
    phantom_best,
    phantom_block,
    phantom_counts,
)
from .strategies.base import (
    BPS,
    AuctionFeedback,
    BidBatch,
    BidderStrategy,
    FeedbackBatch,
    call_generate_bids,
    check_batch,
    check_bids,
)

__all__ = ["ChunkColumns", "PathSample", "clear_arrays", "simulate_chunk_arrays", "valid_bids"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
#: One row per auction; see ``results.COLUMNS`` for the names.
ChunkColumns = dict[str, NDArray[Any]]


#: Widths up to which a reduction across a row (over bidders or phantom slots) is done
#: column by column: numpy reduces a short last axis one row at a time, ~10x slower
#: than an elementwise pass over the rows; a loop over a few columns is a few passes.
NARROW = 16


def _sum_cols(a: NDArray[Any]) -> FloatArray:
    """``a.sum(axis=1)`` as floats; narrow arrays added column by column, left to right
    (the object path's order: Python's ``sum`` over the same entries)."""
    n = a.shape[1]
    if n > NARROW or n == 0:
        out: FloatArray = a.sum(axis=1, dtype=np.float64)
        return out
    total = a[:, 0].astype(np.float64)
    for k in range(1, n):
        total += a[:, k]
    return total


def _count_cols(mask: BoolArray) -> IntArray:
    """``np.count_nonzero(mask, axis=1)`` (narrow masks column by column)."""
    n = mask.shape[1]
    if n > NARROW or n == 0:
        counted: IntArray = np.count_nonzero(mask, axis=1).astype(np.int64)
        return counted
    count = mask[:, 0].astype(np.int64)
    for k in range(1, n):
        count += mask[:, k]
    return count


def _count_rows(mask: BoolArray) -> NDArray[Any]:
    """Each row's count of True entries, as :func:`_count_cols`, for a mask of under
    256 columns (the counts are bytes; one column: the mask itself), laid out again
    column by column ((R, A), contiguous) and summed down that: half the cost of
    :func:`_count_cols` at 9 columns, a third at 17 (8,192 rows: 27 / 57 us, 53 / 179 us;
    a bool column of an (A, R) array is read R bytes apart, and cast one by one)."""
    n = mask.shape[1]
    if n == 1:
        return mask[:, 0]
    if n > 255:  # (a count might not fit in a byte)
        counted: NDArray[Any] = np.count_nonzero(mask, axis=1)
        return counted
    by_column = np.ascontiguousarray(mask.view(np.uint8).T)
    total: NDArray[Any] = by_column.sum(axis=0, dtype=np.uint8)
    return total


def _max_cols(a: FloatArray, initial: float = -np.inf) -> FloatArray:
    """``a.max(axis=1, initial=initial)`` (narrow arrays column by column)."""
    b, n = a.shape
    if n > NARROW:
        out: FloatArray = a.max(axis=1, initial=initial)
        return out
    best = np.full(b, initial)
    for k in range(n):
        np.maximum(best, a[:, k], out=best)
    return best


def _argmax_cols(a: FloatArray) -> IntArray:
    """``np.argmax(a, axis=1)`` (the first largest) of an array without NaN (narrow arrays
    column by column)."""
    b, n = a.shape
    if n > NARROW or n == 0:
        found: IntArray = np.argmax(a, axis=1)
        return found
    best = a[:, 0].copy()
    pick = np.zeros(b, dtype=np.int64)
    for k in range(1, n):
        column = a[:, k]
        np.copyto(pick, k, where=column > best)
        np.maximum(best, column, out=best)
    return pick


def _top_two_cols(a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each row's largest entry and the largest once that one is set aside (ties count
    twice), of an array with at least two columns and without NaN."""
    b, n = a.shape
    if n > NARROW:
        first = np.argmax(a, axis=1)
        rest = a.copy()
        rest.reshape(-1)[first + np.arange(0, b * n, n)] = -np.inf
        return a.max(axis=1), rest.max(axis=1)
    top = np.maximum(a[:, 0], a[:, 1])
    second = np.minimum(a[:, 0], a[:, 1])
    low = np.empty(b)
    for k in range(2, n):
        column = a[:, k]
        np.maximum(second, np.minimum(top, column, out=low), out=second)
        np.maximum(top, column, out=top)
    return top, second


def _arrival_order(when: FloatArray) -> IntArray:
    """``np.argsort(when, axis=1, kind="stable")`` (ties: the lower column first). Narrow
    rows are ranked by pairwise comparisons, a pass each, rather than sorted one by one."""
    b, n = when.shape
    if n > 8 or n < 2:
        return np.argsort(when, axis=1, kind="stable")
    # Column j's rank: the columns before it, plus those to its left arriving later
    # (a tie keeps the left one first), minus those to its right arriving earlier. Laid
    # out (column, auction), so that each pass runs over contiguous memory; each rank is
    # kept as a flat index into (b, n), rank + the row's start.
    when_t = np.ascontiguousarray(when.T)
    at = np.empty((n, b), dtype=np.int64)
    at[:] = np.arange(0, b * n, n)
    for j in range(1, n):
        at[j] += j
    later = np.empty(b, dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            np.less(when_t[j], when_t[i], out=later)  # j (right of i) arrives strictly earlier
            at[i] += later
            at[j] -= later
    order = np.empty((b, n), dtype=np.int64)
    flat = order.reshape(-1)
    for j in range(n):
        flat[at[j]] = j
    return order


@dataclass(frozen=True, slots=True)
class PathSample:
    """Convergence paths of the first auctions of a chunk: best standing bps over time."""

    time_ms: FloatArray
    paths: FloatArray


def _scores(rules: AuctionRules, imp: FloatArray, fee: FloatArray, amount: float) -> FloatArray:
    """The rule book's :func:`score` of bids with finite fees (token units, orders of
    ``amount``); the improvements themselves under the default weights (``1 * imp + 0 *
    fee_bps`` is ``imp`` to the bit when the fee is finite)."""
    if rules.price_weight == 1.0 and rules.fee_weight == 0.0:
        return imp
    with np.errstate(invalid="ignore"):
        return score(rules, imp, fee_bps(fee, amount))


def clear_arrays(
    env: AuctionEnvironment,
    real_imp: FloatArray,
    real_qty: FloatArray,
    real_fee: FloatArray | None,
    participants: IntArray,
    phantoms: PhantomArrays | None,
    rows: slice,
    phantom_floor: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Clear auctions ``rows`` as the engine does, real bids given in arrival order (A, N).

    A real bidder without a standing bid holds improvement, volume and fee 0 (a zero
    bid, which clear_batch never fills: ineligible by its volume, the same as masked
    out, to the bit); ``real_fee`` None means every fee is 0. ``participants``: bids,
    real and phantom, of each auction. Returns the real bids' allocations and fill
    improvements (bps over the baseline, per unit), and every column's allocation and
    score, reals then phantoms (A, N + W): ``W`` phantom slots, up to the last that
    holds a bid in these rows (the sampler fills slots from the first), so that the
    clearing does not sort slots that are empty in every auction. Under the ``floor``
    policy the phantoms, which never take volume, are left out of those (W = 0): a
    winner is found among the reals alone. There ``phantom_floor``, each auction's best
    phantom score (at least 0; :func:`~.environment.phantom_best`), may stand for
    ``phantoms`` (then None).
    """
    rules, bp, bq = env.rules, env.baseline_price, env.baseline_quantity
    b, n = real_imp.shape
    fee: FloatArray = np.broadcast_to(0.0, real_imp.shape) if real_fee is None else real_fee
    cleared = participants >= rules.min_participants
    floor: FloatArray | float = 0.0
    if rules.phantom_policy == "floor" and phantom_floor is not None:
        floor = phantom_floor[:, None]
    else:
        assert phantoms is not None
        present = phantoms.present[rows]
        used = np.flatnonzero(present.any(axis=0))
        w = int(used[-1]) + 1 if used.size else 0
        present = present[:, :w]
        ph_imp = improvement_bps(phantoms.price[rows, :w], bp)
        ph_fee = phantoms.priority_fee[rows, :w]
        ph_score = np.where(present, _scores(rules, ph_imp, ph_fee, bq), 0.0)
        if rules.phantom_policy == "floor":
            floor = _max_cols(ph_score, 0.0)[:, None]
    # Scores and volumes laid side by side, reals then phantoms (the engine's tie order).
    if rules.phantom_policy == "floor":
        # Phantoms never take volume (and a bid without volume changes no price: they
        # are left out of the clearing); the best one's score floors every real fill.
        values = np.asarray(_scores(rules, real_imp, fee, bq), dtype=np.float64)
        qty = real_qty
        if not cleared.all():
            qty = np.where(cleared[:, None], real_qty, 0.0)
    else:
        assert phantoms is not None
        values = np.empty((b, n + w))
        qty = np.empty((b, n + w))
        values[:, :n] = _scores(rules, real_imp, fee, bq)
        values[:, n:] = ph_score
        qty[:, :n] = real_qty
        np.copyto(qty[:, n:], np.where(present, phantoms.volume[rows, :w], 0.0))
        if not cleared.all():
            qty[~cleared] = 0.0
    if values.shape[1]:
        cleared_batch = clear_batch(
            values, qty, supply=bq, reserve=reserve_score(rules), mechanism=rules.mechanism
        )
        alloc, pay = cleared_batch.allocation, cleared_batch.payment
    else:
        alloc = pay = np.zeros(values.shape)
    real_alloc = alloc[:, :n]
    # 0 bps of fee when fee_weight is 0: the same bits as a finite fee's (x - 0 * f = x).
    own_fee_bps: FloatArray | float = 0.0 if rules.fee_weight == 0.0 else fee_bps(fee, bq)
    paid = fill_improvements(rules, pay[:, :n], real_alloc, real_imp, own_fee_bps, floor)
    return real_alloc, paid, alloc, values


def _phantom_rows(phantoms: PhantomArrays, rows: slice) -> PhantomArrays:
    """The phantom bids of auctions ``rows``."""
    return PhantomArrays(
        phantoms.present[rows],
        phantoms.improvement_bps[rows],
        phantoms.price[rows],
        phantoms.volume[rows],
        phantoms.priority_fee[rows],
    )


@dataclass(slots=True)
class _Standing:
    """Each real bidder's standing bid over a block of auctions (B, N); ``refused``:
    the real bids the rule book refused in each auction (B,); ``tags``: over the chunk
    (A,), per bidder."""

    imp: FloatArray
    qty: FloatArray
    fee: FloatArray
    time: FloatArray
    has: BoolArray
    refused: IntArray
    tags: list[IntArray | None]


def _padded_scalar_bids(
    strategy: Any,
    env: AuctionEnvironment,
    values_bps: FloatArray,
    rng: np.random.Generator,
    bidder: int,
) -> BidBatch:
    """A scalar-only strategy (real bidder ``bidder``) called once per auction, its bids
    checked (:func:`~.strategies.base.invalid_bid`) and padded into arrays."""
    bp = env.baseline_price
    rows = []
    for v in values_bps.tolist():
        bids = call_generate_bids(
            strategy,
            bp,
            env.baseline_quantity,
            env.market,
            rng,
            price_of(v, bp),
            env.view,
        )
        check_bids(bids, env.labels, bidder)
        rows.append(bids)
    width = max((len(b) for b in rows), default=0) or 1
    n = len(rows)
    imp = np.zeros((n, width))
    qty = np.zeros((n, width))
    time = np.zeros((n, width))
    fee = np.zeros((n, width))
    present = np.zeros((n, width), dtype=bool)
    for a, bids in enumerate(rows):
        for k, bid in enumerate(bids):
            imp[a, k] = improvement_bps(bid.price, bp)
            qty[a, k] = bid.quantity
            time[a, k] = bid.timestamp
            fee[a, k] = bid.priority_fee
            present[a, k] = True
    return BidBatch(imp, qty, time, fee, present)


def _bids(
    strategy: Any,
    env: AuctionEnvironment,
    values_bps: FloatArray,
    rng: np.random.Generator,
    bidder: int,
) -> BidBatch:
    """Real bidder ``bidder``'s bids in auctions valued ``values_bps``: the one place of
    the fast path where a strategy's bids come in, batch or scalar form. A bid with a
    field no strategy may send (:func:`~.strategies.base.invalid_bid`: NaN, infinite, a
    negative quantity) raises :class:`~phantom_auction.errors.InvalidBidParameters`
    here rather than be refused by the rule book without a trace."""
    if isinstance(strategy, BidderStrategy):
        batch = strategy.generate_batch(
            env.view,
            env.market,
            env.baseline_price,
            env.baseline_quantity,
            values_bps,
            rng,
        )
        if batch is not None:
            check_batch(batch, env.labels, (bidder,), batch.present.shape[0])
            return batch
    return _padded_scalar_bids(strategy, env, values_bps, rng, bidder)


def valid_bids(
    batch: BidBatch, env: AuctionEnvironment, limits: RevealLimits | None = None
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Which slots the engine would accept (the rule book's verdict), their improvements
    (bps) and volumes (``limits``: ``env.limits``, when already at hand)."""
    qty = (
        np.broadcast_to(env.baseline_quantity, batch.improvement_bps.shape)
        if env.textbook
        else batch.quantity
    )
    # A volume or fee that is one per row, spread over the slots, is judged once per row
    # ((A, 1): the verdict broadcasts over the slots, the same for each).
    accepted = reveal_accepted(
        env.limits if limits is None else limits,
        batch.improvement_bps,
        _per_row(qty),
        _per_row(batch.priority_fee),
        batch.timestamp_ms,
        env.deadline_us,
    )
    accepted &= batch.present
    return accepted, batch.improvement_bps, qty


def _per_row(a: NDArray[Any]) -> NDArray[Any]:
    """``a`` (A, R), as (A, 1) when every row is one value spread over the slots (a
    column stride of 0), else itself."""
    if a.ndim == 2 and a.shape[1] > 1 and a.strides[1] == 0 and a.strides[0] != 0:
        return a[:, :1]
    return a


def _column(a: NDArray[Any], flat: IntArray | None) -> NDArray[Any]:
    """Each row's picked entry (``flat``: flat indices of a C-contiguous (A, R) array)."""
    if flat is None or a.strides[1] == 0:
        return a[:, 0]  # one slot, or one value per row broadcast over the slots
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a.reshape(-1)[flat]


def _rows_in_order(when: FloatArray) -> bool:
    """Whether every row of ``when`` (A, R), R >= 2, is non-decreasing. A C-contiguous
    array is compared as one flat run (the pairs across rows set aside): one SIMD pass
    rather than one short row at a time."""
    if not when.flags.c_contiguous:
        return bool((when[:, 1:] >= when[:, :-1]).all())
    flat = when.reshape(-1)
    ordered = flat[1:] >= flat[:-1]
    ordered[when.shape[1] - 1 :: when.shape[1]] = True  # a row's last against the next's first
    return bool(ordered.all())


def _standing_of(
    batch: BidBatch, env: AuctionEnvironment, limits: RevealLimits
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]:
    """Standing bid per auction (best accepted score, earliest on ties) and the valid mask.

    An auction without one gets a zero bid (improvement, volume and fee 0) arriving at
    +inf: what :func:`clear_arrays` expects, and last in arrival order.
    """
    valid, imp, qty = valid_bids(batch, env, limits)
    rows, slots = imp.shape
    flat: IntArray | None = None
    if slots > 1:
        scores = _scores(env.rules, imp, batch.priority_fee, env.baseline_quantity)
        masked = np.where(valid, scores, -np.inf)
        when = batch.timestamp_ms
        if _rows_in_order(when):
            # Slots in time order (as strategies send them): the first best is the earliest.
            pick = np.argmax(masked, axis=1)
        else:
            best = masked.max(axis=1)
            candidates = valid & (masked == best[:, None])
            pick = np.argmin(np.where(candidates, when, np.inf), axis=1)
        flat = pick + np.arange(0, rows * slots, slots)
        # A valid score is finite: -inf marks an auction without an accepted bid.
        has = masked.reshape(-1)[flat] > -np.inf
    else:
        has = valid[:, 0].copy()
    return (
        np.where(has, _column(imp, flat), 0.0),
        np.where(has, _column(qty, flat), 0.0),
        np.where(has, _column(batch.priority_fee, flat), 0.0),
        np.where(has, _column(batch.timestamp_ms, flat), np.inf),
        has,
        valid,
        imp,
    )


@dataclass(frozen=True, slots=True)
class _Block:
    """What no bidder controls in a block of auctions: their true premiums and values,
    and their phantoms (their bids, or, under the ``floor`` policy, only how many bid
    and the best score: :func:`~.environment.phantom_best`)."""

    true_premium_bps: FloatArray
    values_bps: FloatArray
    num_phantom: IntArray
    phantoms: PhantomArrays | None = None
    phantom_floor: FloatArray | None = None


def _clear_and_measure(
    env: AuctionEnvironment,
    draws: _Block,
    rows: slice,
    st: _Standing,
) -> tuple[ChunkColumns, FloatArray, FloatArray]:
    """Columns of the auctions in ``rows``, and the real bidders' allocation and payment
    (``draws``: those auctions' draws)."""
    values = draws.values_bps
    r_imp, r_qty, r_time, has = st.imp[rows], st.qty[rows], st.time[rows], st.has[rows]
    b, n = values.shape
    q_total = env.baseline_quantity
    num_real = _count_cols(has)
    num_phantom = draws.num_phantom

    # Real bids in arrival order (the engine's commit order), then the phantoms. ``flat``
    # indexes the block's (b, n) standing arrays (contiguous rows) in that order; an
    # auction's bidders without a standing bid arrive at +inf, after the others.
    order = _arrival_order(r_time)
    starts = np.arange(b) * n
    flat = order + starts[:, None]

    def arrived(a: NDArray[Any]) -> NDArray[Any]:
        out: NDArray[Any] = a.reshape(-1)[flat]
        return out

    s_alloc, s_paid, alloc, scores = clear_arrays(
        env,
        arrived(r_imp),
        arrived(r_qty),
        arrived(st.fee[rows]) if env.rules.fee_weight != 0.0 else None,
        num_real + num_phantom,
        draws.phantoms,
        slice(None),
        draws.phantom_floor,
    )
    alloc_real = np.empty((b, n))
    pay_real = np.empty((b, n))
    alloc_real.reshape(-1)[flat] = s_alloc
    pay_real.reshape(-1)[flat] = s_alloc * s_paid

    # The winner: the best-ranked bid that received volume (first column on ties).
    ranked = np.where(alloc > 0.0, scores, -np.inf)
    width = ranked.shape[1]
    if width:
        top = _argmax_cols(ranked)
        any_alloc = ranked.reshape(-1)[top + np.arange(0, b * width, width)] > -np.inf
    else:
        top, any_alloc = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=bool)
    top_real = order.reshape(-1)[np.minimum(top, n - 1) + starts] if n else top
    winner = np.where(~any_alloc, WINNER_NONE, np.where(top >= n, WINNER_PHANTOM, top_real))

    bp = env.baseline_price
    improvement = _sum_cols(pay_real) / q_total
    clearing_price = price_of(improvement, bp)
    true_price = price_of(draws.true_premium_bps, bp)
    # The competitive price: the second-highest real value (what truthful competition for
    # the whole order pays), at least the baseline: the largest once the (first) largest
    # is set aside (ties count twice).
    if n >= 2:
        best_value, second = _top_two_cols(values)
    else:
        best_value = values[:, 0].copy() if n else np.full(b, -np.inf)
        second = np.zeros(b)
    competitive = np.maximum(second, 0.0)
    available = np.maximum(best_value, 0.0)
    has_surplus = available > 0.0
    safe = np.where(has_surplus, available, 1.0)
    welfare_bps = _sum_cols(values * alloc_real) / q_total
    # Shading of standing bids by bidders who value the order: sums, not ratios, so a
    # value near 0 cannot blow up the figure (bid_shading = shaded / valued).
    shaded_mask = has & (values > 0.0)
    shaded = np.where(shaded_mask, values - r_imp, 0.0)
    valued = np.where(shaded_mask, values, 0.0)
    shaded_sum, valued_sum = _sum_cols(shaded), _sum_cols(valued)
    safe_valued = np.where(valued_sum > 0.0, valued_sum, 1.0)
    best_bid = np.where(has, r_imp, -np.inf)
    best_imp = _max_cols(best_bid)
    # When the best standing real bid arrived (the earliest of equals); NaN without one.
    any_real = num_real > 0
    earliest = -_max_cols(np.where(has & (best_bid == best_imp[:, None]), -r_time, -np.inf))
    conv = np.where(any_real, earliest, np.nan)
    columns: ChunkColumns = {
        "improvement_bps": improvement,
        "mev_capture_rate": np.where(has_surplus, improvement / safe, np.nan),
        "price_discovery_efficiency": improvement - competitive,
        "bid_shading": np.where(valued_sum > 0.0, shaded_sum / safe_valued, np.nan),
        "phantom_won": winner == WINNER_PHANTOM,
        "winner_index": winner.astype(np.int32),
        "clearing_price": clearing_price,
        "baseline_price": np.full(b, bp),
        "true_price": true_price,
        "welfare": welfare_bps * q_total * bp / BPS,
        "welfare_improvement": np.where(has_surplus, welfare_bps / safe, np.nan),
        "best_bid_time_ms": conv,
        "num_real_bids": num_real.astype(np.int32),
        "num_phantom_bids": num_phantom.astype(np.int32),
        "refused_bids": st.refused[rows].astype(np.int32),
        "real_fill_fraction": _sum_cols(alloc_real) / q_total,
        "best_real_value_bps": best_value,
        "competitive_bps": competitive,
        "available_surplus_bps": available,
        "shaded_bps": shaded_sum,
        "valued_bps": valued_sum,
    }
    profit = (values * alloc_real - pay_real) / q_total
    for label, group in env.label_groups:
        if len(group) == 1:  # one bidder: its own columns (views; the results are new)
            i = group[0]
            mine_shaded, mine_valued = shaded[:, i], valued[:, i]
            columns[f"profit_bps:{label}"] = profit[:, i].copy()
        else:
            idx = list(group)
            mine_shaded, mine_valued = _sum_cols(shaded[:, idx]), _sum_cols(valued[:, idx])
            columns[f"profit_bps:{label}"] = _sum_cols(profit[:, idx])
        # valued is 0 or more, and 0 only where shaded is 0 too: 0/0 is the NaN due.
        with np.errstate(invalid="ignore"):
            columns[f"bid_shading:{label}"] = mine_shaded / mine_valued
    return columns, alloc_real, pay_real


def _feedback(
    env: AuctionEnvironment,
    values: FloatArray,
    has: BoolArray,
    alloc: FloatArray,
    pay: FloatArray,
    clearing_price: FloatArray,
    tag: IntArray | None,
) -> FeedbackBatch:
    per_unit = np.divide(pay, alloc, out=np.zeros_like(pay), where=alloc > 0.0)
    reward = (values * alloc - pay) / env.baseline_quantity
    return FeedbackBatch(has.copy(), alloc, per_unit, reward, clearing_price, tag)


def deliver_feedback(strategy: Any, feedback: FeedbackBatch) -> None:
    """Hand a block's outcomes to a learner (batch form, else one ``observe`` per auction)."""
    observe_batch = getattr(strategy, "observe_batch", None)
    if callable(observe_batch):
        observe_batch(feedback)
        return
    observe = getattr(strategy, "observe", None)
    if callable(observe):
        for i in range(feedback.participated.shape[0]):
            observe(
                AuctionFeedback(
                    bool(feedback.participated[i]),
                    float(feedback.allocation[i]),
                    float(feedback.payment_bps[i]),
                    float(feedback.reward_bps[i]),
                    float(feedback.clearing_price[i]),
                )
            )


def _path_sample(
    env: AuctionEnvironment, parts: Sequence[tuple[BoolArray, FloatArray, FloatArray]], rows: int
) -> PathSample:
    grid = env.time_grid_ms
    if not parts:
        return PathSample(grid, np.zeros((rows, grid.size)))
    valid = np.concatenate([p[0][:rows] for p in parts], axis=1)
    imp = np.concatenate([p[1][:rows] for p in parts], axis=1)
    time = np.concatenate([p[2][:rows] for p in parts], axis=1)
    arrived = valid[:, :, None] & (time[:, :, None] <= grid[None, None, :])
    paths = np.where(arrived, imp[:, :, None], 0.0).max(axis=1, initial=0.0)
    return PathSample(grid, np.maximum(paths, 0.0))


#: Rows simulated together: keeps a block's arrays in cache (results do not depend on it,
#: since every stream is consumed in auction order). Within a block, reductions over a
#: few bidders or phantom slots go column by column (:data:`NARROW`) and the built-in
#: strategies' running sums too (``strategies.base.cumsum_rows``): numpy reduces short
#: rows one at a time. Everything stays float64: every column is compared with the
#: object path's (and with the engine's clearing) to 1e-9, and the verdicts and ties the
#: engine makes on exact values would move with float32 rounding.
BLOCK_ROWS = 8192


def simulate_chunk_arrays(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    n_auctions: int,
    *,
    path_rows: int = 0,
    draws: ExogenousDraws | None = None,
    on_rows: Callable[[int], None] | None = None,
    out: ChunkColumns | None = None,
) -> tuple[ChunkColumns, PathSample | None]:
    """Simulate ``n_auctions`` auctions on arrays; learners' state advances in place.

    ``path_rows > 0`` also returns the convergence paths of the first ``path_rows``
    auctions. ``draws`` replaces the market and phantom draws (tests feed chosen ones).
    ``on_rows(n)`` is told each block's ``n`` auctions as it ends (progress). ``out``:
    arrays of ``n_auctions`` rows to write the columns into (each block's as it ends),
    with the names and dtypes this function returns (by default it allocates them).
    """
    # The market's draws for the whole chunk; the phantoms' counts too, their bids block
    # by block (the same numbers: see environment.draw_phantoms), so that a block's
    # phantom arrays are made while they are in cache.
    counts: IntArray | None = None
    if draws is None:
        counts = phantom_counts(env.phantom_model, streams.phantom, n_auctions)
    n = env.num_bidders
    limits = env.limits  # computed on each access

    def score_phantoms(imp: FloatArray, fee: FloatArray) -> FloatArray:
        return _scores(env.rules, imp, fee, env.baseline_quantity)

    # Each block's standing bids, in buffers of a block's size (reused: they stay in
    # cache from the bidders' pass to the clearing's).
    shape = (min(n_auctions, BLOCK_ROWS), n)
    buffers = _Standing(
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape, dtype=bool),
        np.zeros(shape[0], dtype=np.int64),
        [None] * n,
    )
    keep = min(path_rows, n_auctions)
    path_parts: list[list[tuple[BoolArray, FloatArray, FloatArray]]] = [[] for _ in range(n)]
    learners = [i for i in range(n) if env.learner_flags[i]]
    start = 0
    while start < n_auctions or out is None:
        size = min(n_auctions - start, BLOCK_ROWS)
        for i in learners:
            refresh = getattr(strategies[i], "auctions_until_refresh", None)
            size = min(size, int(refresh()) if callable(refresh) else 1)
        rows = slice(start, start + size)
        if draws is None:
            # The market's draws block by block: the same numbers as the chunk's at once.
            market = env.value_model.draw(streams.market, size)
            values_bps, premium_bps = market.values_bps, market.true_premium_bps
        else:
            values_bps, premium_bps = draws.values_bps[rows], draws.true_premium_bps[rows]
        here = slice(0, size)
        st = _Standing(
            buffers.imp[here],
            buffers.qty[here],
            buffers.fee[here],
            buffers.time[here],
            buffers.has[here],
            buffers.refused[here],
            buffers.tags,
        )
        st.refused[:] = 0
        if counts is not None and env.rules.phantom_policy == "floor":
            block = _Block(
                premium_bps,
                values_bps,
                counts[rows],
                phantom_floor=phantom_best(
                    env.phantom_model,
                    streams.phantom,
                    counts[rows],
                    env.baseline_price,
                    env.baseline_quantity,
                    score_phantoms,
                    monotone=env.rules.fee_weight == 0.0 and env.rules.price_weight > 0.0,
                ),
            )
        else:
            if counts is not None:
                phantoms = phantom_block(
                    env.phantom_model,
                    streams.phantom,
                    counts[rows],
                    env.baseline_price,
                    env.baseline_quantity,
                    improvements=False,
                )
            else:
                assert draws is not None
                phantoms = _phantom_rows(draws.phantoms, rows)
            block = _Block(premium_bps, values_bps, _count_cols(phantoms.present), phantoms)
        for i in range(n):
            batch = _bids(strategies[i], env, values_bps[:, i], streams.bidders[i], i)
            imp, qty, fee, when, has, valid, clipped = _standing_of(batch, env, limits)
            st.refused += _count_rows(batch.present ^ valid)  # sent, not accepted
            st.imp[:, i], st.qty[:, i], st.fee[:, i] = imp, qty, fee
            st.time[:, i], st.has[:, i] = when, has
            if batch.tag is not None:
                tags = st.tags[i]
                if tags is None:
                    tags = st.tags[i] = np.full(n_auctions, -1, dtype=np.int64)
                tags[rows] = batch.tag
            if start < keep:
                path_parts[i].append((valid, clipped, batch.timestamp_ms))
        columns, alloc, pay = _clear_and_measure(env, block, here, st)
        for i in learners:
            tags = st.tags[i]
            deliver_feedback(
                strategies[i],
                _feedback(
                    env,
                    values_bps[:, i],
                    st.has[:, i],
                    alloc[:, i],
                    pay[:, i],
                    columns["clearing_price"],
                    None if tags is None else tags[rows],
                ),
            )
        if out is None:
            if size == n_auctions:
                out = columns
            else:
                out = {k: np.empty(n_auctions, dtype=v.dtype) for k, v in columns.items()}
        if out is not columns:
            for name, column in columns.items():
                out[name][rows] = column
        start += size
        if on_rows is not None:
            on_rows(size)
    sample = None
    if path_rows:
        sample = _path_sample(env, [_stack(parts) for parts in path_parts if parts], keep)
    return out, sample


def _stack(
    parts: Sequence[tuple[BoolArray, FloatArray, FloatArray]],
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Stack a bidder's blocks of slots, padding to a common width (padding: not valid)."""
    width = max(p[0].shape[1] for p in parts)

    def pad(x: NDArray[Any]) -> NDArray[Any]:
        return np.pad(x, ((0, 0), (0, width - x.shape[1])))

    return (
        np.concatenate([pad(p[0]) for p in parts]),
        np.concatenate([pad(p[1]) for p in parts]),
        np.concatenate([pad(p[2]) for p in parts]),
    )
