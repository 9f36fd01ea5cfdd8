"""Every real bidder's bids for one auction of the object path, strategy by strategy.

Bidders who play the same built-in strategy in the same state bid together: one call of
the strategy's batch form (:meth:`~.strategies.base.BidderStrategy.generate_batch`)
whose rows are those bidders instead of auctions, row ``j`` drawn from bidder ``j``'s
own stream (:class:`BidderStreams`, drawn a few auctions ahead). A built-in strategy
takes one fixed-size block of uniforms per auction in either form, so each bidder's
stream, and so its bids, are the ones its scalar form would have made (up to the
rounding of a value sent as a price and read back). Every other bidder (a custom
strategy, a learner in a learning run) is called one by one in the scalar form. The
bids come back padded into arrays, one row per bidder.

A group's batch form runs in its two steps
(:meth:`~.strategies.base.BidderStrategy.prepare_batch`, then ``finish_batch``): what
its bidders bid from their uniforms alone is prepared for every auction of the uniforms
drawn ahead in one call, and each auction is finished when its values are known (numpy
pays per call, and 200 bidders make many small calls). As with the groups, a strategy's
parameters are read when it prepares: change them by replacing the strategy object.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from operator import is_
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..mechanisms.rules import improvement_bps, price_of
from .environment import AuctionEnvironment, Streams, UniformsAhead
from .strategies.base import Bid, BidBatch, call_generate_bids
from .strategies.registry import STRATEGIES

__all__ = ["AuctionBids", "BidderStreams", "auction_bids", "bidding_groups"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: The built-in strategies: the only ones whose batch form is known to consume, per row,
#: the block of uniforms their scalar form draws (a user's subclass may not).
_BUILT_IN: frozenset[type] = frozenset(STRATEGIES.values())


class BidderStreams:
    """A stand-in for one ``Generator`` handed to a batch form whose rows are the bidders
    of ``group``: row ``j`` of every draw is the next block of bidder ``group[j]``'s own
    stream (drawn ahead by :class:`~.environment.UniformsAhead`)."""

    __slots__ = ("_ahead", "_group", "_rngs")

    def __init__(
        self, ahead: UniformsAhead, rngs: Sequence[np.random.Generator], group: tuple[int, ...]
    ) -> None:
        self._ahead = ahead
        self._rngs = rngs
        self._group = group

    def random(self, size: int | tuple[int, ...] | None = None) -> Any:
        """Uniforms on [0, 1) of shape ``size``, its first axis one row per bidder."""
        shape = (size,) if isinstance(size, int) else tuple(size or ())
        if not shape or shape[0] != len(self._group):
            raise ValueError(
                f"a draw of shape {shape} for {len(self._group)} bidders (one row each)"
            )
        block = math.prod(shape[1:])
        return self._ahead.take(self._rngs, self._group, block).reshape(shape)


class _Groups(NamedTuple):
    """Bidders by how they bid: ``together`` (lists of bidders, one batch call each, rows
    laid out group after group from row 0), ``alone`` (one scalar call each, the rows
    after), and ``row_of`` each bidder's row."""

    together: tuple[tuple[int, ...], ...]
    alone: tuple[int, ...]
    row_of: IntArray
    #: Each group of ``together`` as an index array (its bidders' values at one take).
    indices: tuple[IntArray, ...] = ()


_groups_seen: dict[tuple[int, int], tuple[AuctionEnvironment, Sequence[Any], _Groups]] = {}


def bidding_groups(env: AuctionEnvironment, strategies: Sequence[Any]) -> _Groups:
    """Which bidders bid together (see the module docstring).

    A bidder bids in a group when its strategy is exactly a built-in one and does not
    learn in this run; bidders whose strategies give the same
    :meth:`~.strategies.base.BidderStrategy.batch_key` form one group.
    Worked out once per environment and list of strategy objects: a strategy's
    parameters are read when it first bids under an environment (as the environment
    itself reads its label), so change them by replacing the strategy object.
    """
    key = (id(env), len(strategies))
    seen = _groups_seen.get(key)
    if seen is not None and seen[0] is env and all(map(is_, seen[1], strategies)):
        return seen[2]  # the same strategy objects (compared one by one: no key to build)
    together: dict[Hashable, list[int]] = {}
    alone: list[int] = []
    for i, strategy in enumerate(strategies):
        if type(strategy) in _BUILT_IN and not env.learner_flags[i]:
            together.setdefault(strategy.batch_key(env.view, env.market), []).append(i)
        else:
            alone.append(i)
    groups = [tuple(members) for members in together.values()]
    row_of = np.empty(len(strategies), dtype=np.intp)
    row_of[[i for g in groups for i in g] + alone] = np.arange(len(strategies))
    indices = tuple(np.array(members, dtype=np.intp) for members in groups)
    found = _Groups(tuple(groups), tuple(alone), row_of, indices)
    if len(_groups_seen) >= 16:
        _groups_seen.clear()
    # The environment and the list are held so that their ids are not reused meanwhile.
    _groups_seen[key] = (env, list(strategies), found)  # one list of strategies per key
    return found


class _Prepared(NamedTuple):
    """A group's :meth:`~.strategies.base.BidderStrategy.prepare_batch` of every auction
    of one ``buffer`` of uniforms drawn ahead: its arrays reshaped to ``(bidders,
    auctions, ...)`` (``per_row`` says which parts are; one auction's rows: ``[:, at]``)."""

    env: AuctionEnvironment
    strategy: Any
    buffer: FloatArray
    state: Hashable
    parts: tuple[Any, ...]
    per_row: tuple[bool, ...]


_prepared_seen: dict[tuple[int, tuple[int, ...]], tuple[UniformsAhead, _Prepared]] = {}


def _prepared(
    env: AuctionEnvironment,
    strategy: Any,
    members: tuple[int, ...],
    ahead: UniformsAhead,
    taken: tuple[FloatArray, int],
) -> tuple[Any, ...]:
    """What ``strategy`` prepared for the bidders ``members`` in auction ``taken[1]`` of
    ``ahead``'s buffer ``taken[0]`` (``(bidders, auctions, draws)``): every auction of a
    buffer is prepared in one call when the buffer is first used (rows bidder by
    bidder, then auction by auction), then sliced. Prepared again if the environment,
    the strategy or its :meth:`~.strategies.base.BidderStrategy.batch_state` changed."""
    buffer, at = taken
    state = strategy.batch_state(env.view, env.market)
    key = (id(ahead), members)
    seen = _prepared_seen.get(key)
    entry = None if seen is None or seen[0] is not ahead else seen[1]
    if (
        entry is None
        or entry.buffer is not buffer
        or entry.env is not env
        or entry.strategy is not strategy
        or entry.state != state
    ):
        m, auctions, draws = buffer.shape
        rows = m * auctions
        u = buffer.reshape(rows, draws)  # a view: rows bidder by bidder, then auction
        made = strategy.prepare_batch(
            env.view, env.market, env.baseline_price, env.baseline_quantity, u
        )
        per_row = tuple(
            isinstance(part, np.ndarray) and part.ndim > 0 and part.shape[0] == rows
            for part in made
        )
        parts = tuple(
            part.reshape(m, auctions, *part.shape[1:]) if flag else part
            for part, flag in zip(made, per_row, strict=True)
        )
        entry = _Prepared(env, strategy, buffer, state, parts, per_row)
        if len(_prepared_seen) >= 32:  # (a few groups of a few simulators)
            _prepared_seen.clear()
        # ``ahead`` is held so that its id is not reused meanwhile.
        _prepared_seen[key] = (ahead, entry)
    return tuple(
        part[:, at] if flag else part for part, flag in zip(entry.parts, entry.per_row, strict=True)
    )


class AuctionBids(NamedTuple):
    """The bids of one auction, one row per bidder (rows as :class:`_Groups` lays them
    out; ``row_of`` maps a bidder to its row), padded to the widest: improvements (bps
    over the baseline), volumes (token A), arrival times (ms; +inf in the padding),
    fees (token units),
    ``present`` where a slot holds a bid, and ``price`` (B per A): the one a scalar form
    sent, or :func:`price_of` a batch form's improvement; every improvement here is that
    price's, read back as the engine reads it."""

    improvement_bps: FloatArray
    quantity: FloatArray
    timestamp_ms: FloatArray
    priority_fee: FloatArray
    present: NDArray[np.bool_]
    price: FloatArray
    row_of: IntArray


def auction_bids(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    values_bps: FloatArray,
) -> AuctionBids:
    """Every bid of one auction whose real bidders value the order at ``values_bps``."""
    groups = bidding_groups(env, strategies)
    bp, bq = env.baseline_price, env.baseline_quantity
    rngs, ahead = streams.bidders, streams.ahead
    batches: list[BidBatch] = []
    for members, index in zip(groups.together, groups.indices, strict=True):
        strategy = strategies[members[0]]
        values = values_bps.take(index)
        draws = strategy.batch_draws(env.view)
        if draws is None:
            batch = strategy.generate_batch(
                env.view, env.market, bp, bq, values, BidderStreams(ahead, rngs, members)
            )
        else:
            prepared = _prepared(env, strategy, members, ahead, ahead.take_at(rngs, members, draws))
            batch = strategy.finish_batch(env.view, env.market, bp, bq, values, prepared)
        batches.append(batch)
    ahead.give_back(rngs, groups.alone)  # their streams are called directly
    scalar: list[list[Bid]] = [
        call_generate_bids(
            strategies[i], bp, bq, env.market, rngs[i], price_of(float(values_bps[i]), bp), env.view
        )
        for i in groups.alone
    ]
    width = max(
        max((b.present.shape[1] for b in batches), default=1),
        max(map(len, scalar), default=1),
    )
    n = len(strategies)
    imp = np.zeros((n, width))
    qty = np.zeros((n, width))
    time = np.full((n, width), np.inf)  # padding after every bid: rows stay in time order
    fee = np.zeros((n, width))
    present = np.zeros((n, width), dtype=bool)
    price = np.zeros((n, width))
    row = 0
    for batch in batches:
        rows, slots = batch.present.shape
        block = slice(row, row + rows)
        imp[block, :slots] = batch.improvement_bps
        qty[block, :slots] = batch.quantity
        time[block, :slots] = batch.timestamp_ms
        fee[block, :slots] = batch.priority_fee
        present[block, :slots] = batch.present
        row += rows
    # The batch forms' improvements sent as prices and read back, as the engine reads
    # them (and as a scalar form's bids are).
    price[:row] = price_of(imp[:row], bp)
    imp[:row] = improvement_bps(price[:row], bp)
    for bids in scalar:
        for k, bid in enumerate(bids):
            price[row, k] = bid.price
            imp[row, k] = improvement_bps(bid.price, bp)
            qty[row, k] = bid.quantity
            time[row, k] = bid.timestamp
            fee[row, k] = bid.priority_fee
            present[row, k] = True
        row += 1
    return AuctionBids(imp, qty, time, fee, present, price, groups.row_of)
