"""The bidders' wire format, shared by the SDK (:mod:`phantom_auction.client`) and the service.

What a bidder and the service must agree on byte for byte, in one module, so that the
SDK needs nothing of the server package:

- the signed texts: domain-separated UTF-8, one field per line (docs/service.md):

  - login (WebSocket challenge):  ``phantom-auction/v1/login\\n{bidder_id}\\n{challenge}``
  - commit (kept in the audit log as proof of who committed to what):
    ``phantom-auction/v1/commit\\n{auction_id}\\n{bidder_id}\\n{commitment}\\n{nonce}``
  - an HTTP request by a bidder:
    ``phantom-auction/v1/request\\n{bidder_id}\\n{METHOD}\\n{path}\\n{timestamp_ms}\\n{sha256(body)}``

- Ed25519 keys as text (hex, base64 or PEM) and signatures (128 hex characters);
- the bidder's messages (pydantic models the service validates with, and the builders
  the SDK sends with): login, commit, reveal, status; the ``X-Bidder-*`` headers and
  the WebSocket path.

Hex is lower case in what is signed (challenge, commitment, body digest, signature).
Units: prices in token B per token A; ``volume`` in token A units; ``priority_fee`` in
token units. Integers (token ids, nonces) stay within JSON's safe range (2**53 - 1).
Needs the ``service`` extra (``cryptography``, ``PyNaCl``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, Strict, TypeAdapter
from pydantic_core import PydanticCustomError

from .engine.commitment import MAX_NONCE, MAX_TOKEN_ID

__all__ = [
    "BIDDER_ID",
    "BIDDER_ID_HEADER",
    "BIDDER_ID_PATTERN",
    "BIDDER_SIGNATURE_HEADER",
    "BIDDER_TIMESTAMP_HEADER",
    "BIDDER_WS_PATH",
    "HEX32",
    "HEX64",
    "MAX_REF_CHARS",
    "BidderMessage",
    "CommitBody",
    "RevealBody",
    "Signer",
    "StrictBody",
    "TokenId",
    "WsCommit",
    "WsLogin",
    "WsReveal",
    "WsStatus",
    "bidder_message_adapter",
    "check_bidder_id",
    "check_ref",
    "commit_message",
    "commit_signing_bytes",
    "generate_keypair",
    "load_private_key",
    "login_adapter",
    "login_message",
    "login_signing_bytes",
    "parse_public_key",
    "public_key_hex",
    "request_signing_bytes",
    "reveal_message",
    "sign",
    "status_message",
]

#: The bidders' WebSocket.
BIDDER_WS_PATH = "/v1/bidders/ws"
#: The headers of a bidder's signed HTTP request.
BIDDER_ID_HEADER = "X-Bidder-Id"
BIDDER_TIMESTAMP_HEADER = "X-Bidder-Timestamp"
BIDDER_SIGNATURE_HEADER = "X-Bidder-Signature"

#: Bidder ids and client names: no separators, so the signed lines stay unambiguous.
BIDDER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
BIDDER_ID = re.compile(BIDDER_ID_PATTERN)


def check_bidder_id(bidder_id: str, field: str = "bidder_id") -> str:
    """Return ``bidder_id`` if it matches :data:`BIDDER_ID_PATTERN`, else raise naming it."""
    if not BIDDER_ID.fullmatch(bidder_id):
        raise ValueError(f"{field}={bidder_id!r}: must match {BIDDER_ID_PATTERN}")
    return bidder_id


def login_signing_bytes(bidder_id: str, challenge: str) -> bytes:
    """The bytes a bidder signs to answer a login ``challenge``."""
    return f"phantom-auction/v1/login\n{bidder_id}\n{challenge}".encode()


def commit_signing_bytes(auction_id: str, bidder_id: str, commitment: str, nonce: int) -> bytes:
    """The bytes a bidder signs with a commit: auction id, commitment (hex) and nonce."""
    return f"phantom-auction/v1/commit\n{auction_id}\n{bidder_id}\n{commitment}\n{nonce}".encode()


def request_signing_bytes(
    bidder_id: str, method: str, path: str, timestamp_ms: int, body: bytes
) -> bytes:
    """The bytes a bidder signs for an HTTP request (``path`` without the query string)."""
    digest = hashlib.sha256(body).hexdigest()
    return (
        f"phantom-auction/v1/request\n{bidder_id}\n{method.upper()}\n{path}\n"
        f"{timestamp_ms}\n{digest}"
    ).encode()


def _decode_key_text(text: str, field: str) -> bytes:
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != 32:
        # A private key's text is a secret, even malformed (a 62-character key is 31 of
        # its bytes): only its length is shown.
        shown = f"<{len(text)} characters>" if field == "private_key" else repr(text[:80])
        raise ValueError(
            f"{field}={shown}: expected 32 raw Ed25519 key bytes as 64 hex characters "
            "or base64, or a PEM block"
        ) from None
    return raw


def parse_public_key(text: str) -> bytes:
    """32 raw Ed25519 public-key bytes from hex, base64 or PEM text (raises naming ``pubkey``)."""
    if "BEGIN PUBLIC KEY" in text:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise ValueError(f"pubkey: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"pubkey: a {type(key).__name__}, expected an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = _decode_key_text(text, "pubkey")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def load_private_key(key: Ed25519PrivateKey | bytes | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from itself, 32 raw bytes, hex, base64 or PEM text. Its
    errors never show the key's text (a secret must not reach a log or a traceback)."""
    if isinstance(key, Ed25519PrivateKey):
        return key
    if not isinstance(key, bytes | str):
        raise TypeError(
            f"private_key: {type(key).__name__}, expected an Ed25519 key object, "
            "32 raw bytes, or hex, base64 or PEM text"
        )
    if isinstance(key, bytes):
        if len(key) != 32:
            raise ValueError(f"private_key: {len(key)} bytes, expected 32 raw Ed25519 bytes")
        return Ed25519PrivateKey.from_private_bytes(key)
    if "BEGIN" in key:
        loaded = serialization.load_pem_private_key(key.encode(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"private_key: a {type(loaded).__name__}, expected an Ed25519 key")
        return loaded
    return Ed25519PrivateKey.from_private_bytes(_decode_key_text(key, "private_key"))


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key of ``key`` as 64 hex characters."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def generate_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as ``(private_hex, public_hex)`` (32 raw bytes each)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return private.hex(), public_key_hex(key)


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The Ed25519 signature of ``message`` as 128 hex characters."""
    return key.sign(message).hex()


class Signer:
    """Signs many messages with one Ed25519 key (libsodium; the same bytes as :func:`sign`)."""

    __slots__ = ("_secret",)

    def __init__(self, key: Ed25519PrivateKey | bytes | str) -> None:
        seed = load_private_key(key).private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._secret = crypto_sign_seed_keypair(seed)[1]

    def sign(self, message: bytes) -> str:
        """The Ed25519 signature of ``message`` as 128 hex characters."""
        return crypto_sign(message, self._secret)[:64].hex()


# ---------------------------------------------------------------- the bidder's messages

HEX32 = r"^[0-9a-fA-F]{64}$"
HEX64 = r"^[0-9a-fA-F]{128}$"
TokenId = Annotated[
    int,
    Strict(),
    Field(ge=-MAX_TOKEN_ID, le=MAX_TOKEN_ID, description="token id, |id| <= 2**53 - 1"),
]
BidNumber = Annotated[float, Strict(), Field(ge=-1e300, le=1e300, allow_inf_nan=False)]
Nonce = Annotated[
    int,
    Strict(),
    Field(ge=0, le=MAX_NONCE, description="strictly increasing per bidder, <= 2**53 - 1"),
]
#: Auction ids are the service's own (32 hex digits); the pattern also keeps NUL bytes
#: and other characters no store column takes out of every lookup.
AUCTION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
AuctionId = Annotated[str, Field(pattern=AUCTION_ID_PATTERN)]
#: The longest string ``ref`` (an integer ``ref`` is within ``±(2**53 - 1)``).
MAX_REF_CHARS = 128


def check_ref(value: object) -> str | int | None:
    """``value`` if it is a valid ``ref``: None, a string of at most :data:`MAX_REF_CHARS`
    characters, or an integer (not a boolean) within ``±(2**53 - 1)``; else raises.

    Strict on purpose: ``true`` is not taken for 1, ``7.0`` not for 7, and an integer
    the service would echo beyond JSON's safe range is refused, never published.
    """
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_REF_CHARS:
        return value
    if type(value) is int and -MAX_NONCE <= value <= MAX_NONCE:  # MAX_NONCE = 2**53 - 1
        return value
    raise PydanticCustomError(
        "ref_type",
        "must be a string of at most {max_chars} characters or an integer within ±(2^53 - 1)",
        {"max_chars": MAX_REF_CHARS},
    )


Ref = Annotated[
    str | int | None,
    PlainValidator(check_ref, json_schema_input_type=str | int | None),
    Field(
        default=None,
        description="echoed in the ack: a string of at most 128 characters or an integer "
        "within ±(2^53 - 1)",
    ),
]


class StrictBody(BaseModel):
    """A message body: unknown fields and non-finite numbers are refused, never coerced."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CommitBody(StrictBody):
    """``POST /v1/auctions/{id}/commit``: a sealed bid.

    ``signature``: Ed25519 over ``phantom-auction/v1/commit\\n{auction_id}\\n{bidder_id}
    \\n{commitment}\\n{nonce}`` (commitment in lower-case hex).
    """

    bidder_id: Annotated[str, Field(pattern=BIDDER_ID_PATTERN)] | None = None
    token_pair: Annotated[list[TokenId], Field(min_length=2, max_length=2)]
    commitment: Annotated[str, Field(pattern=HEX32)]
    nonce: Nonce
    signature: Annotated[str, Field(pattern=HEX64)]


class RevealBody(StrictBody):
    """``POST /v1/auctions/{id}/reveal``: the fields behind the commitment, and its salt."""

    bidder_id: Annotated[str, Field(pattern=BIDDER_ID_PATTERN)] | None = None
    token_pair: Annotated[list[TokenId], Field(min_length=2, max_length=2)]
    improved_price: BidNumber
    volume: BidNumber
    priority_fee: BidNumber
    nonce: Nonce
    salt: Annotated[str, Field(pattern=HEX32)]


class WsLogin(StrictBody):
    """The first message: ``signature`` is over
    ``phantom-auction/v1/login\\n{bidder_id}\\n{challenge}``."""

    type: Literal["login"]
    bidder_id: Annotated[str, Field(pattern=BIDDER_ID_PATTERN)]
    signature: Annotated[str, Field(pattern=HEX64)]


class WsCommit(CommitBody):
    """A commit over the WebSocket (``bidder_id``, if given, must be the session's)."""

    type: Literal["commit"]
    ref: Ref
    auction_id: AuctionId


class WsReveal(RevealBody):
    """A reveal over the WebSocket (authenticated by the session)."""

    type: Literal["reveal"]
    ref: Ref
    auction_id: AuctionId


class WsStatus(StrictBody):
    """Ask for the bidder's status (answered with a ``status`` message)."""

    type: Literal["status"]
    ref: Ref


BidderMessage = Annotated[WsCommit | WsReveal | WsStatus, Field(discriminator="type")]
bidder_message_adapter: TypeAdapter[WsCommit | WsReveal | WsStatus] = TypeAdapter(BidderMessage)
login_adapter: TypeAdapter[WsLogin] = TypeAdapter(WsLogin)


# ---------------------------------------------------------------- what the SDK sends


def login_message(bidder_id: str, signature: str) -> dict[str, Any]:
    """The WebSocket login (:class:`WsLogin`): ``signature`` over :func:`login_signing_bytes`."""
    return {"type": "login", "bidder_id": bidder_id, "signature": signature}


def commit_message(
    ref: int | str | None,
    auction_id: str,
    token_pair: tuple[int, int],
    commitment: str,
    nonce: int,
    signature: str,
) -> dict[str, Any]:
    """A commit over the WebSocket (:class:`WsCommit`); ``commitment`` lower-case hex,
    ``signature`` over :func:`commit_signing_bytes`."""
    return {
        "type": "commit",
        "ref": ref,
        "auction_id": auction_id,
        "token_pair": list(token_pair),
        "commitment": commitment,
        "nonce": nonce,
        "signature": signature,
    }


def reveal_message(
    ref: int | str | None,
    auction_id: str,
    token_pair: tuple[int, int],
    improved_price: float,
    volume: float,
    priority_fee: float,
    nonce: int,
    salt: bytes,
) -> dict[str, Any]:
    """A reveal over the WebSocket (:class:`WsReveal`): the fields behind the commitment."""
    return {
        "type": "reveal",
        "ref": ref,
        "auction_id": auction_id,
        "token_pair": list(token_pair),
        "improved_price": improved_price,
        "volume": volume,
        "priority_fee": priority_fee,
        "nonce": nonce,
        "salt": salt.hex(),
    }


def status_message(ref: int | str | None) -> dict[str, Any]:
    """Ask for the bidder's status (:class:`WsStatus`)."""
    return {"type": "status", "ref": ref}
