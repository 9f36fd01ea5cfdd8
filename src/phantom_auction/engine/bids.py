"""The auction's inputs: the user's settlement request and the bidders' (sealed) bids.

Units: prices in token B per token A; ``amount`` and ``volume`` in token A units;
``priority_fee`` in token units; improvements in basis points (bps) over the baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import InvalidBidParameters
from .commitment import (
    COMMITMENT_SIZE,
    SALT_SIZE,
    _check_nonce,
    _check_pair,
    check_text,
    make_commitment,
    new_salt,
)

__all__ = ["ImprovementBid", "SealedBid", "SettlementRequest", "make_bid"]


def _check_aware(field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidBidParameters(field, value, "must be a timezone-aware datetime")
    return value


def _check_bidder(bidder_id: object) -> None:
    check_text("bidder_id", bidder_id)


def _check_digest(value: object) -> None:
    if not isinstance(value, bytes) or len(value) != COMMITMENT_SIZE:
        raise InvalidBidParameters(
            "commitment_hash", value, f"must be {COMMITMENT_SIZE} bytes (a SHA-256 digest)"
        )


def _finite(obj: object, field: str, value: object) -> None:
    """Store ``value`` as a float on frozen ``obj`` after checking it is a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidBidParameters(field, value, "must be a finite number")
    if type(value) is not float:
        object.__setattr__(obj, field, float(value))


@dataclass(frozen=True, slots=True)
class SettlementRequest:
    """A user's order: sell ``amount`` of ``token_in`` (token A) for ``token_out`` (token B).

    Token ids are 64-bit integers (the seed's ``Tuple{Int64, Int64}``); ``request_id`` is
    the caller's own reference, carried through unchanged.
    """

    token_in: int
    token_out: int
    amount: float
    request_id: str = ""

    def __post_init__(self) -> None:
        _check_pair((self.token_in, self.token_out))
        if self.token_out == self.token_in:  # as the service's order schema refuses it
            raise InvalidBidParameters(
                "token_out",
                self.token_out,
                "must differ from token_in (a token is not sold for itself)",
            )
        _finite(self, "amount", self.amount)
        if not self.amount > 0:
            raise InvalidBidParameters("amount", self.amount, "must be > 0 (token A units)")
        if not isinstance(self.request_id, str):
            raise InvalidBidParameters("request_id", self.request_id, "must be a string")

    @property
    def token_pair(self) -> tuple[int, int]:
        """``(token_in, token_out)``: the pair every bid must name."""
        return (self.token_in, self.token_out)


@dataclass(frozen=True, slots=True)
class SealedBid:
    """What a bidder sends in the collection window: no price, volume or fee, only the
    commitment to them (``commitment_hash``, 32 bytes) and a replay-protection ``nonce``.

    ``timestamp`` is the bidder's own send time; the engine records its own arrival time.
    """

    bidder_id: str
    token_pair: tuple[int, int]
    commitment_hash: bytes
    nonce: int
    timestamp: datetime

    def __post_init__(self) -> None:
        _check_bidder(self.bidder_id)
        _check_pair(self.token_pair)
        _check_digest(self.commitment_hash)
        _check_nonce(self.nonce)
        _check_aware("timestamp", self.timestamp)


@dataclass(frozen=True, slots=True)
class ImprovementBid:
    """A full bid (the seed's ``ImprovementBid`` plus ``salt``): the offer in clear.

    ``improved_price`` in B per A (above the baseline), ``volume`` in token A units,
    ``priority_fee`` in token units, ``commitment_hash`` = :func:`make_commitment` of
    these fields (see :func:`make_bid`), ``salt`` 32 random bytes.
    """

    bidder_id: str
    token_pair: tuple[int, int]
    improved_price: float
    volume: float
    priority_fee: float
    commitment_hash: bytes
    nonce: int
    timestamp: datetime
    salt: bytes

    def __post_init__(self) -> None:
        _check_bidder(self.bidder_id)
        _check_pair(self.token_pair)
        _finite(self, "improved_price", self.improved_price)
        _finite(self, "volume", self.volume)
        _finite(self, "priority_fee", self.priority_fee)
        _check_digest(self.commitment_hash)
        _check_nonce(self.nonce)
        _check_aware("timestamp", self.timestamp)
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_SIZE:
            raise InvalidBidParameters("salt", self.salt, f"must be exactly {SALT_SIZE} bytes")

    def sealed(self) -> SealedBid:
        """The sealed form to send in the collection window (drops price, volume, fee, salt)."""
        return SealedBid(
            self.bidder_id, self.token_pair, self.commitment_hash, self.nonce, self.timestamp
        )

    def commitment_for(self, auction_id: str, version: int = 2) -> bytes:
        """:func:`make_commitment` of this bid's fields in auction ``auction_id``."""
        return make_commitment(
            auction_id,
            self.bidder_id,
            self.token_pair,
            self.improved_price,
            self.volume,
            self.priority_fee,
            self.nonce,
            self.salt,
            version=version,
        )


def make_bid(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    *,
    salt: bytes | None = None,
    timestamp: datetime | None = None,
    version: int = 2,
) -> ImprovementBid:
    """A bid for ``auction_id`` with its commitment computed (fresh salt unless given),
    in commitment ``version`` 2 (the default) or 1 (``docs/commitment.md``; the engine
    checks both).

    ``improved_price``: token B per token A offered for the user's token A (above the
    baseline); ``volume``: token A; ``priority_fee``: token units; ``nonce``: strictly
    increasing per bidder.

    Send ``bid.sealed()`` to commit, then ``bid`` itself to reveal.
    """
    salt = new_salt() if salt is None else salt
    digest = make_commitment(
        auction_id,
        bidder_id,
        token_pair,
        improved_price,
        volume,
        priority_fee,
        nonce,
        salt,
        version=version,
    )
    return ImprovementBid(
        bidder_id,
        token_pair,
        improved_price,
        volume,
        priority_fee,
        digest,
        nonce,
        datetime.now(UTC) if timestamp is None else timestamp,
        salt,
    )
