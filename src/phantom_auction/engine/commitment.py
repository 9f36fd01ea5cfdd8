"""Sealed-bid commitments: the canonical byte encoding of a bid and its SHA-256 digest.

Two versions, both verified by the engine (``docs/commitment.md`` has both layouts with
test vectors for bidders written in other languages). They differ only in how the
three prices are written: v1 as canonical decimal text, v2 as IEEE-754 binary64.
``make_commitment`` and ``make_bid`` write v2 unless asked for ``version=1``.

``commitment = SHA-256(preimage)`` where the v1 preimage is, in order::

    text("phantom-auction/commitment/v1")    domain tag: a digest is never valid elsewhere
    text(auction_id)                          binds the bid to one auction
    text(bidder_id)
    i64(token_in) i64(token_out)              the token pair, |id| <= 2**53 - 1
    dec(improved_price)                       B per A
    dec(volume)                               token A units
    dec(priority_fee)                         token units
    u64(nonce)                                0 <= nonce <= 2**53 - 1
    salt                                      exactly 32 bytes (hides the bid)

    text(s) = u32be(len(utf8(s))) || utf8(s)     length prefix: no two field lists collide
    dec(x)  = text(canonical decimal of x)
    i64 / u64 = 8-byte big-endian, two's complement / unsigned

The canonical decimal of a float is its shortest round-trip decimal (Python ``repr``,
JavaScript ``String(x)``, Go ``FormatFloat(x, 'f', -1, 64)``, Rust ``{}``) written
without an exponent, without trailing fractional zeros and without a trailing point:
``100.0 -> "100"``, ``0.1 -> "0.1"``, ``1e-07 -> "0.0000001"``, ``1e+22 ->
"10000000000000000000000"``; ``-0.0`` is written ``"0"``. Every finite float64 has
exactly one such text and the text parses back to the same float, so the encoding is
exact (no rounding rule to agree on, unlike fixed-point) and has no range limit.

Token ids and nonces keep their 8-byte fields but are limited to JSON's safe integers
(magnitude at most 2**53 - 1, :data:`MAX_NONCE`, :data:`MAX_TOKEN_ID`): every JSON parser,
JavaScript's included, reads them exactly, so a bidder in any language signs and hashes
the numbers the service stores and publishes.

v2 (:data:`COMMITMENT_DOMAIN_V2`) is the same list with the domain tag
``text("phantom-auction/commitment/v2")`` and each of the three prices as ``f64(x)``,
the 8 bytes of the binary64 big-endian, zero (``-0.0`` too) as ``+0.0``, NaN and
infinities refused. What it buys: no shortest-decimal conversion (three ``repr`` calls
and their clean-up) on every reveal, about half of what a v1 check costs here
(``benchmarks/bench_engine.py`` prints both); the hashed bytes are the double itself
(JavaScript ``DataView.setFloat64``, Go ``math.Float64bits``), so there is no text to
agree on at all.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidBidParameters

if TYPE_CHECKING:
    from .bids import ImprovementBid

__all__ = [
    "COMMITMENT_DOMAIN",
    "COMMITMENT_DOMAIN_V2",
    "COMMITMENT_SIZE",
    "COMMITMENT_VERSIONS",
    "MAX_NONCE",
    "MAX_TOKEN_ID",
    "SALT_SIZE",
    "canonical_decimal",
    "commitment_preimage",
    "make_commitment",
    "new_salt",
]

COMMITMENT_DOMAIN: Final = "phantom-auction/commitment/v1"
COMMITMENT_DOMAIN_V2: Final = "phantom-auction/commitment/v2"
#: The commitment versions the engine verifies (``make_commitment``'s ``version=``).
COMMITMENT_VERSIONS: Final = (1, 2)
COMMITMENT_SIZE: Final = 32
SALT_SIZE: Final = 32
#: The largest integer every JSON parser reads exactly (JavaScript's
#: ``Number.MAX_SAFE_INTEGER``): the bound of nonces and token ids on the wire and here.
MAX_NONCE: Final = 2**53 - 1
MAX_TOKEN_ID: Final = 2**53 - 1

_pack_u32 = struct.Struct(">I").pack
_pack_pair = struct.Struct(">qq").pack
_pack_u64 = struct.Struct(">Q").pack
#: v2's fixed-size middle: token pair, price, volume, fee, nonce in one call.
_pack_v2 = struct.Struct(">qqdddQ").pack
_sha256 = hashlib.sha256


def new_salt() -> bytes:
    """32 random bytes from the OS (``os.urandom``) to hide a bid until it is revealed."""
    return os.urandom(SALT_SIZE)


def canonical_decimal(value: float, field: str = "value") -> str:
    """The canonical decimal text of a finite float (see the module docstring).

    Raises :class:`InvalidBidParameters` naming ``field`` for NaN, infinities and
    non-numbers (``bool`` included: a flag is not a price).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBidParameters(field, value, "must be a real number")
    x = float(value)
    if not math.isfinite(x):
        raise InvalidBidParameters(field, value, "must be finite")
    return _decimal_of_float(x)


def _decimal_of_float(x: float) -> str:
    """:func:`canonical_decimal` of a float already known to be finite."""
    if x == 0.0:
        return "0"  # -0.0 too: equal numbers, equal text
    text = repr(x)
    if "e" in text:
        # repr switches to exponent form below 1e-4 and from 1e16: expand it exactly.
        text = format(Decimal(text), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    # Shortest round-trip text has no trailing fractional zeros except repr's ".0".
    return text[:-2] if text.endswith(".0") else text


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _pack_u32(len(data)) + data


_DOMAIN_TEXT: Final = _text(COMMITMENT_DOMAIN)
_DOMAIN_TEXT_V2: Final = _text(COMMITMENT_DOMAIN_V2)


def _check_version(version: object) -> int:
    if type(version) is not int or version not in COMMITMENT_VERSIONS:
        raise InvalidBidParameters("version", version, f"must be one of {COMMITMENT_VERSIONS}")
    return version


def _check_float(field: str, value: object) -> float:
    """A finite float for v2's ``f64`` (zero as +0.0), or the error naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBidParameters(field, value, "must be a real number")
    x = float(value)
    if not math.isfinite(x):
        raise InvalidBidParameters(field, value, "must be finite")
    return x + 0.0  # -0.0 + 0.0 is +0.0: equal numbers, equal bytes


def check_text(field: str, value: object) -> str:
    """``value`` if it is a non-empty string that UTF-8 can encode (ids are hashed as
    UTF-8: a lone surrogate, which a JSON ``\\ud800`` decodes to, cannot be)."""
    if not isinstance(value, str) or not value:
        raise InvalidBidParameters(field, value, "must be a non-empty string")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidBidParameters(
                field, value, "must be valid Unicode text (a lone surrogate is not)"
            ) from None
    return value


def _check_pair(token_pair: object) -> tuple[int, int]:
    if (
        not isinstance(token_pair, tuple)
        or len(token_pair) != 2
        or not all(type(t) is int and -MAX_TOKEN_ID <= t <= MAX_TOKEN_ID for t in token_pair)
    ):
        raise InvalidBidParameters(
            "token_pair",
            token_pair,
            "must be a tuple (token_in, token_out) of integers in [-(2**53 - 1), 2**53 - 1]",
        )
    return token_pair[0], token_pair[1]


def _check_nonce(nonce: object) -> int:
    if type(nonce) is not int or not 0 <= nonce <= MAX_NONCE:
        raise InvalidBidParameters("nonce", nonce, "must be an integer in [0, 2**53 - 1]")
    return nonce


def _check_salt(salt: object) -> bytes:
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise InvalidBidParameters(
            "salt", salt, f"must be exactly {SALT_SIZE} bytes (use new_salt())"
        )
    return salt


def auction_prefix(auction_id: str, version: int = 1) -> bytes:
    """The preimage's first two fields: domain tag and auction id (shared by every bid)."""
    domain = _DOMAIN_TEXT if _check_version(version) == 1 else _DOMAIN_TEXT_V2
    return domain + _text(check_text("auction_id", auction_id))


def bid_suffix(
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
    version: int = 1,
) -> bytes:
    """The preimage after the auction prefix: the bidder's own fields."""
    token_in, token_out = _check_pair(token_pair)
    if _check_version(version) == 2:
        return b"".join(
            (
                _text(check_text("bidder_id", bidder_id)),
                _pack_v2(
                    token_in,
                    token_out,
                    _check_float("improved_price", improved_price),
                    _check_float("volume", volume),
                    _check_float("priority_fee", priority_fee),
                    _check_nonce(nonce),
                ),
                _check_salt(salt),
            )
        )
    return b"".join(
        (
            _text(check_text("bidder_id", bidder_id)),
            _pack_pair(token_in, token_out),
            _text(canonical_decimal(improved_price, "improved_price")),
            _text(canonical_decimal(volume, "volume")),
            _text(canonical_decimal(priority_fee, "priority_fee")),
            _pack_u64(_check_nonce(nonce)),
            _check_salt(salt),
        )
    )


#: ``u32be(n)`` for every length a canonical decimal can have (the longest, a negative
#: subnormal written out, has 327 characters): one index instead of a pack per field.
_U32: Final = tuple(_pack_u32(n) for n in range(512))
_BIDDER_TEXT: dict[str, bytes] = {}


def _bidder_text(bidder_id: str) -> bytes:
    """``text(bidder_id)``, kept: bidder ids recur across auctions (bounded cache)."""
    if len(_BIDDER_TEXT) >= 4096:
        _BIDDER_TEXT.clear()
    head = _BIDDER_TEXT[bidder_id] = _text(bidder_id)
    return head


def revealed_digest(prefix: bytes, bid: ImprovementBid) -> bytes:
    """SHA-256 of ``prefix`` (:func:`auction_prefix`) and the fields of ``bid``, which are
    already validated (an :class:`ImprovementBid`'s): :func:`make_commitment`'s digest,
    on the engine's reveal path, so built with as few calls as possible."""
    bidder_id = bid.bidder_id
    head = _BIDDER_TEXT.get(bidder_id)
    if head is None:
        head = _bidder_text(bidder_id)
    # repr is already canonical unless it ends in ".0" (an integral value: drop it, and
    # write zeros, -0.0 too, as "0") or has an exponent (rare: written out in full).
    # Unrolled for the three fields on purpose: this runs on every reveal.
    x = bid.improved_price
    price = repr(x)
    if price[-2:] == ".0":
        price = price[:-2] if x else "0"
    elif "e" in price:
        price = _decimal_of_float(x)
    x = bid.volume
    size = repr(x)
    if size[-2:] == ".0":
        size = size[:-2] if x else "0"
    elif "e" in size:
        size = _decimal_of_float(x)
    x = bid.priority_fee
    fee = repr(x)
    if fee[-2:] == ".0":
        fee = fee[:-2] if x else "0"
    elif "e" in fee:
        fee = _decimal_of_float(x)
    return _sha256(
        b"".join(
            (
                prefix,
                head,
                _pack_pair(*bid.token_pair),
                _U32[len(price)],
                price.encode(),
                _U32[len(size)],
                size.encode(),
                _U32[len(fee)],
                fee.encode(),
                _pack_u64(bid.nonce),
                bid.salt,
            )
        )
    ).digest()


def revealed_digest_v2(prefix: bytes, bid: ImprovementBid) -> bytes:
    """:func:`revealed_digest` for v2 (``prefix`` = ``auction_prefix(auction_id, 2)``)."""
    return fields_digest_v2(
        prefix, bid.bidder_id, bid.token_pair, bid.improved_price, bid.volume,
        bid.priority_fee, bid.nonce, bid.salt,
    )  # fmt: skip


def fields_digest_v2(
    prefix: bytes,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
) -> bytes:
    """:func:`make_commitment`'s v2 digest of fields already validated (an
    :class:`ImprovementBid`'s, or a batch's judged ones; prices finite) after ``prefix``
    = ``auction_prefix(auction_id, 2)``: no checks, the prefix not rebuilt."""
    head = _BIDDER_TEXT.get(bidder_id)
    if head is None:
        head = _bidder_text(bidder_id)
    token_in, token_out = token_pair
    fields = _pack_v2(
        token_in, token_out, improved_price + 0.0, volume + 0.0, priority_fee + 0.0, nonce
    )
    return _sha256(b"".join((prefix, head, fields, salt))).digest()


_V1_BIDDERS: set[str] = set()
#: An empty SHA-256 object to copy: a copy skips the algorithm lookup that each new
#: OpenSSL 3 hash object makes (a third of a new object's cost).
_SHA256_EMPTY: Final = hashlib.sha256()


def prefix_hasher(prefix: bytes) -> Any:
    """A SHA-256 object fed ``prefix`` (an auction's v2 prefix): what
    :func:`commitment_version` takes as ``v2_prefix``."""
    hasher = _SHA256_EMPTY.copy()
    hasher.update(prefix)
    return hasher


def auction_prefixes(auction_id: str) -> tuple[bytes, bytes]:
    """:func:`auction_prefix` of versions 1 and 2 (what :func:`commitment_version` takes)."""
    text = _text(check_text("auction_id", auction_id))  # auction_prefix's, shared
    return _DOMAIN_TEXT + text, _DOMAIN_TEXT_V2 + text


def commitment_version(
    prefixes: tuple[bytes, bytes],
    bid: ImprovementBid,
    commitment_hash: bytes,
    v2_prefix: Any = None,
) -> int:
    """The version (1 or 2) in which the fields of ``bid`` (already validated) hash to
    ``commitment_hash``, 0 if neither. v2 is tried first, except for a bidder whose last
    match was v1 (bidders keep their version: one digest per reveal). ``v2_prefix``: a
    SHA-256 object fed ``prefixes[1]`` (an auction's own, kept across its reveals), from
    a copy of which the v2 digest is hashed on (cheaper than hashing the prefix again)."""
    bidder_id = bid.bidder_id
    if bidder_id in _V1_BIDDERS:
        if revealed_digest(prefixes[0], bid) == commitment_hash:
            return 1
        if revealed_digest_v2(prefixes[1], bid) == commitment_hash:
            _V1_BIDDERS.discard(bidder_id)
            return 2
        return 0
    # revealed_digest_v2 inlined: this runs on every reveal.
    head = _BIDDER_TEXT.get(bidder_id)
    if head is None:
        head = _bidder_text(bidder_id)
    token_in, token_out = bid.token_pair
    fields = _pack_v2(
        token_in,
        token_out,
        bid.improved_price + 0.0,
        bid.volume + 0.0,
        bid.priority_fee + 0.0,
        bid.nonce,
    )
    if v2_prefix is None:
        digest = _sha256(b"".join((prefixes[1], head, fields, bid.salt))).digest()
    else:
        hasher = v2_prefix.copy()
        hasher.update(head)
        hasher.update(fields)
        hasher.update(bid.salt)
        digest = hasher.digest()
    if digest == commitment_hash:
        return 2
    if revealed_digest(prefixes[0], bid) == commitment_hash:
        if len(_V1_BIDDERS) >= 4096:  # a hint only: keep it bounded
            _V1_BIDDERS.clear()
        _V1_BIDDERS.add(bidder_id)
        return 1
    return 0


def commitment_preimage(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
    *,
    version: int = 2,
) -> bytes:
    """The canonical bytes that :func:`make_commitment` hashes (for docs and debugging)."""
    return auction_prefix(auction_id, version) + bid_suffix(
        bidder_id, token_pair, improved_price, volume, priority_fee, nonce, salt, version
    )


def make_commitment(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
    *,
    version: int = 2,
) -> bytes:
    """SHA-256 (32 bytes) of the canonical encoding of a bid; see ``docs/commitment.md``.

    ``improved_price`` in B per A, ``volume`` in token A units, ``priority_fee`` in token
    units, ``nonce`` in ``[0, 2**53 - 1]``, ``salt`` exactly 32 random bytes, ``version``
    2 (prices as binary64, the default: cheaper to verify) or 1 (prices as decimal text). Raises
    :class:`InvalidBidParameters` naming the first malformed field.
    """
    return hashlib.sha256(
        commitment_preimage(
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
    ).digest()
