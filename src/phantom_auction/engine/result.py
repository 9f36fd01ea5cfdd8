"""What an auction tells the world: its announcement at open and its result at the end."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from .audit import Outcome
from .bids import ImprovementBid
from .phantoms import PhantomBid, PhantomModel

__all__ = ["AuctionAnnouncement", "AuctionResult", "Fill", "RankedBid", "Ranking"]


@dataclass(frozen=True, slots=True)
class AuctionAnnouncement:
    """Pushed to every bidder when an auction opens: what is for sale, the limits a bid
    must meet and when the windows end.

    ``baseline_price`` in B per A; ``amount`` and ``max_volume`` in token A units;
    improvement limits in bps over the baseline; a priority fee may be at most
    ``priority_fee_max_ratio * volume``. ``phantom_commitment`` is SHA-256 of the seed
    the phantom bids are drawn from (revealed in the result).

    The terms the phantoms clear by: ``phantom_policy`` (``reserve`` or ``floor``),
    ``min_participants`` (bids, real and phantom, needed to clear) and ``phantom_model``
    (the distribution the phantom bids are drawn from). ``None`` where unknown: an
    announcement from a server that does not state them.
    """

    auction_id: str
    token_pair: tuple[int, int]
    baseline_price: float
    amount: float
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    phantom_commitment: bytes
    mechanism: str
    min_improvement_bps: float
    max_improvement_bps: float
    max_volume: float
    priority_fee_max_ratio: float
    phantom_policy: str | None = None
    min_participants: int | None = None
    phantom_model: PhantomModel | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """``volume`` token A units sold at ``price`` (B per A) to ``bidder_id``; ``bidder_id``
    None is the CFMM, which takes whatever the bidders do not, at the baseline price."""

    bidder_id: str | None
    volume: float
    price: float

    @property
    def is_cfmm(self) -> bool:
        """True for the CFMM remainder at the baseline price."""
        return self.bidder_id is None


@dataclass(frozen=True, slots=True)
class RankedBid:
    """One bid's place in the competition (real or phantom), for per-auction publication.

    ``score = price_weight * improvement_bps + fee_weight * fee_bps`` with
    ``fee_bps = priority_fee / amount * 10_000``; ``rank`` 1 is the best score (ties:
    earlier commit first, real bids before phantoms). ``allocated`` is what the clearing
    rule gave the bid (token A units; a phantom's allocation goes to the CFMM),
    ``filled`` what the bidder actually buys, at ``fill_price`` B per A (None if nothing).
    """

    rank: int
    bidder_id: str
    is_phantom: bool
    improved_price: float
    volume: float
    priority_fee: float
    improvement_bps: float
    fee_bps: float
    score: float
    allocated: float
    filled: float
    fill_price: float | None


@dataclass(slots=True)
class RankingColumns:
    """The raw material of a ranking: one entry per bid, real bids first (commit order)
    then phantoms (slot order); ``order`` lists the indices from best score to worst.

    Built once per finalized auction and handed to one :class:`Ranking`; the sequences are
    the engine's own and are never changed afterwards (not frozen, and not copied into
    tuples, because this runs for every auction and most rankings are never read)."""

    bidder_ids: Sequence[str]
    n_real: int
    prices: Sequence[float]
    volumes: Sequence[float]
    fees: Sequence[float]
    allocated: Sequence[float] | None
    fill_prices: Sequence[float | None] | None
    order: Sequence[int]
    improvements: Sequence[float]
    fees_bps: Sequence[float]
    scores: Sequence[float]

    def build(self) -> tuple[RankedBid, ...]:
        """The :class:`RankedBid` entries, best first."""
        n_real = self.n_real
        prices, fees, allocated, fill_prices = (
            self.prices,
            self.fees,
            self.allocated,
            self.fill_prices,
        )
        entries = []
        for rank, i in enumerate(self.order, start=1):
            units = 0.0 if allocated is None else allocated[i]
            real = i < n_real
            price = fill_prices[i] if real and fill_prices is not None else None
            entries.append(
                RankedBid(
                    rank,
                    self.bidder_ids[i],
                    not real,
                    prices[i],
                    self.volumes[i],
                    fees[i],
                    self.improvements[i],
                    self.fees_bps[i],
                    self.scores[i],
                    units,
                    units if price is not None else 0.0,
                    price,
                )
            )
        return tuple(entries)


class Ranking(Sequence[RankedBid]):
    """Every bid's :class:`RankedBid`, best first: an immutable sequence.

    The engine hands over :class:`RankingColumns` and the entries are built on first
    access, because most results (a simulation, a benchmark) are never asked for them
    and building ~25 frozen records costs more than clearing the auction.
    """

    __slots__ = ("_columns", "_entries", "_fields")

    def __init__(
        self, entries: Iterable[RankedBid] = (), *, columns: RankingColumns | None = None
    ) -> None:
        self._columns = columns
        self._entries: tuple[RankedBid, ...] | None = None if columns else tuple(entries)
        self._fields: tuple[Any, ...] | None = None

    @classmethod
    def of_columns(cls, *fields: Any) -> Ranking:
        """The ranking of ``RankingColumns(*fields)`` (its fields in order), the columns
        themselves made when first read (most rankings never are)."""
        ranking = cls.__new__(cls)
        ranking._columns = None
        ranking._entries = None
        ranking._fields = fields
        return ranking

    @property
    def columns(self) -> RankingColumns | None:
        """The engine's columns this ranking is built from (None when given entries):
        for callers that read many rankings and want no per-bid records."""
        columns = self._columns
        if columns is None and self._fields is not None:
            columns = self._columns = RankingColumns(*self._fields)
        return columns

    def _built(self) -> tuple[RankedBid, ...]:
        entries = self._entries
        if entries is None:
            columns = self.columns
            assert columns is not None
            entries = self._entries = columns.build()
        return entries

    @overload
    def __getitem__(self, index: int) -> RankedBid: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[RankedBid, ...]: ...

    def __getitem__(self, index: int | slice) -> RankedBid | tuple[RankedBid, ...]:
        return self._built()[index]

    def __len__(self) -> int:
        if self._entries is None:
            columns = self.columns
            if columns is not None:
                return len(columns.order)
        return len(self._built())

    def __iter__(self) -> Iterator[RankedBid]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Ranking | tuple | list):
            return self._built() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return f"Ranking({list(self._built())!r})"

    def __reduce__(self) -> tuple[type[Ranking], tuple[tuple[RankedBid, ...]]]:
        return (Ranking, (self._built(),))


@dataclass(frozen=True, slots=True)
class AuctionResult:
    """The outcome of one auction.

    Seed fields: ``winning_bid`` (the best-ranked real bid that fills, else None),
    ``price`` (the user's volume-weighted price over the whole ``amount``, CFMM remainder
    included, B per A), ``amount`` (token A units), ``improvement_bps`` (``(price -
    baseline) / baseline * 10_000``), ``num_participants`` (revealed real bids + present
    phantoms), ``auction_duration_ms`` (open to finalize, engine time).

    Then: ``auction_id``, ``mechanism``, ``outcome``, ``fills`` (summing to ``amount``),
    ``phantom_won`` (a phantom ranked first, so its share went to the CFMM),
    ``phantom_seed`` (revealed; check with ``verify_phantoms``), ``unrevealed``
    (bidders whose commitment got no accepted reveal, in commit order), and for publication
    and verification ``phantom_commitment``, ``phantom_bids``, ``ranking``,
    ``baseline_price``, ``token_pair``, the window times, the ``phantom_model`` and the
    ``phantom_policy`` that cleared it (``phantom_bids`` and ``ranking`` are immutable
    sequences whose records are built when first read) (``reserve`` or ``floor``, see
    :mod:`phantom_auction.mechanisms.rules`).
    """

    winning_bid: ImprovementBid | None
    price: float
    amount: float
    improvement_bps: float
    num_participants: int
    auction_duration_ms: float
    auction_id: str
    mechanism: str
    outcome: Outcome
    fills: tuple[Fill, ...]
    phantom_won: bool
    phantom_seed: bytes
    unrevealed: tuple[str, ...]
    phantom_commitment: bytes
    phantom_bids: Sequence[PhantomBid]
    ranking: Sequence[RankedBid]
    baseline_price: float
    token_pair: tuple[int, int]
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    finalized_at: datetime
    phantom_model: PhantomModel
    phantom_policy: str = "reserve"
