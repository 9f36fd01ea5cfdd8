"""The pieces of :meth:`Auction.commit_reveal_finalize`: many bids in clear through one
auction in one call, with no record made per bid unless someone reads it.

A driver that holds every bid in clear (the simulator's object path) commits, reveals
and finalizes them in one call. When every bid passes every check, the auction keeps
them as columns (:class:`BatchBids`): the :class:`~.bids.SealedBid` and
:class:`~.bids.ImprovementBid` records (with their commitments), and their audit
events, are made when first read (:class:`LazyRecords`, log entries that build their
event), and clearing reads :class:`RevealedRow` rows, the four fields settlement uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import accumulate, count
from typing import Any, NamedTuple, TypeVar, cast, overload

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidBidParameters
from ..mechanisms.rules import RevealLimits, improvement_bps, reveal_all_accepted
from .audit import CommitAccepted, RevealAccepted
from .bids import ImprovementBid, SealedBid, make_bid
from .commitment import MAX_NONCE, SALT_SIZE, auction_prefixes, fields_digest_v2

__all__ = [
    "BatchBids",
    "FloatColumn",
    "LazyRecords",
    "RevealedRow",
    "RevealedRows",
    "accepted_batch",
    "float_list",
]

V = TypeVar("V")
FloatArray = NDArray[np.float64]
#: A column of floats: a sequence, or a 1-D float64 array.
FloatColumn = Sequence[float] | FloatArray
_US = timedelta(microseconds=1)


class RevealedRow(NamedTuple):
    """What settlement reads of a revealed bid: its bidder, price (B per A), volume
    (token A) and priority fee (token units)."""

    bidder_id: str
    improved_price: float
    volume: float
    priority_fee: float


_row = partial(tuple.__new__, RevealedRow)  # RevealedRow(*fields), without a frame


class BatchBids:
    """The bids of one :meth:`Auction.commit_reveal_finalize` call as columns, all
    accepted: bid ``i`` arrived ``arrivals_us[i]`` microseconds after ``opened_at``, was
    committed at ``commit_us[i]`` (the auction's clock then, which never runs back) and
    revealed at ``revealed_at``; ``index`` maps each bidder to its bid. Records and events
    are made on demand, each once."""

    __slots__ = (
        "_bids",
        "_sealed",
        "arrivals_us",
        "auction_id",
        "baseline_price",
        "bidder_ids",
        "commit_us",
        "fees",
        "highest_fee",
        "improvements",
        "index",
        "nonce",
        "opened_at",
        "pair",
        "prices",
        "revealed_at",
        "salt",
        "volumes",
    )

    def __init__(
        self,
        auction_id: str,
        pair: tuple[int, int],
        opened_at: datetime,
        nonce: int,
        salt: bytes,
        bidder_ids: list[str],
        prices: list[float],
        volumes: list[float],
        fees: list[float],
        arrivals_us: list[int],
        commit_us: list[int],
        revealed_at: datetime,
        index: dict[str, int],
        baseline_price: float = math.nan,
        improvements: FloatArray | None = None,
        highest_fee: float | None = None,
    ) -> None:
        self.auction_id = auction_id
        self.pair = pair
        self.opened_at = opened_at
        self.nonce = nonce
        self.salt = salt
        self.bidder_ids = bidder_ids
        self.prices = prices
        self.volumes = volumes
        self.fees = fees
        self.arrivals_us = arrivals_us
        self.commit_us = commit_us
        self.revealed_at = revealed_at
        self.index = index
        self.baseline_price = baseline_price
        self.improvements = improvements
        self.highest_fee = highest_fee
        self._bids: dict[int, ImprovementBid] = {}
        self._sealed: dict[int, SealedBid] = {}

    def committed_at(self, i: int) -> datetime:
        """When bid ``i`` was committed (the auction's clock then)."""
        return self.opened_at + self.commit_us[i] * _US

    def bid(self, i: int) -> ImprovementBid:
        """Bid ``i`` as the bidder would have revealed it: its default commitment made with
        the batch's salt and nonce, its timestamp its arrival."""
        bid = self._bids.get(i)
        if bid is None:
            bidder, price, volume, fee = (
                self.bidder_ids[i], self.prices[i], self.volumes[i], self.fees[i]
            )  # fmt: skip
            at = self.opened_at + self.arrivals_us[i] * _US
            if fee - fee == 0.0:
                # make_bid's record without its checks, which the batch passed (ids, pair,
                # nonce, salt; prices and volumes finite by the verdict, as this fee is).
                digest = fields_digest_v2(
                    auction_prefixes(self.auction_id)[1], bidder, self.pair, price, volume,
                    fee, self.nonce, self.salt,
                )  # fmt: skip
                bid = ImprovementBid(
                    bidder, self.pair, price, volume, fee, digest, self.nonce, at, self.salt
                )
            else:  # a fee the verdict let through (an infinite ceiling): make_bid refuses it
                bid = make_bid(
                    self.auction_id, bidder, self.pair, price, volume, fee, self.nonce,
                    salt=self.salt, timestamp=at,
                )  # fmt: skip
            self._bids[i] = bid
        return bid

    def sealed(self, i: int) -> SealedBid:
        """Bid ``i``'s sealed form, as its commit stored it."""
        sealed = self._sealed.get(i)
        if sealed is None:
            sealed = self._sealed[i] = self.bid(i).sealed()
        return sealed

    def commit_event(self, i: int) -> CommitAccepted:
        return CommitAccepted(self.committed_at(i), self.sealed(i))

    def reveal_event(self, i: int) -> RevealAccepted:
        return RevealAccepted(self.revealed_at, self.bid(i))

    def rows(self) -> Sequence[ImprovementBid]:
        """Every bid as settlement reads it, in commit order: a :class:`RevealedRow` stands
        in for each revealed bid (settlement reads only its four fields), made when read;
        settlement's table takes the columns themselves (:attr:`RevealedRows.columns`)."""
        return cast(Sequence[ImprovementBid], RevealedRows(self))


class RevealedRows(Sequence[RevealedRow]):
    """:meth:`BatchBids.rows`: the batch's bids as :class:`RevealedRow` rows, each made when
    read (clearing reads a few: its winners'), and ``columns``, the prices, volumes and
    fees (lists in commit order) from which settlement builds its table. Immutable."""

    __slots__ = ("_batch", "columns")

    def __init__(self, batch: BatchBids) -> None:
        self._batch = batch
        self.columns = (batch.prices, batch.volumes, batch.fees)

    def improvement_array(self, baseline: float) -> FloatArray | None:
        """The prices' improvements over ``baseline`` (bps) if the batch worked them out
        over that baseline for its verdict (the same expression on float64s: the same
        bits), else None. Every one passed the rule book's verdict: finite, within the
        limits (as the volumes, finite and > 0)."""
        b = self._batch
        if b.improvements is None or b.baseline_price != baseline:
            return None
        return b.improvements

    def highest_fee(self) -> float | None:
        """The largest fee of the batch (token units), if it worked it out for its verdict;
        every fee is >= 0 (the rule book's verdict)."""
        return self._batch.highest_fee

    @overload
    def __getitem__(self, index: int) -> RevealedRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[RevealedRow]: ...

    def __getitem__(self, index: int | slice) -> RevealedRow | list[RevealedRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        b = self._batch
        return _row((b.bidder_ids[index], b.prices[index], b.volumes[index], b.fees[index]))

    def __len__(self) -> int:
        return len(self._batch.bidder_ids)

    def __iter__(self) -> Iterator[RevealedRow]:
        b = self._batch
        return map(_row, zip(b.bidder_ids, b.prices, b.volumes, b.fees, strict=True))


def float_list(column: FloatColumn) -> list[float]:
    """``column``'s entries as a list (an array's as Python floats)."""
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def _float_column(column: FloatColumn) -> tuple[list[float], FloatArray] | None:
    """``column`` as a list and a float64 array of the same values, if every entry is a
    float (a 1-D float64 array's are: no check per entry), else None."""
    if isinstance(column, np.ndarray):
        if column.dtype != np.float64 or column.ndim != 1:
            return None
        return column.tolist(), column
    values = list(column)
    if not set(map(type, values)) <= {float}:
        return None
    # (np.fromiter: the same float64 values as np.array, in a third of its time.)
    return values, np.fromiter(values, np.float64, len(values))


def accepted_batch(
    auction_id: str,
    pair: tuple[int, int],
    opened_at: datetime,
    clock: datetime,
    deadlines: tuple[datetime, datetime],
    limits: RevealLimits,
    baseline_price: float,
    last_nonces: MutableMapping[str, int],
    columns: tuple[list[str], FloatColumn, FloatColumn, FloatColumn, list[int]],
    nonce: int,
    salt: bytes,
) -> BatchBids | None:
    """The bids of :meth:`Auction.commit_reveal_finalize` as a :class:`BatchBids` if every
    one would be committed and revealed (arrival before the commit ``deadlines[0]`` on
    the auction's ``clock``, no replayed nonce, no bidder twice, well-formed fields, the
    rule book's reveal verdict, the reveal window after the commit window), else None.
    Raises :class:`InvalidBidParameters` for columns of unequal lengths or an arrival
    that is not whole microseconds."""
    bidder_ids, prices, volumes, fees, arrivals_us = columns
    n = len(bidder_ids)
    for name, column in (
        ("prices", prices),
        ("volumes", volumes),
        ("fees", fees),
        ("arrivals_us", arrivals_us),
    ):
        if len(column) != n:
            raise InvalidBidParameters(name, len(column), f"must hold {n} values, one a bid")
    if not set(map(type, arrivals_us)) <= {int}:
        for arrival in arrivals_us:
            if type(arrival) is not int:
                raise InvalidBidParameters("arrivals_us", arrival, "must be whole microseconds")
    commit_deadline, reveal_deadline = deadlines
    ids = list(bidder_ids)
    clock_us = (clock - opened_at) // _US
    if arrivals_us == sorted(arrivals_us) and (not n or arrivals_us[0] >= clock_us):
        commit_us = list(arrivals_us)  # in arrival order, after the clock: each its own
    else:
        commit_us = list(accumulate(arrivals_us, max, initial=clock_us))[1:]
    # Each id's bid, built once: the uniqueness check and both record tables read it.
    index = dict(zip(ids, count())) if set(map(type, ids)) == {str} else {}
    if not (
        n
        and len(index) == n
        and "" not in index  # every id a non-empty string, none twice
        and type(nonce) is int
        and 0 <= nonce <= MAX_NONCE
        and isinstance(salt, bytes)
        and len(salt) == SALT_SIZE
        and commit_us[-1] < (commit_deadline - opened_at) // _US
        and commit_deadline < reveal_deadline
        and (not last_nonces or last_nonces.keys().isdisjoint(ids))  # a fresh registry: none
    ):
        return None
    price, volume, fee = _float_column(prices), _float_column(volumes), _float_column(fees)
    if price is None or volume is None or fee is None:
        return None
    improvement = improvement_bps(price[1], baseline_price)
    # The rule book's verdict on the whole batch (reasons only matter if one fails, and
    # then the commands run one by one and give them).
    if not reveal_all_accepted(limits, improvement, volume[1], fee[1]):
        return None
    return BatchBids(
        auction_id, pair, opened_at, nonce, salt, ids, price[0], volume[0], fee[0],
        list(arrivals_us), commit_us, commit_deadline, index, baseline_price, improvement,
        float(fee[1].max()),
    )  # fmt: skip


class LazyRecords(dict[str, V]):
    """A bidder-id -> record dictionary whose records are made when first read.

    Keys are set at once, copied from ``index`` (each key's record index; so ``len``,
    ``in`` and iteration over keys cost nothing); a value is ``make(its index)`` until
    it is read, then the record itself. Every method that reads values is overridden,
    iteration too (so that ``dict(records)`` goes through them rather than copying the
    raw entries).
    """

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[int], V], index: Mapping[str, int]) -> None:
        # Until read, a value is the record's index (an int: never a record); copying a
        # dict costs a twentieth of building one.
        super().__init__(cast(Mapping[str, V], index))
        self._make = make

    def _all(self) -> None:
        """Make every record not made yet."""
        make, setitem = self._make, dict.__setitem__
        for key, raw in list(dict.items(self)):
            if type(raw) is int:
                setitem(self, key, make(cast(int, raw)))

    def __getitem__(self, key: str) -> V:
        raw: Any = dict.__getitem__(self, key)
        if type(raw) is int:
            raw = self._make(raw)
            dict.__setitem__(self, key, raw)
        value: V = raw
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return default

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            dict.pop(self, key)
            return value
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, V]:
        self._all()
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(dict.keys(self))

    def values(self) -> Any:
        self._all()
        return dict.values(self)

    def items(self) -> Any:
        self._all()
        return dict.items(self)

    def copy(self) -> dict[str, V]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        self._all()
        if isinstance(other, LazyRecords):
            other._all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __repr__(self) -> str:
        self._all()
        return dict.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (list(self.items()),))
