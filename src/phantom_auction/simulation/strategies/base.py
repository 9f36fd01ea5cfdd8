"""The bidder-strategy interface shared by the simulator, the fast path and live bidders.

One concept past 600 lines: the interface (``BidderStrategy``) and the types it speaks
(``Bid``, ``AuctionView``, ``BidBatch``, feedback) with the adapters that let a seed-style
``generate_bid`` and a batch strategy be called alike; every strategy imports only this.

A strategy follows the seed's interface::

    generate_bid(baseline_price, baseline_quantity, market, rng) -> Bid | None

returning ``(price, quantity, timestamp, priority_fee)``: an improved price in token B
per token A, a volume in token A, an arrival time in ms since the auction opened and a
priority fee in token units. Optional keywords: ``private_value`` (the bidder's value
of the order, token B per token A) and ``view`` (an :class:`AuctionView`: a read-only
view of the auction's rules; never the rivals' bids). A strategy that re-bids over the
window overrides :meth:`BidderStrategy.generate_bids`; the simulator keeps, per bidder,
the best bid that arrived inside the collection window (a re-bid only counts if it
improves the standing one) and drops the rest.

The fast path calls :meth:`BidderStrategy.generate_batch` when a strategy offers it: the
bids of many auctions at once as numpy arrays (improvements in bps over baseline).
Built-in strategies draw one fixed-size block of uniforms per auction from their own
stream, so the batch and the scalar form produce the same bids from the same seed.
A custom strategy written only in the scalar form works too: the fast path then calls
it once per auction.

One module for the strategy interface (scalar and batch forms, feedback, views) that
every strategy module builds on.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ...errors import InvalidBidParameters
from ...mechanisms.rules import (
    BPS,
    IMPROVEMENT_TOLERANCE_BPS,
    improvement_bps,
    in_window,
    to_us,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = [
    "BATCH_FIELDS",
    "BOUND_SLACK_BPS",
    "BPS",
    "AuctionFeedback",
    "AuctionView",
    "Bid",
    "BidBatch",
    "BidderStrategy",
    "FeedbackBatch",
    "InvalidStrategyBid",
    "LabelledStrategy",
    "bid_slots",
    "call_generate_bids",
    "check_batch",
    "check_bids",
    "cumsum_rows",
    "generate_bid",
    "invalid_bid",
    "invalid_in_batch",
    "learns",
    "new_bid",
    "order_volume",
    "price_to_bps",
    "single_bid",
    "single_bid_batch",
    "spread",
    "strategy_label",
    "value_bps",
]

FloatArray = NDArray[np.float64]
#: Slack on improvement bounds (bps): a bid computed in bps and sent as a price comes
#: back a few ulps off, and must not flip from accepted to rejected on the way.
BOUND_SLACK_BPS = IMPROVEMENT_TOLERANCE_BPS


class Bid(NamedTuple):
    """One bid in the seed's form."""

    price: float
    """Improved price offered to the user (token B per token A)."""
    quantity: float
    """Volume (token A)."""
    timestamp: float
    """Arrival time (ms since the auction opened)."""
    priority_fee: float
    """Priority fee (token units)."""


#: ``new_bid((price, quantity, timestamp, priority_fee))``: a :class:`Bid` without the
#: Python-level ``Bid.__new__`` frame (the object path builds ~1,000 per auction).
new_bid: Callable[[tuple[float, float, float, float]], Bid] = partial(tuple.__new__, Bid)


def bid_slots(strategies: Sequence[Any], window_ms: float) -> list[int]:
    """Bids per auction each of ``strategies`` makes over a collection window of
    ``window_ms`` ms: its re-bid schedule's ``slots(view)``, else 1 (one bid)."""
    view = AuctionView(window_ms=window_ms)
    slots = [getattr(s, "slots", None) for s in strategies]
    return [int(count(view)) if callable(count) else 1 for count in slots]


def price_to_bps(baseline_price: float, price: float) -> float:
    """Improvement of ``price`` over ``baseline_price`` in bps (the rule book's)."""
    return improvement_bps(price, baseline_price)


@dataclass(frozen=True, slots=True)
class AuctionView:
    """What a bidder knows of the auction's rules.

    The defaults are a 100 ms VCG auction among 5 bidders with no phantoms (policy
    ``reserve``, one bid clears), not the packaged configuration: the simulator builds
    its views from its config, and :func:`~phantom_auction.simulation.live.served_view`
    gives a server's on the packaged one (Vickrey, 20 phantom slots, ``floor``, 2).

    ``window_ms``: collection window (later bids are dropped); ``duration_ms``: whole
    auction; improvements must lie in ``[min_improvement_bps, max_improvement_bps]``;
    volume at most ``max_volume_fraction`` of the order; priority fee at most
    ``priority_fee_max_ratio`` x volume; ``num_bidders`` real bidders (rivals + 1);
    ``value_distribution``: the marginal distribution of a real bidder's value in bps
    (frozen scipy; ``None`` if unknown); ``whole_order``: every bid is for the whole
    order (textbook mode); ``learning``: learning strategies may update across auctions.
    What a bidder knows of the phantoms: ``phantom_model`` (the published model; ``None``
    for none), ``phantom_policy`` (``reserve`` or ``floor``) and ``min_participants``
    (bids, real and phantom, needed to clear).
    """

    window_ms: float = 80.0
    duration_ms: float = 100.0
    min_improvement_bps: float = 10.0
    max_improvement_bps: float = 50.0
    max_volume_fraction: float = 1.0
    priority_fee_max_ratio: float = 0.01
    num_bidders: int = 5
    mechanism: str = "vcg"
    whole_order: bool = False
    learning: bool = False
    value_distribution: Any = None
    phantom_model: Any = None
    phantom_policy: str = "reserve"
    min_participants: int = 1

    def __post_init__(self) -> None:
        from ...mechanisms.clearing import canonical_mechanism

        object.__setattr__(self, "mechanism", canonical_mechanism(self.mechanism))

    @property
    def expected_value_bps(self) -> float:
        """The mean value (bps) a bidder assumes when it is not told its own."""
        if self.value_distribution is not None:
            mean = float(self.value_distribution.mean())
            if math.isfinite(mean):
                return mean
        low, high = self.min_improvement_bps, self.max_improvement_bps
        if math.isfinite(low) and math.isfinite(high):
            return (low + high) / 2.0
        return low if math.isfinite(low) else 0.0


def value_bps(baseline_price: float, private_value: float | None, view: AuctionView) -> float:
    """A bidder's value in bps: from ``private_value`` (token B per A) or the view's mean."""
    if private_value is None:
        return view.expected_value_bps
    return price_to_bps(baseline_price, private_value)


def order_volume(baseline_quantity: float, view: AuctionView) -> float:
    """The largest volume a bid may carry (token A): the whole order, within the limit."""
    return baseline_quantity * min(1.0, view.max_volume_fraction)


@dataclass(frozen=True, slots=True)
class BidBatch:
    """Bids of ``A`` auctions x ``R`` re-bid slots (time order within a row).

    ``improvement_bps`` over baseline, ``quantity`` (token A), ``timestamp_ms``,
    ``priority_fee`` (token units); ``present`` marks slots that hold a bid. ``tag`` is
    an optional per-auction integer (e.g. the learner's action) handed back in
    :class:`FeedbackBatch`.
    """

    improvement_bps: FloatArray
    quantity: FloatArray
    timestamp_ms: FloatArray
    priority_fee: FloatArray
    present: NDArray[np.bool_]
    tag: NDArray[np.int64] | None = None


def spread(values: Any, shape: tuple[int, int]) -> NDArray[Any]:
    """``np.broadcast_to`` of one value per row (``(A,)``) or of one number over
    ``shape`` ``(A, R)``: a read-only view, made without broadcast_to's own cost (~8 us a
    call, which the object path pays for every group of bidders in every auction)."""
    column = np.asarray(values)
    if column.ndim == 1 and not column.flags.c_contiguous:
        column = np.ascontiguousarray(column)  # a buffer must be contiguous
    if column.ndim == 0:
        strides: tuple[int, int] = (0, 0)
    elif column.shape == shape[:1]:
        strides = (column.strides[0], 0)
    else:
        raise ValueError(f"cannot spread {column.shape} over {shape}")
    out: NDArray[Any] = np.ndarray(shape, column.dtype, column, 0, strides)
    out.flags.writeable = False
    return out


#: Rows from which :func:`cumsum_rows` adds column by column rather than call np.cumsum.
CUMSUM_LOOP_ROWS = 256


def cumsum_rows(a: FloatArray) -> FloatArray:
    """``np.cumsum(a, axis=1)`` in place (``a``: a writable 2-D array), the same bits.

    numpy accumulates along a short last axis one row at a time (many rows of a few
    slots: ~10x slower than an elementwise pass); adding column ``k - 1`` into column
    ``k`` for each ``k`` does the same additions in the same order, a column at a time.
    Few rows (the object path's groups): np.cumsum, whose per-call cost is then lower.
    """
    if a.shape[0] < CUMSUM_LOOP_ROWS:
        return np.cumsum(a, axis=1, out=a)
    for k in range(1, a.shape[1]):
        np.add(a[:, k - 1], a[:, k], out=a[:, k])
    return a


#: Rows per block in :func:`add_to_rows`: a block is one long run of ``block * R`` numbers.
ROW_BLOCK = 256


def add_to_rows(a: FloatArray, row: FloatArray) -> FloatArray:
    """``a += row`` (``a``: C-contiguous ``(A, R)``, ``row``: ``(R,)``), the same bits.

    numpy broadcasts a row over a short-rowed array one row at a time (~0.9 ms per
    65,536 rows of 17); seen as rows of ``ROW_BLOCK`` rows each, with ``row`` repeated
    to match, the additions are the same and run over long contiguous spans (~0.3 ms).
    """
    n, r = a.shape
    whole = n - n % ROW_BLOCK
    if whole and a.flags.c_contiguous:
        blocks = a[:whole].reshape(whole // ROW_BLOCK, ROW_BLOCK * r)  # a view
        blocks += np.tile(row, ROW_BLOCK)
        a[whole:] += row
    else:
        a += row
    return a


def single_bid(
    baseline_price: float,
    baseline_quantity: float,
    view: AuctionView,
    bid_bps: float,
    timestamp_ms: float,
) -> list[Bid]:
    """One bid of ``bid_bps`` (capped at the accepted maximum) for the whole order, no fee.

    Empty when ``bid_bps`` is below the accepted minimum.
    """
    if not bid_bps >= view.min_improvement_bps - BOUND_SLACK_BPS:
        return []
    imp = min(bid_bps, view.max_improvement_bps)
    qty = order_volume(baseline_quantity, view)
    return [Bid(baseline_price * (1.0 + imp / BPS), qty, timestamp_ms, 0.0)]


def single_bid_batch(
    view: AuctionView, baseline_quantity: float, bids_bps: FloatArray, times_ms: FloatArray
) -> BidBatch:
    """:func:`single_bid` for many auctions: one slot per row."""
    n = bids_bps.shape[0]
    return BidBatch(
        np.asarray(np.minimum(bids_bps, view.max_improvement_bps))[:, None],
        np.full((n, 1), order_volume(baseline_quantity, view)),
        times_ms[:, None],
        np.zeros((n, 1)),
        (bids_bps >= view.min_improvement_bps - BOUND_SLACK_BPS)[:, None],
    )


#: The fields of a strategy's batch form (:class:`BidBatch`), in :class:`Bid`'s order
#: (price as an improvement, quantity, timestamp, priority fee).
BATCH_FIELDS = ("improvement_bps", "quantity", "timestamp_ms", "priority_fee")


def invalid_bid(bid: Bid) -> tuple[str, float] | None:
    """The first field of ``bid`` that no strategy may send in a simulation, and its
    value: a price, timestamp or priority fee that is not finite, or a quantity that is
    not finite and at least 0 (``None`` when there is none).

    The rule book refuses such a bid like any other out of bounds (NaN fails every
    check), which is right for a live auction; in the simulator it is a bug in the
    strategy, and a bid that vanished would bias the results without a word. A finite
    bid out of bounds is a legitimate refusal (the simulator counts it in
    ``refused_bids``)."""
    price, quantity, timestamp, fee = bid
    try:
        if (
            math.isfinite(price)
            and math.isfinite(timestamp)
            and math.isfinite(fee)
            and 0.0 <= quantity < math.inf
        ):
            return None
    except TypeError:
        pass  # a field that is not a number: named below
    for name, value in zip(Bid._fields, bid, strict=True):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return name, value
        if not (0.0 <= value < math.inf if name == "quantity" else math.isfinite(value)):
            return name, value
    return None  # pragma: no cover - one of the tests above failed


def _distinct(a: NDArray[Any]) -> NDArray[Any]:
    """``a`` without its broadcast axes (those of stride 0: one value spread)."""
    if a.ndim and 0 in a.strides:
        return a[tuple(slice(None) if s else slice(0, 1) for s in a.strides)]
    return a


#: Entries up to which a column is checked in Python (:func:`_sendable`): numpy's calls
#: cost ~1 us each whatever the size, and the object path checks small batches (its
#: groups of bidders, one auction at a time in a learning run).
SMALL_COLUMN = 64


def _sendable(column: NDArray[Any], quantity: bool) -> bool:
    """Whether every entry of ``column``, the padding's too, is one a strategy may send
    (see :func:`invalid_bid`): a sum is finite only when every term is (one that
    overflows sends the caller to the exact test). A quantity must also be >= 0."""
    if column.size <= SMALL_COLUMN:
        values = column.ravel().tolist()  # Python floats: inf - inf is NaN, no warning
        return math.isfinite(sum(values)) and (not quantity or min(values, default=0.0) >= 0.0)
    if quantity:
        return bool(column.min() >= 0.0 and column.max() < np.inf)  # NaN fails both
    with np.errstate(all="ignore"):  # inf - inf, or an overflow: not finite, no warning
        return math.isfinite(np.add.reduce(column, axis=None))


def invalid_in_batch(batch: BidBatch) -> tuple[str, float, int] | None:
    """:func:`invalid_bid` for a strategy's batch form: the first field (in
    :data:`BATCH_FIELDS` order) that holds an entry no strategy may send in a slot that
    holds a bid (``present``), its value, and the slot (a flat index into ``present``);
    ``None`` when there is none. The padding's entries are not bids (the equilibrium
    bidder leaves NaN where it does not bid): a column is looked at slot by slot only
    when one of its entries, the padding's included, is not sendable."""
    present: NDArray[np.bool_] | None = None
    for k, column in enumerate(
        (batch.improvement_bps, batch.quantity, batch.timestamp_ms, batch.priority_fee)
    ):
        column = np.asarray(column)
        if _sendable(_distinct(column), k == 1):
            continue  # the common case
        if present is None:
            present = np.asarray(batch.present, dtype=bool)
        sent = np.broadcast_to(column, present.shape)[present]
        with np.errstate(invalid="ignore"):
            ok = (sent >= 0.0) & (sent < np.inf) if k == 1 else np.isfinite(sent)
        if not ok.all():
            first = int(np.argmin(ok))
            return BATCH_FIELDS[k], float(sent[first]), int(np.flatnonzero(present)[first])
    return None


class InvalidStrategyBid(InvalidBidParameters):
    """A bid that strategy ``strategy`` (its label; real bidder ``bidder``) sent with
    ``field`` at ``value``, which no strategy may send in a simulation (see
    :func:`invalid_bid`): an :class:`~phantom_auction.errors.InvalidBidParameters` that
    names the strategy too, and that a worker process or a Dask worker can send back to
    the caller whole (it pickles with its arguments)."""

    def __init__(self, strategy: str, bidder: int, field: str, value: float) -> None:
        self.strategy = strategy
        self.bidder = bidder
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            what = f"not a number (a {type(value).__name__})"
        else:
            what = "negative or not finite" if field == "quantity" else "not finite"
        super().__init__(
            field,
            value,
            f"strategy {strategy!r} (bidder real_{bidder}) sent a bid whose {field} is "
            f"{what}: a bug in the strategy (the rule book would refuse the bid, and the "
            "results would not show it)",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.strategy, self.bidder, self.field, self.value))


def check_bids(bids: Sequence[Bid], labels: Sequence[str], bidder: int) -> None:
    """Raise :class:`InvalidStrategyBid` for the first of real bidder ``bidder``'s
    ``bids`` that no strategy may send (:func:`invalid_bid`); ``labels``: the bidders'."""
    for bid in bids:
        bad = invalid_bid(bid)
        if bad is not None:
            raise InvalidStrategyBid(labels[bidder], bidder, *bad)


def check_batch(
    batch: BidBatch, labels: Sequence[str], members: Sequence[int], rows_each: int
) -> None:
    """:func:`check_bids` for a batch form (:func:`invalid_in_batch`) whose row ``r``
    holds real bidder ``members[r // rows_each]``'s bids."""
    bad = invalid_in_batch(batch)
    if bad is not None:
        field, value, slot = bad
        bidder = members[slot // batch.present.shape[1] // rows_each]
        raise InvalidStrategyBid(labels[bidder], bidder, field, value)


def _best_in_window(bids: Sequence[Bid], view: AuctionView | None) -> Bid | None:
    """The highest-priced bid that arrived inside the collection window."""
    deadline_us = to_us((view or AuctionView()).window_ms)
    best: Bid | None = None
    for bid in bids:
        if in_window(bid.timestamp, deadline_us) and (best is None or bid.price > best.price):
            best = bid
    return best


@dataclass(frozen=True, slots=True)
class AuctionFeedback:
    """What a bidder learns after one auction: its own outcome and the public price.

    ``allocation`` in token A; ``payment_bps`` per unit over baseline; ``reward_bps`` its
    utility ``(value - payment) * allocation / order size`` in bps of the order;
    ``clearing_price`` the user's price (token B per A).
    """

    participated: bool
    allocation: float
    payment_bps: float
    reward_bps: float
    clearing_price: float


@dataclass(frozen=True, slots=True)
class FeedbackBatch:
    """:class:`AuctionFeedback` of consecutive auctions as arrays, plus the batch's tags."""

    participated: NDArray[np.bool_]
    allocation: FloatArray
    payment_bps: FloatArray
    reward_bps: FloatArray
    clearing_price: FloatArray
    tag: NDArray[np.int64] | None = None


_KEYWORDS_CACHE: dict[Any, frozenset[str] | None] = {}


def _accepted_keywords(func: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword names ``func`` accepts among ours; ``None`` when it takes ``**kwargs``."""
    key = getattr(func, "__func__", func)
    if key in _KEYWORDS_CACHE:
        return _KEYWORDS_CACHE[key]
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        accepted: frozenset[str] | None = frozenset()
    else:
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            accepted = None
        else:
            accepted = frozenset(p.name for p in params) & {"private_value", "view"}
    _KEYWORDS_CACHE[key] = accepted
    return accepted


def _as_bid(raw: Any, where: str) -> Bid:
    """A :class:`Bid` from a tuple, a named tuple or an object with the four fields."""
    if isinstance(raw, Bid):
        return raw
    if all(hasattr(raw, f) for f in Bid._fields):
        return Bid(*(float(getattr(raw, f)) for f in Bid._fields))
    if isinstance(raw, Mapping):
        # Every key, and no other: a misspelt one is named, not a bare KeyError (the API
        # audit) nor silently dropped.
        if set(raw) != set(Bid._fields):
            wrong = sorted(set(raw) ^ set(Bid._fields), key=str)
            raise InvalidBidParameters(
                where, raw, f"has or lacks key {wrong[0]!r}: a bid has {', '.join(Bid._fields)}"
            )
        return Bid(*(float(raw[f]) for f in Bid._fields))
    if isinstance(raw, Sequence) and len(raw) == 4:
        return Bid(*(float(x) for x in raw))
    raise InvalidBidParameters(
        where, raw, "must return None or (price, quantity, timestamp, priority_fee)"
    )


def _call_with_keywords(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    private_value: float | None,
    view: AuctionView | None,
) -> Any:
    accepted = _accepted_keywords(func)
    kwargs: dict[str, Any] = {}
    if accepted is None or "private_value" in accepted:
        kwargs["private_value"] = private_value
    if accepted is None or "view" in accepted:
        kwargs["view"] = view
    return func(*args, **kwargs)


class BidderStrategy:
    """Base class of bidding strategies (Axelrod style: a ``name`` and a ``classifier``).

    Subclasses implement :meth:`generate_bid` (one bid; the seed's form) or
    :meth:`generate_bids` (re-bids over the window); either is enough. Optional:
    :meth:`generate_batch` (the fast path), :meth:`observe` / :meth:`observe_batch`
    (learning across auctions).
    """

    #: Short name in results and reports; empty means the class name.
    name: ClassVar[str] = ""
    #: Properties of the strategy: ``stochastic`` (draws random numbers), ``learns``
    #: (changes across auctions), ``truthful`` (bids its value), ``uses_private_value``,
    #: ``rebids`` (several bids per auction), ``vectorised`` (has a batch form).
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": False,
        "uses_private_value": False,
        "rebids": False,
        "vectorised": False,
    }

    @property
    def label(self) -> str:
        """Name under which results report this bidder: its ``name``, else its class name."""
        return self.name or type(self).__name__

    def generate_bid(
        self,
        baseline_price: float,
        baseline_quantity: float,
        market: MarketConditions,
        rng: np.random.Generator,
        *,
        private_value: float | None = None,
        view: AuctionView | None = None,
    ) -> Bid | None:
        """The bid this strategy stands on: its best bid inside the collection window."""
        if type(self).generate_bids is BidderStrategy.generate_bids:
            raise NotImplementedError(
                f"{type(self).__name__} must implement generate_bid or generate_bids"
            )
        bids = self.generate_bids(
            baseline_price,
            baseline_quantity,
            market,
            rng,
            private_value=private_value,
            view=view,
        )
        return _best_in_window(bids, view)

    def generate_bids(
        self,
        baseline_price: float,
        baseline_quantity: float,
        market: MarketConditions,
        rng: np.random.Generator,
        *,
        private_value: float | None = None,
        view: AuctionView | None = None,
    ) -> list[Bid]:
        """Every bid of one auction in time order (default: the one :meth:`generate_bid`)."""
        if type(self).generate_bid is BidderStrategy.generate_bid:
            raise NotImplementedError(
                f"{type(self).__name__} must implement generate_bid or generate_bids"
            )
        raw = _call_with_keywords(
            self.generate_bid,
            (baseline_price, baseline_quantity, market, rng),
            private_value,
            view,
        )
        return [] if raw is None else [_as_bid(raw, f"{type(self).__name__}.generate_bid")]

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch | None:
        """Bids of ``len(values_bps)`` auctions at once, or ``None`` (no batch form).

        Default: the two steps below when :meth:`batch_draws` gives a number (one block
        of that many uniforms per row, then :meth:`prepare_batch` and
        :meth:`finish_batch`), else ``None``."""
        draws = self.batch_draws(view)
        if draws is None:
            return None
        u = rng.random((values_bps.shape[0], draws))
        prepared = self.prepare_batch(view, market, baseline_price, baseline_quantity, u)
        return self.finish_batch(
            view, market, baseline_price, baseline_quantity, values_bps, prepared
        )

    # The batch form in two steps. What a row bids from its uniforms alone (times,
    # volumes, fees, offers before they meet the value) is worked out first; the value
    # comes in second. The object path prepares many auctions' rows at once from the
    # uniforms it draws ahead (one call instead of one per auction) and finishes each
    # auction when its values are known; the fast path runs both steps on one batch.
    # Either way every row goes through the same operations, so the same bits.

    def batch_draws(self, view: AuctionView) -> int | None:
        """Uniforms per row of the two-step batch form, or ``None`` (no such form)."""
        return None

    def prepare_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        u: FloatArray,
    ) -> tuple[Any, ...]:
        """What rows with uniforms ``u`` (``(rows, batch_draws)``) bid before their values
        are known: a tuple whose arrays hold one entry per row on their first axis
        (anything else in it holds for every row). Rows are independent: a slice of the
        rows of every array is what the same slice of ``u`` would have given."""
        raise NotImplementedError(
            f"{type(self).__name__}.batch_draws gives a number: it must implement "
            "prepare_batch and finish_batch too (or batch_draws returns None)"
        )

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        """The bids of rows valued ``values_bps`` whose :meth:`prepare_batch` is
        ``prepared`` (the arrays must not be written to: the object path reuses them)."""
        raise NotImplementedError(
            f"{type(self).__name__}.batch_draws gives a number: it must implement "
            "prepare_batch and finish_batch too (or batch_draws returns None)"
        )

    def batch_state(self, view: AuctionView, market: MarketConditions) -> Hashable:
        """What :meth:`prepare_batch` read of this strategy's changing state (a learner's
        policy): rows prepared under another state must be prepared again. Default:
        nothing (``None``)."""
        return None

    def batch_key(self, view: AuctionView, market: MarketConditions) -> Hashable:
        """Bidders whose (built-in) strategies give equal keys bid together in the object
        path: one :meth:`generate_batch` call, rows = bidders (each row from the bidder's
        own stream), so equal keys must mean the same bids from the same draws. Default:
        the class and its ``repr`` (its parameters)."""
        return (type(self), repr(self))

    def observe(self, feedback: AuctionFeedback) -> None:
        """Learn from one auction's outcome (default: nothing)."""

    def observe_batch(self, feedback: FeedbackBatch) -> None:
        """Learn from consecutive auctions, in order (default: :meth:`observe` on each)."""
        for i in range(feedback.participated.shape[0]):
            self.observe(
                AuctionFeedback(
                    bool(feedback.participated[i]),
                    float(feedback.allocation[i]),
                    float(feedback.payment_bps[i]),
                    float(feedback.reward_bps[i]),
                    float(feedback.clearing_price[i]),
                )
            )

    def auctions_until_refresh(self) -> int:
        """Auctions the current policy stays fixed for (the fast path's learning block)."""
        return 1

    def copy(self) -> BidderStrategy:
        """An independent copy (own learning state)."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        params = (
            ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
            if hasattr(self, "__dict__")
            else ""
        )
        return f"{type(self).__name__}({params})"


class LabelledStrategy(BidderStrategy):
    """``inner`` reported under another ``label`` (e.g. to tell two adaptive bidders apart)."""

    def __init__(self, inner: Any, label: str) -> None:
        self.inner = inner
        self._label = str(label)

    @property
    def label(self) -> str:
        return self._label

    @property
    def classifier(self) -> Mapping[str, bool]:  # type: ignore[override]
        inner = getattr(self.inner, "classifier", None)
        return dict(inner) if isinstance(inner, Mapping) else dict(BidderStrategy.classifier)

    def generate_bids(
        self,
        baseline_price: float,
        baseline_quantity: float,
        market: MarketConditions,
        rng: np.random.Generator,
        *,
        private_value: float | None = None,
        view: AuctionView | None = None,
    ) -> list[Bid]:
        return call_generate_bids(
            self.inner, baseline_price, baseline_quantity, market, rng, private_value, view
        )

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch | None:
        method = getattr(self.inner, "generate_batch", None)
        if method is None:
            return None
        batch: BidBatch | None = method(
            view, market, baseline_price, baseline_quantity, values_bps, rng
        )
        return batch

    def observe(self, feedback: AuctionFeedback) -> None:
        method = getattr(self.inner, "observe", None)
        if method is not None:
            method(feedback)

    def observe_batch(self, feedback: FeedbackBatch) -> None:
        method = getattr(self.inner, "observe_batch", None)
        if method is not None:
            method(feedback)
        else:
            super().observe_batch(feedback)

    def auctions_until_refresh(self) -> int:
        method = getattr(self.inner, "auctions_until_refresh", None)
        return int(method()) if method is not None else 1


def strategy_label(strategy: Any) -> str:
    """The name results use for ``strategy``: its ``label``, ``name`` or class name."""
    for attr in ("label", "name"):
        value = getattr(strategy, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(strategy).__name__


def learns(strategy: Any) -> bool:
    """Whether ``strategy`` learns across auctions (classifier flag, or an ``observe``)."""
    classifier = getattr(strategy, "classifier", None)
    if isinstance(strategy, BidderStrategy) and isinstance(classifier, Mapping):
        return bool(classifier.get("learns", False))
    return callable(getattr(strategy, "observe", None))


def generate_bid(
    strategy: Any,
    baseline_price: float,
    baseline_quantity: float,
    market: MarketConditions,
    rng: np.random.Generator,
    *,
    private_value: float | None = None,
    view: AuctionView | None = None,
) -> Bid | None:
    """The seed's ``generate_bid(strategy, baseline_price, baseline_quantity, market, rng)``.

    The bid ``strategy`` stands on for one auction: its best bid inside the collection
    window, or ``None``. Works for a :class:`BidderStrategy` and for any object with
    the seed's ``generate_bid`` method (keywords it does not declare are not passed).

    Units: ``baseline_price`` and ``private_value`` are prices in token B per token A
    (a value of ``v`` bps is ``baseline_price * (1 + v / 10_000)``, not ``v``);
    ``baseline_quantity`` is the order in token A. The bid's ``price`` is in B per A,
    its ``quantity`` in token A, its ``timestamp`` in ms after the auction opened and
    its ``priority_fee`` in token units.
    """
    if isinstance(strategy, BidderStrategy):
        return strategy.generate_bid(
            baseline_price,
            baseline_quantity,
            market,
            rng,
            private_value=private_value,
            view=view,
        )
    bids = call_generate_bids(
        strategy, baseline_price, baseline_quantity, market, rng, private_value, view
    )
    return _best_in_window(bids, view)


def call_generate_bids(
    strategy: Any,
    baseline_price: float,
    baseline_quantity: float,
    market: MarketConditions,
    rng: np.random.Generator,
    private_value: float | None,
    view: AuctionView | None,
) -> list[Bid]:
    """Every bid of ``strategy`` for one auction, whatever form it implements.

    Accepts a :class:`BidderStrategy` or any object with the seed's ``generate_bid``
    (keywords it does not declare are not passed).
    """
    if isinstance(strategy, BidderStrategy):
        return strategy.generate_bids(
            baseline_price,
            baseline_quantity,
            market,
            rng,
            private_value=private_value,
            view=view,
        )
    method = getattr(strategy, "generate_bids", None)
    if callable(method):
        raw_list = _call_with_keywords(
            method, (baseline_price, baseline_quantity, market, rng), private_value, view
        )
        where = f"{type(strategy).__name__}.generate_bids"
        return [_as_bid(raw, where) for raw in raw_list]
    method = getattr(strategy, "generate_bid", None)
    if not callable(method):
        raise InvalidBidParameters(
            "strategy", strategy, "must be a BidderStrategy or have a generate_bid method"
        )
    raw = _call_with_keywords(
        method, (baseline_price, baseline_quantity, market, rng), private_value, view
    )
    return [] if raw is None else [_as_bid(raw, f"{type(strategy).__name__}.generate_bid")]
