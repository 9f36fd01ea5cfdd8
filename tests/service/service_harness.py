"""Harness for the wire tests: a real server in a subprocess and a hand-driven bidder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from phantom_auction.engine import ImprovementBid, make_bid
from phantom_auction.engine.clock import to_us
from phantom_auction.service.auth import (
    commit_signing_bytes,
    load_private_key,
    login_signing_bytes,
    sign,
)
from phantom_auction.service.schemas import CommitBody, RevealBody
from phantom_auction.service.store import (
    AuctionRecord,
    BidEvent,
    MemoryStore,
    Store,
    Write,
    open_store,
)


@dataclass(frozen=True, slots=True)
class Opened:
    """What a test needs from an ``auction_opened`` push."""

    auction_id: str
    token_pair: tuple[int, int]
    baseline_price: float
    amount: float


class RawBidder:
    """A logged-in WebSocket bidder whose messages the test writes by hand."""

    def __init__(self, ws_url: str, bidder_id: str, private_key: str) -> None:
        self.ws_url = ws_url
        self.bidder_id = bidder_id
        self.key = load_private_key(private_key)
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] = {}
        self.pushes: list[dict[str, Any]] = []
        self.unmatched_acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._ref = 0
        self.nonce = time.time_ns() // 1_000  # microseconds: below MAX_NONCE = 2**53 - 1

    async def __aenter__(self) -> RawBidder:
        self.ws = await connect(self.ws_url, max_size=1 << 24)
        challenge = json.loads(await self.ws.recv())
        assert challenge["type"] == "challenge"
        signature = sign(self.key, login_signing_bytes(self.bidder_id, challenge["challenge"]))
        await self.ws.send(
            json.dumps({"type": "login", "bidder_id": self.bidder_id, "signature": signature})
        )
        self.welcome = json.loads(await self.ws.recv())
        assert self.welcome["type"] == "welcome", self.welcome
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def _read(self) -> None:
        assert self.ws is not None
        async for text in self.ws:
            message = json.loads(text)
            if message.get("type") == "ack":
                waiter = self._waiting.pop(message.get("ref"), None)
                if waiter is not None:
                    waiter.set_result(message)
                else:
                    self.unmatched_acks.put_nowait(message)
            else:
                self.pushes.append(message)
                self._arrived.set()

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    async def send(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send ``message`` with a fresh ``ref`` and return its ack."""
        assert self.ws is not None
        self._ref += 1
        ref = f"{self.bidder_id}-{self._ref}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = waiter
        await self.ws.send(json.dumps({**message, "ref": ref}))
        return await asyncio.wait_for(waiter, timeout)

    async def send_text(self, text: str, timeout: float = 10.0) -> dict[str, Any]:
        """Send raw text; the next ack that carries no known ``ref``."""
        assert self.ws is not None
        await self.ws.send(text)
        return await asyncio.wait_for(self.unmatched_acks.get(), timeout)

    async def push(
        self, kind: str, auction_id: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first push of ``kind`` (for ``auction_id``), waiting for it if needed."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.pushes:
                if message.get("type") == kind and auction_id in (None, message.get("auction_id")):
                    return message
            remaining = end - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{self.bidder_id}: no {kind} for {auction_id}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def opened(self, auction_id: str) -> Opened:
        message = await self.push("auction_opened", auction_id)
        pair = message["token_pair"]
        return Opened(auction_id, (pair[0], pair[1]), message["baseline_price"], message["amount"])

    def bid(
        self,
        opened: Opened,
        improvement_bps: float = 30.0,
        *,
        volume: float | None = None,
        priority_fee: float = 0.0,
        nonce: int | None = None,
        token_pair: tuple[int, int] | None = None,
    ) -> ImprovementBid:
        """A bid for ``opened`` (``improvement_bps`` over its baseline)."""
        return make_bid(
            opened.auction_id,
            self.bidder_id,
            token_pair or opened.token_pair,
            opened.baseline_price * (1.0 + improvement_bps / 10_000.0),
            opened.amount if volume is None else volume,
            priority_fee,
            self.next_nonce() if nonce is None else nonce,
        )

    def commit_message(
        self, auction_id: str, bid: ImprovementBid, *, signer: Any = None
    ) -> dict[str, Any]:
        """A signed commit of ``bid`` to ``auction_id``."""
        commitment = bid.commitment_hash.hex()
        signed = commit_signing_bytes(auction_id, self.bidder_id, commitment, bid.nonce)
        return {
            "type": "commit",
            "auction_id": auction_id,
            "token_pair": list(bid.token_pair),
            "commitment": commitment,
            "nonce": bid.nonce,
            "signature": sign(signer or self.key, signed),
        }

    @staticmethod
    def reveal_message(auction_id: str, bid: ImprovementBid, **changes: Any) -> dict[str, Any]:
        """The reveal of ``bid`` (``changes`` tamper with fields)."""
        message = {
            "type": "reveal",
            "auction_id": auction_id,
            "token_pair": list(bid.token_pair),
            "improved_price": bid.improved_price,
            "volume": bid.volume,
            "priority_fee": bid.priority_fee,
            "nonce": bid.nonce,
            "salt": bid.salt.hex(),
        }
        message.update(changes)
        return message

    async def commit(self, auction_id: str, bid: ImprovementBid) -> dict[str, Any]:
        return await self.send(self.commit_message(auction_id, bid))

    async def reveal(self, auction_id: str, bid: ImprovementBid, **changes: Any) -> dict[str, Any]:
        return await self.send(self.reveal_message(auction_id, bid, **changes))


def commit_body(
    auction_id: str, bid: ImprovementBid, private_key: str, commitment: str | None = None
) -> CommitBody:
    """``bid``'s commit to ``auction_id`` as the house takes it, signed with its bidder's
    ``private_key`` (hex); ``commitment``: hex, by default the bid's own hash."""
    commitment = bid.commitment_hash.hex() if commitment is None else commitment
    signed = commit_signing_bytes(auction_id, bid.bidder_id, commitment, bid.nonce)
    return CommitBody(
        token_pair=list(bid.token_pair),
        commitment=commitment,
        nonce=bid.nonce,
        signature=sign(load_private_key(private_key), signed),
    )


def reveal_body(bid: ImprovementBid) -> RevealBody:
    """``bid``'s reveal as the house takes it."""
    return RevealBody(
        token_pair=list(bid.token_pair),
        improved_price=bid.improved_price,
        volume=bid.volume,
        priority_fee=bid.priority_fee,
        nonce=bid.nonce,
        salt=bid.salt.hex(),
    )


def unique(name: str) -> str:
    """``name`` with a random suffix: bidders and clients of one server never collide."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def order(**changes: Any) -> dict[str, Any]:
    """A settlement client's order (``POST /v1/auctions`` body), with ``changes``."""
    return {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0, **changes}


async def open_auction(http: httpx.AsyncClient, duration_ms: int) -> str:
    """Open an auction of ``duration_ms`` without waiting for its result; its id."""
    made = await http.post(
        "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=duration_ms)
    )
    assert made.status_code == 202, made.text
    return str(made.json()["auction_id"])


async def running_and_ended(
    http: httpx.AsyncClient, bidder: RawBidder
) -> tuple[str, str, ImprovementBid]:
    """What a prune must keep and what it must take: an auction open for a minute with
    ``bidder``'s commit, then one of 1 s that ``bidder`` commits to and reveals in and
    that has ended on return; their ids and the ended one's bid (``bidder``'s highest
    nonce)."""
    running = await open_auction(http, 60_000)
    assert (
        reason(await bidder.commit(running, bidder.bid(await bidder.opened(running)))) == "accepted"
    )
    ended = await open_auction(http, 1000)
    bid = bidder.bid(await bidder.opened(ended))
    assert reason(await bidder.commit(ended, bid)) == "accepted"
    await bidder.push("reveal_open", ended)
    assert reason(await bidder.reveal(ended, bid)) == "accepted"
    await bidder.push("auction_closed", ended)
    return running, ended, bid


def reason(ack: dict[str, Any]) -> str:
    """``accepted`` or the rejection reason of an ack (for compact assertions)."""
    return "accepted" if ack["status"] == "accepted" else str(ack["reason"])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OnLoopback:
    """A server on 127.0.0.1:``port``: its HTTP and bidder WebSocket addresses."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/bidders/ws"


class ServerProcess(OnLoopback):
    """``python -m phantom_auction.service serve`` on 127.0.0.1 in a subprocess.

    ``env`` adds ``AUCTION_*`` overrides, ``args`` options (``--workers 2``); the
    database persists across restarts so that a killed server can be started again on
    the same data.
    """

    def __init__(
        self,
        db_url: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        args: list[str] | None = None,
    ):
        self.db_url = db_url
        self.env = env or {}
        self.log = log
        self.args = args or []
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0, port: int | None = None) -> None:
        """Start on ``port`` (a restart where bidders reconnect), else on a free one."""
        for _attempt in range(3):
            self.port = port or free_port()
            out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "phantom_auction.service",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--db",
                    self.db_url,
                    *self.args,
                ],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            if not isinstance(out, int):
                out.close()  # the child has its own copy
            end = time.monotonic() + timeout_s
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            self.stop()  # the port was taken meanwhile, or startup failed: try again
        raise RuntimeError(f"the server did not start (log: {self.log})")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush (the crash test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    async def add_client(self, name: str) -> str:
        """Register a settlement client in the server's database; its bearer token."""
        from phantom_auction.service.auth import hash_token, new_token

        token = new_token()
        store = open_store(self.db_url)
        await store.start()
        try:
            await store.add_client(name, hash_token(token))
        finally:
            await store.close()
        return token

    @contextlib.asynccontextmanager
    async def settlement(self, name: str = "settlement") -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client of the server holding a new settlement client's bearer token."""
        token = await self.add_client(name)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as http:
            yield http

    async def add_bidder(self, name: str) -> str:
        """Register a bidder in the server's database; its private key (hex)."""
        from phantom_auction.service.auth import generate_keypair

        private, public = generate_keypair()
        store = open_store(self.db_url)
        await store.start()
        try:
            await store.add_bidder(name, bytes.fromhex(public))
        finally:
            await store.close()
        return private

    async def connect_store(self) -> Store:
        store = open_store(self.db_url)
        await store.start()
        return store


# ---------------------------------------------------------------------------- records


def auction_record(auction_id: str, client_id: int, key: str | None = None) -> AuctionRecord:
    return AuctionRecord(
        auction_id=auction_id,
        client_id=client_id,
        idempotency_key=key,
        request_digest="d" * 64,
        token_in=1,
        token_out=2**53 - 1,
        amount=10.0,
        baseline_price=2500.5,
        opened_at_us=1_000_000,
        commit_deadline_us=1_080_000,
        reveal_deadline_us=1_100_000,
        phantom_commitment="c" * 64,
        phantom_seed="5" * 64,
        engine_params={"config": {"phantom_auction": {"mechanism": "vickrey"}}},
    )


def commit_event(auction_id: str, bidder: str, nonce: int, accepted: bool = True) -> BidEvent:
    return BidEvent(
        auction_id=auction_id,
        bidder_id=bidder,
        kind="commit",
        accepted=accepted,
        reason=None if accepted else "replayed_nonce",
        nonce=nonce,
        payload={"commitment": "ab" * 32, "signature": "00" * 64},
        received_at_us=1_010_000 + nonce,
    )


# ---------------------------------------------------------------------------- PostgreSQL

#: Where scripts/ensure-postgres.sh puts the test database unless the variable says otherwise.
DEFAULT_PG_URL = (
    "postgresql+asyncpg://phantom_auction:phantom_auction@127.0.0.1:5432/phantom_auction_test"
)


def pg_url() -> str:
    """The test PostgreSQL: ``PHANTOM_AUCTION_TEST_PG_URL`` or the ensure script's default."""
    return os.environ.get("PHANTOM_AUCTION_TEST_PG_URL", DEFAULT_PG_URL)


_pg_probe: str | bool | None = False  # False: not probed yet; None: reachable; str: why not


def pg_unavailable_reason() -> str | None:
    """None if the test PostgreSQL answers, else why not (probed once per session)."""
    global _pg_probe
    if _pg_probe is False:
        import asyncpg  # type: ignore[import-untyped]

        dsn = pg_url().replace("postgresql+asyncpg://", "postgresql://")

        async def probe() -> None:
            conn = await asyncpg.connect(dsn, timeout=3)
            await conn.close()

        try:
            asyncio.run(probe())
            _pg_probe = None
        except Exception as exc:
            _pg_probe = (
                f"PostgreSQL at {pg_url()} is unavailable ({type(exc).__name__}: {exc}); "
                "run `bash scripts/ensure-postgres.sh` or set PHANTOM_AUCTION_TEST_PG_URL"
            )
    assert _pg_probe is not False
    if _pg_probe is not None and os.environ.get("PHANTOM_AUCTION_REQUIRE_POSTGRES"):
        # CI installs and starts PostgreSQL (.ci/run): there, a missing server is a failure.
        raise RuntimeError(f"PHANTOM_AUCTION_REQUIRE_POSTGRES is set but {_pg_probe}")
    return _pg_probe


class FailsOneReveal(MemoryStore):
    """Fails the first reveal event it is given (a transient store failure)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def apply(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if isinstance(write, BidEvent) and write.kind == "reveal" and not self.failed:
                self.failed = True
                raise OSError("database is locked")
        await super().apply(writes)


def bid_event(
    auction: Any, bid: ImprovementBid, kind: str, accepted: bool, at: Any, signature: str = ""
) -> BidEvent:
    """The stored event of ``bid``'s commit (with ``signature``) or reveal in ``auction``
    (the engine's verdict ``accepted``, the house's payload in service/house/bids.py)."""
    pair = list(bid.token_pair)
    if kind == "commit":
        payload = {"transport": "test", "token_pair": pair, "commitment": bid.commitment_hash.hex(),
                   "nonce": bid.nonce, "signature": signature}  # fmt: skip
    else:
        payload = {"transport": "test", "token_pair": pair,
                   "improved_price": bid.improved_price, "volume": bid.volume,
                   "priority_fee": bid.priority_fee, "nonce": bid.nonce,
                   "salt": bid.salt.hex(), "commitment": bid.commitment_hash.hex()}  # fmt: skip
    reason = None if accepted else str(auction.audit[-1].reason)
    return BidEvent(
        auction.auction_id, bid.bidder_id, kind, accepted, reason, bid.nonce, payload,  # type: ignore[arg-type]
        to_us(at),
    )  # fmt: skip
