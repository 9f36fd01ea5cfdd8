"""The live auction as a sans-IO state machine: commands in, audit events out, time passed in.

One concept past 600 lines: the state machine's every command (commit, reveal, withdraw,
close, finalize, abort) and its seed-form wrappers share the auction's private state.

Phases ``COLLECTING -> REVEALING -> FINALIZED`` (or ``ABORTED``); every legal
``(phase, command)`` pair is in :data:`TRANSITIONS`, any other raises
:class:`AuctionPhaseError` naming both. Commands never read a clock: each takes
``now=`` (timezone-aware; the current UTC time only when omitted) and the auction keeps
the latest time it has seen, so its view of time never runs backwards.

Network-level mishaps (a late commit, an early reveal, a tampered reveal) are not
errors: the command returns False and appends a rejection with a
:class:`~phantom_auction.engine.audit.RejectReason` to ``auction.audit``. Programmer
errors (a phase-illegal call, a wrong type) raise.

Clearing (SPEC "Auction engine") follows the rule book,
:mod:`phantom_auction.mechanisms.rules`, in :mod:`phantom_auction.engine.settlement`
(pure functions of the revealed bids, the phantoms, the baseline and the amount): each
real fill pays the score it owes per unit under the mechanism (``docs/mechanisms.md``)
less its own fee term, within ``[baseline, own price]``; phantoms act by
``phantom_policy``.

One module for one concept, the :class:`Auction` state machine (h11 style): its
commands, its phase table and its audit log share its state; what can live apart
(bids, commitments, settlement, the batch entry's columns) already does.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from ..config import AuctionConfig, default_config
from ..errors import (
    AuctionTimeout,
    InsufficientParticipants,
    InvalidBidParameters,
    PhantomAuctionError,
)
from ..mechanisms.rules import (
    AuctionRules,
    RejectReason,
    RevealLimits,
    improvement_bps,
    reveal_check,
    to_us,
)
from .audit import (
    AuctionAborted,
    AuctionFinalized,
    AuctionOpened,
    AuditEvent,
    Command,
    CommitAccepted,
    CommitRejected,
    Outcome,
    Phase,
    PhaseChanged,
    RevealAccepted,
    RevealRejected,
)
from .batch import FloatColumn, LazyRecords, accepted_batch, float_list
from .bids import ImprovementBid, SealedBid, SettlementRequest, make_bid
from .commitment import (
    auction_prefixes,
    check_text,
    commitment_version,
    prefix_hasher,
    revealed_digest,
    revealed_digest_v2,
)
from .nonces import NonceRegistry
from .phantom_pool import SeedPool, pool_for
from .phantoms import (
    PHANTOM_SEED_SIZE,
    PhantomBid,
    PhantomBids,
    PhantomColumns,
    PhantomModel,
    _sampler,
    _SeedSampler,
    bids_of,
    phantom_commitment,
)
from .result import AuctionAnnouncement, AuctionResult, Fill, Ranking
from .settlement import bid_table, cfmm_remainder, ranking_of, settle

__all__ = [
    "TRANSITIONS",
    "Auction",
    "AuctionPhaseError",
    "abort_auction",
    "close_collection",
    "finalize_auction",
    "reveal_bid",
    "submit_bid",
]

#: The largest order notional (amount x baseline price, token B) an auction takes: its
#: fills (volume x price, the bids' volume up to a multiple of the amount, at a bounded
#: improvement) must sum without overflowing a binary64.
_MAX_NOTIONAL: Final = 1e300

_COLLECTING, _REVEALING = Phase.COLLECTING, Phase.REVEALING
_FINALIZED, _ABORTED = Phase.FINALIZED, Phase.ABORTED

#: Every legal (phase, command) and the phase it leads to. Commits and reveals are legal
#: in every phase (outside their window they are rejected with a reason, not raised).
TRANSITIONS: Final[Mapping[tuple[Phase, Command], Phase]] = MappingProxyType(
    {
        (_COLLECTING, Command.COMMIT): _COLLECTING,
        (_COLLECTING, Command.REVEAL): _COLLECTING,  # too early: rejected
        (_COLLECTING, Command.CLOCK): _REVEALING,  # collection window over
        (_COLLECTING, Command.CLOSE_COLLECTION): _REVEALING,  # every expected bidder committed
        (_COLLECTING, Command.ABORT): _ABORTED,
        (_REVEALING, Command.COMMIT): _REVEALING,  # late: rejected
        (_REVEALING, Command.REVEAL): _REVEALING,
        (_REVEALING, Command.FINALIZE): _FINALIZED,  # guard: window over or all revealed
        (_REVEALING, Command.ABORT): _ABORTED,
        (_FINALIZED, Command.COMMIT): _FINALIZED,  # rejected
        (_FINALIZED, Command.REVEAL): _FINALIZED,  # rejected
        (_FINALIZED, Command.FINALIZE): _FINALIZED,  # idempotent: the same result
        (_ABORTED, Command.COMMIT): _ABORTED,  # rejected
        (_ABORTED, Command.REVEAL): _ABORTED,  # rejected
        (_ABORTED, Command.FINALIZE): _ABORTED,  # the aborted result
        (_ABORTED, Command.ABORT): _ABORTED,  # idempotent
    }
)

_MS = timedelta(milliseconds=1)


class _Run:
    """A log entry ``(_Run, make, n)`` stands for the events ``make(0) .. make(n - 1)``
    (a batch's commits or reveals: one entry, not one tuple per bid). A class, so that
    a pickled or copied auction's log still names it."""


class AuctionPhaseError(PhantomAuctionError, RuntimeError):
    """A command that the auction's phase does not allow (a programmer error)."""

    def __init__(self, phase: Phase, command: Command, reason: str = "") -> None:
        self.phase = phase
        self.command = command
        message = f"{command.value}() is not allowed in phase {phase.name}"
        super().__init__(f"{message}: {reason}" if reason else message)


@dataclass(frozen=True, slots=True)
class _Rules:
    """The rule book's rules of a config, with its phantom model (read once per config)."""

    book: AuctionRules
    phantom_model: PhantomModel
    phantom_sampler: _SeedSampler
    #: Fresh seeds with their draws, a batch at a time (engine/phantom_pool.py).
    phantom_pool: SeedPool = field(compare=False)
    #: (ms to the deadline, reserve ms, amount) -> (collection, whole run, reveal limits):
    #: a driver opens its auctions with the same few of these, and working them out
    #: (two window lengths, two timedeltas, the limits) is a tenth of an opening.
    openings: dict[tuple[float, float, float], tuple[timedelta, timedelta, RevealLimits]] = field(
        default_factory=dict, compare=False
    )

    @classmethod
    def from_config(cls, config: AuctionConfig) -> _Rules:
        model = PhantomModel.from_config(config)
        sampler = _sampler(model)
        return cls(AuctionRules.from_config(config), model, sampler, pool_for(sampler))

    def opening(
        self, available_ms: float, reserve_ms: float, amount: float
    ) -> tuple[timedelta, timedelta, RevealLimits]:
        """The windows (from the open) and reveal limits of an auction (see ``Auction``)."""
        key = (available_ms, reserve_ms, amount)
        hit = self.openings.get(key)
        if hit is None:
            commit_ms, run_ms = self.book.windows_ms(available_ms, reserve_ms)
            if len(self.openings) >= 256:
                self.openings.clear()
            hit = self.openings[key] = (
                timedelta(microseconds=to_us(commit_ms)),
                timedelta(microseconds=to_us(run_ms)),
                self.book.limits(amount),
            )
        return hit


_RULES: dict[int, tuple[AuctionConfig, _Rules]] = {}


def _rules_for(config: AuctionConfig) -> _Rules:
    hit = _RULES.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    rules = _Rules.from_config(config)
    if len(_RULES) >= 64:
        _RULES.clear()
    _RULES[id(config)] = (config, rules)  # holding config keeps its id from being reused
    return rules


_OVERRIDDEN: dict[tuple[AuctionRules, PhantomModel], _Rules] = {}
_LAST_OVERRIDE: list[tuple[AuctionRules, PhantomModel, _Rules]] = []  # the last call's


def _overridden(rules: _Rules, book: AuctionRules | None, model: PhantomModel | None) -> _Rules:
    """``rules`` with another rule book and/or phantom model (the simulator's auctions)."""
    if book is not None and not isinstance(book, AuctionRules):
        raise InvalidBidParameters("rule_book", book, "must be an AuctionRules")
    if model is not None and not isinstance(model, PhantomModel):
        raise InvalidBidParameters("phantom_model", model, "must be a PhantomModel")
    key = (rules.book if book is None else book, rules.phantom_model if model is None else model)
    if _LAST_OVERRIDE:  # a driver opens its auctions with the same two: no hashing them
        last_book, last_model, last_rules = _LAST_OVERRIDE[0]
        if last_book is key[0] and last_model is key[1]:
            return last_rules
    hit = _OVERRIDDEN.get(key)
    if hit is None:
        if len(_OVERRIDDEN) >= 64:
            _OVERRIDDEN.clear()
        sampler = _sampler(key[1])
        hit = _OVERRIDDEN[key] = _Rules(key[0], key[1], sampler, pool_for(sampler))
    _LAST_OVERRIDE[:] = [(key[0], key[1], hit)]
    return hit


def _aware(name: str, value: object, command: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidBidParameters(name, value, f"{command}: must be a timezone-aware datetime")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBidParameters(name, value, "must be a number")
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise InvalidBidParameters(name, value, "must be finite and > 0")
    return x


class Auction:
    """One phantom auction for ``request``: sealed commits, reveals, phantoms, clearing.

    ``baseline_price`` is the CFMM quote (B per A) and ``baseline_amount`` the quantity
    for sale (token A units; equal to ``request.amount``). The collection window runs
    ``duration_ms - reveal_delay_ms`` and the reveal window ``reveal_delay_ms`` from
    ``now``; if ``deadline`` is closer than ``duration_ms`` (plus ``reserve_ms``, time kept
    free before the deadline for the caller to finalize and answer, at most a quarter of
    what is left) both windows shrink in proportion. A deadline less than
    ``auction_mechanics.min_window_ms`` away raises :class:`AuctionTimeout`.

    ``nonces`` is the registry shared across auctions (a fresh one when None).
    ``phantom_seed`` (32 bytes; when None, fresh ``os.urandom`` bytes from the phantom
    model's seed pool, with their draw: engine/phantom_pool.py) and ``auction_id`` (a random
    UUID when None) are injectable so that a stored auction can be rebuilt exactly.
    """

    __slots__ = (
        "_amount",
        "_announcement",
        "_baseline_price",
        "_book",
        "_clock",
        "_commit_deadline",
        "_commitments",
        "_config",
        "_deadline",
        "_events",
        "_id",
        "_limits",
        "_log",
        "_nonces",
        "_opened_at",
        "_pair",
        "_phantom_columns",
        "_phantom_commitment",
        "_phantom_seed",
        "_phantoms",
        "_phase",
        "_prefixes",
        "_read",
        "_request",
        "_result",
        "_reveal_deadline",
        "_reveals",
        "_rules",
        "_v2_hasher",
    )

    def __init__(
        self,
        request: SettlementRequest,
        baseline_price: float,
        baseline_amount: float,
        deadline: datetime,
        *,
        config: AuctionConfig | None = None,
        auction_id: str | None = None,
        nonces: NonceRegistry | None = None,
        now: datetime | None = None,
        phantom_seed: bytes | None = None,
        reserve_ms: float = 0.0,
        rule_book: AuctionRules | None = None,
        phantom_model: PhantomModel | None = None,
        phantom_columns: PhantomColumns | None = None,
    ) -> None:
        if not isinstance(request, SettlementRequest):
            raise InvalidBidParameters("request", request, "must be a SettlementRequest")
        # Each check's common case first (a float in range, an aware datetime): a driver
        # opens thousands of auctions a second, and the helpers' calls cost more than
        # the tests. Anything else goes through the helpers, which convert or raise.
        if type(baseline_price) is not float or not 0.0 < baseline_price < math.inf:
            baseline_price = _positive("baseline_price", baseline_price)
        if type(baseline_amount) is not float or not 0.0 < baseline_amount < math.inf:
            baseline_amount = _positive("baseline_amount", baseline_amount)
        amount = request.amount
        if not amount * baseline_price < _MAX_NOTIONAL:
            # Fills are summed as volume x price: past this the sum overflows (the
            # fuzzing audit: OverflowError in finalize, the auction stuck).
            raise InvalidBidParameters(
                "amount",
                amount,
                f"x baseline_price={baseline_price} must be below {_MAX_NOTIONAL:.0e} "
                "(token B): the fills' sum would overflow",
            )
        if baseline_amount != amount and not math.isclose(baseline_amount, amount, rel_tol=1e-12):
            raise InvalidBidParameters(
                "baseline_amount",
                baseline_amount,
                f"must equal request.amount={request.amount} (the quantity for sale)",
            )
        if type(deadline) is not datetime or deadline.tzinfo is None:
            deadline = _aware("deadline", deadline, "Auction")
        if now is None:
            now = datetime.now(UTC)
        elif type(now) is not datetime or now.tzinfo is None:
            now = _aware("now", now, "Auction")
        if type(reserve_ms) is not float or not 0.0 <= reserve_ms < math.inf:
            if isinstance(reserve_ms, bool) or not isinstance(reserve_ms, int | float):
                raise InvalidBidParameters("reserve_ms", reserve_ms, "must be a number of ms")
            if not (math.isfinite(reserve_ms) and reserve_ms >= 0):
                raise InvalidBidParameters("reserve_ms", reserve_ms, "must be finite and >= 0")
        if config is None:
            config = default_config()  # drivers pass the user's (load_config)
        rules = _rules_for(config)
        if rule_book is not None or phantom_model is not None:
            rules = _overridden(rules, rule_book, phantom_model)
        book = rules.book
        if auction_id is None:
            auction_id = uuid.uuid4().hex
        else:
            check_text("auction_id", auction_id)
        if nonces is None:
            nonces = NonceRegistry()
        elif not isinstance(nonces, NonceRegistry):
            raise InvalidBidParameters("nonces", nonces, "must be a NonceRegistry")

        available_ms = (deadline - now) / _MS
        if available_ms < book.min_window_ms:
            raise AuctionTimeout(available_ms, book.min_window_ms)
        commit_window, run_window, limits = rules.opening(
            available_ms, float(reserve_ms), baseline_amount
        )

        if phantom_seed is None and phantom_columns is None:
            # A fresh seed with its commitment and draw, the numbers draw_columns() would give.
            phantom_seed, seed_commitment, phantom_columns = rules.phantom_pool.take(
                baseline_price, baseline_amount
            )
        else:
            if phantom_seed is None:
                phantom_seed = os.urandom(PHANTOM_SEED_SIZE)
            seed_commitment = phantom_commitment(phantom_seed)
        self._request = request
        self._pair = request.token_pair
        self._limits = limits
        self._book = book
        self._baseline_price = baseline_price
        self._amount = baseline_amount
        self._deadline = deadline
        self._config = config
        self._rules = rules
        self._id = auction_id
        self._nonces = nonces
        self._opened_at = now
        self._clock = now
        self._commit_deadline = now + commit_window
        self._reveal_deadline = now + run_window
        self._phase = _COLLECTING
        self._phantom_seed = phantom_seed
        self._phantom_commitment = seed_commitment
        # Drawn at open: fixed by the committed seed before any real bid is seen. Kept as
        # columns of numbers; the PhantomBid records are made when first asked for.
        self._phantom_columns = (
            rules.phantom_sampler.draw_columns(phantom_seed, baseline_price, baseline_amount)
            if phantom_columns is None
            else phantom_columns
        )
        self._phantoms: tuple[PhantomBid, ...] | None = None
        self._prefixes = auction_prefixes(auction_id)
        self._v2_hasher: Any = None  # SHA-256 of prefixes[1], made on the first reveal
        self._commitments: dict[str, SealedBid] = {}
        self._reveals: dict[str, ImprovementBid] = {}
        self._result: AuctionResult | None = None
        self._announcement: AuctionAnnouncement | None = None  # built when first read
        # Events are logged as flat (type, *fields) tuples and built when read: most are
        # never read while the auction runs, building a frozen dataclass costs ~0.5 us,
        # and one small tuple per event is all the garbage collector has to look at.
        self._events: list[AuditEvent] = []
        self._read = 0  # how many log entries _events holds the events of
        self._log: list[tuple[Any, ...]] = [
            (
                AuctionOpened,
                now,
                auction_id,
                self._phantom_commitment,
                self._commit_deadline,
                self._reveal_deadline,
                deadline,
                book.mechanism,
            )
        ]

    # -- read-only views --

    @property
    def auction_id(self) -> str:
        """This auction's id (bound into every commitment)."""
        return self._id

    @property
    def phase(self) -> Phase:
        """The current phase (as of the latest ``now`` seen)."""
        return self._phase

    @property
    def request(self) -> SettlementRequest:
        """The user's order."""
        return self._request

    @property
    def baseline_price(self) -> float:
        """The CFMM quote, B per A: the reserve every bid must meet."""
        return self._baseline_price

    @property
    def amount(self) -> float:
        """The quantity for sale, token A units."""
        return self._amount

    @property
    def config(self) -> AuctionConfig:
        """The configuration this auction runs under."""
        return self._config

    @property
    def mechanism(self) -> str:
        """The clearing rule: ``vickrey``, ``discriminatory``, ``uniform`` or ``vcg``."""
        return self._book.mechanism

    @property
    def nonces(self) -> NonceRegistry:
        """The nonce registry this auction checks and updates."""
        return self._nonces

    @property
    def opened_at(self) -> datetime:
        """When the auction opened (start of the collection window)."""
        return self._opened_at

    @property
    def commit_deadline(self) -> datetime:
        """End of the collection window (exclusive); the reveal window starts here."""
        return self._commit_deadline

    @property
    def reveal_deadline(self) -> datetime:
        """End of the reveal window (exclusive)."""
        return self._reveal_deadline

    @property
    def deadline(self) -> datetime:
        """The caller's deadline: the result is due by then."""
        return self._deadline

    @property
    def clock(self) -> datetime:
        """The latest time the auction has seen."""
        return self._clock

    @property
    def phantom_commitment(self) -> bytes:
        """SHA-256 of the phantom seed, published at open."""
        return self._phantom_commitment

    @property
    def phantom_seed(self) -> bytes:
        """The phantom seed: secret until the result reveals it; persist it privately
        (with the opening parameters and the audit) to rebuild the auction."""
        return self._phantom_seed

    @property
    def phantom_bids(self) -> tuple[PhantomBid, ...]:
        """This auction's phantom bids (secret until the result)."""
        phantoms = self._phantoms
        if phantoms is None:
            phantoms = self._phantoms = bids_of(self._phantom_columns)
        return phantoms

    @property
    def announcement(self) -> AuctionAnnouncement:
        """What bidders are told at open."""
        announcement = self._announcement
        if announcement is None:
            rules = self._book
            announcement = self._announcement = AuctionAnnouncement(
                auction_id=self._id,
                token_pair=self._pair,
                baseline_price=self._baseline_price,
                amount=self._amount,
                opened_at=self._opened_at,
                commit_deadline=self._commit_deadline,
                reveal_deadline=self._reveal_deadline,
                phantom_commitment=self._phantom_commitment,
                mechanism=rules.mechanism,
                min_improvement_bps=rules.min_bps,
                max_improvement_bps=rules.max_bps,
                max_volume=self._amount * rules.volume_multiplier,
                priority_fee_max_ratio=rules.fee_ratio,
                phantom_policy=rules.phantom_policy,
                min_participants=rules.min_participants,
                phantom_model=self._rules.phantom_model,
            )
        return announcement

    @property
    def rule_book(self) -> AuctionRules:
        """The rules this auction clears by (the configuration's, with any override)."""
        return self._book

    @property
    def phantom_model(self) -> PhantomModel:
        """The model its phantom bids are drawn from (with its committed seed)."""
        return self._rules.phantom_model

    @property
    def commitments(self) -> Mapping[str, SealedBid]:
        """Accepted sealed bids by bidder id, in commit order."""
        return MappingProxyType(self._commitments)

    @property
    def reveals(self) -> Mapping[str, ImprovementBid]:
        """Accepted revealed bids by bidder id, in reveal order."""
        return MappingProxyType(self._reveals)

    @property
    def unrevealed(self) -> tuple[str, ...]:
        """Bidders with an accepted commitment and no accepted reveal, in commit order."""
        return tuple(b for b in self._commitments if b not in self._reveals)

    def _built_events(self) -> list[AuditEvent]:
        events, log = self._events, self._log
        if self._read < len(log):
            for entry in log[self._read :]:
                if entry[0] is _Run:
                    events.extend(map(entry[1], range(entry[2])))
                else:
                    events.append(entry[0](*entry[1:]))
            self._read = len(log)
        return events

    @property
    def audit(self) -> tuple[AuditEvent, ...]:
        """Every event so far, oldest first."""
        return tuple(self._built_events())

    @property
    def last_event(self) -> AuditEvent:
        """The newest event (after a command: its acceptance or rejection)."""
        return self._built_events()[-1]

    def events_since(self, count: int) -> tuple[AuditEvent, ...]:
        """The events after the first ``count`` (what a store has not persisted yet)."""
        return tuple(self._built_events()[count:])

    @property
    def result(self) -> AuctionResult | None:
        """The result once finalized or aborted, else None."""
        return self._result

    def __repr__(self) -> str:
        return (
            f"Auction({self._id!r}, phase={self._phase.name}, "
            f"commits={len(self._commitments)}, reveals={len(self._reveals)})"
        )

    # -- time and phases --

    def _allow(self, command: Command, reason: str = "") -> Phase:
        """The phase ``command`` leads to, or :class:`AuctionPhaseError`."""
        nxt = TRANSITIONS.get((self._phase, command))
        if nxt is None:
            raise AuctionPhaseError(self._phase, command, reason)
        return nxt

    def _move(self, command: Command, at: datetime, cause: str) -> None:
        nxt = self._allow(command)
        if nxt is not self._phase:
            self._log.append((PhaseChanged, at, self._phase, nxt, cause))
            self._phase = nxt

    def advance(self, now: datetime | None = None) -> datetime:
        """Take the time to ``now`` (never backwards) and apply the time-driven move
        ``COLLECTING -> REVEALING`` at the commit deadline; returns the auction's time.

        Every command does this first; a driver calls it on its own timer to see the
        phase change (and its audit event) as the collection window ends.
        """
        return self._advance(now, Command.CLOCK)

    def _advance(self, now: datetime | None, command: Command) -> datetime:
        if now is None:
            now = datetime.now(UTC)
        elif not isinstance(now, datetime) or now.tzinfo is None:
            raise InvalidBidParameters("now", now, f"{command.value}: must be timezone-aware")
        clock = self._clock
        if now > clock:
            self._clock = clock = now
        if self._phase is _COLLECTING and clock >= self._commit_deadline:
            self._move(Command.CLOCK, self._commit_deadline, "collection window ended")
        return clock

    # -- commands --

    def commit(self, bid: SealedBid | ImprovementBid, now: datetime | None = None) -> bool:
        """Commit a sealed bid (a full :class:`ImprovementBid` keeps only its commitment);
        also ``submit_bid(auction, bid, now=...)``.

        True if stored; False if rejected (``late``, ``token_pair_mismatch``,
        ``replayed_nonce``, ``duplicate_commit``), the reason appended to ``auction.audit``.
        """
        # Commits are legal in every phase (TRANSITIONS): no lookup on this hot path.
        if type(bid) is not SealedBid:
            if isinstance(bid, ImprovementBid):
                bid = bid.sealed()
            elif not isinstance(bid, SealedBid):
                raise InvalidBidParameters(
                    "bid", bid, "submit_bid needs a SealedBid or an ImprovementBid"
                )
        if type(now) is datetime and now.tzinfo is not None:
            # _advance() inlined: this runs for every commit.
            at = self._clock
            if now > at:
                self._clock = at = now
            if self._phase is _COLLECTING and at >= self._commit_deadline:
                self._move(Command.CLOCK, self._commit_deadline, "collection window ended")
        else:
            at = self._advance(now, Command.COMMIT)
        bidder = bid.bidder_id
        if self._phase is not _COLLECTING:
            return self._reject_commit(
                at,
                bid,
                RejectReason.LATE,
                f"arrived at {at.isoformat()}, collection window ended at "
                f"{self._commit_deadline.isoformat()} (phase {self._phase.name})",
            )
        pair = bid.token_pair
        if pair is not self._pair and pair != self._pair:
            return self._reject_commit(
                at,
                bid,
                RejectReason.TOKEN_PAIR_MISMATCH,
                f"token_pair={bid.token_pair}, auction trades {self._pair}",
            )
        last_nonces = self._nonces._last
        last = last_nonces.get(bidder)
        if last is not None and bid.nonce <= last:
            return self._reject_commit(
                at,
                bid,
                RejectReason.REPLAYED_NONCE,
                f"nonce={bid.nonce} not above {bidder!r}'s last accepted nonce {last}",
            )
        if bidder in self._commitments:
            return self._reject_commit(
                at,
                bid,
                RejectReason.DUPLICATE_COMMIT,
                f"bidder_id={bidder!r} already committed in auction {self._id}",
            )
        last_nonces[bidder] = bid.nonce
        self._commitments[bidder] = bid
        self._log.append((CommitAccepted, at, bid))
        return True

    def _reject_commit(
        self, at: datetime, bid: SealedBid, reason: RejectReason, detail: str
    ) -> bool:
        self._log.append((CommitRejected, at, bid, reason, detail))
        return False

    def reveal(self, bid: ImprovementBid, now: datetime | None = None) -> bool:
        """Reveal a committed bid in the reveal window; also ``reveal_bid(auction, bid,
        now=...)``.

        True if it matches its commitment and the limits; False otherwise
        (``outside_reveal_window``, ``not_committed``, ``duplicate_reveal``,
        ``commitment_mismatch``, ``token_pair_mismatch``, ``improvement_out_of_bounds``,
        ``volume_out_of_bounds``, ``fee_out_of_bounds``), the reason in ``auction.audit``.
        """
        # Reveals are legal in every phase (TRANSITIONS): no lookup on this hot path.
        if type(bid) is not ImprovementBid and not isinstance(bid, ImprovementBid):
            raise InvalidBidParameters("bid", bid, "reveal_bid needs an ImprovementBid")
        if type(now) is datetime and now.tzinfo is not None:
            # _advance() inlined: this runs for every reveal.
            at = self._clock
            if now > at:
                self._clock = at = now
            if self._phase is _COLLECTING and at >= self._commit_deadline:
                self._move(Command.CLOCK, self._commit_deadline, "collection window ended")
        else:
            at = self._advance(now, Command.REVEAL)
        if self._phase is not _REVEALING or at >= self._reveal_deadline:
            return self._reject_reveal(
                at,
                bid,
                RejectReason.OUTSIDE_REVEAL_WINDOW,
                f"arrived at {at.isoformat()}, reveal window is "
                f"[{self._commit_deadline.isoformat()}, {self._reveal_deadline.isoformat()}) "
                f"(phase {self._phase.name})",
            )
        bidder = bid.bidder_id
        sealed = self._commitments.get(bidder)
        if sealed is None:
            return self._reject_reveal(
                at, bid, RejectReason.NOT_COMMITTED, f"bidder_id={bidder!r} has no commitment"
            )
        if bidder in self._reveals:
            return self._reject_reveal(
                at, bid, RejectReason.DUPLICATE_REVEAL, f"bidder_id={bidder!r} already revealed"
            )
        # The auction's v2 prefix hashed once, on its first reveal; each check goes on
        # from a copy.
        hasher = self._v2_hasher
        if hasher is None:
            hasher = self._v2_hasher = prefix_hasher(self._prefixes[1])
        if bid.nonce != sealed.nonce or not commitment_version(
            self._prefixes, bid, sealed.commitment_hash, hasher
        ):
            v1 = revealed_digest(self._prefixes[0], bid).hex()
            v2 = revealed_digest_v2(self._prefixes[1], bid).hex()
            return self._reject_reveal(
                at,
                bid,
                RejectReason.COMMITMENT_MISMATCH,
                f"fields hash to {v1} (v1) / {v2} (v2) with nonce={bid.nonce}; committed "
                f"{sealed.commitment_hash.hex()} with nonce={sealed.nonce}",
            )
        pair = bid.token_pair
        if pair is not self._pair and pair != self._pair:
            return self._reject_reveal(
                at,
                bid,
                RejectReason.TOKEN_PAIR_MISMATCH,
                f"token_pair={bid.token_pair}, auction trades {self._pair}",
            )
        verdict = reveal_check(
            self._limits, self._baseline_price, bid.improved_price, bid.volume, bid.priority_fee
        )
        if verdict is not None:
            improvement = improvement_bps(bid.improved_price, self._baseline_price)
            return self._reject_reveal(at, bid, verdict, self._why(bid, verdict, improvement))
        if bid.commitment_hash != sealed.commitment_hash:
            # Revealed in version 1 (make_bid's hash is version 2's): the bid is recorded
            # under the hash it was committed with, the one a verifier compares.
            bid = replace(bid, commitment_hash=sealed.commitment_hash)
        self._reveals[bidder] = bid
        self._log.append((RevealAccepted, at, bid))
        return True

    def _why(self, bid: ImprovementBid, verdict: RejectReason, improvement: float) -> str:
        """The detail of a reveal that the rule book's verdict refused."""
        rules, baseline = self._book, self._baseline_price
        if verdict is RejectReason.IMPROVEMENT_OUT_OF_BOUNDS:
            return (
                f"improved_price={bid.improved_price} is {improvement:.6g} bps over "
                f"baseline {baseline}, outside [{rules.min_bps}, {rules.max_bps}] bps"
            )
        if verdict is RejectReason.VOLUME_OUT_OF_BOUNDS:
            return (
                f"volume={bid.volume} outside (0, {self._amount * rules.volume_multiplier}] "
                f"(amount x max_bid_value_multiplier)"
            )
        return (
            f"priority_fee={bid.priority_fee} outside [0, {bid.volume * rules.fee_ratio}] "
            f"(volume x priority_fee_max_ratio={rules.fee_ratio})"
        )

    def _reject_reveal(
        self, at: datetime, bid: ImprovementBid, reason: RejectReason, detail: str
    ) -> bool:
        self._log.append((RevealRejected, at, bid, reason, detail))
        return False

    def _check_open(self, command: str) -> None:
        if self._phase is _FINALIZED or self._phase is _ABORTED:
            raise InvalidBidParameters(
                "phase", self._phase.name, f"{command}: the auction has already ended"
            )

    def withdraw(self, bidder_id: str, detail: str, now: datetime | None = None) -> None:
        """Forget ``bidder_id``'s accepted commitment (and reveal), as if it never arrived.

        For a driver that could not make the acceptance durable (a store write failed):
        the bidder is told so and may commit again. Logged as a ``commit_rejected`` event
        with reason ``withdrawn``; the nonce registry is the driver's to roll back
        (:meth:`NonceRegistry.release`), since other auctions share it.
        """
        at = self._advance(now, Command.COMMIT)
        self._check_open("withdraw")
        if bidder_id not in self._commitments:
            raise InvalidBidParameters("bidder_id", bidder_id, "has no accepted commitment")
        if bidder_id in self._reveals:
            self.withdraw_reveal(bidder_id, detail, at)
        sealed = self._commitments.pop(bidder_id)
        self._log.append((CommitRejected, at, sealed, RejectReason.WITHDRAWN, detail))

    def withdraw_reveal(self, bidder_id: str, detail: str, now: datetime | None = None) -> None:
        """Forget ``bidder_id``'s accepted reveal (its commitment stays, so it may reveal
        again in the window); like :meth:`withdraw`, for a reveal its driver lost."""
        at = self._advance(now, Command.REVEAL)
        self._check_open("withdraw_reveal")
        bid = self._reveals.pop(bidder_id, None)
        if bid is None:
            raise InvalidBidParameters("bidder_id", bidder_id, "has no accepted reveal")
        self._log.append((RevealRejected, at, bid, RejectReason.WITHDRAWN, detail))

    def close_collection(self, now: datetime | None = None) -> None:
        """End the collection window early (every expected bidder has committed)."""
        at = self._advance(now, Command.CLOSE_COLLECTION)
        self._allow(Command.CLOSE_COLLECTION, "the collection window is already closed")
        self._move(Command.CLOSE_COLLECTION, at, "collection closed early")

    def finalize(self, now: datetime | None = None, *, strict: bool = False) -> AuctionResult:
        """Clear the auction and return its result; later calls return the same result
        (also ``finalize_auction(auction, now=..., strict=...)``).

        Legal once the reveal window is over, or earlier in ``REVEALING`` when every
        committed bid has been revealed. Below ``min_participants`` the user gets the
        baseline (``outcome`` says why); with ``strict=True`` that raises
        :class:`InsufficientParticipants` instead, the auction finalized all the same
        (its result stands: later calls return or raise alike).
        """
        at = self._advance(now, Command.FINALIZE)
        result = self._result
        if result is None:
            phase = self._phase
            if phase is _COLLECTING:
                self._allow(
                    Command.FINALIZE,
                    f"the collection window runs until {self._commit_deadline.isoformat()}",
                )
            unrevealed = len(self._commitments) - len(self._reveals)
            if at < self._reveal_deadline and unrevealed:
                raise AuctionPhaseError(
                    phase,
                    Command.FINALIZE,
                    f"the reveal window runs until {self._reveal_deadline.isoformat()} and "
                    f"{unrevealed} commitment(s) are unrevealed",
                )
            self._allow(Command.FINALIZE)  # before clearing: a refused finalize clears nothing
            result = self._clear(at)
            self._result = result
            self._move(Command.FINALIZE, at, "finalized")
            self._log.append(
                (AuctionFinalized, at, result.outcome, result.price, result.num_participants)
            )
        else:
            self._allow(Command.FINALIZE)
        required = self._book.min_participants
        if strict and result.outcome is not Outcome.ABORTED and result.num_participants < required:
            raise InsufficientParticipants(result.num_participants, required)
        return result

    def abort(self, reason: str, now: datetime | None = None) -> AuctionResult:
        """Stop the auction without clearing: the user gets the baseline from the CFMM."""
        at = self._advance(now, Command.ABORT)
        self._allow(Command.ABORT, "the auction has already been finalized")
        if self._result is None:
            try:
                ranking = ranking_of(
                    bid_table(
                        self._book,
                        self._revealed(),
                        self._phantom_columns,
                        self._baseline_price,
                        self._amount,
                    )
                )
            except Exception:
                # An abort must end the auction: when the bids cannot be ranked (what
                # made clearing fail may be in the bid table), it publishes no ranking.
                ranking = Ranking()
            self._result = self._finish(at, Outcome.ABORTED, [], ranking, phantom_won=False)
            self._move(Command.ABORT, at, f"aborted: {reason}")
            self._log.append((AuctionAborted, at, str(reason)))
        return self._result

    # -- clearing (engine/settlement.py) --

    def _revealed(self) -> list[ImprovementBid]:
        """The accepted reveals in commit order (the tie order)."""
        reveals, commitments = self._reveals, self._commitments
        if len(reveals) == len(commitments):  # every commitment revealed: the usual case
            return list(map(reveals.__getitem__, commitments))
        return [reveals[b] for b in commitments if b in reveals]

    def _clear(self, at: datetime) -> AuctionResult:
        settled = settle(
            self._book, self._revealed(), self._phantom_columns, self._baseline_price, self._amount
        )
        return self._finish(
            at, settled.outcome, settled.fills, settled.ranking, phantom_won=settled.phantom_won
        )

    def _finish(
        self,
        at: datetime,
        outcome: Outcome,
        fills: list[Fill],
        ranking: Ranking,
        *,
        phantom_won: bool,
    ) -> AuctionResult:
        baseline, amount = self._baseline_price, self._amount
        price = cfmm_remainder(fills, baseline, amount)
        reveals = self._reveals
        winning_bid = reveals[fills[0].bidder_id] if fills[0].bidder_id is not None else None
        return AuctionResult(
            winning_bid=winning_bid,
            price=price,
            amount=amount,
            improvement_bps=improvement_bps(price, baseline),
            num_participants=len(reveals) + len(self._phantom_columns[0]),
            auction_duration_ms=(at - self._opened_at) / _MS,
            auction_id=self._id,
            mechanism=self._book.mechanism,
            outcome=outcome,
            fills=tuple(fills),
            phantom_won=phantom_won,
            phantom_seed=self._phantom_seed,
            unrevealed=self.unrevealed if len(reveals) < len(self._commitments) else (),
            phantom_commitment=self._phantom_commitment,
            phantom_bids=(
                PhantomBids(self._phantom_columns) if self._phantoms is None else self._phantoms
            ),
            ranking=ranking,
            baseline_price=baseline,
            token_pair=self._pair,
            opened_at=self._opened_at,
            commit_deadline=self._commit_deadline,
            reveal_deadline=self._reveal_deadline,
            finalized_at=at,
            phantom_model=self._rules.phantom_model,
            phantom_policy=self._book.phantom_policy,
        )

    # -- rebuilding from a stored audit --

    def replay(self, events: Iterable[AuditEvent]) -> None:
        """Re-apply stored events (``auction.audit`` of an auction opened with the same
        request, baseline, deadline, config, ``auction_id``, ``phantom_seed`` and ``now``).

        Accepted commits are restored without the nonce check (they passed it when
        first made; the registry is raised to their nonces), accepted reveals are
        re-checked against their commitments, rejections are re-recorded, phase changes,
        finalization and abort are re-run at their times. Raises
        :class:`InvalidBidParameters` if the log does not fit this auction.
        """
        for event in events:
            self._replay_one(event)

    def _replay_one(self, event: AuditEvent) -> None:
        if isinstance(event, AuctionOpened):
            opened = self._built_events()[0]
            if event != opened:
                raise InvalidBidParameters(
                    "events", event, f"does not match this auction's opening {opened}"
                )
            return
        at = self.advance(event.at)
        if isinstance(event, CommitAccepted):
            bid = event.bid
            if self._phase is not _COLLECTING or bid.bidder_id in self._commitments:
                raise InvalidBidParameters(
                    "events", event, f"cannot be accepted in phase {self._phase.name}"
                )
            self._nonces.restore(bid.bidder_id, bid.nonce)
            self._commitments[bid.bidder_id] = bid
            self._log.append((CommitAccepted, at, bid))
        elif isinstance(event, CommitRejected) and event.reason is RejectReason.WITHDRAWN:
            self.withdraw(event.bid.bidder_id, event.detail, at)
        elif isinstance(event, RevealRejected) and event.reason is RejectReason.WITHDRAWN:
            self.withdraw_reveal(event.bid.bidder_id, event.detail, at)
        elif isinstance(event, CommitRejected | RevealRejected):
            self._log.append((type(event), *(getattr(event, f) for f in event.__slots__)))
        elif isinstance(event, RevealAccepted):
            if not self.reveal(event.bid, at):
                raise InvalidBidParameters(
                    "events", event, f"rejected on replay: {self.last_event}"
                )
        elif isinstance(event, PhaseChanged):
            # Only an early close needs re-running: the clock move happened in advance(),
            # FINALIZED / ABORTED are re-reached by the events that follow.
            if self._phase is _COLLECTING and event.phase is _REVEALING:
                self.close_collection(at)
        elif isinstance(event, AuctionFinalized):
            result = self.finalize(at)
            if (result.outcome, result.price) != (event.outcome, event.price):
                raise InvalidBidParameters(
                    "events", event, f"replay cleared to {result.outcome} at {result.price}"
                )
        else:
            self.abort(event.reason, at)

    # -- many bids in one call (engine/batch.py) --

    def commit_reveal_finalize(
        self,
        bidder_ids: list[str],
        prices: FloatColumn,
        volumes: FloatColumn,
        fees: FloatColumn,
        arrivals_us: list[int],
        *,
        nonce: int,
        salt: bytes,
    ) -> AuctionResult:
        """Commit, reveal and finalize bids held in clear, all in one call.

        The same, in result, state and audit, as these commands one by one:
        :meth:`commit` of bid ``i`` (:func:`~.bids.make_bid` of ``bidder_ids[i]``,
        ``prices[i]`` B per A, ``volumes[i]`` token A, ``fees[i]`` token units, ``nonce``
        and ``salt``: default commitment, timestamp its arrival) ``arrivals_us[i]`` whole
        microseconds after the open, for each ``i`` in order (the commit order, in which
        ties are broken); :meth:`reveal` of every accepted bid at the commit deadline (or
        the auction's clock, if later); :meth:`finalize` at the reveal deadline.

        For a driver that holds every bid in clear and has judged them by the rule book
        (the simulator): when every bid passes every check, the auction keeps them as
        columns (:class:`~.batch.BatchBids`; their records, commitments and audit events
        are made when first read, and clearing reads the columns), else the commands run
        one by one. The auction must have no commitment yet. ``prices``, ``volumes`` and
        ``fees`` may be lists of floats or 1-D float64 arrays.
        """
        if self._commitments or self._phase is not _COLLECTING:
            raise AuctionPhaseError(
                self._phase, Command.COMMIT, "commit_reveal_finalize needs no commitment yet"
            )
        batch = accepted_batch(
            self._id,
            self._pair,
            self._opened_at,
            self._clock,
            (self._commit_deadline, self._reveal_deadline),
            self._limits,
            self._baseline_price,
            self._nonces._last,
            (bidder_ids, prices, volumes, fees, arrivals_us),
            nonce,
            salt,
        )
        if batch is None:  # something is refused: the commands, one by one
            prices, volumes, fees = map(float_list, (prices, volumes, fees))
            accepted = []
            for i, bidder in enumerate(bidder_ids):
                at = self._opened_at + timedelta(microseconds=arrivals_us[i])
                bid = make_bid(
                    self._id, bidder, self._pair, prices[i], volumes[i], fees[i], nonce,
                    salt=salt, timestamp=at,
                )  # fmt: skip
                if self.commit(bid, at):
                    accepted.append(bid)
            for bid in accepted:
                self.reveal(bid, self._commit_deadline)
            return self.finalize(self._reveal_deadline)
        n, log = len(batch.bidder_ids), self._log
        # From the index, a dict: its size and hashes known, a fifth faster than the ids.
        self._nonces._last.update(dict.fromkeys(batch.index, nonce))
        self._commitments = LazyRecords(batch.sealed, batch.index)
        log.append((_Run, batch.commit_event, n))
        self._advance(batch.committed_at(n - 1), Command.COMMIT)
        self._advance(self._commit_deadline, Command.REVEAL)
        self._reveals = LazyRecords(batch.bid, batch.index)
        log.append((_Run, batch.reveal_event, n))
        # finalize()'s own steps, with clearing reading the columns.
        at = self._advance(self._reveal_deadline, Command.FINALIZE)
        self._allow(Command.FINALIZE)
        settled = settle(
            self._book, batch.rows(), self._phantom_columns, self._baseline_price, self._amount
        )
        result = self._finish(
            at, settled.outcome, settled.fills, settled.ranking, phantom_won=settled.phantom_won
        )
        self._result = result
        self._move(Command.FINALIZE, at, "finalized")
        log.append((AuctionFinalized, at, result.outcome, result.price, result.num_participants))
        return result


#: ``submit_bid(auction, bid, now=...)``, ``reveal_bid(auction, bid, now=...)`` and
#: ``finalize_auction(auction, now=...)``: the methods themselves, not wrappers around
#: them (a wrapper's call is a tenth of a commit's cost, and a driver makes one per bid).
submit_bid = Auction.commit
reveal_bid = Auction.reveal
finalize_auction = Auction.finalize


def close_collection(auction: Auction, *, now: datetime | None = None) -> None:
    """End the collection window early; only legal in ``COLLECTING``."""
    auction.close_collection(now)


def abort_auction(auction: Auction, reason: str, *, now: datetime | None = None) -> AuctionResult:
    """Stop the auction without clearing (``outcome`` ``aborted``, the baseline price)."""
    return auction.abort(reason, now)
