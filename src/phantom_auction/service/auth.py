"""Who is who on the service's side: settlement clients' bearer tokens, login challenges,
and checking bidders' Ed25519 signatures.

Bearer tokens are 256 random bits; the store keeps only their SHA-256 (a slow hash
buys nothing against a full-entropy secret). Bidders hold Ed25519 keys; the service
knows only the public half. Signatures are checked with libsodium (PyNaCl): about twice
as fast as OpenSSL's Ed25519 here, and the service checks one per commit.

The signed texts and key formats are the bidders' wire format: they live in
:mod:`phantom_auction.wire` (which the SDK shares) and are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError, CryptoError

from ..wire import (
    BIDDER_ID,
    BIDDER_ID_PATTERN,
    Signer,
    check_bidder_id,
    commit_signing_bytes,
    generate_keypair,
    load_private_key,
    login_signing_bytes,
    parse_public_key,
    public_key_hex,
    request_signing_bytes,
    sign,
)

__all__ = [
    "BIDDER_ID",
    "BIDDER_ID_PATTERN",
    "NO_ONE_KEY",
    "PublicKeyCache",
    "Signer",
    "check_bidder_id",
    "commit_signing_bytes",
    "generate_keypair",
    "hash_token",
    "load_private_key",
    "login_signing_bytes",
    "new_challenge",
    "new_token",
    "parse_public_key",
    "public_key_hex",
    "request_signing_bytes",
    "sign",
    "tokens_equal",
    "verify_signature",
]

#: A valid public key no one holds the secret of (a fixed seed nobody uses): checked
#: against when a message names an unknown bidder, so that it costs what a known one does.
NO_ONE_KEY: bytes = crypto_sign_seed_keypair(b"phantom-auction/no-one/v1".ljust(32, b"\0"))[0]
TOKEN_PREFIX = "pa_"


def new_token() -> str:
    """A fresh settlement-client bearer token (printed once, stored hashed)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a bearer token: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode(), b.encode())


def new_challenge() -> str:
    """A WebSocket login challenge: 32 random bytes, hex."""
    return secrets.token_hex(32)


class PublicKeyCache:
    """Public keys known to be valid Ed25519 points (checked once, on first use)."""

    def __init__(self, max_size: int = 100_000) -> None:
        self._keys: set[bytes] = set()
        self._max_size = max_size

    def get(self, raw: bytes) -> bytes:
        """``raw`` once it parses as an Ed25519 public key (raises ValueError otherwise)."""
        if raw not in self._keys:
            if len(self._keys) >= self._max_size:
                self._keys.clear()
            Ed25519PublicKey.from_public_bytes(raw)
            self._keys.add(raw)
        return raw


_DEFAULT_CACHE = PublicKeyCache()


def verify_signature(
    public_key: bytes, signature: str, message: bytes, cache: PublicKeyCache | None = None
) -> bool:
    """True iff ``signature`` (hex) is ``public_key``'s Ed25519 signature of ``message``."""
    if len(signature) != 128:
        return False
    try:
        raw_signature = bytes.fromhex(signature)
        key = (cache or _DEFAULT_CACHE).get(public_key)
        crypto_sign_open(raw_signature + message, key)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True
