"""The commitment encoding: docs/commitment.md's vectors, an independent re-implementation,
and the canonical decimal's round-trip and uniqueness."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phantom_auction import InvalidBidParameters, make_commitment
from phantom_auction.engine import (
    MAX_NONCE,
    MAX_TOKEN_ID,
    canonical_decimal,
    commitment_preimage,
    make_bid,
)
from phantom_auction.engine.commitment import (
    auction_prefix,
    auction_prefixes,
    commitment_version,
    revealed_digest,
    revealed_digest_v2,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "commitment.md"


def _vectors() -> list[tuple[dict[str, Any], str]]:
    """(inputs, digest) for each 'Vector N' section of the doc."""
    text = DOC.read_text("utf-8")
    sections = re.split(r"\nVector \d+ ", text)[1:]
    vectors = []
    for section in sections:
        inputs = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))  # type: ignore[union-attr]
        digest = re.search(r"digest: `([0-9a-f]{64})`", section).group(1)  # type: ignore[union-attr]
        vectors.append((inputs, digest))
    return vectors


def _args(inputs: dict[str, Any]) -> dict[str, Any]:
    args = dict(inputs)
    args["token_pair"] = tuple(args["token_pair"])
    args["salt"] = bytes.fromhex(args["salt"])
    return args


def _independent_decimal(x: float) -> str:
    """Dragon4 shortest-unique positional digits (numpy), trimmed: a second algorithm."""
    if x == 0:
        return "0"
    return np.format_float_positional(x, unique=True, trim="-")


def _independent_commitment(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
) -> bytes:
    def text(s: str) -> bytes:
        raw = s.encode("utf-8")
        return len(raw).to_bytes(4, "big") + raw

    parts = [
        text("phantom-auction/commitment/v1"),
        text(auction_id),
        text(bidder_id),
        token_pair[0].to_bytes(8, "big", signed=True),
        token_pair[1].to_bytes(8, "big", signed=True),
        text(_independent_decimal(improved_price)),
        text(_independent_decimal(volume)),
        text(_independent_decimal(priority_fee)),
        nonce.to_bytes(8, "big"),
        salt,
    ]
    return hashlib.sha256(b"".join(parts)).digest()


def test_doc_has_three_vectors() -> None:
    assert len(_vectors()) >= 3


@pytest.mark.parametrize("index", range(3))
def test_doc_vectors_match_make_commitment(index: int) -> None:
    inputs, digest = _vectors()[index]
    assert make_commitment(**_args(inputs), version=1).hex() == digest


@pytest.mark.parametrize("index", range(3))
def test_doc_vectors_match_independent_implementation(index: int) -> None:
    inputs, digest = _vectors()[index]
    assert _independent_commitment(**_args(inputs)).hex() == digest


def test_doc_preimage_of_vector_one() -> None:
    text = DOC.read_text("utf-8")
    block = re.search(r"preimage \(hex\):\n\n```\n(.*?)\n```", text, re.S).group(1)  # type: ignore[union-attr]
    inputs, _ = _vectors()[0]
    assert commitment_preimage(**_args(inputs), version=1).hex() == re.sub(r"\s", "", block)


def test_doc_reference_implementation_agrees() -> None:
    source = re.search(
        r"### Reference implementation.*?```python\n(.*?)\n```", DOC.read_text(), re.S
    )
    namespace: dict[str, Any] = {}
    exec(source.group(1), namespace)  # type: ignore[union-attr]
    for inputs, digest in _vectors():
        args = _args(inputs)
        assert namespace["commitment"](*args.values()).hex() == digest
    # The text says NaN and infinities are refused: the reference refuses them too.
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            namespace["canonical"](value)


def test_doc_vectors_read_exactly_by_a_float64_only_parser() -> None:
    # What JavaScript's JSON.parse sees: every number a double. The integers are exact.
    for section in re.findall(r"```json\n(.*?)\n```", DOC.read_text("utf-8"), re.S):
        exact, as_js = json.loads(section), json.loads(section, parse_int=float)
        for key, value in exact.items():
            if key in ("nonce", "token_pair"):
                assert as_js[key] == value, key
                values = value if isinstance(value, list) else [value]
                assert all(int(float(v)) == v for v in values), key


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (100.0, "100"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (1e-07, "0.0000001"),
        (1.5e-05, "0.000015"),
        (1e22, "10000000000000000000000"),
        (-0.0, "0"),
        (0.0, "0"),
        (-3.25, "-3.25"),
        (3021.11 * (1 + 33 / 10_000), "3031.0796630000004"),
        (7, "7"),
    ],
)
def test_canonical_decimal_examples(value: float, text: str) -> None:
    assert canonical_decimal(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_decimal_round_trips_and_matches_dragon4(x: float) -> None:
    text = canonical_decimal(x)
    assert float(text) == x
    assert "e" not in text and "E" not in text
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
    assert text == _independent_decimal(x)


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_canonical_decimal_is_one_to_one(x: float, y: float) -> None:
    assert (canonical_decimal(x) == canonical_decimal(y)) == (x == y)


@given(
    auction_id=st.text(min_size=1, max_size=12),
    bidder_id=st.text(min_size=1, max_size=12),
    token_pair=st.tuples(
        st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID), st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID)
    ),
    price=st.floats(0, 1e6),
    volume=st.floats(0, 1e6),
    fee=st.floats(0, 1e3),
    nonce=st.integers(0, MAX_NONCE),
    salt=st.binary(min_size=32, max_size=32),
)
def test_make_commitment_matches_independent_implementation(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    price: float,
    volume: float,
    fee: float,
    nonce: int,
    salt: bytes,
) -> None:
    args = (auction_id, bidder_id, token_pair, price, volume, fee, nonce, salt)
    assert make_commitment(*args, version=1) == _independent_commitment(*args)


def test_length_prefixes_keep_field_boundaries() -> None:
    salt = bytes(32)
    a = make_commitment("ab", "c", (1, 2), 1.0, 1.0, 0.0, 1, salt)
    b = make_commitment("a", "bc", (1, 2), 1.0, 1.0, 0.0, 1, salt)
    assert a != b
    # A price and volume whose texts concatenate to the same characters.
    c = make_commitment("x", "y", (1, 2), 11.0, 1.0, 0.0, 1, salt, version=1)
    d = make_commitment("x", "y", (1, 2), 1.0, 11.0, 0.0, 1, salt, version=1)
    assert c != d


@pytest.mark.parametrize(
    ("field", "position", "value"),
    [
        ("auction_id", 0, "auction-2"),
        ("bidder_id", 1, "bob"),
        ("token_pair", 2, (2, 1)),
        ("improved_price", 3, 100.26),
        ("volume", 4, 500.5),
        ("priority_fee", 5, 0.25),
        ("nonce", 6, 2),
        ("salt", 7, bytes(31) + b"\x01"),
    ],
)
def test_every_field_is_bound(field: str, position: int, value: Any) -> None:
    for version in (1, 2):
        args: list[Any] = ["auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 1, bytes(32)]
        before = make_commitment(*args, version=version)
        args[position] = value
        assert make_commitment(*args, version=version) != before, (field, version)


@pytest.mark.parametrize(
    ("position", "value", "field"),
    [
        (0, "", "auction_id"),
        (1, "", "bidder_id"),
        (1, 7, "bidder_id"),
        (2, [1, 2], "token_pair"),
        (2, (1, 2**63), "token_pair"),
        (2, (1, MAX_TOKEN_ID + 1), "token_pair"),
        (2, (-MAX_TOKEN_ID - 1, 1), "token_pair"),
        (2, (1, True), "token_pair"),
        (3, math.nan, "improved_price"),
        (4, math.inf, "volume"),
        (5, "0.5", "priority_fee"),
        (5, True, "priority_fee"),
        (6, -1, "nonce"),
        (6, 2**64, "nonce"),
        (6, 2**63, "nonce"),
        (6, MAX_NONCE + 1, "nonce"),
        (7, bytes(31), "salt"),
    ],
)
def test_malformed_fields_raise_naming_field(position: int, value: Any, field: str) -> None:
    args: list[Any] = ["auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 1, bytes(32)]
    args[position] = value
    with pytest.raises(InvalidBidParameters, match=field) as info:
        make_commitment(*args)
    assert info.value.field == field


def test_make_bid_commits_to_its_own_fields() -> None:
    bid = make_bid("auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 3)
    assert len(bid.salt) == 32
    assert bid.commitment_hash == make_commitment(
        "auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 3, bid.salt
    )
    assert bid.commitment_for("auction-1") == bid.commitment_hash
    assert bid.commitment_for("auction-2") != bid.commitment_hash
    sealed = bid.sealed()
    assert (sealed.bidder_id, sealed.token_pair, sealed.commitment_hash, sealed.nonce) == (
        "alice",
        (1, 2),
        bid.commitment_hash,
        3,
    )
    assert not hasattr(sealed, "improved_price")


_ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 100.0, 1e16, 1e22, -3.0, 5e-324, 1.5e-05, 1e-4, 123456789012345.0]
)


@given(
    bidder=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
    price=_ANY_FLOAT,
    volume=_ANY_FLOAT,
    fee=_ANY_FLOAT,
    nonce=st.integers(0, MAX_NONCE),
    pair=st.tuples(
        st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID), st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID)
    ),
)
def test_the_engines_reveal_digest_is_make_commitment(
    bidder: str, price: float, volume: float, fee: float, nonce: int, pair: tuple[int, int]
) -> None:
    # The reveal path's own encoder (fast paths for integral values and zeros, a cache of
    # bidder ids) gives the documented digest for every finite value.
    bid = make_bid(
        "auction-x", bidder, pair, price, volume, fee, nonce, salt=bytes(range(32)), version=1
    )
    assert revealed_digest(auction_prefix("auction-x"), bid) == bid.commitment_hash
    assert revealed_digest(auction_prefix("auction-x"), bid) == bid.commitment_for("auction-x", 1)


# -- version 2: prices as binary64 --


def _v2_vectors() -> list[tuple[dict[str, Any], str]]:
    """(inputs, digest) for each 'Version 2 vector N' section of the doc."""
    text = DOC.read_text("utf-8")
    vectors = []
    for section in re.split(r"\nVersion 2 vector \d+ ", text)[1:]:
        inputs = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))  # type: ignore[union-attr]
        digest = re.search(r"v2 digest: `([0-9a-f]{64})`", section).group(1)  # type: ignore[union-attr]
        vectors.append((inputs, digest))
    return vectors


def _independent_v2(
    auction_id: str,
    bidder_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
) -> bytes:
    """v2 from the doc's words, with numpy's big-endian doubles instead of struct."""

    def text(s: str) -> bytes:
        raw = s.encode("utf-8")
        return len(raw).to_bytes(4, "big") + raw

    def f64(x: float) -> bytes:
        return np.array([0.0 if x == 0 else x], dtype=">f8").tobytes()

    parts = [
        text("phantom-auction/commitment/v2"),
        text(auction_id),
        text(bidder_id),
        token_pair[0].to_bytes(8, "big", signed=True),
        token_pair[1].to_bytes(8, "big", signed=True),
        f64(improved_price),
        f64(volume),
        f64(priority_fee),
        nonce.to_bytes(8, "big"),
        salt,
    ]
    return hashlib.sha256(b"".join(parts)).digest()


def test_doc_has_three_v2_vectors_of_the_v1_bids() -> None:
    v1, v2 = _vectors(), _v2_vectors()
    assert len(v2) == 3
    assert [inputs for inputs, _ in v2] == [inputs for inputs, _ in v1[:3]]
    assert {digest for _, digest in v2}.isdisjoint(digest for _, digest in v1)


@pytest.mark.parametrize("index", range(3))
def test_doc_v2_vectors_match_make_commitment_and_an_independent_encoder(index: int) -> None:
    inputs, digest = _v2_vectors()[index]
    assert make_commitment(**_args(inputs), version=2).hex() == digest
    assert _independent_v2(**_args(inputs)).hex() == digest


def test_doc_v2_preimage_of_vector_one_and_reference_implementation() -> None:
    text = DOC.read_text("utf-8")
    block = re.search(r"v2 preimage \(hex\):\n\n```\n(.*?)\n```", text, re.S).group(1)  # type: ignore[union-attr]
    inputs, _ = _v2_vectors()[0]
    assert commitment_preimage(**_args(inputs), version=2).hex() == re.sub(r"\s", "", block)
    source = re.search(
        r"### Reference implementation of version 2.*?```python\n(.*?)\n```", text, re.S
    )
    namespace: dict[str, Any] = {}
    exec(source.group(1), namespace)  # type: ignore[union-attr]
    for inputs, digest in _v2_vectors():
        assert namespace["commitment_v2"](*_args(inputs).values()).hex() == digest
    with pytest.raises(ValueError):
        namespace["f64"](math.nan)


@given(
    bidder=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
    price=_ANY_FLOAT,
    volume=_ANY_FLOAT,
    fee=_ANY_FLOAT,
    nonce=st.integers(0, MAX_NONCE),
    pair=st.tuples(
        st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID), st.integers(-MAX_TOKEN_ID, MAX_TOKEN_ID)
    ),
)
def test_v2_matches_independent_encoder_and_the_engines_reveal_digest(
    bidder: str, price: float, volume: float, fee: float, nonce: int, pair: tuple[int, int]
) -> None:
    salt = bytes(range(32))
    bid = make_bid("auction-x", bidder, pair, price, volume, fee, nonce, salt=salt, version=2)
    args = ("auction-x", bidder, pair, price, volume, fee, nonce, salt)
    assert bid.commitment_hash == _independent_v2(*args)
    assert bid.commitment_hash == bid.commitment_for("auction-x", 2)
    assert bid.commitment_hash != make_commitment(*args, version=1)  # v1 of the same bid
    v1_prefix, v2_prefix = auction_prefixes("auction-x")
    assert v2_prefix == auction_prefix("auction-x", 2)
    assert revealed_digest_v2(v2_prefix, bid) == bid.commitment_hash
    assert commitment_version((v1_prefix, v2_prefix), bid, bid.commitment_hash) == 2
    assert commitment_version((v1_prefix, v2_prefix), bid, make_commitment(*args, version=1)) == 1
    assert commitment_version((v1_prefix, v2_prefix), bid, bytes(32)) == 0


def test_v2_writes_zero_once_and_binds_every_price_bit() -> None:
    args: list[Any] = ["auction-1", "alice", (1, 2), 100.25, 500.0, 0.0, 1, bytes(32)]
    zero = make_commitment(*args, version=2)
    args[5] = -0.0
    assert make_commitment(*args, version=2) == zero  # equal numbers, equal bytes
    args[5] = 5e-324  # the smallest double above zero
    assert make_commitment(*args, version=2) != zero
    args[5] = 0.0
    args[3] = math.nextafter(100.25, math.inf)  # one unit in the last place
    assert make_commitment(*args, version=2) != zero


@pytest.mark.parametrize(
    ("position", "value", "field"),
    [
        (3, math.nan, "improved_price"),
        (4, math.inf, "volume"),
        (5, -math.inf, "priority_fee"),
        (5, "0.5", "priority_fee"),
        (5, True, "priority_fee"),
        (6, MAX_NONCE + 1, "nonce"),
        (2, (1, MAX_TOKEN_ID + 1), "token_pair"),
        (7, bytes(31), "salt"),
    ],
)
def test_v2_malformed_fields_raise_naming_field(position: int, value: Any, field: str) -> None:
    args: list[Any] = ["auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 1, bytes(32)]
    args[position] = value
    with pytest.raises(InvalidBidParameters, match=field) as info:
        make_commitment(*args, version=2)
    assert info.value.field == field


@pytest.mark.parametrize("version", [0, 3, "2", 2.0, True, None])
def test_unknown_commitment_version_is_refused_naming_it(version: Any) -> None:
    with pytest.raises(InvalidBidParameters, match="version") as info:
        make_commitment(
            "auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 1, bytes(32), version=version
        )
    assert info.value.field == "version"


def test_v2_is_what_bidders_write_unless_asked_for_v1() -> None:
    # The default version is 2 (docs/commitment.md, "Which version"); v1 stays accepted.
    args = ("auction-1", "alice", (1, 2), 100.25, 500.0, 0.5, 1, bytes(32))
    assert make_commitment(*args) == make_commitment(*args, version=2)
    assert commitment_preimage(*args) == commitment_preimage(*args, version=2)
    bid = make_bid(*args[:7], salt=args[7])
    assert bid.commitment_hash == make_commitment(*args, version=2)
    assert bid.commitment_for("auction-1") == bid.commitment_hash
    assert make_bid(*args[:7], salt=args[7], version=1).commitment_hash == make_commitment(
        *args, version=1
    )


def test_an_id_utf8_cannot_encode_is_refused_where_it_enters() -> None:
    """The fuzzing audit: a lone surrogate (what JSON's ``"\\ud800"`` decodes to) passed
    the id checks, was committed, and raised UnicodeEncodeError at the reveal."""
    from datetime import UTC, datetime, timedelta

    from phantom_auction.engine import Auction, SealedBid, SettlementRequest, make_bid

    with pytest.raises(InvalidBidParameters, match="bidder_id") as info:
        make_bid("a-1", "\ud800", (0, 1), 100.2, 10.0, 0.0, 1)
    assert "surrogate" in str(info.value)
    with pytest.raises(InvalidBidParameters, match="bidder_id"):
        SealedBid("\ud800", (0, 1), bytes(32), 1, datetime.now(UTC))
    with pytest.raises(InvalidBidParameters, match="auction_id"):
        Auction(
            SettlementRequest(0, 1, 10.0), 100.0, 10.0, datetime.now(UTC) + timedelta(seconds=1),
            auction_id="\udfff",
        )  # fmt: skip
    # Any other text is fine, as before.
    assert make_bid("a-1", "bidder-é-\U0001f600", (0, 1), 100.2, 10.0, 0.0, 1).bidder_id
