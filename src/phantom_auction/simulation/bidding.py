"""Every real bidder's bids in the object path's auctions, strategy by strategy.

Bidders who play the same built-in strategy in the same state bid together: one call of
the strategy's batch form (:meth:`~.strategies.base.BidderStrategy.generate_batch`)
whose rows are those bidders instead of auctions, row ``j`` drawn from bidder ``j``'s
own stream (:class:`BidderStreams`, drawn a few auctions ahead). A built-in strategy
takes one fixed-size block of uniforms per auction in either form, so each bidder's
stream, and so its bids, are the ones its scalar form would have made (up to the
rounding of a value sent as a price and read back). Every other bidder (a custom
strategy, a learner in a learning run) is called one by one in the scalar form. The
bids come back group by group (:class:`BidRows`), padded into arrays.

A group's batch form runs in its two steps
(:meth:`~.strategies.base.BidderStrategy.prepare_batch`, then ``finish_batch``): what
its bidders bid from their uniforms alone is prepared for every auction of the uniforms
drawn ahead in one call, then finished once the auctions' values are known, for one
auction or for several consecutive ones at once when every bidder bids in a group
(:func:`bids_ahead`: numpy pays per call, and 200 bidders make many small calls). As
with the groups, a strategy's parameters are read when it prepares: change them by
replacing the strategy object.
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
from .strategies.base import Bid, call_generate_bids, check_batch, check_bids
from .strategies.registry import STRATEGIES

__all__ = ["BidRows", "BidderStreams", "auction_bids", "bidding_groups", "bids_ahead"]

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
    """Bidders by how they bid: ``together`` (lists of bidders, one batch call each) and
    ``alone`` (one scalar call each)."""

    together: tuple[tuple[int, ...], ...]
    alone: tuple[int, ...]
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
    indices = tuple(np.array(members, dtype=np.intp) for members in groups)
    found = _Groups(tuple(groups), tuple(alone), indices)
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
    auctions: int = 1,
) -> tuple[Any, ...]:
    """What ``strategy`` prepared for the bidders ``members`` in ``auctions`` auctions from
    auction ``taken[1]`` of ``ahead``'s buffer ``taken[0]`` (``(bidders, auctions,
    draws)``), rows bidder by bidder, then auction by auction: every auction of a buffer
    is prepared in one call when the buffer is first used, then sliced. Prepared again if
    the environment, the strategy or its
    :meth:`~.strategies.base.BidderStrategy.batch_state` changed."""
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
        m, count, draws = buffer.shape
        rows = m * count
        u = buffer.reshape(rows, draws)  # a view: rows bidder by bidder, then auction
        made = strategy.prepare_batch(
            env.view, env.market, env.baseline_price, env.baseline_quantity, u
        )
        per_row = tuple(
            isinstance(part, np.ndarray) and part.ndim > 0 and part.shape[0] == rows
            for part in made
        )
        parts = tuple(
            part.reshape(m, count, *part.shape[1:]) if flag else part
            for part, flag in zip(made, per_row, strict=True)
        )
        entry = _Prepared(env, strategy, buffer, state, parts, per_row)
        if len(_prepared_seen) >= 32:  # (a few groups of a few simulators)
            _prepared_seen.clear()
        # ``ahead`` is held so that its id is not reused meanwhile.
        _prepared_seen[key] = (ahead, entry)
    rows = len(members) * auctions
    return tuple(
        part[:, at : at + auctions].reshape(rows, *part.shape[2:]) if flag else part
        for part, flag in zip(entry.parts, entry.per_row, strict=True)
    )


class BidRows(NamedTuple):
    """The bids of a group of ``bidders`` in ``k`` consecutive auctions: row ``b * k + j``
    holds bidder ``bidders[b]``'s bids in auction ``j``, its slots in time order and
    padded to the group's widest: improvements (bps over the baseline), volumes (token
    A), arrival times (ms), fees (token units), ``present`` where a slot holds a bid, and
    ``price`` (B per A): the one a scalar form sent, or :func:`price_of` a batch form's
    improvement; every improvement where a bid is is that price's, read back as the
    engine reads it (the padding's values are never read)."""

    bidders: IntArray
    improvement_bps: FloatArray
    quantity: FloatArray
    timestamp_ms: FloatArray
    priority_fee: FloatArray
    present: NDArray[np.bool_]
    price: FloatArray


def bids_ahead(env: AuctionEnvironment, strategies: Sequence[Any]) -> bool:
    """Whether the bids of several auctions can be made in one :func:`auction_bids` call:
    every bidder bids in a group with a two-step batch form (a scalar bidder is called
    auction by auction, after it learnt from the last)."""
    groups = bidding_groups(env, strategies)
    return not groups.alone and all(
        strategies[members[0]].batch_draws(env.view) is not None for members in groups.together
    )


def auction_bids(
    env: AuctionEnvironment,
    strategies: Sequence[Any],
    streams: Streams,
    values_bps: FloatArray,
) -> list[BidRows]:
    """Every bid of ``k`` consecutive auctions whose real bidders value the order at
    ``values_bps`` (``(k, bidders)``; ``k`` > 1 only when :func:`bids_ahead`), group by
    group (the scalar bidders last, as one group). Each bidder's bids are the ones ``k``
    calls, one auction each, would have made. The one place of the object path where
    strategies' bids come in: a bid with a field no strategy may send
    (:func:`~.strategies.base.invalid_bid`: NaN, infinite, a negative quantity) raises
    :class:`~phantom_auction.errors.InvalidBidParameters` here (as on the fast path)."""
    groups = bidding_groups(env, strategies)
    bp, bq = env.baseline_price, env.baseline_quantity
    rngs, ahead = streams.bidders, streams.ahead
    k = values_bps.shape[0]
    rows: list[BidRows] = []
    for members, index in zip(groups.together, groups.indices, strict=True):
        strategy = strategies[members[0]]
        values = values_bps.take(index, axis=1)  # (k, m)
        draws = strategy.batch_draws(env.view)
        if draws is None:
            batch = strategy.generate_batch(
                env.view, env.market, bp, bq, values[0], BidderStreams(ahead, rngs, members)
            )
        else:
            taken = ahead.take_at(rngs, members, draws, k)
            prepared = _prepared(env, strategy, members, ahead, taken, k)
            # Rows bidder by bidder, then auction (as prepared).
            batch = strategy.finish_batch(
                env.view, env.market, bp, bq, values.T.reshape(-1), prepared
            )
        check_batch(batch, env.labels, members, k)  # row b * k + j: bidder members[b]
        # The improvements sent as prices and read back, as the engine reads them (and as
        # a scalar form's bids are), where there are bids.
        imp = np.array(batch.improvement_bps, dtype=np.float64)
        price = np.zeros(imp.shape)
        at = np.flatnonzero(batch.present)
        sent = price_of(imp.take(at), bp)
        price.reshape(-1)[at] = sent
        imp.reshape(-1)[at] = improvement_bps(sent, bp)
        columns = (batch.quantity, batch.timestamp_ms, batch.priority_fee, batch.present)
        rows.append(BidRows(index, imp, *columns, price))
    ahead.give_back(rngs, groups.alone)  # their streams are called directly
    if groups.alone:
        scalar: list[list[Bid]] = []
        for i in groups.alone:
            value = price_of(float(values_bps[0, i]), bp)
            bids = call_generate_bids(strategies[i], bp, bq, env.market, rngs[i], value, env.view)
            check_bids(bids, env.labels, i)
            scalar.append(bids)
        shape = (len(scalar), max(1, max(map(len, scalar))))
        one = BidRows(
            np.array(groups.alone, dtype=np.intp),
            np.zeros(shape),
            np.zeros(shape),
            np.full(shape, np.inf),
            np.zeros(shape),
            np.zeros(shape, dtype=bool),
            np.zeros(shape),
        )
        for r, bids in enumerate(scalar):
            for s, bid in enumerate(bids):
                one.price[r, s] = bid.price
                one.improvement_bps[r, s] = improvement_bps(bid.price, bp)
                one.quantity[r, s] = bid.quantity
                one.timestamp_ms[r, s] = bid.timestamp
                one.priority_fee[r, s] = bid.priority_fee
                one.present[r, s] = True
        rows.append(one)
    return rows
