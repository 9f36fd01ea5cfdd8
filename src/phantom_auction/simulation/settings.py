"""``SimulationConfig``: what one simulated auction and one Monte Carlo run look like.

Fields left ``None`` take their value from the package configuration
(:func:`phantom_auction.config.load_config`, i.e. ``default.toml`` and ``AUCTION_*``
variables), read once when the config is built so that a run is a pure function of it.

**Bounds on one auction's work.** The fast path simulates 8,192 auctions at once
(``kernels.BLOCK_ROWS``), and what one auction allocates grows with its bids: a real
bidder that bids on a schedule (``aggressive`` every 10 ms, ``conservative`` every 30 ms,
``random_walk`` every 5 ms) makes one bid per interval of the collection window, and
each phantom slot holds a bid. The measured peaks are ~16 bytes per real bid and ~12
bytes per phantom slot per auction, so at the bounds below a block of auctions holds at
most ~1.3 GB of real bids and ~1 GB of phantom slots in each worker process (an
unbounded ``auction_duration_ms=1_000_000`` took 18 GB for 2,000 auctions). Live
auctions last ~100 ms; the bounds are far above any auction the engine runs:

- :data:`MAX_BIDDERS`: at most 10,000 real bidders and 10,000 phantom slots;
- :data:`MAX_AUCTION_DURATION_MS`: an auction lasts at most 60,000 ms (one minute);
- :data:`MAX_REAL_BIDS_PER_AUCTION`: at most 10,000 real bids per auction, counting
  each real bidder's bids by its own schedule over the collection window (one for a
  bidder that bids once; 17 for ``random_walk`` in the packaged 100 ms auction): 10,000
  equilibrium bidders there, ~1,600 of the default mix, or its 5 for an auction of
  ~10 s. Checked when a run's rules are resolved (:func:`check_real_bids`), where the
  strategies are known.

A value beyond a bound raises :class:`~phantom_auction.errors.InvalidBidParameters`
naming the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ..config import AuctionConfig, load_config
from ..engine.phantoms import PhantomModel
from ..errors import InvalidBidParameters
from ..mechanisms.clearing import canonical_mechanism
from ..mechanisms.rules import PHANTOM_POLICIES
from .market import value_distribution as parse_value_distribution

__all__ = [
    "MAX_AUCTION_DURATION_MS",
    "MAX_BIDDERS",
    "MAX_REAL_BIDS_PER_AUCTION",
    "SimulationConfig",
    "check_real_bids",
]

#: Most real bidders and most phantom slots per auction (``num_real_bidders``,
#: ``num_phantom_bidders``); the configuration's ``max_phantom_bidders`` has the same.
MAX_BIDDERS: Final = 10_000
#: Longest auction (ms): one minute, 600 times the packaged 100 ms.
MAX_AUCTION_DURATION_MS: Final = 60_000
#: Most real bids one auction may hold: each real bidder's bids by its schedule over the
#: collection window, summed (:func:`check_real_bids`).
MAX_REAL_BIDS_PER_AUCTION: Final = 10_000
#: Most chunks one run is planned in (its tasks and seeds are made before it starts:
#: ~1 GB at this bound). ``num_simulations`` is at most this many ``chunk_size``\ s.
MAX_CHUNKS: Final = 1_000_000
#: The class default of ``auction_duration_ms`` (for which field a bound blames).
_DEFAULT_DURATION_MS: Final = 100


def check_chunk_count(num_simulations: int, chunk_size: int) -> None:
    """Refuse a run of more than :data:`MAX_CHUNKS` chunks (the CLI audit: 10^13 auctions
    planned 150 million tasks and ran out of 24 GB before the first one ran)."""
    chunks = -(-num_simulations // chunk_size)
    if chunks > MAX_CHUNKS:
        raise InvalidBidParameters(
            "num_simulations",
            num_simulations,
            f"is {chunks:,} chunks of chunk_size={chunk_size:,}: at most {MAX_CHUNKS:,} a "
            f"run (at most {MAX_CHUNKS * chunk_size:,} auctions; raise chunk_size, or split "
            "the run into runs of other seeds)",
        )


#: The integer fields, which also take numpy integers (the API audit: a grid of
#: ``np.arange`` was refused as "must be an integer").
_INTEGER_FIELDS: Final = (
    "num_real_bidders",
    "num_phantom_bidders",
    "num_simulations",
    "seed",
    "chunk_size",
    "min_participants",
    "workers",
)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidBidParameters(name, value, f"must be an integer >= {low}")
    if high is not None and value > high:
        raise InvalidBidParameters(name, value, f"must be at most {high:,}")


def check_real_bids(config: SimulationConfig, slots: Callable[[float], list[int]]) -> None:
    """Refuse a run whose auctions would hold more than :data:`MAX_REAL_BIDS_PER_AUCTION`
    real bids. ``slots(window_ms)``: each real bidder's bids per auction over a
    collection window of ``window_ms`` (its re-bid schedule's slots; 1 for one bid).
    Blames ``num_real_bidders`` if they are too many even in the packaged auction's
    window, else ``auction_duration_ms``."""
    slots_here = slots(config.collection_window_ms)
    real_bids = sum(slots_here)
    if real_bids <= MAX_REAL_BIDS_PER_AUCTION:
        return
    pa = (config.resolved_auction_config or load_config()).phantom_auction
    packaged_window = _DEFAULT_DURATION_MS * (1.0 - pa.reveal_delay_ms / pa.duration_ms)
    crowded = sum(slots(packaged_window)) > MAX_REAL_BIDS_PER_AUCTION
    name = "num_real_bidders" if crowded else "auction_duration_ms"
    raise InvalidBidParameters(
        name,
        getattr(config, name),
        f"{len(slots_here):,} real bidders with up to {max(slots_here):,} bids each (their re-bid "
        f"schedules over a {config.collection_window_ms:g} ms collection window) make "
        f"{real_bids:,} bids per auction; at most {MAX_REAL_BIDS_PER_AUCTION:,} (fewer "
        "real bidders or a shorter auction)",
    )


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Configuration of simulated auctions (the seed's fields, then optional refinements).

    - ``num_real_bidders``: real bidders the simulator creates (users may append more to
      ``PhantomSimulator.strategies``); ``num_phantom_bidders``: phantom slots per auction,
      each holding a bid with the configured ``bid_probability``. Each is at most
      :data:`MAX_BIDDERS` (10,000).
    - ``auction_duration_ms``: the whole auction (ms, at most
      :data:`MAX_AUCTION_DURATION_MS` = 60,000); bids are collected for
      ``auction_duration_ms - reveal_delay_ms`` and later bids are dropped. The real
      bids one auction may hold are bounded too, when a run starts: every bidder's bids
      over that window by its schedule (bidders appended to
      ``PhantomSimulator.strategies`` included) sum to at most
      :data:`MAX_REAL_BIDS_PER_AUCTION` (10,000), the most a block of simulated
      auctions keeps in memory (see the bounds above the class).
    - ``num_simulations``: auctions per Monte Carlo run; ``seed``: root of every random
      stream (``None``: fresh entropy, recorded on the results).
    - ``mechanism``: ``vcg``, ``vickrey`` (alias ``second_price``), ``discriminatory``
      (alias ``first_price``) or ``uniform``; when ``None``, ``enable_vcg`` chooses VCG as
      in the seed, else the configured mechanism (``vickrey`` if that is VCG).
    - ``value_distribution``: ``("uniform", low, high)``, ``("normal", mean, sd)``,
      ``("lognormal", mu, sigma)`` in bps over baseline, or a frozen ``scipy.stats``
      distribution: real values become independent draws from it (see ``market``).
      With it and no phantoms the simulator runs in *textbook mode*: no improvement
      bounds and every bid is for the whole order.
    - ``real_strategy``: a registered strategy name or a strategy object for every real
      bidder; ``None`` rotates the seed's five strategies.
    - ``chunk_size``: auctions per Monte Carlo chunk (``resources.simulation_chunk_size``);
      results depend on it, never on the number of workers.
    - ``reveal_delay_ms``, ``min_participants``, ``phantom_model``, ``workers``: the
      engine's settings, from ``auction_config`` (``load_config()`` when ``None``).
    - ``reserve_bps``: the reserve, the least improvement (bps over baseline) a bid must
      offer to be accepted: the engine's ``phantom_auction.min_improvement_bps`` (the
      same key; ``None`` takes it from the configuration in market mode, and 0 bps — the
      baseline — in textbook mode).
    - ``policy``: what the phantoms do, ``reserve`` (they compete for volume; one
      ranked first sends its share to the CFMM) or ``floor`` (they only set the least
      price a real bid must beat); ``None`` takes ``phantom_auction.phantom_policy``.
      The resolved one is ``phantom_policy``.
    - ``min_participants``: ``None`` takes ``phantom_auction.min_participants`` (real and
      phantom bids needed to clear), except in textbook mode, where it is 1: there the
      reserve alone decides, and a lone bidder above it trades, as in auction theory.
      (The live engine counts phantoms as participants, so with phantoms present its
      default of 2 blocks a lone real bid only when no phantom slot bids.)
    """

    num_real_bidders: int = 5
    num_phantom_bidders: int = 15
    auction_duration_ms: float = 100
    num_simulations: int = 1000
    seed: int | None = None
    enable_vcg: bool = True
    enable_learning: bool = False
    mechanism: str | None = None
    value_distribution: Any = None
    real_strategy: Any = None
    chunk_size: int | None = None
    reveal_delay_ms: float | None = None
    min_participants: int | None = None
    phantom_model: PhantomModel | None = None
    workers: int | None = None
    reserve_bps: float | None = None
    policy: str | None = None
    auction_config: AuctionConfig | None = field(default=None, repr=False, compare=False)
    # Resolved once in __post_init__ (frozen: set through object.__setattr__).
    clearing_mechanism: str = field(init=False, default="vcg")
    distribution: Any = field(init=False, default=None, repr=False, compare=False)
    resolved_chunk_size: int = field(init=False, default=65536, repr=False)
    resolved_reveal_delay_ms: float = field(init=False, default=20.0, repr=False)
    resolved_min_participants: int = field(init=False, default=2, repr=False)
    resolved_phantom_model: PhantomModel = field(
        init=False, default_factory=PhantomModel, repr=False
    )
    resolved_workers: int = field(init=False, default=1, repr=False)
    # In the repr with the mechanism: what the configuration chose decides the clearing.
    min_improvement_bps: float = field(init=False, default=10.0)
    max_improvement_bps: float = field(init=False, default=50.0, repr=False)
    max_bid_value_multiplier: float = field(init=False, default=1.0, repr=False)
    priority_fee_max_ratio: float = field(init=False, default=0.01, repr=False)
    # Scoring and the phantom policy: the engine's, from the rule book's config keys.
    price_weight: float = field(init=False, default=1.0, repr=False)
    fee_weight: float = field(init=False, default=0.0, repr=False)
    phantom_policy: str = field(init=False, default="reserve")
    min_window_ms: float = field(init=False, default=1.0, repr=False)
    resolved_auction_config: AuctionConfig | None = field(
        init=False, default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in _INTEGER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, np.integer):  # numpy's own (np.arange, rng.integers)
                object.__setattr__(self, name, int(value))
        _check_int("num_real_bidders", self.num_real_bidders, 0, MAX_BIDDERS)
        _check_int("num_phantom_bidders", self.num_phantom_bidders, 0, MAX_BIDDERS)
        _check_int("num_simulations", self.num_simulations, 1)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        duration = self.auction_duration_ms
        if isinstance(duration, bool) or not (
            isinstance(duration, int | float) and 0 < duration < math.inf
        ):
            raise InvalidBidParameters("auction_duration_ms", duration, "must be finite ms > 0")
        if duration > MAX_AUCTION_DURATION_MS:
            raise InvalidBidParameters(
                "auction_duration_ms",
                duration,
                f"must be at most {MAX_AUCTION_DURATION_MS:,} ms (live auctions last ~100 ms)",
            )
        for name in ("enable_vcg", "enable_learning"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidBidParameters(name, getattr(self, name), "must be True or False")
        if self.auction_config is not None and not isinstance(self.auction_config, AuctionConfig):
            raise InvalidBidParameters(
                "auction_config",
                self.auction_config,
                "must be an AuctionConfig (phantom_auction.load_config()) or None",
            )
        if isinstance(self.real_strategy, str):
            # Here, not at the first run: a misspelt name was accepted (the API audit).
            from .strategies.registry import strategy_class

            strategy_class(self.real_strategy, "real_strategy")
        if self.policy is not None and self.policy not in PHANTOM_POLICIES:
            raise InvalidBidParameters(
                "policy", self.policy, f"must be one of {', '.join(PHANTOM_POLICIES)} or None"
            )
        cfg = self.auction_config if self.auction_config is not None else load_config()
        pa = cfg.phantom_auction
        if self.mechanism is not None:
            mechanism = canonical_mechanism(self.mechanism)
        elif self.enable_vcg:
            mechanism = "vcg"
        else:
            mechanism = pa.mechanism if pa.mechanism != "vcg" else "vickrey"
        chunk = cfg.resources.simulation_chunk_size if self.chunk_size is None else self.chunk_size
        _check_int("chunk_size", chunk, 1)
        check_chunk_count(self.num_simulations, int(chunk))
        reveal = (
            pa.reveal_delay_ms * float(duration) / pa.duration_ms
            if self.reveal_delay_ms is None
            else self.reveal_delay_ms
        )
        if isinstance(reveal, bool) or not (
            isinstance(reveal, int | float) and 0 <= reveal < duration
        ):
            raise InvalidBidParameters(
                "reveal_delay_ms", reveal, f"must be in [0, auction_duration_ms={duration})"
            )
        textbook = self.value_distribution is not None and self.num_phantom_bidders == 0
        if self.min_participants is not None:
            min_participants = self.min_participants
        else:
            min_participants = 1 if textbook else pa.min_participants
        _check_int("min_participants", min_participants, 0)
        workers = cfg.resources.workers if self.workers is None else self.workers
        _check_int("workers", workers, 1)
        if self.phantom_model is None:
            model = PhantomModel.from_config(cfg)
            phantoms = PhantomModel(
                max_phantom_bidders=self.num_phantom_bidders,
                bid_probability=model.bid_probability,
                mean_bps=model.mean_bps,
                sd_bps=model.sd_bps,
                min_bps=model.min_bps,
                max_bps=model.max_bps,
                volume_fraction=model.volume_fraction,
                fee_fraction=model.fee_fraction,
                priority_fee_max_ratio=model.priority_fee_max_ratio,
            )
        elif isinstance(self.phantom_model, PhantomModel):
            phantoms = self.phantom_model
            if phantoms.max_phantom_bidders != self.num_phantom_bidders:
                raise InvalidBidParameters(
                    "phantom_model.max_phantom_bidders",
                    phantoms.max_phantom_bidders,
                    f"must equal num_phantom_bidders={self.num_phantom_bidders}",
                )
        else:
            raise InvalidBidParameters(
                "phantom_model", self.phantom_model, "must be a PhantomModel or None"
            )
        dist = (
            None
            if self.value_distribution is None
            else parse_value_distribution(self.value_distribution)
        )
        setattr_ = object.__setattr__
        setattr_(self, "clearing_mechanism", mechanism)
        setattr_(self, "distribution", dist)
        setattr_(self, "resolved_chunk_size", int(chunk))
        setattr_(self, "resolved_reveal_delay_ms", float(reveal))
        setattr_(self, "resolved_min_participants", int(min_participants))
        setattr_(self, "resolved_phantom_model", phantoms)
        setattr_(self, "resolved_workers", int(workers))
        reserve = self.reserve_bps
        if reserve is not None and (
            isinstance(reserve, bool)
            or not isinstance(reserve, int | float)
            or not 0.0 <= reserve < math.inf
        ):
            raise InvalidBidParameters("reserve_bps", reserve, "must be finite bps >= 0")
        if reserve is not None and not textbook and reserve > pa.max_improvement_bps:
            raise InvalidBidParameters(
                "reserve_bps",
                reserve,
                f"is above phantom_auction.max_improvement_bps={pa.max_improvement_bps}",
            )
        # The bounds the run applies (the theory audit: a textbook run showed the engine's
        # 10 bps while it cleared from the baseline): textbook mode has no cap, and its
        # reserve is the baseline unless given.
        default_bps = 0.0 if textbook else pa.min_improvement_bps
        min_bps = default_bps if reserve is None else reserve
        setattr_(self, "min_improvement_bps", float(min_bps))
        setattr_(self, "max_improvement_bps", math.inf if textbook else pa.max_improvement_bps)
        setattr_(
            self, "max_bid_value_multiplier", float(cfg.auction_mechanics.max_bid_value_multiplier)
        )
        setattr_(
            self, "priority_fee_max_ratio", float(cfg.auction_mechanics.priority_fee_max_ratio)
        )
        setattr_(self, "price_weight", float(cfg.auction_mechanics.price_weight))
        setattr_(self, "fee_weight", float(cfg.auction_mechanics.fee_weight))
        setattr_(self, "phantom_policy", pa.phantom_policy if self.policy is None else self.policy)
        setattr_(self, "min_window_ms", float(cfg.auction_mechanics.min_window_ms))
        setattr_(self, "resolved_auction_config", cfg)

    @property
    def textbook(self) -> bool:
        """Textbook mode: a value distribution and no phantoms (checks against theory)."""
        return self.distribution is not None and self.num_phantom_bidders == 0

    @property
    def collection_window_ms(self) -> float:
        """Time bids are collected (ms): duration minus the reveal window."""
        return float(self.auction_duration_ms) - self.resolved_reveal_delay_ms
