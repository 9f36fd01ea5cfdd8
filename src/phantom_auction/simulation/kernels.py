"""The fast path: whole chunks of auctions generated, cleared and measured on arrays.

Same model, same random streams and same rules as the object path
(:func:`phantom_auction.simulation.simulator.simulate_auction`), which a test pins:

1. market and phantom draws for the chunk (:func:`draw_exogenous`);
2. each bidder's bids for every auction (the strategy's batch form, or its scalar form
   once per auction), validated like the engine validates a reveal: arrival inside the
   collection window, improvement within bounds, ``0 < volume <= limit``,
   ``0 <= fee <= volume * ratio``; the standing bid is the best valid one (earliest on
   ties);
3. clearing with the batch mechanisms: phantom bids first (they are the randomised
   reserve drawn when the auction opens), then real standing bids in arrival order,
   valuations in bps over baseline with the reserve at the baseline (0 bps); an
   auction with fewer than ``min_participants`` bids is not cleared (the CFMM fills it);
4. metrics against the modelled values (see :mod:`phantom_auction.simulation.results`).

Learning bidders (``enable_learning``) make auctions depend on earlier ones; the chunk
is then cleared in blocks over which every learner's policy stays fixed
(``auctions_until_refresh``), feeding each block's outcomes back in auction order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..mechanisms.batch import clear_batch
from .environment import (
    BOUND_TOLERANCE_BPS,
    WINNER_NONE,
    WINNER_PHANTOM,
    AuctionEnvironment,
    ExogenousDraws,
    Streams,
    draw_exogenous,
)
from .strategies.base import (
    BPS,
    AuctionFeedback,
    BidBatch,
    BidderStrategy,
    FeedbackBatch,
    call_generate_bids,
)

__all__ = ["ChunkColumns", "PathSample", "clear_arrays", "simulate_chunk_arrays"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
#: One row per auction; see ``results.COLUMNS`` for the names.
ChunkColumns = dict[str, NDArray[Any]]


@dataclass(frozen=True, slots=True)
class PathSample:
    """Convergence paths of the first auctions of a chunk: best standing bps over time."""

    time_ms: FloatArray
    paths: FloatArray


def clear_arrays(
    values: FloatArray,
    quantities: FloatArray,
    mask: BoolArray,
    *,
    supply: float,
    mechanism: str,
) -> tuple[FloatArray, FloatArray]:
    """Allocation and payment (A, S) of many auctions; reserve at 0 bps (the baseline)."""
    result = clear_batch(
        values,
        quantities,
        mask,
        supply=supply,
        reserve=0.0,
        mechanism=mechanism,
    )
    return result.allocation, result.payment


@dataclass(slots=True)
class _Standing:
    """Each real bidder's standing bid over the chunk (A, N)."""

    imp: FloatArray
    qty: FloatArray
    fee: FloatArray
    time: FloatArray
    has: BoolArray
    tags: list[IntArray | None]


def _padded_scalar_bids(
    strategy: Any,
    env: AuctionEnvironment,
    values_bps: FloatArray,
    rng: np.random.Generator,
) -> BidBatch:
    """A scalar-only strategy called once per auction, its bids padded into arrays."""
    bp = env.baseline_price
    rows = []
    for v in values_bps.tolist():
        bids = call_generate_bids(
            strategy,
            bp,
            env.baseline_quantity,
            env.market,
            rng,
            bp * (1.0 + v / BPS),
            env.view,
        )
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
            imp[a, k] = (bid.price / bp - 1.0) * BPS
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
) -> BidBatch:
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
            return batch
    return _padded_scalar_bids(strategy, env, values_bps, rng)


def valid_bids(
    batch: BidBatch, env: AuctionEnvironment
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Which slots the engine would accept, their improvements clipped to the bounds, volumes."""
    imp, time, fee = batch.improvement_bps, batch.timestamp_ms, batch.priority_fee
    qty = np.full(imp.shape, env.baseline_quantity) if env.textbook else batch.quantity
    with np.errstate(invalid="ignore"):
        valid = (
            batch.present
            & (time >= 0.0)
            & (time <= env.window_ms)
            & (imp >= env.min_bps - BOUND_TOLERANCE_BPS)
            & (imp <= env.max_bps + BOUND_TOLERANCE_BPS)
            & (imp < np.inf)
            & (qty > 0.0)
            & (qty <= env.max_volume * (1.0 + 1e-12))
            & (fee >= 0.0)
            & (fee <= qty * env.fee_max_ratio * (1.0 + 1e-12))
        )
    return valid, np.clip(imp, env.min_bps, env.max_bps), qty


def _standing_of(
    batch: BidBatch, env: AuctionEnvironment
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]:
    """Standing bid per auction (best valid improvement, earliest on ties) and the valid mask."""
    valid, imp, qty = valid_bids(batch, env)
    masked = np.where(valid, imp, -np.inf)
    best = masked.max(axis=1)
    candidates = valid & (masked == best[:, None])
    pick = np.argmin(np.where(candidates, batch.timestamp_ms, np.inf), axis=1)[:, None]
    has = np.asarray(valid.any(axis=1), dtype=bool)

    def take(a: FloatArray) -> FloatArray:
        return np.take_along_axis(a, pick, axis=1)[:, 0]

    return take(imp), take(qty), take(batch.priority_fee), take(batch.timestamp_ms), has, valid, imp


def _clear_and_measure(
    env: AuctionEnvironment,
    draws: ExogenousDraws,
    rows: slice,
    st: _Standing,
) -> tuple[ChunkColumns, FloatArray, FloatArray]:
    """Columns of the auctions in ``rows``, and the real bidders' allocation and payment."""
    ph = draws.phantoms
    present = ph.present[rows]
    ph_imp = np.where(present, ph.improvement_bps[rows], 0.0)
    ph_qty = np.where(present, ph.volume[rows], 0.0)
    values = draws.values_bps[rows]
    r_imp, r_qty, r_time, has = st.imp[rows], st.qty[rows], st.time[rows], st.has[rows]
    b, m, n = values.shape[0], present.shape[1], values.shape[1]
    q_total = env.baseline_quantity

    # Real bids in arrival order (ties between a phantom and a real bid go to the phantom).
    order = np.argsort(np.where(has, r_time, np.inf), axis=1, kind="stable")
    s_has = np.take_along_axis(has, order, axis=1)
    clear_values = np.concatenate(
        (ph_imp, np.where(s_has, np.take_along_axis(r_imp, order, axis=1), 0.0)), axis=1
    )
    clear_qty = np.concatenate(
        (ph_qty, np.where(s_has, np.take_along_axis(r_qty, order, axis=1), 0.0)), axis=1
    )
    participants = present.sum(axis=1) + has.sum(axis=1)
    cleared = participants >= env.min_participants
    mask = np.concatenate((present, s_has), axis=1) & cleared[:, None]
    if m + n:
        alloc, pay = clear_arrays(
            clear_values, clear_qty, mask, supply=q_total, mechanism=env.mechanism
        )
    else:
        alloc = pay = np.zeros((b, 0))
    alloc_real = np.zeros((b, n))
    pay_real = np.zeros((b, n))
    np.put_along_axis(alloc_real, order, alloc[:, m:], axis=1)
    np.put_along_axis(pay_real, order, pay[:, m:], axis=1)

    # The winner: the best-ranked bid that received volume (first column on ties).
    allocated = alloc > 0.0
    ranked = np.where(allocated, clear_values, -np.inf)
    top = np.argmax(ranked, axis=1) if m + n else np.zeros(b, dtype=np.int64)
    any_alloc = allocated.any(axis=1)
    top_real = (
        np.take_along_axis(order, np.clip(top - m, 0, max(n - 1, 0))[:, None], axis=1)[:, 0]
        if n
        else np.zeros(b, dtype=np.int64)
    )
    winner = np.where(~any_alloc, WINNER_NONE, np.where(top < m, WINNER_PHANTOM, top_real))

    bp = env.baseline_price
    improvement = pay_real.sum(axis=1) / q_total
    clearing_price = bp * (1.0 + improvement / BPS)
    true_price = bp * (1.0 + draws.true_premium_bps[rows] / BPS)
    best_value = values.max(axis=1) if n else np.full(b, -np.inf)
    available = np.maximum(best_value, 0.0)
    has_surplus = available > 0.0
    safe = np.where(has_surplus, available, 1.0)
    welfare_bps = (values * alloc_real).sum(axis=1) / q_total
    with np.errstate(invalid="ignore", divide="ignore"):
        shading = np.where(has & (values > 0.0), (values - r_imp) / values, np.nan)
    shading_count = np.isfinite(shading).sum(axis=1)
    shading_sum = np.where(np.isfinite(shading), shading, 0.0).sum(axis=1)
    best_bid = np.where(has, r_imp, -np.inf)
    best_imp = best_bid.max(axis=1) if n else np.full(b, -np.inf)
    first = (
        np.argmin(np.where(has & (best_bid == best_imp[:, None]), r_time, np.inf), axis=1)
        if n
        else np.zeros(b, dtype=np.int64)
    )
    any_real = has.any(axis=1)
    conv = np.where(
        any_real, np.take_along_axis(r_time, first[:, None], axis=1)[:, 0] if n else 0.0, np.nan
    )
    columns: ChunkColumns = {
        "improvement_bps": improvement,
        "mev_capture_rate": np.where(has_surplus, np.clip(improvement / safe, 0.0, 1.0), np.nan),
        "price_discovery_efficiency": 1.0 - np.abs(clearing_price - true_price) / true_price,
        "bid_shading": np.where(
            shading_count > 0, shading_sum / np.maximum(shading_count, 1), np.nan
        ),
        "phantom_won": winner == WINNER_PHANTOM,
        "winner_index": winner.astype(np.int32),
        "clearing_price": clearing_price,
        "baseline_price": np.full(b, bp),
        "true_price": true_price,
        "welfare": welfare_bps * q_total * bp / BPS,
        "welfare_improvement": np.where(has_surplus, welfare_bps / safe, np.nan),
        "convergence_speed_ms": conv,
        "num_real_bids": has.sum(axis=1).astype(np.int32),
        "num_phantom_bids": present.sum(axis=1).astype(np.int32),
        "real_fill_fraction": alloc_real.sum(axis=1) / q_total,
        "best_real_value_bps": best_value,
    }
    profit = (values * alloc_real - pay_real) / q_total
    for label, group in env.label_groups:
        idx = list(group)
        sub = shading[:, idx]
        count = np.isfinite(sub).sum(axis=1)
        total = np.where(np.isfinite(sub), sub, 0.0).sum(axis=1)
        columns[f"bid_shading:{label}"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        columns[f"profit_bps:{label}"] = profit[:, idx].sum(axis=1)
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
#: since every stream is consumed in auction order).
BLOCK_ROWS = 8192


def simulate_chunk_arrays(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    n_auctions: int,
    *,
    path_rows: int = 0,
) -> tuple[ChunkColumns, PathSample | None]:
    """Simulate ``n_auctions`` auctions on arrays; learners' state advances in place.

    ``path_rows > 0`` also returns the convergence paths of the first ``path_rows``
    auctions.
    """
    draws = draw_exogenous(env, streams, n_auctions)
    n = env.num_bidders
    shape = (n_auctions, n)
    st = _Standing(
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape),
        np.zeros(shape, dtype=bool),
        [None] * n,
    )
    keep = min(path_rows, n_auctions)
    path_parts: list[list[tuple[BoolArray, FloatArray, FloatArray]]] = [[] for _ in range(n)]
    learners = [i for i in range(n) if env.learner_flags[i]]
    blocks: list[ChunkColumns] = []
    start = 0
    while start < n_auctions or not blocks:
        size = min(n_auctions - start, BLOCK_ROWS)
        for i in learners:
            refresh = getattr(strategies[i], "auctions_until_refresh", None)
            size = min(size, int(refresh()) if callable(refresh) else 1)
        rows = slice(start, start + size)
        for i in range(n):
            batch = _bids(strategies[i], env, draws.values_bps[rows, i], streams.bidders[i])
            imp, qty, fee, when, has, valid, clipped = _standing_of(batch, env)
            st.imp[rows, i], st.qty[rows, i], st.fee[rows, i] = imp, qty, fee
            st.time[rows, i], st.has[rows, i] = when, has
            if batch.tag is not None:
                tags = st.tags[i]
                if tags is None:
                    tags = st.tags[i] = np.full(n_auctions, -1, dtype=np.int64)
                tags[rows] = batch.tag
            if start < keep:
                path_parts[i].append((valid, clipped, batch.timestamp_ms))
        columns, alloc, pay = _clear_and_measure(env, draws, rows, st)
        for i in learners:
            tags = st.tags[i]
            deliver_feedback(
                strategies[i],
                _feedback(
                    env,
                    draws.values_bps[rows, i],
                    st.has[rows, i],
                    alloc[:, i],
                    pay[:, i],
                    columns["clearing_price"],
                    None if tags is None else tags[rows],
                ),
            )
        blocks.append(columns)
        start += size
    out = (
        blocks[0]
        if len(blocks) == 1
        else {k: np.concatenate([blk[k] for blk in blocks]) for k in blocks[0]}
    )
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
