"""What both simulation paths share: the resolved rules, the random streams, the draws.

A run's randomness is split into independent streams, all children of one
``SeedSequence`` (the run's root for ``run_simulation``, a chunk's child for Monte
Carlo): child 0 draws the market (true price, values), child 1 the phantom bids, child
``2 + i`` everything real bidder ``i`` decides. Children are derived by spawn key, not
by ``SeedSequence.spawn`` (which counts calls), so re-deriving a chunk's streams always
gives the same numbers. The market and phantom draws of a chunk are taken at once; each
built-in strategy takes one fixed-size block per auction from its stream, so a chunk
simulated auction by auction (the object path) sees the same numbers as one simulated
on arrays (the fast path).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from ..config import AuctionConfig
from ..engine.phantoms import PhantomArrays, PhantomModel, truncated_normal_bps
from ..errors import InvalidBidParameters
from ..mechanisms.rules import AuctionRules, RevealLimits, improvement_bps, to_us
from .market import MarketConditions, ValueModel
from .settings import SimulationConfig, check_real_bids
from .strategies.base import AuctionView, bid_slots, learns, strategy_label

__all__ = [
    "AHEAD_AUCTIONS",
    "AHEAD_NUMBERS",
    "PATH_POINTS",
    "AuctionEnvironment",
    "ExogenousDraws",
    "Streams",
    "UniformsAhead",
    "build_environment",
    "check_baseline",
    "child_seed",
    "draw_exogenous",
    "draw_exogenous_each",
    "draw_phantoms",
    "phantom_arrays",
    "phantom_best",
    "phantom_block",
    "phantom_counts",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Points of a convergence path over the collection window.
PATH_POINTS = 101

WINNER_PHANTOM = -1
WINNER_NONE = -2


def check_baseline(baseline_price: Any, baseline_quantity: Any) -> tuple[float, float]:
    """Both as floats, or :class:`InvalidBidParameters` (a zero price would give NaN bps)."""
    for name, value, unit in (
        ("baseline_price", baseline_price, "token B per token A"),
        ("baseline_quantity", baseline_quantity, "token A"),
    ):
        try:
            if isinstance(value, str | bytes | bool):  # float("100") would take a string
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidBidParameters(name, value, f"must be a number ({unit})") from None
        if not (math.isfinite(number) and number > 0.0):
            raise InvalidBidParameters(name, value, f"must be finite and > 0 ({unit})")
    return float(baseline_price), float(baseline_quantity)


def child_seed(seed_seq: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """The ``k``-th child of ``seed_seq``, derived without mutating it."""
    return np.random.SeedSequence(
        entropy=seed_seq.entropy,
        spawn_key=(*seed_seq.spawn_key, k),
        pool_size=seed_seq.pool_size,
    )


#: Auctions' worth of uniforms a group of bidders draws ahead at most, and the most
#: numbers one group holds (512 KiB).
AHEAD_AUCTIONS = 32
AHEAD_NUMBERS = 1 << 16


class UniformsAhead:
    """Bidders' uniforms drawn ahead, for the object path's batch forms (one row a bidder).

    A built-in strategy takes one block of ``block`` uniforms per auction from its
    bidder's stream; drawing several auctions' blocks in one call gives the same numbers
    in the same order (PCG64 fills an array as successive calls would), in fewer calls:
    one per bidder every few auctions instead of one per bidder and auction. Bidders
    who bid together share one buffer. What a group has not used is given back (its
    streams stepped back) before any of its bidders' streams is used otherwise: another
    block size or group, or a scalar form. So no bidder's numbers depend on this.
    """

    __slots__ = ("_groups", "_owner")

    def __init__(self) -> None:
        self._groups: dict[tuple[int, ...], list[Any]] = {}  # group -> [block, buffer, next]
        self._owner: dict[int, tuple[int, ...]] = {}

    def take(
        self, rngs: Sequence[np.random.Generator], group: tuple[int, ...], block: int
    ) -> FloatArray:
        """The next ``block`` uniforms of each bidder of ``group``: ``(len(group), block)``."""
        buffer, at = self.take_at(rngs, group, block)
        taken: FloatArray = buffer[:, at, :]
        return taken

    def take_at(
        self,
        rngs: Sequence[np.random.Generator],
        group: tuple[int, ...],
        block: int,
        auctions: int = 1,
    ) -> tuple[FloatArray, int]:
        """The next ``auctions`` auctions' blocks as the buffer they come from,
        ``(len(group), buffered auctions, block)`` (the same object until it is used up or
        given back), and the first auction taken: ``buffer[:, at:at + auctions]``."""
        entry = self._groups.get(group)
        if entry is None or entry[0] != block or entry[1].shape[1] - entry[2] < auctions:
            self.give_back(rngs, group)
            count = min(AHEAD_AUCTIONS, AHEAD_NUMBERS // max(1, len(group) * block))
            # Whole spans of ``auctions``: nothing drawn (and prepared) to be given back.
            count = max(1, auctions, count - count % auctions)
            buffer = np.empty((len(group), count, block))
            for j, i in enumerate(group):
                rngs[i].random(out=buffer[j])
            entry = self._groups[group] = [block, buffer, 0]
            self._owner.update(dict.fromkeys(group, group))
        at = entry[2]
        entry[2] = at + auctions
        return entry[1], at

    def give_back(self, rngs: Sequence[np.random.Generator], bidders: Iterable[int]) -> None:
        """Step back the streams of every group holding one of ``bidders`` by the numbers
        it drew and did not use (PCG64 steps back exactly)."""
        owner = self._owner
        for i in bidders:
            group = owner.get(i)
            if group is None:
                continue
            block, buffer, used = self._groups.pop(group)
            unused = (buffer.shape[1] - used) * block
            for k in group:
                del owner[k]
                if unused:
                    rngs[k].bit_generator.advance(-unused)  # type: ignore[attr-defined]


@dataclass(slots=True)
class Streams:
    """The generators of one chunk (or of a simulator's ``run_simulation`` calls), and
    the bidders' uniforms drawn ahead from them (:class:`UniformsAhead`: a bidder's
    generator may be ahead of what its bids used; anything other than the object path
    drawing from it first calls ``ahead.give_back``, or, for a simulator's streams, whose
    market and phantom generators may be ahead too, ``PhantomSimulator.give_back()``)."""

    root: np.random.SeedSequence
    market: np.random.Generator
    phantom: np.random.Generator
    bidders: list[np.random.Generator] = field(default_factory=list)
    ahead: UniformsAhead = field(default_factory=UniformsAhead)

    @classmethod
    def from_seed(cls, root: np.random.SeedSequence, n_bidders: int) -> Streams:
        streams = cls(
            root,
            np.random.Generator(np.random.PCG64(child_seed(root, 0))),
            np.random.Generator(np.random.PCG64(child_seed(root, 1))),
        )
        streams.ensure_bidders(n_bidders)
        return streams

    def ensure_bidders(self, n_bidders: int) -> None:
        """Add the streams of bidders appended since (bidder i always gets child 2 + i)."""
        while len(self.bidders) < n_bidders:
            k = 2 + len(self.bidders)
            self.bidders.append(np.random.Generator(np.random.PCG64(child_seed(self.root, k))))


@dataclass(frozen=True, slots=True)
class AuctionEnvironment:
    """The rules of every auction of one run, resolved from config, market and baseline.

    Improvements in bps over ``baseline_price``; volumes in token A. In textbook mode the
    bounds are ``[reserve, inf)`` (the reserve is ``reserve_bps``, by default 0 bps: the
    baseline) and every bid is for the whole order. ``rules`` is the rule book's view of
    all this (what the engine enforces); ``window_ms`` its collection window, which a bid
    must arrive strictly before (``deadline_us`` microseconds after the open).
    """

    baseline_price: float
    baseline_quantity: float
    mechanism: str
    window_ms: float
    duration_ms: float
    textbook: bool
    learning: bool
    phantom_model: PhantomModel
    value_model: ValueModel
    market: MarketConditions
    view: AuctionView
    labels: tuple[str, ...]
    learner_flags: tuple[bool, ...]
    rules: AuctionRules
    deadline_us: int
    auction_config: AuctionConfig | None
    #: ``(label, bidder indices)`` in order of first appearance.
    label_groups: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def limits(self) -> RevealLimits:
        """The rule book's reveal limits for this baseline quantity."""
        return self.rules.limits(self.baseline_quantity)

    @property
    def num_bidders(self) -> int:
        return len(self.labels)

    @property
    def time_grid_ms(self) -> FloatArray:
        """Times (ms) at which convergence paths are sampled."""
        return np.linspace(0.0, self.window_ms, PATH_POINTS)


def build_environment(
    config: SimulationConfig,
    market: MarketConditions,
    strategies: Sequence[Any],
    baseline_price: float,
    baseline_quantity: float,
) -> AuctionEnvironment:
    """Resolve the rules of a run (validates the baseline and the real bids' bound)."""
    price, quantity = check_baseline(baseline_price, baseline_quantity)
    check_real_bids(config, lambda window_ms: bid_slots(strategies, window_ms))
    n = len(strategies)
    textbook = config.textbook
    value_model = ValueModel.build(market, n, quantity, config.distribution)
    view = AuctionView(
        window_ms=config.collection_window_ms,
        duration_ms=float(config.auction_duration_ms),
        min_improvement_bps=config.min_improvement_bps,
        max_improvement_bps=config.max_improvement_bps,
        max_volume_fraction=config.max_bid_value_multiplier,
        priority_fee_max_ratio=config.priority_fee_max_ratio,
        num_bidders=max(n, 1),
        mechanism=config.clearing_mechanism,
        whole_order=textbook,
        learning=config.enable_learning,
        value_distribution=value_model.marginal,
        phantom_model=config.resolved_phantom_model if config.num_phantom_bidders else None,
        phantom_policy=config.phantom_policy,
        min_participants=config.resolved_min_participants,
    )
    duration = float(config.auction_duration_ms)
    rules = AuctionRules(
        mechanism=config.clearing_mechanism,
        min_bps=config.min_improvement_bps,
        max_bps=config.max_improvement_bps,
        volume_multiplier=config.max_bid_value_multiplier,
        fee_ratio=config.priority_fee_max_ratio,
        price_weight=config.price_weight,
        fee_weight=config.fee_weight,
        min_participants=config.resolved_min_participants,
        duration_ms=duration,
        reveal_delay_ms=config.resolved_reveal_delay_ms,
        min_window_ms=min(config.min_window_ms, duration),
        phantom_policy=config.phantom_policy,
    )
    window_ms, _ = rules.windows_ms(duration)
    labels = tuple(strategy_label(s) for s in strategies)
    groups = tuple(
        (label, tuple(i for i, other in enumerate(labels) if other == label))
        for label in dict.fromkeys(labels)
    )
    return AuctionEnvironment(
        baseline_price=price,
        baseline_quantity=quantity,
        mechanism=config.clearing_mechanism,
        window_ms=window_ms,
        duration_ms=duration,
        textbook=textbook,
        learning=config.enable_learning,
        phantom_model=config.resolved_phantom_model,
        value_model=value_model,
        market=market,
        view=view,
        labels=labels,
        learner_flags=tuple(config.enable_learning and learns(s) for s in strategies),
        label_groups=groups,
        rules=rules,
        deadline_us=to_us(window_ms),
        auction_config=config.resolved_auction_config,
    )


@dataclass(frozen=True, slots=True)
class ExogenousDraws:
    """What no bidder controls, for ``A`` auctions: true price premium, values, phantoms."""

    true_premium_bps: FloatArray
    values_bps: FloatArray
    phantoms: PhantomArrays

    def __len__(self) -> int:
        return int(self.true_premium_bps.shape[0])


def draw_exogenous(env: AuctionEnvironment, streams: Streams, n_auctions: int) -> ExogenousDraws:
    """Market draws then phantom draws of ``n_auctions`` auctions, each from its stream."""
    market = env.value_model.draw(streams.market, n_auctions)
    phantoms = draw_phantoms(
        env.phantom_model, streams.phantom, n_auctions, env.baseline_price, env.baseline_quantity
    )
    return ExogenousDraws(market.true_premium_bps, market.values_bps, phantoms)


def draw_exogenous_each(
    env: AuctionEnvironment, streams: Streams, n_auctions: int
) -> ExogenousDraws:
    """The draws of ``n_auctions`` calls of ``draw_exogenous(env, streams, 1)`` (the numbers
    ``run_simulation`` draws auction by auction), in fewer calls: a market row does not
    depend on the others (except through a Cholesky product, whose bits may depend on
    the number of rows: then row by row), and each auction's phantom count and uniforms
    are drawn in turn, then mapped to bids at once."""
    model, rng = env.value_model, streams.market
    if model.rows_independent:
        market = model.draw(rng, n_auctions)
        premium, values = market.true_premium_bps, market.values_bps
    else:
        rows = [model.draw(rng, 1) for _ in range(n_auctions)]
        premium = np.concatenate([row.true_premium_bps for row in rows])
        values = np.concatenate([row.values_bps for row in rows])
    phantoms = env.phantom_model
    count = np.zeros(n_auctions, dtype=np.int64)
    u: list[FloatArray] = []
    if phantoms.max_phantom_bidders:
        for a in range(n_auctions):
            count[a : a + 1] = phantom_counts(phantoms, streams.phantom, 1)
            u.append(_phantom_uniforms(phantoms, streams.phantom, count[a : a + 1]))
    arrays = phantom_arrays(
        phantoms,
        count,
        np.concatenate(u) if u else np.zeros((0, 3)),
        env.baseline_price,
        env.baseline_quantity,
    )
    return ExogenousDraws(premium, values, arrays)


def draw_phantoms(
    model: PhantomModel,
    rng: np.random.Generator,
    n_auctions: int,
    baseline_price: float,
    baseline_amount: float,
) -> PhantomArrays:
    """The phantom bids of ``n_auctions`` auctions, drawing only the bids that exist.

    The model of :func:`~phantom_auction.engine.phantoms.draw_phantom_arrays` (each of
    ``M`` slots bids with probability ``p``; a truncated normal improvement by inverse
    CDF; uniform volume and fee fractions), sampled in a cheaper order: each auction's
    number of phantoms ``k ~ Binomial(M, p)``, then three uniforms (improvement, volume,
    fee) for each of its ``k`` bids, which take slots ``0 .. k-1``. Phantoms are
    exchangeable, so which slots hold them changes no outcome; draws of ``p``'s
    complement are skipped (a third of the work at the default ``p = 0.3``). Empty slots
    hold a zero bid: price at the baseline (0 bps), volume 0, fee 0.

    The same numbers, block by block: :func:`phantom_counts` for all the auctions, then
    :func:`phantom_block` for consecutive blocks of them, in order (each block's bids
    take the next uniforms: a generator fills an array as successive calls would).
    """
    count = phantom_counts(model, rng, n_auctions)
    return phantom_block(model, rng, count, baseline_price, baseline_amount)


def phantom_counts(model: PhantomModel, rng: np.random.Generator, n_auctions: int) -> IntArray:
    """Each auction's number of phantom bids (see :func:`draw_phantoms`)."""
    m = model.max_phantom_bidders
    if not m:
        return np.zeros(n_auctions, dtype=np.int64)
    counts: IntArray = rng.binomial(m, model.bid_probability, size=n_auctions)
    return counts


def phantom_block(
    model: PhantomModel,
    rng: np.random.Generator,
    count: IntArray,
    baseline_price: float,
    baseline_amount: float,
    *,
    improvements: bool = True,
) -> PhantomArrays:
    """The phantom bids of auctions holding ``count`` bids each (see :func:`draw_phantoms`);
    without ``improvements``, ``improvement_bps`` is left empty (0 columns: the fast path
    reads the prices, as the engine does)."""
    u = _phantom_uniforms(model, rng, count)
    return phantom_arrays(
        model, count, u, baseline_price, baseline_amount, improvements=improvements
    )


def phantom_arrays(
    model: PhantomModel,
    count: IntArray,
    u: FloatArray,
    baseline_price: float,
    baseline_amount: float,
    *,
    improvements: bool = True,
) -> PhantomArrays:
    """:func:`phantom_block`'s bids from its uniforms ``u`` (:func:`_phantom_uniforms`)."""
    m = model.max_phantom_bidders
    present = np.less(np.arange(m), count[:, None])
    bid_bps = truncated_normal_bps(model, u[:, 0])
    bid_volume, bid_fee = _phantom_volume_fee(model, baseline_amount, u)
    # The bids' places found once (flat indices), not once per array by the mask.
    where = np.flatnonzero(present)
    price = np.full(present.shape, baseline_price)
    volume = np.zeros(present.shape)
    fee = np.zeros(present.shape)
    price.reshape(-1)[where] = baseline_price * (1.0 + bid_bps / 10_000.0)
    volume.reshape(-1)[where] = bid_volume
    fee.reshape(-1)[where] = bid_fee
    if improvements:
        improvement = np.zeros(present.shape)
        improvement.reshape(-1)[where] = bid_bps
    else:
        improvement = np.zeros((present.shape[0], 0))
    return PhantomArrays(present, improvement, price, volume, fee)


#: Quantiles (of the truncated normal's CDF) closer than this to an auction's largest
#: are scored in :func:`phantom_best` even when the score rises with the quantile: the
#: computed ``ndtri`` is only known to rise with its argument over gaps far wider than
#: its rounding error (its slope is at least sqrt(2 pi), its error ~1e-15), not ulp by ulp.
QUANTILE_GAP = 1e-9


def phantom_best(
    model: PhantomModel,
    rng: np.random.Generator,
    count: IntArray,
    baseline_price: float,
    baseline_amount: float,
    score: Callable[[FloatArray, FloatArray], FloatArray],
    *,
    monotone: bool,
) -> FloatArray:
    """Each auction's best phantom score, at least 0 — the ``floor`` policy's floor, what
    the fast path needs of phantoms under it — from the same numbers as
    :func:`phantom_block` (the same generator steps and, bid by bid, the same prices and
    fees), without its (A, M) arrays.

    ``score(improvement_bps, priority_fee)``: the rule book's score of bids (the
    improvement read back from the price, as the engine does). ``monotone``: the score
    rises with the improvement alone (no fee term); then only each auction's
    candidates for the best are priced and scored: the bids whose CDF quantile is within
    :data:`QUANTILE_GAP` of the auction's largest (the improvement rises with it), most
    often that one bid.
    """
    rows = count.shape[0]
    u = _phantom_uniforms(model, rng, count)
    best = np.zeros(rows)
    if not u.shape[0]:
        return best
    bidding = np.flatnonzero(count)
    sizes = count[bidding]
    starts = np.cumsum(sizes) - sizes  # each bidding auction's first bid (row order)
    improvement_u = u[:, 0]
    q = _phantom_quantiles(model, improvement_u)
    if monotone:
        top = np.maximum.reduceat(q, starts)
        pick = np.flatnonzero(q >= np.repeat(top, sizes) - QUANTILE_GAP)
        # Each auction has one at least (its top); one each, most often: in turn.
        if pick.shape[0] == starts.shape[0]:
            starts = np.arange(pick.shape[0])
        else:
            starts = np.searchsorted(pick, starts)
        improvement_u = improvement_u[pick]
        fee: FloatArray = np.zeros(pick.shape[0])
    else:
        _, fee = _phantom_volume_fee(model, baseline_amount, u)
    price = baseline_price * (1.0 + truncated_normal_bps(model, improvement_u) / 10_000.0)
    scores = score(improvement_bps(price, baseline_price), fee)
    best[bidding] = np.maximum(np.maximum.reduceat(scores, starts), 0.0)
    return best


def _phantom_uniforms(model: PhantomModel, rng: np.random.Generator, count: IntArray) -> FloatArray:
    """Three uniforms per bid (improvement, volume, fee), the bids in auction order."""
    m = model.max_phantom_bidders
    u: FloatArray = rng.random((int(count.sum()) if m else 0, 3))
    return u


def _phantom_quantiles(model: PhantomModel, u: FloatArray) -> FloatArray:
    """Uniforms mapped onto the truncated normal's CDF range (rising with ``u``; they rank
    the bids, :func:`_phantom_bps` prices them)."""
    lo = ndtr((model.min_bps - model.mean_bps) / model.sd_bps)
    hi = ndtr((model.max_bps - model.mean_bps) / model.sd_bps)
    q: FloatArray = lo + (hi - lo) * u
    return q


def _phantom_volume_fee(
    model: PhantomModel, baseline_amount: float, u: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The bids' volumes (token A) and priority fees (token units)."""
    low, high = model.volume_fraction
    bid_volume = baseline_amount * (low + (high - low) * u[:, 1])
    low, high = model.fee_fraction
    bid_fee = bid_volume * model.priority_fee_max_ratio * (low + (high - low) * u[:, 2])
    return bid_volume, bid_fee
