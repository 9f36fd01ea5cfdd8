"""The service's parts on their own: penalties, signatures, group commit, limits, commands."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from phantom_auction.client import _ws_url, signed_headers
from phantom_auction.config import load_config
from phantom_auction.service.auth import (
    commit_signing_bytes,
    generate_keypair,
    hash_token,
    load_private_key,
    login_signing_bytes,
    parse_public_key,
    public_key_hex,
    request_signing_bytes,
    sign,
    verify_signature,
)
from phantom_auction.service.commands import register
from phantom_auction.service.group_commit import GroupCommit
from phantom_auction.service.house import TokenBucket, from_us, to_us
from phantom_auction.service.metrics import LoopLag, ServiceMetrics
from phantom_auction.service.penalties import PenaltyState, is_blocked, record_reveal_outcome
from phantom_auction.service.store import BidEvent, MemoryStore, SqlStore

from .service_harness import auction_record, commit_event

SECURITY = load_config(
    env={
        "AUCTION_SECURITY_NO_REVEAL_SMOOTHING": "0.5",
        "AUCTION_SECURITY_NO_REVEAL_THRESHOLD": "0.6",
        "AUCTION_SECURITY_BLOCK_BASE_S": "10",
        "AUCTION_SECURITY_BLOCK_MAX_S": "35",
    }
).security
S = 1_000_000  # microseconds per second


def test_no_reveal_rate_is_an_ewma_and_blocks_double_up_to_the_cap() -> None:
    state = PenaltyState()
    state = record_reveal_outcome(state, revealed=False, now_us=0, security=SECURITY)
    assert state == PenaltyState(no_reveal_rate=0.5)  # 0.5 <= 0.6: not blocked
    state = record_reveal_outcome(state, revealed=False, now_us=100 * S, security=SECURITY)
    assert state.no_reveal_rate == 0.75 and state.block_count == 1
    assert state.blocked_until_us == 110 * S  # block_base_s
    assert is_blocked(state, 109 * S) and not is_blocked(state, 110 * S)
    assert "no_reveal_rate=0.750" in (state.reason or "")
    state = record_reveal_outcome(state, revealed=False, now_us=200 * S, security=SECURITY)
    assert (state.block_count, state.blocked_until_us) == (2, 220 * S)  # doubled
    state = record_reveal_outcome(state, revealed=False, now_us=300 * S, security=SECURITY)
    assert (state.block_count, state.blocked_until_us) == (3, 335 * S)  # capped at block_max_s
    # A reveal lowers the rate and never blocks, even above the threshold.
    revealed = record_reveal_outcome(state, revealed=True, now_us=400 * S, security=SECURITY)
    assert revealed.no_reveal_rate == pytest.approx(state.no_reveal_rate / 2)
    assert revealed.block_count == 3 and revealed.blocked_until_us == 335 * S


def test_signed_bytes_are_the_documented_text() -> None:
    assert (
        login_signing_bytes("mm-1", "ab" * 32) == b"phantom-auction/v1/login\nmm-1\n" + b"ab" * 32
    )
    assert commit_signing_bytes("a1", "mm-1", "cd" * 32, 7) == (
        b"phantom-auction/v1/commit\na1\nmm-1\n" + b"cd" * 32 + b"\n7"
    )
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert request_signing_bytes("mm-1", "get", "/v1/bidders/me", 1700000000000, b"") == (
        b"phantom-auction/v1/request\nmm-1\nGET\n/v1/bidders/me\n1700000000000\n"
        + empty_sha256.encode()
    )


def test_signatures_verify_only_for_the_signer_and_the_message() -> None:
    private, public = generate_keypair()
    key = load_private_key(private)
    message = commit_signing_bytes("a1", "mm-1", "cd" * 32, 7)
    signature = sign(key, message)
    assert re.fullmatch(r"[0-9a-f]{128}", signature)
    assert verify_signature(bytes.fromhex(public), signature, message)
    assert not verify_signature(bytes.fromhex(public), signature, message + b"8")
    _other_private, other_public = generate_keypair()
    assert not verify_signature(bytes.fromhex(other_public), signature, message)
    assert not verify_signature(bytes.fromhex(public), "zz" * 64, message)
    assert not verify_signature(bytes.fromhex(public), signature[:-2], message)


def test_public_keys_parse_from_hex_base64_and_pem() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert parse_public_key(raw.hex()) == raw
    assert parse_public_key(base64.b64encode(raw).decode()) == raw
    assert parse_public_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert parse_public_key(pem) == raw
    with pytest.raises(ValueError, match="pubkey='abc'"):
        parse_public_key("abc")
    assert hash_token("pa_x") != hash_token("pa_y") and len(hash_token("pa_x")) == 64


def test_signed_headers_authenticate_the_exact_request() -> None:
    private, public = generate_keypair()
    headers = signed_headers(
        "mm-1", private, "POST", "/v1/auctions/a1/commit", b"{}", timestamp_ms=5
    )
    assert headers["X-Bidder-Id"] == "mm-1" and headers["X-Bidder-Timestamp"] == "5"
    signed = request_signing_bytes("mm-1", "POST", "/v1/auctions/a1/commit", 5, b"{}")
    assert verify_signature(bytes.fromhex(public), headers["X-Bidder-Signature"], signed)
    assert _ws_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/v1/bidders/ws"
    assert _ws_url("ws://h:1/custom") == "ws://h:1/custom"
    with pytest.raises(ValueError, match="url='ftp://h'"):
        _ws_url("ftp://h")


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0)
    bucket.stamp = 0.0
    assert [bucket.allow(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.allow(0.5) and not bucket.allow(0.5)  # one token per 0.5 s


def test_microsecond_times_round_trip_exactly() -> None:
    for us in (0, 1, 1_795_735_040_612_562, 4_102_444_800_000_001):
        assert to_us(from_us(us)) == us


@pytest.mark.anyio
async def test_group_commit_keeps_order_and_isolates_a_bad_submission() -> None:
    store = MemoryStore()
    client = await store.add_client("c", "a" * 64)
    group_commit = GroupCommit(store)
    group_commit.start()
    opened = group_commit.submit(auction_record("a1", client.client_id))
    good = [group_commit.submit(commit_event("a1", "mm-1", n)) for n in range(1, 6)]
    bad = group_commit.submit(commit_event("missing", "mm-1", 99))
    later = group_commit.submit(commit_event("a1", "mm-1", 6))
    await opened
    await asyncio.gather(*good, later)
    with pytest.raises(ValueError, match="missing"):
        await bad
    await group_commit.close()
    events: list[BidEvent] = await store.events("a1")
    assert [e.nonce for e in events] == [1, 2, 3, 4, 5, 6]


@pytest.mark.anyio
async def test_group_commit_callbacks_run_once_durable_and_one_bad_record_fails_alone() -> None:
    store = MemoryStore()
    client = await store.add_client("c", "a" * 64)
    group_commit = GroupCommit(store)
    group_commit.start()
    written: set[int | None] = set()
    heard: list[tuple[int, str | None]] = []
    real_apply = store.apply

    async def apply(records: Any) -> None:
        await real_apply(records)
        written.update(getattr(r, "nonce", None) for r in records)

    store.apply = apply  # type: ignore[method-assign]

    def then(nonce: int) -> Any:
        def durable(error: BaseException | None) -> None:
            assert error is not None or nonce in written  # called only once it is stored
            heard.append((nonce, None if error is None else type(error).__name__))

        return durable

    opened = group_commit.submit(auction_record("a1", client.client_id))
    for n in (1, 2):
        group_commit.submit_then(commit_event("a1", "mm-1", n), then(n))
    group_commit.submit_then(commit_event("missing", "mm-1", 99), then(99))
    group_commit.submit_then(commit_event("a1", "mm-1", 3), then(3))
    await opened
    await group_commit.close()
    assert heard == [(1, None), (2, None), (99, "StoreConflict"), (3, None)]
    assert [e.nonce for e in await store.events("a1")] == [1, 2, 3]


@pytest.mark.anyio
async def test_an_idle_group_commit_gathers_a_wave_into_one_transaction() -> None:
    """A record reaching an idle writer waits for the ones right behind it (a bidder
    wave); each is still answered only once its transaction is stored."""
    store = MemoryStore()
    client = await store.add_client("c", "a" * 64)
    batches: list[list[int | None]] = []
    real_apply = store.apply

    async def apply(records: Any) -> None:
        await real_apply(records)
        batches.append([getattr(r, "nonce", None) for r in records])

    store.apply = apply  # type: ignore[method-assign]
    # A gap far longer than the two loop turns between the records (no timing race).
    group_commit = GroupCommit(store, gather_gap_s=5.0, gather_max_s=5.0)
    group_commit.start()
    await group_commit.submit(auction_record("a1", client.client_id))
    first = group_commit.submit(commit_event("a1", "mm-1", 1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = group_commit.submit(commit_event("a1", "mm-2", 2))
    assert not first.done()  # not stored yet: not answered yet
    await group_commit.close()  # the stop mark ends the wait: everything is flushed
    await asyncio.gather(first, second)
    assert batches == [[None], [1, 2]]
    # Without gathering each record that reaches an idle writer goes alone.
    batches.clear()
    eager = GroupCommit(store, gather_max_s=0.0)
    eager.start()
    one = eager.submit(commit_event("a1", "mm-1", 3))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    two = eager.submit(commit_event("a1", "mm-2", 4))
    await asyncio.gather(one, two)
    await eager.close()
    assert batches == [[3], [4]]


@pytest.mark.anyio
async def test_the_loop_lag_probe_sees_a_turn_that_holds_the_loop() -> None:
    """A turn that holds the event loop for 50 ms shows as a tick at least 40 ms late
    (every message arriving in it waited so); a stopped probe observes nothing more."""
    metrics = ServiceMetrics()
    value = metrics.registry.get_sample_value
    name = "phantom_auction_event_loop_lag_seconds"
    probe = LoopLag(metrics.loop_lag, interval_s=0.005)
    probe.start()
    await asyncio.sleep(0.03)
    time.sleep(0.05)  # the turn: a tick falls due within its first 5 ms
    await asyncio.sleep(0.03)
    probe.stop()
    count = value(f"{name}_count")
    assert count is not None and count >= 5
    assert count - value(f"{name}_bucket", {"le": "0.02"}) >= 1  # over 20 ms: the turn
    assert value(f"{name}_sum") >= 0.04
    await asyncio.sleep(0.03)
    assert value(f"{name}_count") == count


def test_commands_register_clients_and_bidders(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    added = runner.invoke(app, ["clients", "add", "acme", "--db", db])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()  # stderr: "note: created a new database at …"
    assert token.startswith("pa_")
    again = runner.invoke(app, ["clients", "add", "acme", "--db", db])
    assert again.exit_code != 0 and "already exists" in again.output
    keys = runner.invoke(app, ["bidders", "keygen"])
    private, public = keys.output.split()
    assert len(private) == len(public) == 64
    bidder = runner.invoke(app, ["bidders", "add", "mm-1", public, "--db", db])
    assert bidder.exit_code == 0 and public in bidder.output
    bad = runner.invoke(app, ["bidders", "add", "mm-2", "not-a-key", "--db", db])
    assert bad.exit_code != 0 and "pubkey" in bad.output

    async def check() -> None:
        store = SqlStore(db)
        await store.start()
        try:
            client = await store.client_by_token_hash(hash_token(token))
            assert client is not None and client.name == "acme"
            found = await store.bidder("mm-1")
            assert found is not None and found.public_key.hex() == public
        finally:
            await store.close()

    asyncio.run(check())


def test_a_malformed_private_key_is_not_shown_in_its_error() -> None:
    """The SDK audit: a 62-character key's error showed 31 of its 32 bytes. A public
    key's text is still shown (it is no secret and helps find the typo)."""
    secret = "ab" * 31
    with pytest.raises(ValueError, match="private_key=<62 characters>") as refused:
        load_private_key(secret)
    assert secret[:8] not in str(refused.value) and refused.value.__cause__ is None
    with pytest.raises(ValueError, match="pubkey='cdcd"):
        parse_public_key("cd" * 31)


def test_signature_vectors_in_docs_service_md() -> None:
    key = load_private_key(bytes(range(32)).hex())
    assert public_key_hex(key) == (
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )
    vectors = {
        login_signing_bytes("mm-1", "cd" * 32): "61e86f46badab3440dad5d41879a3478"
        "f33ed31661502f98b749719d0f3fcc664c824f6f379c19a0ca2a63c6d0ca8d8ab15a2b89161008b2af617fd7fc980f0a",
        # A nonce within 2**53 - 1 (the documented range; the old vector's was not).
        commit_signing_bytes(
            "4f1c2b7e9a0d4e6f8b3a5c7d9e1f2a3b", "mm-1", "ab" * 32, 1700000000000001
        ): "bd04786d5df65d153fc4e5b6d8dd7d9acdb1f96c8b1ebfe3075e3e55191d530e"
        "ea0e6deb71a285983b14cc309c892d4abd49a71f6c1324d7815b81a2013a830b",
        request_signing_bytes("mm-1", "GET", "/v1/bidders/me", 1700000000000, b""): (
            "4ef15cb9839b7b12b6809906b24cc5e698e9c89b3ac25f529520b5b6142afa15"
            "c42d2990940887f80289c7b28dcf87ab64a36b4bc1ed71b90b98fe50da2b2e0e"
        ),
    }
    docs = (Path(__file__).parents[2] / "docs" / "service.md").read_text("utf-8")
    for message, signature in vectors.items():
        assert sign(key, message) == signature
        assert signature in docs
    # The request vector's body digest is written out in full (it was abbreviated).
    assert hashlib.sha256(b"").hexdigest() in docs


def test_the_sdks_messages_are_what_the_service_validates() -> None:
    """The wire builders the SDK sends with pass the service's own models."""
    from phantom_auction.service.schemas import (
        WsCommit,
        WsReveal,
        WsStatus,
        bidder_message_adapter,
        login_adapter,
    )
    from phantom_auction.wire import (
        commit_message,
        login_message,
        reveal_message,
        status_message,
    )

    commit = bidder_message_adapter.validate_python(
        commit_message(3, "a1", (1, 2), "ab" * 32, 7, "cd" * 64)
    )
    assert isinstance(commit, WsCommit)
    assert (commit.ref, commit.auction_id, commit.token_pair, commit.nonce) == (3, "a1", [1, 2], 7)
    reveal = bidder_message_adapter.validate_python(
        reveal_message(4, "a1", (1, 2), 2001.5, 3.0, 0.25, 7, bytes(range(32)))
    )
    assert isinstance(reveal, WsReveal)
    assert (reveal.improved_price, reveal.salt) == (2001.5, bytes(range(32)).hex())
    assert isinstance(bidder_message_adapter.validate_python(status_message(5)), WsStatus)
    login = login_adapter.validate_python(login_message("mm-1", "ef" * 64))
    assert (login.bidder_id, login.signature) == ("mm-1", "ef" * 64)


@pytest.mark.parametrize("max_phantoms", [20, 0])
def test_the_sdk_reads_auction_opened_as_the_engines_announcement(max_phantoms: int) -> None:
    """The bidder SDK's announcement, parsed from the ``auction_opened`` push as sent, is
    the engine's own, terms included (policy, ``min_participants``, phantom model); a
    push without the terms (an older server) leaves them unknown."""
    import orjson

    from phantom_auction.client import _announcement
    from phantom_auction.service.house.documents import announcement_document

    from ..engine.engine_support import config, open_auction

    cfg = config(
        max_phantom_bidders=max_phantoms,
        phantom_policy="reserve",
        min_participants=3,
        phantom_improvement_mean_bps=33.0,
    )
    auction = open_auction(cfg)
    pushed = orjson.loads(orjson.dumps(announcement_document(auction)))
    parsed = _announcement(pushed)
    assert parsed == auction.announcement
    assert (parsed.phantom_policy, parsed.min_participants) == ("reserve", 3)
    assert parsed.phantom_model is not None and parsed.phantom_model.mean_bps == 33.0
    for key in ("phantom_policy", "rules", "phantom_model"):
        del pushed[key]
    older = _announcement(pushed)
    assert (older.phantom_policy, older.min_participants, older.phantom_model) == (None,) * 3


def test_a_published_phantom_model_with_a_wrong_key_is_refused_by_name() -> None:
    from phantom_auction.engine.codec import to_jsonable
    from phantom_auction.engine.phantoms import PhantomModel
    from phantom_auction.errors import InvalidBidParameters

    doc = {k: v for k, v in to_jsonable(PhantomModel()).items() if k != "type"}
    assert PhantomModel.from_document(doc) == PhantomModel()
    for bad, says in (
        (doc | {"mean": 1.0}, r"\['mean'\]: unknown keys"),
        ({k: v for k, v in doc.items() if k != "sd_bps"}, r"\['sd_bps'\]: missing keys"),
        (doc | {"volume_fraction": [0.5]}, "volume_fraction"),
        (doc | {"sd_bps": -1.0}, "sd_bps"),
        ([], "must be a JSON object"),
    ):
        with pytest.raises(InvalidBidParameters, match=says):
            PhantomModel.from_document(bad)
