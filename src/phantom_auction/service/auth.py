"""Who is who: settlement clients' bearer tokens and bidders' Ed25519 signatures.

Bearer tokens are 256 random bits; the store keeps only their SHA-256 (a slow hash
buys nothing against a full-entropy secret). Bidders hold Ed25519 keys
(``cryptography`` parses and generates them); the service knows only the public half.
Signatures are made and checked with libsodium (PyNaCl): about twice as fast as
OpenSSL's Ed25519 here, and the service checks one per commit (Ed25519 signatures
are deterministic, so both libraries produce the same bytes).

Every signed message is domain-separated UTF-8 text, one field per line, so that a
bidder in any language can build the exact bytes (docs/service.md lists them):

- login (WebSocket challenge):  ``phantom-auction/v1/login\\n{bidder_id}\\n{challenge}``
- commit (kept in the audit log as proof of who committed to what):
  ``phantom-auction/v1/commit\\n{auction_id}\\n{bidder_id}\\n{commitment}\\n{nonce}``
- an HTTP request by a bidder:
  ``phantom-auction/v1/request\\n{bidder_id}\\n{METHOD}\\n{path}\\n{timestamp_ms}\\n{sha256(body)}``

Hex is lower case everywhere (challenge, commitment, body digest, signature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError, CryptoError

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

#: Bidder ids and client names: no separators, so the signed lines stay unambiguous.
BIDDER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
BIDDER_ID = re.compile(BIDDER_ID_PATTERN)
_BIDDER_ID = BIDDER_ID
#: A valid public key no one holds the secret of (a fixed seed nobody uses): checked
#: against when a message names an unknown bidder, so that it costs what a known one does.
NO_ONE_KEY: bytes = crypto_sign_seed_keypair(b"phantom-auction/no-one/v1".ljust(32, b"\0"))[0]
TOKEN_PREFIX = "pa_"


def check_bidder_id(bidder_id: str, field: str = "bidder_id") -> str:
    """Return ``bidder_id`` if it matches :data:`BIDDER_ID_PATTERN`, else raise naming it."""
    if not _BIDDER_ID.fullmatch(bidder_id):
        raise ValueError(f"{field}={bidder_id!r}: must match {BIDDER_ID_PATTERN}")
    return bidder_id


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
        raise ValueError(
            f"{field}={text[:80]!r}: expected 32 raw Ed25519 key bytes as 64 hex characters "
            "or base64, or a PEM block"
        )
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
    """An Ed25519 private key from itself, 32 raw bytes, hex, base64 or PEM text."""
    if isinstance(key, Ed25519PrivateKey):
        return key
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
