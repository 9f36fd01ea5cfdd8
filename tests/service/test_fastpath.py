"""The service's throughput paths: WebSocket frames built by hand, SQLite checkpoints off
the writer, libsodium signatures."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from phantom_auction.service.auth import (
    Signer,
    commit_signing_bytes,
    generate_keypair,
    load_private_key,
    sign,
    verify_signature,
)
from phantom_auction.service.store import SqlStore, compact_json
from phantom_auction.service.store.sqlite import checkpoint
from phantom_auction.service.ws_fastpath import text_frame

from .service_harness import auction_record, commit_event


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_parses_as_one_final_text_frame(size: int) -> None:
    text = ("é" * size)[:size]
    reader = StreamReader()
    reader.feed_data(text_frame(text))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the whole frame was fed
        raise AssertionError("the frame was incomplete")
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert bytes(frame.data).decode() == text


def test_signer_matches_the_reference_signature_and_verifies() -> None:
    private, public = generate_keypair()
    message = commit_signing_bytes("4f1c2b7e9a0d4e6f8b3a5c7d9e1f2a3b", "mm-1", "ab" * 32, 7)
    signature = Signer(private).sign(message)
    assert signature == sign(load_private_key(private), message)
    assert verify_signature(bytes.fromhex(public), signature, message)
    assert not verify_signature(bytes.fromhex(public), signature, message + b"x")
    assert not verify_signature(b"\x00" * 31, signature, message)  # not a key


def test_compact_json_is_the_standard_compact_form() -> None:
    doc = {"a": [1, 2.5, None, True], "b": "é\n", "n": 1795735040612562678}
    assert compact_json(doc) == '{"a":[1,2.5,null,true],"b":"é\\n","n":1795735040612562678}'


@pytest.mark.anyio
async def test_sqlite_wal_is_checkpointed_off_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "svc.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}", checkpoint_every_records=2)
    await store.start()
    try:
        client = await store.add_client("acme", "ab" * 32)
        await store.add_bidder("mm-1", bytes(32))
        await store.apply([auction_record("a1", client.client_id)])
        await store.apply([commit_event("a1", "mm-1", 3), commit_event("a1", "mm-1", 4)])
        for _ in range(200):  # the checkpoint runs in its own thread
            if not store._checkpoint_running:
                break
            await asyncio.sleep(0.01)
        assert not store._checkpoint_running
        # The writer's connection never checkpoints by itself ...
        with store._sync_engine.connect() as conn:  # type: ignore[union-attr]
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        # ... yet the main database file alone (no WAL) already holds the events.
        copy = tmp_path / "copy.db"
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as db:
            assert db.execute("SELECT count(*) FROM bid_events").fetchone() == (2,)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_sqlite_wal_starts_over_though_writes_arrive_during_each_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite starts its WAL over only at a write that begins after everything in it was
    copied into the database. Under steady load, frames always arrive while the
    checkpoint (on its own connection) copies, and the WAL grew without bound. The
    writer copies that tail itself before its next batch, which starts the WAL over."""
    import threading

    from phantom_auction.service.store import sql

    path = tmp_path / "svc.db"
    copied, release = threading.Event(), threading.Event()

    def checkpoint_then_hold(database: str) -> None:
        checkpoint(database)
        copied.set()
        release.wait(10)  # the "copy" is still running while the writer goes on

    monkeypatch.setattr(sql, "checkpoint", checkpoint_then_hold)
    store = SqlStore(f"sqlite+aiosqlite:///{path}", checkpoint_every_records=2)
    await store.start()

    def wal_frames() -> int:
        # (busy, frames in the WAL, frames copied); the pragma copies them too.
        with sqlite3.connect(path) as db:
            return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])

    try:
        client = await store.add_client("acme", "ab" * 32)
        await store.add_bidder("mm-1", bytes(32))
        await store.apply([auction_record("a1", client.client_id)])
        await store.apply([commit_event("a1", "mm-1", 1)])  # the 2nd record: a checkpoint
        assert await asyncio.to_thread(copied.wait, 10)
        store.checkpoint_every_records = 10**9  # no other checkpoint from here on
        await store.apply([commit_event("a1", "mm-1", 2)])  # written during the checkpoint
        release.set()
        for _ in range(500):
            if not store._checkpoint_running:
                break
            await asyncio.sleep(0.01)
        await store.apply([commit_event("a1", "mm-1", 3)])
        after_one_batch = wal_frames()
        await store.apply([commit_event("a1", "mm-1", 4)])
        one_batch = wal_frames()  # the WAL was all copied: this batch started it over
        # The WAL holds only the last batch: it started over at that batch too.
        assert 0 < after_one_batch <= one_batch
    finally:
        release.set()
        await store.close()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_the_plain_asgi_websocket_path_still_serves_bidders() -> None:
    """Under a server without :class:`DirectWebSocketProtocol` (here Starlette's test
    client) the bidder WebSocket falls back to ASGI receive / send with a writer task."""
    from starlette.testclient import TestClient

    from phantom_auction.config import load_config
    from phantom_auction.service.app import create_app
    from phantom_auction.service.auth import login_signing_bytes
    from phantom_auction.service.store import MemoryStore

    store = MemoryStore()
    private, public = generate_keypair()
    asyncio.run(store.add_bidder("mm-1", bytes.fromhex(public)))
    app = create_app(load_config(env={}), store=store)
    with TestClient(app) as client, client.websocket_connect("/v1/bidders/ws") as ws:
        challenge = ws.receive_json()["challenge"]
        signature = sign(load_private_key(private), login_signing_bytes("mm-1", challenge))
        ws.send_json({"type": "login", "bidder_id": "mm-1", "signature": signature})
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json({"type": "status", "ref": 5})
        status = ws.receive_json()
        assert (status["type"], status["ref"], status["bidder_id"]) == ("status", 5, "mm-1")
        ws.send_json({"type": "reveal", "ref": 6, "auction_id": "nope"})
        ack = ws.receive_json()
        assert (ack["status"], ack["reason"], ack["ref"]) == ("rejected", "malformed", 6)


def test_a_peer_that_does_not_read_is_aborted_and_its_buffer_freed() -> None:
    """The audit: a session dropped for a full buffer started a graceful close, which
    waited behind the unread buffer (~16 MB a connection) until the ping timeout."""
    from phantom_auction.service.ws_fastpath import MAX_BUFFERED_BYTES, DirectWebSocketProtocol

    class Transport:
        aborted = False
        size = 0

        def is_closing(self) -> bool:
            return self.aborted

        def get_write_buffer_size(self) -> int:
            return self.size

        def abort(self) -> None:
            self.aborted = True

    proto = object.__new__(DirectWebSocketProtocol)  # only push's state, no uvicorn
    proto.close_sent, proto.disconnected = False, False
    proto.transport = transport = Transport()  # type: ignore[assignment]
    proto._pending, proto._flush_scheduled = [b"queued"], True
    transport.size = MAX_BUFFERED_BYTES  # at the limit: still queued
    assert proto.push(b"frame") is True and not transport.aborted
    transport.size = MAX_BUFFERED_BYTES + 1
    assert proto.push(b"frame") is False
    assert transport.aborted and proto._pending == []
