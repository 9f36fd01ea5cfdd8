"""The floor for ``bench_service.py``: the least a server on the same stack must do per
bidder message, measured on the same machine in the same run.

The floor server is a bare WebSocket endpoint on uvicorn + FastAPI (uvloop, httptools,
uvicorn's ``websockets-sansio`` protocol: what ``phantom-auction serve`` builds on). The
first frame of a connection names the bidder (no login handshake); for every later
frame it

- parses the JSON (orjson),
- for a commit, verifies the Ed25519 signature over the same signed bytes as the service
  (``phantom-auction/v1/commit\\n{auction_id}\\n{bidder_id}\\n{commitment}\\n{nonce}``,
  libsodium through PyNaCl, as the service does); a reveal carries no signature,
- appends one row to SQLite (WAL, the same ``synchronous`` setting) through one writer
  thread that group-commits whatever arrived meanwhile, and
- acks the message only once its row's transaction has committed (the service's rule).

It does none of the auction: no engine, no windows, no nonces, no pushes, no
settlement requests, no results. ``bench_service.py`` drives it with the service's
message mix (a commit and a reveal per bidder per auction, the SDK's JSON) at the same
messages per second as each of its steps, and compares the server CPU per message.

Run alone: ``python benchmarks/service_floor.py --port 8099 --db /tmp/floor.db --keys k.json``
(``k.json``: ``{bidder_id: public key hex}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

_COMMIT_PREFIX = "phantom-auction/v1/commit"
_INSERT = (
    "INSERT INTO bid_events (auction_id, bidder_id, kind, accepted, nonce, payload, "
    "received_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def commit_bytes(auction_id: str, bidder_id: str, commitment: str, nonce: int) -> bytes:
    """The bytes a bidder signs for a commit (docs/service.md, "Signed bytes")."""
    return f"{_COMMIT_PREFIX}\n{auction_id}\n{bidder_id}\n{commitment}\n{nonce}".encode()


class GroupWriter:
    """One SQLite writer thread; rows submitted while a transaction commits go in the next."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-writer")
        self._connection: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._waiters: list[Callable[[], None]] = []
        self._busy = False
        self._executor.submit(self._open, path, synchronous).result()

    def _open(self, path: str, synchronous: str) -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bid_events (event_id INTEGER PRIMARY KEY, "
            "auction_id TEXT NOT NULL, bidder_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "accepted INTEGER NOT NULL, nonce INTEGER, payload TEXT NOT NULL, "
            "received_at_us INTEGER NOT NULL)"
        )
        self._connection = connection

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._connection is not None
        self._connection.execute("BEGIN")
        self._connection.executemany(_INSERT, rows)
        self._connection.execute("COMMIT")

    def append(self, row: tuple[Any, ...], durable: Callable[[], None]) -> None:
        """Queue ``row``; ``durable`` runs on the loop once its transaction has committed."""
        self._pending.append(row)
        self._waiters.append(durable)
        if not self._busy:
            self._flush()

    def _flush(self) -> None:
        rows, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        self._busy = True
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._write, rows)

        def committed(done: asyncio.Future[None]) -> None:
            done.result()  # a failed write is a failed benchmark: let it show
            for waiter in waiters:
                waiter()
            self._busy = False
            if self._pending:
                self._flush()

        future.add_done_callback(committed)


def floor_app(db_path: str, synchronous: str, keys: dict[str, str]) -> Any:
    """The bare endpoint: ``WS /ws``."""
    public = {bidder: bytes.fromhex(key) for bidder, key in keys.items()}
    app = FastAPI()
    state: dict[str, GroupWriter] = {}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        if "writer" not in state:
            state["writer"] = GroupWriter(db_path, synchronous)
        writer = state["writer"]
        await socket.accept()
        bidder_id = await socket.receive_text()
        key = public[bidder_id]
        outbox: asyncio.Queue[bytes] = asyncio.Queue()

        async def send_acks() -> None:
            while True:
                await socket.send_text((await outbox.get()).decode())

        sender = asyncio.get_running_loop().create_task(send_acks())
        try:
            while True:
                text = await socket.receive_text()
                message = orjson.loads(text)
                kind = message["type"]
                accepted = True
                if kind == "commit":
                    signed = commit_bytes(
                        message["auction_id"], bidder_id, message["commitment"], message["nonce"]
                    )
                    try:
                        crypto_sign_open(bytes.fromhex(message["signature"]) + signed, key)
                    except (BadSignatureError, ValueError):
                        accepted = False
                ack = orjson.dumps(
                    {
                        "type": "ack",
                        "ref": message["ref"],
                        "kind": kind,
                        "auction_id": message["auction_id"],
                        "status": "accepted" if accepted else "rejected",
                    }
                )
                row = (
                    message["auction_id"],
                    bidder_id,
                    kind,
                    int(accepted),
                    message["nonce"],
                    text,
                    time.time_ns() // 1000,
                )
                writer.append(row, lambda ack=ack: outbox.put_nowait(ack))
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()

    return app


def serve(port: int, db_path: str, synchronous: str, keys_path: str) -> None:
    """Run the floor server on 127.0.0.1:``port`` until killed."""
    import uvicorn

    keys: dict[str, str] = json.loads(Path(keys_path).read_text())
    app = floor_app(db_path, synchronous, keys)
    gc.collect()
    gc.freeze()  # as the service does, with the same thresholds (app.GC_THRESHOLDS)
    gc.set_threshold(50_000, 20, 20)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )


# --------------------------------------------------------------------------- the load


@dataclass
class FloorStep:
    """One step of floor load: messages sent, acks back, refusals."""

    sent: int = 0
    acked: int = 0
    rejected: int = 0
    achieved_rate: float = 0.0
    ack_ms: list[float] = field(default_factory=list)


def message_pool(keys: dict[str, str], per_bidder: int) -> dict[str, list[str]]:
    """Per bidder, ``per_bidder`` (commit, reveal) text pairs: the SDK's JSON, signed.

    The floor checks signatures, not nonces, so the pool is cycled through."""
    pool: dict[str, list[str]] = {}
    base_nonce = time.time_ns() // 1000
    for bidder_id, private in keys.items():
        _, secret = crypto_sign_seed_keypair(bytes.fromhex(private))
        texts: list[str] = []
        for i in range(per_bidder):
            auction_id = os.urandom(16).hex()
            commitment = os.urandom(32).hex()
            nonce = base_nonce + i
            signature = crypto_sign(commit_bytes(auction_id, bidder_id, commitment, nonce), secret)[
                :64
            ].hex()
            commit = {
                "type": "commit",
                "ref": 2 * i + 1,
                "auction_id": auction_id,
                "token_pair": [1, 2],
                "commitment": commitment,
                "nonce": nonce,
                "signature": signature,
            }
            reveal = {
                "type": "reveal",
                "ref": 2 * i + 2,
                "auction_id": auction_id,
                "token_pair": [1, 2],
                "improved_price": 2006.123456789,
                "volume": 10.0,
                "priority_fee": 0.0,
                "nonce": nonce,
                "salt": os.urandom(32).hex(),
            }
            texts += [orjson.dumps(commit).decode(), orjson.dumps(reveal).decode()]
        pool[bidder_id] = texts
    return pool


class FloorLoad:
    """``len(pool)`` WebSocket clients sending the pool's messages open-loop at a rate."""

    def __init__(self, url: str, pool: dict[str, list[str]]) -> None:
        self.url = url
        self.pool = pool
        self._sockets: list[Any] = []
        self._readers: list[asyncio.Task[None]] = []
        self._step: FloorStep | None = None
        self._sent_at: dict[tuple[int, int], float] = {}

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        for index, bidder_id in enumerate(self.pool):
            socket = await connect(self.url, compression=None, max_size=1 << 20)
            await socket.send(bidder_id)
            self._sockets.append(socket)
            self._readers.append(asyncio.create_task(self._read(index, socket)))

    async def _read(self, index: int, socket: Any) -> None:
        with contextlib.suppress(Exception):
            async for text in socket:
                ack = orjson.loads(text)
                step = self._step
                if step is None:
                    continue
                step.acked += 1
                if ack["status"] != "accepted":
                    step.rejected += 1
                sent = self._sent_at.pop((index, ack["ref"]), None)
                if sent is not None:
                    step.ack_ms.append((time.perf_counter() - sent) * 1e3)

    async def step(self, messages_per_s: float, seconds: float) -> FloorStep:
        """Send ``messages_per_s`` for ``seconds`` (round-robin over the bidders, each
        bidder's commit then its reveal), then wait for every ack (at most 30 s). Times
        by ``time.perf_counter`` (uvloop's ``loop.time()`` counts whole milliseconds)."""
        step = self._step = FloorStep()
        self._sent_at.clear()
        count = max(1, round(messages_per_s * seconds))
        bidders = len(self._sockets)
        texts = list(self.pool.values())
        cursor = [0] * bidders
        start = time.perf_counter() + 0.05
        i = 0
        while i < count:
            now = time.perf_counter()
            due = min(count, int((now - start) * messages_per_s) + 1)
            if due <= i:
                await asyncio.sleep(max(0.0, start + i / messages_per_s - now))
                continue
            for j in range(i, due):
                # Each bidder sends its commit and then its reveal, as in an auction.
                index = (j // 2) % bidders
                pool = texts[index]
                position = cursor[index] % len(pool)
                cursor[index] += 1
                text = pool[position]
                self._sent_at[(index, position + 1)] = now  # its ref is position + 1
                await self._sockets[index].send(text)
                step.sent += 1
            i = due
        step.achieved_rate = (step.sent - 1) / max(1e-9, time.perf_counter() - start)
        deadline = time.perf_counter() + 30
        while step.acked < step.sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        self._step = None
        return step

    async def close(self) -> None:
        for socket in self._sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        for reader in self._readers:
            reader.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="SQLite file")
    parser.add_argument("--keys", required=True, help="JSON {bidder_id: public key hex}")
    parser.add_argument("--sqlite-synchronous", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    serve(args.port, args.db, args.sqlite_synchronous, args.keys)


if __name__ == "__main__":
    main()
