"""Settlement: a finished auction's revealed bids and phantoms, cleared by the rule book
into fills, the user's price and the published ranking.

Pure functions of the bids, the rules, the baseline (B per A) and the amount (token A
units); :class:`~phantom_auction.engine.auction.Auction` calls them when it finalizes
or aborts. Every bid, real or phantom, is scored ``price_weight * improvement_bps +
fee_weight * fee_bps``; the scores are cleared by
:func:`~phantom_auction.mechanisms.clearing.clear_ranked` (supply = amount, reserve =
the baseline, score 0) and each real fill is priced by
:func:`~phantom_auction.mechanisms.rules.fill_improvement`. Phantom policy ``reserve``:
a phantom's allocation goes to the CFMM at the baseline; ``floor``: phantoms are left
out of the allocation and the best phantom score is a floor under every real fill.
Whatever the real bids leave goes to the CFMM at the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import NamedTuple, overload

from ..mechanism_names import canonical_mechanism
from ..mechanisms.clearing import ValueOrder, clear_ranked_winners, value_order
from ..mechanisms.rules import (
    BPS,
    AuctionRules,
    fill_improvement,
    phantom_floor,
    price_of,
    reserve_score,
)
from .audit import Outcome
from .batch import FloatArray, RevealedRows
from .bids import ImprovementBid
from .phantoms import _PHANTOM_IDS, PhantomColumns, phantom_id
from .result import Fill, Ranking

__all__ = ["Settlement", "bid_table", "cfmm_remainder", "ranking_of", "settle"]

_N_IDS = len(_PHANTOM_IDS)


class BidTable(NamedTuple):
    """Every bid of a clearing as columns, real bids first (commit order) then phantoms
    (slot order): prices (B per A), improvements and fees in bps, scores, and ``order``
    the indices from best score to worst (ties: that column order)."""

    reals: Sequence[ImprovementBid]
    phantom_slots: Sequence[int]
    prices: list[float]
    volumes: list[float]
    fees: list[float]
    improvements: list[float]
    fees_bps: Sequence[float]
    scores: list[float]
    order: Sequence[int]
    #: The real bids' scores as float64s when a batch had them (engine/batch.py): every
    #: one finite, its volume finite and > 0 (the rule book's verdict on the batch).
    real_scores: FloatArray | None = None


class Settlement(NamedTuple):
    """What clearing decided: the outcome, the real fills (best first, CFMM remainder not
    yet added), the ranking, and whether a phantom ranked first."""

    outcome: Outcome
    fills: list[Fill]
    ranking: Ranking
    phantom_won: bool


class FeesInBps(Sequence[float]):
    """``[f / amount * BPS for f in fees]`` (the rule book's ``fee_bps``, bit for bit),
    each entry worked out when read: an immutable sequence over the table's own fees."""

    __slots__ = ("_amount", "_fees")

    def __init__(self, fees: Sequence[float], amount: float) -> None:
        self._fees = fees
        self._amount = amount

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: int | slice) -> float | list[float]:
        amount = self._amount
        if isinstance(index, slice):
            return [f / amount * BPS for f in self._fees[index]]
        return self._fees[index] / amount * BPS

    def __len__(self) -> int:
        return len(self._fees)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list: unhashable like it

    def __repr__(self) -> str:
        return f"FeesInBps({list(self)!r})"


class BidderIds(Sequence[str]):
    """The bidder ids of a table's entries, real bids' then ``phantom-<slot>``, each
    read when asked for (most rankings are never built): an immutable sequence."""

    __slots__ = ("_reals", "_slots")

    def __init__(self, reals: Sequence[ImprovementBid], slots: Sequence[int]) -> None:
        self._reals = reals
        self._slots = slots

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n_real = len(self._reals)
        if index < 0:
            index += n_real + len(self._slots)
        if 0 <= index < n_real:
            return self._reals[index].bidder_id
        if index < 0:
            raise IndexError(index)
        slot = self._slots[index - n_real]  # IndexError past the end
        return _PHANTOM_IDS[slot] if slot < _N_IDS else phantom_id(slot)

    def __len__(self) -> int:
        return len(self._reals) + len(self._slots)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list: unhashable like it

    def __repr__(self) -> str:
        return f"BidderIds({list(self)!r})"


def _finite_bps(fees: Sequence[float], amount: float) -> bool:
    """Whether every ``f / amount * BPS`` is finite (no NaN, no overflow)."""
    if not fees:
        return True
    total = sum(fees)  # NaN or infinite if any fee is
    high = max(fees) / amount * BPS
    low = min(fees) / amount * BPS
    return total - total == 0.0 and high - high == 0.0 and low - low == 0.0


def _batch_finite_bps(
    fees: list[float], highest_real: float, phantom_fees: Sequence[float], amount: float
) -> bool:
    """:func:`_finite_bps` of a batch's fees (>= 0, the largest ``highest_real``) followed
    by ``phantom_fees``: ``x / amount * BPS`` never decreases as ``x`` grows, so the
    batch's bps lie in ``[0, highest_real's]`` and only that one needs working out."""
    total = sum(fees)  # NaN or infinite if any fee is, or if they overflow
    high = highest_real / amount * BPS
    return total - total == 0.0 and high - high == 0.0 and _finite_bps(phantom_fees, amount)


def bid_table(
    book: AuctionRules,
    reals: Sequence[ImprovementBid],
    phantoms: PhantomColumns,
    baseline: float,
    amount: float,
) -> BidTable:
    """Revealed real bids (commit order), then phantoms (slot order: the tie order),
    each scored by the rule book, and their order from best to worst."""
    slots, phantom_prices, phantom_volumes, phantom_fees = phantoms
    known: FloatArray | None = None  # the reals' improvements, if the batch has them
    highest_real: float | None = None  # and its largest fee
    rows: object = reals
    if type(rows) is RevealedRows:  # a batch's bids as columns (engine/batch.py)
        prices, volumes, fees = (list(column) for column in rows.columns)
        known = rows.improvement_array(baseline)
        highest_real = rows.highest_fee()
    else:
        prices = [b.improved_price for b in reals]
        volumes = [b.volume for b in reals]
        fees = [b.priority_fee for b in reals]
    prices += phantom_prices
    volumes += phantom_volumes
    fees += phantom_fees
    # improvement_bps, fee_bps and score of the rule book written out (the same
    # operations in the same order, so the same bits): three calls per bid cost more
    # than the arithmetic, and this runs for every auction.
    if known is None:
        improvements = [(p - baseline) / baseline * BPS for p in prices]
    else:
        improvements = known.tolist()
        improvements += [(p - baseline) / baseline * BPS for p in phantom_prices]
    price_weight, fee_weight = book.price_weight, book.fee_weight
    fees_bps: Sequence[float]
    real_scores = None
    if (
        price_weight == 1.0
        and fee_weight == 0.0
        and (
            _finite_bps(fees, amount)
            if highest_real is None
            else _batch_finite_bps(fees, highest_real, phantom_fees, amount)
        )
    ):
        # 1.0 * i + 0.0 * f is i itself when every f is finite (0.0 * f is +-0.0, and i
        # is never -0.0: p - baseline is +0.0 when they are equal, and the baseline is
        # > 0): the same list serves for both (the rule book's default weights), and
        # the fees in bps are only worked out when read (a winner's, the ranking's).
        scores = improvements
        fees_bps = FeesInBps(fees, amount)
        real_scores = known
    else:
        fees_bps = [f / amount * BPS for f in fees]
        pairs = zip(improvements, fees_bps, strict=True)
        scores = [price_weight * i + fee_weight * f for i, f in pairs]
    # sorted(reverse=True) is stable: ties keep commit order, phantoms last (sorted when
    # first read).
    order = ValueOrder(scores)
    return BidTable(
        reals, slots, prices, volumes, fees, improvements, fees_bps, scores, order, real_scores
    )


def ranking_of(
    table: BidTable,
    allocated: list[float] | None = None,
    fill_prices: list[float | None] | None = None,
) -> Ranking:
    """The published ranking of ``table`` (with what clearing gave each bid, if it ran)."""
    # The lists are this clearing's own and never change again: no copies. The columns
    # are RankingColumns' fields in order, made into one when first read.
    return Ranking.of_columns(
        BidderIds(table.reals, table.phantom_slots),
        len(table.reals),
        table.prices,
        table.volumes,
        table.fees,
        allocated,
        fill_prices,
        table.order,
        table.improvements,
        table.fees_bps,
        table.scores,
    )


def settle(
    book: AuctionRules,
    reals: Sequence[ImprovementBid],
    phantoms: PhantomColumns,
    baseline: float,
    amount: float,
) -> Settlement:
    """Clear an auction's revealed bids and phantoms under ``book``'s mechanism and
    phantom policy (see the module docstring)."""
    table = bid_table(book, reals, phantoms, baseline, amount)
    n = len(table.prices)
    if n == 0:
        return Settlement(Outcome.NO_BIDS, [], Ranking(), False)
    if n < book.min_participants:
        return Settlement(Outcome.INSUFFICIENT_PARTICIPANTS, [], ranking_of(table), False)
    prices, scores = table.prices, table.scores
    n_real = len(reals)
    floor = 0.0
    phantom_won = False
    ranked: Sequence[int]
    if book.phantom_policy == "floor":
        # Phantoms never take volume: the reals clear alone, the best phantom's score
        # is a floor under every fill. The reals in the table's order: a stable sort of
        # their own scores (the whole table is sorted only if its ranking is read).
        floor = phantom_floor(book, scores[n_real:])
        cleared = scores[:n_real]
        volumes = table.volumes[:n_real]
        # Vickrey reads the head of the order (two scans); the others read all of it:
        # sorted at once, not yielded one by one after the scans.
        ranked = ValueOrder(cleared)
        real_scores = table.real_scores
        if canonical_mechanism(book.mechanism) != "vickrey":
            # A batch's scores sorted by numpy: value_order(), the same order as the
            # stable sort of the list (every score is finite), in half its time.
            ranked = ranked._built() if real_scores is None else value_order(real_scores).tolist()
        # A batch's scores and volumes passed the rule book's verdict: finite, volumes
        # > 0; they are clearing's valid values once the least score is >= 0.
        checked = real_scores is not None and bool(real_scores.min() >= 0.0)
    else:
        order = table.order
        assert isinstance(order, ValueOrder)
        cleared, volumes, ranked = scores, table.volumes, order._built()
        phantom_won = ranked[0] >= n_real
        checked = False
    # clear() itself on plain lists (same bits), in the order the table already sorted.
    _, allocated, payment, winners = clear_ranked_winners(
        cleared, volumes, ranked, supply=amount, reserve=reserve_score(book),
        mechanism=book.mechanism,
        checked=checked,
    )  # fmt: skip
    allocated += [0.0] * (n - len(allocated))
    fill_prices: list[float | None] = [None] * n
    fills: list[Fill] = []
    for i in winners:  # every bid with an allocation, best first
        if i >= n_real:
            continue  # a phantom's share goes to the CFMM
        units = allocated[i]
        own = table.improvements[i]
        paid = fill_improvement(book, payment[i], units, own, table.fees_bps[i], floor)
        # Paying its own improvement is paying its own price, to the bit; a payment
        # just under it is never priced above it by the rounding of price_of.
        price = prices[i] if paid == own else min(price_of(paid, baseline), prices[i])
        fill_prices[i] = price
        fills.append(Fill(reals[i].bidder_id, units, price))
    # Under "floor" phantoms take nothing, so an auction without a real fill had no
    # real bid to fill: the phantoms did not win it (phantom_won stays False).
    outcome = Outcome.FILLED if fills else Outcome.PHANTOM_WON if phantom_won else Outcome.NO_BIDS
    return Settlement(outcome, fills, ranking_of(table, allocated, fill_prices), phantom_won)


def cfmm_remainder(fills: list[Fill], baseline: float, amount: float) -> float:
    """Append the CFMM's fill of what the bidders left (at the baseline) to ``fills`` and
    return the user's volume-weighted price over the whole ``amount`` (B per A)."""
    volumes = [f.volume for f in fills]
    paid = [f.price for f in fills]
    remainder = amount - math.fsum(volumes)
    if remainder > 0.0:
        fills.append(Fill(None, remainder, baseline))
        volumes.append(remainder)
        paid.append(baseline)
    # A weighted mean lies between its extremes; clamp away the division's rounding.
    mean = math.fsum(map(mul, volumes, paid)) / amount
    return min(max(mean, min(paid)), max(paid))
