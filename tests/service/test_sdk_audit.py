"""The bidder SDK as a new user meets it (the SDK audit's findings), against a real server
(``serve`` on SQLite, 127.0.0.1, a free port):

- A strategy proposing something that is not a bid (a dict, a bare price, a price that is
  no number, a NaN timestamp) loses that auction only, named in the log and counted in
  ``report.strategy_errors``; before, it ended the run with ``AttributeError`` (with
  ``honour_timing=False``) or left the auction open forever (a timer's error).
- ``max_auctions`` ends a run whose commit the server refused, or whose ``auction_closed``
  never came: no such push comes for a bidder without a commit, and a lost one is not
  sent again, so the run waited forever.
- A malformed private key is refused without the key in the message or the traceback.
- A URL with a query or an upper-case scheme is understood; ``https://`` given for a
  server without TLS ends the run (``tls_failed``) instead of being retried forever.
- An unregistered bidder id is refused ``bad_signature`` (the server answers it as a
  wrong key); the SDK's error says it may be either.
- ``signed_headers`` signs the path the server checks (a query or a whole URL given as
  the path was refused ``bad_signature``) and takes a text body as UTF-8.
- A client run again reports its second run alone (it took no auction once the first
  had seen ``max_auctions``); ``max_auctions=0``, a NaN ``duration_s``, a strategy
  class, an ``async`` or wrongly shaped ``generate_bid`` and ``run()`` inside a running
  loop are refused, naming what to do.
- A server closing during the login (1012) is retried, not a refusal; a refusal
  carries the run's report. ``request_status`` unanswered is None, not the welcome.
- ``duration_s`` and ``stop`` end a run that is still connecting (a server that never
  answers the upgrade held them for the 10 s ``open_timeout``).
- One bidder running twice (each login closing the other's session) stops the older
  run (the server says ``session_replaced``); a blocked bidder is warned about.

Some tests use a stand-in server (``websockets.serve``) for what the real one does
rarely or never on demand: a close during the login, an unanswered status, a block.
"""

from __future__ import annotations

import asyncio
import json
import math
import traceback
from typing import Any

import httpx
import pytest

import phantom_auction.client as sdk
from phantom_auction import Bid
from phantom_auction.client import (
    BidderClient,
    BidderLoginError,
    BidderRemovedError,
    _ws_url,
    signed_headers,
)

from .service_harness import ServerProcess, unique

pytestmark = pytest.mark.anyio

#: Long auctions (400 ms reveal windows): a loaded machine still gets every bid in.
DURATION_MS = 2000


@pytest.fixture(scope="module")
def server(server_factory: Any) -> ServerProcess:
    made: ServerProcess = server_factory({})
    return made


async def _open(server: ServerProcess, count: int = 1) -> None:
    """Open ``count`` auctions one after the other, each waited for to its result."""
    async with server.settlement(unique("settlement")) as http:
        for _ in range(count):
            order = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}
            made = await http.post("/v1/auctions", json={**order, "duration_ms": DURATION_MS})
            assert made.status_code == 200, made.text


async def _runs(clients: list[BidderClient], runs: list[Any], server: ServerProcess) -> list[Any]:
    """Start ``runs`` (the clients' ``arun`` coroutines), open one auction once every
    client is logged in, and wait for every run to end by itself (max_auctions)."""
    tasks = [asyncio.create_task(run) for run in runs]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 30)
        await _open(server)
        return await asyncio.wait_for(asyncio.gather(*tasks), 60)
    finally:
        for task in tasks:
            task.cancel()


def _bid(price: Any = 2006.0, timestamp: Any = 10.0) -> Bid:
    return Bid(price=price, quantity=10.0, timestamp=timestamp, priority_fee=0.0)


# What a first bot gets wrong, and the field the log must name.
NOT_BIDS: list[tuple[str, Any, str]] = [
    ("dict", {"price": 2006.0, "quantity": 10.0, "timestamp": 10.0, "priority_fee": 0.0}, "price"),
    ("bare-price", 2006.0, "price"),
    ("price-text", _bid(price="abc"), "bid.price='abc'"),
    ("nan-timestamp", _bid(timestamp=math.nan), "bid.timestamp=nan"),
]


async def test_a_strategy_proposing_no_bid_loses_its_auction_not_the_run(
    server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="phantom_auction.client")
    clients, runs, named = [], [], []
    for honour_timing in (True, False):
        for case, proposal, field in NOT_BIDS:
            if case == "nan-timestamp" and not honour_timing:
                continue  # the timestamp is not used then
            name = unique(f"mm-{case}")
            client = BidderClient(
                server.url, name, await server.add_bidder(name), honour_timing=honour_timing
            )

            def strategy(price: float, qty: float, market: Any, rng: Any, p: Any = proposal) -> Any:
                return p

            clients.append(client)
            runs.append(client.arun(strategy, max_auctions=1))
            named.append((name, field))
    reports = await _runs(clients, runs, server)
    logged = [r.getMessage() for r in caplog.records]
    for report, (name, field) in zip(reports, named, strict=True):
        assert report.auctions_seen == 1 and report.strategy_errors == 1, report
        assert report.commits_sent == 0 and report.acks == ()
        assert any(name in m and field in m for m in logged), (name, field, logged)


async def test_max_auctions_ends_a_run_whose_commit_the_server_refused(
    server: ServerProcess,
) -> None:
    """A bid timed after the collection window: refused, and no auction_closed follows."""
    name = unique("mm-late")
    client = BidderClient(server.url, name, await server.add_bidder(name))
    late = 0.9 * DURATION_MS  # in the reveal window (the last fifth)

    def strategy(price: float, qty: float, market: Any, rng: Any) -> Bid:
        return Bid(price=price * 1.003, quantity=qty, timestamp=late, priority_fee=0.0)

    (report,) = await _runs([client], [client.arun(strategy, max_auctions=1)], server)
    assert report.commits_sent == 1 and report.accepted == 0
    assert sum(report.rejected.values()) >= 1, report.rejected
    assert [a.status for a in report.acks if a.kind == "commit"] == ["rejected"]


async def test_max_auctions_ends_a_run_whose_auction_closed_never_came(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push lost (as with a connection dropped at the auction's end): the round is
    given up CLOSE_GRACE_S after its reveal window."""
    monkeypatch.setattr(sdk, "CLOSE_GRACE_S", 0.5, raising=False)
    name = unique("mm-lost")
    client = BidderClient(server.url, name, await server.add_bidder(name), honour_timing=False)
    real = client._dispatch

    def dispatch(bidder: Any, msg: dict[str, Any]) -> None:
        if msg.get("type") != "auction_closed":
            real(bidder, msg)

    client._dispatch = dispatch  # type: ignore[method-assign]

    def strategy(price: float, qty: float, market: Any, rng: Any) -> Bid:
        return Bid(price=price * 1.003, quantity=qty, timestamp=0.0, priority_fee=0.0)

    (report,) = await _runs([client], [client.arun(strategy, max_auctions=1)], server)
    assert report.commits_sent == report.reveals_sent == 1
    assert report.accepted == 2 and report.rejected == {}
    assert report.auctions_won == 0  # its end was never heard of


@pytest.mark.parametrize(
    "text",
    ["ab" * 31, "zz" * 32, "0x" + "ab" * 32, "ab" * 32 + "cd"],
    ids=["short", "not-hex", "0x", "long"],
)
def test_a_malformed_private_key_is_refused_without_showing_it(text: str) -> None:
    for make in (
        lambda: BidderClient("http://127.0.0.1:1", "mm", text),
        lambda: signed_headers("mm", text, "GET", "/v1/bidders/me"),
    ):
        with pytest.raises(ValueError, match="private_key") as refused:
            make()
        shown = "".join(traceback.format_exception(refused.value))
        assert text[2:20] not in shown, shown  # nor in a chained exception
    for wrong in (None, 12345):
        with pytest.raises(TypeError, match=f"private_key: {type(wrong).__name__}"):
            BidderClient("http://127.0.0.1:1", "mm", wrong)  # type: ignore[arg-type]


def test_urls_as_users_write_them() -> None:
    endpoint = "/v1/bidders/ws"
    assert _ws_url("HTTP://127.0.0.1:8080") == "ws://127.0.0.1:8080" + endpoint
    assert _ws_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080" + endpoint
    assert _ws_url("https://h.example") == "wss://h.example" + endpoint
    assert _ws_url("http://127.0.0.1:8080?x=1") == f"ws://127.0.0.1:8080{endpoint}?x=1"
    assert _ws_url("ws://h:1/elsewhere") == "ws://h:1/elsewhere"
    for bad in ("127.0.0.1:8080", "localhost:8080", "ftp://h:1", "http://"):
        with pytest.raises(ValueError, match="url="):
            _ws_url(bad)
    with pytest.raises(TypeError, match="url=None"):
        _ws_url(None)  # type: ignore[arg-type]


async def test_https_for_a_server_without_tls_ends_the_run(server: ServerProcess) -> None:
    """Retried before, one INFO line a time, for ever (or give_up_after_s)."""
    client = BidderClient(server.url.replace("http://", "https://"), "mm", "11" * 32)
    with pytest.raises(BidderLoginError) as refused:
        await asyncio.wait_for(client.arun(lambda *args: None, duration_s=120), 60)
    assert refused.value.reason == "tls_failed" and "http://" in refused.value.detail


async def test_an_unregistered_bidder_is_told_it_may_not_be_registered(
    server: ServerProcess,
) -> None:
    name = unique("mm-nobody")
    client = BidderClient(server.url, name, "11" * 32)
    with pytest.raises(BidderLoginError) as refused:
        await asyncio.wait_for(client.arun(lambda *args: None, duration_s=30), 30)
    assert refused.value.reason == "bad_signature"
    assert "registered" in refused.value.detail and name in refused.value.detail


async def test_signed_headers_sign_the_path_the_server_checks(server: ServerProcess) -> None:
    name = unique("mm-http")
    key = await server.add_bidder(name)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for path in ("/v1/bidders/me?verbose=1", server.url + "/v1/bidders/me"):
            got = await http.get(
                "/v1/bidders/me?verbose=1", headers=signed_headers(name, key, "GET", path)
            )
            assert got.status_code == 200, (path, got.text)
            assert got.json()["bidder_id"] == name
        # A text body is signed as the UTF-8 bytes httpx sends.
        body = json.dumps({"token_pair": [1, 2]})
        sent = await http.post(
            "/v1/auctions/nope/reveal",
            headers=signed_headers(name, key, "POST", "/v1/auctions/nope/reveal", body),
            content=body,
        )
        assert sent.json().get("reason") != "bad_signature", sent.text
    with pytest.raises(TypeError, match="body: a dict"):
        signed_headers(name, key, "POST", "/v1/x", {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path='v1/bidders/me'"):
        signed_headers(name, key, "GET", "v1/bidders/me")


async def test_a_client_runs_again_and_reports_its_second_run_alone(server: ServerProcess) -> None:
    """The second run of the same client took no auction (it had seen max_auctions
    already) and ran forever, reporting the first run's counts."""
    name = unique("mm-again")
    client = BidderClient(server.url, name, await server.add_bidder(name), honour_timing=False)

    def strategy(price: float, qty: float, market: Any, rng: Any) -> Bid:
        return Bid(price=price * 1.003, quantity=qty, timestamp=0.0, priority_fee=0.0)

    for _ in range(2):
        (report,) = await _runs([client], [client.arun(strategy, max_auctions=1)], server)
        assert report.auctions_seen == report.commits_sent == report.reveals_sent == 1
        assert report.accepted == 2 and len(report.acks) == 2
        assert report.auctions_won == 1 and report.filled_volume == 10.0


class _Shade:
    def generate_bid(self, price: float, qty: float, market: Any, rng: Any) -> Bid:
        return Bid(price=price * 1.003, quantity=qty, timestamp=0.0, priority_fee=0.0)


async def test_run_arguments_a_new_user_gets_wrong_are_named() -> None:
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)
    # 0 took no auction and never ended; NaN never ended either.
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=f"max_auctions={bad!r}"):
            await asyncio.wait_for(client.arun(_Shade(), max_auctions=bad), 10)
    for bad in (math.nan, -1.0, "60"):
        with pytest.raises(ValueError, match="duration_s="):
            await asyncio.wait_for(client.arun(_Shade(), duration_s=bad), 10)  # type: ignore[arg-type]
    # The class for an instance: generate_bid took the price as self, every auction.
    with pytest.raises(TypeError, match=r"_Shade: a class; pass an instance, _Shade\(...\)"):
        await asyncio.wait_for(client.arun(_Shade, duration_s=3), 10)

    async def coroutine_strategy(price: float, qty: float, market: Any, rng: Any) -> None:
        return None

    with pytest.raises(TypeError, match="async"):
        await asyncio.wait_for(client.arun(coroutine_strategy, duration_s=3), 10)

    def two_arguments(price: float, qty: float) -> None:  # market and rng forgotten
        return None

    with pytest.raises(TypeError, match="baseline_price, baseline_quantity, market, rng"):
        await asyncio.wait_for(client.arun(two_arguments, duration_s=3), 10)

    def takes_the_view(price: float, qty: float, market: Any, rng: Any, *, view: Any) -> None:
        return None  # view is always passed to a strategy naming it: no error

    assert (await client.arun(takes_the_view, duration_s=0.2)).auctions_seen == 0
    # A number as text failed on a comparison naming neither.
    with pytest.raises(ValueError, match="keep_acks='5'"):
        BidderClient("http://127.0.0.1:1", "mm", "11" * 32, keep_acks="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give_up_after_s='5'"):
        BidderClient("http://127.0.0.1:1", "mm", "11" * 32, give_up_after_s="5")  # type: ignore[arg-type]
    # run() where a loop runs (Jupyter): asyncio.run's message did not say what to use.
    with pytest.raises(RuntimeError, match="arun"):
        client.run(_Shade(), duration_s=1)


async def test_a_server_closing_during_login_is_retried_and_a_refusal_carries_the_report() -> None:
    """A server stopping (close 1012) between the challenge and the welcome ended the run
    for good (BidderLoginError ``closed``), like a refusal. Only a 1008 close is one."""
    from websockets.asyncio.server import ServerConnection, serve

    from .service_harness import free_port

    logins: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "challenge", "challenge": "cd" * 32}))
        logins.append(json.loads(await ws.recv())["bidder_id"])
        if len(logins) == 1:
            await ws.close(1012, "restarting")  # the first attempt: the server stops
        elif len(logins) == 2:
            await ws.send(json.dumps({"type": "welcome", "bidder_id": logins[-1]}))
            await ws.wait_closed()
        else:  # a refusal whose error push did not come first
            await ws.close(1008, "bad_signature")

    port = free_port()
    async with serve(handler, "127.0.0.1", port):
        client = BidderClient(f"http://127.0.0.1:{port}", "mm", "11" * 32)
        report = await asyncio.wait_for(client.arun(lambda *args: None, duration_s=2), 30)
        assert len(logins) == 2 and report.status is not None
        with pytest.raises(BidderLoginError) as refused:
            await asyncio.wait_for(client.arun(lambda *args: None, duration_s=30), 30)
    assert refused.value.reason == "bad_signature"
    assert refused.value.report is not None and refused.value.report.bidder_id == "mm"


async def test_request_status_without_an_answer_is_none_not_the_welcome() -> None:
    """A status request the server did not answer in time returned the status held
    before (the login's welcome), as if it were the answer."""
    from websockets.asyncio.server import ServerConnection, serve

    from .service_harness import free_port

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "challenge", "challenge": "cd" * 32}))
        await ws.recv()
        await ws.send(json.dumps({"type": "welcome", "bidder_id": "mm", "blocked": False}))
        async for _ in ws:  # never answers
            pass

    port = free_port()
    async with serve(handler, "127.0.0.1", port):
        client = BidderClient(f"http://127.0.0.1:{port}", "mm", "11" * 32)
        stop = asyncio.Event()
        run = asyncio.create_task(client.arun(lambda *args: None, stop=stop))
        try:
            await asyncio.wait_for(client.connected.wait(), 30)
            assert client.status is not None and client.status["type"] == "welcome"
            assert await client.request_status(timeout=0.3) is None
        finally:
            stop.set()
            await asyncio.wait_for(run, 30)


async def test_duration_and_stop_end_a_run_whose_server_never_answers_the_upgrade() -> None:
    """A server (or proxy) taking the TCP connection but never answering: duration_s=1
    and stop waited for the connection's whole open_timeout, 10 s."""
    import time

    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        client = BidderClient(f"http://127.0.0.1:{port}", "mm", "11" * 32)
        started = time.monotonic()
        report = await asyncio.wait_for(client.arun(lambda *args: None, duration_s=1), 30)
        assert time.monotonic() - started < 8  # 10 s before: open_timeout
        assert report.status is None and held
        stop = asyncio.Event()
        run = asyncio.create_task(client.arun(lambda *args: None, stop=stop))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(run, 30)
        assert time.monotonic() - started < 8
    finally:
        for writer in held:
            writer.close()
        silent.close()


async def test_one_bidder_running_twice_stops_the_older_run(server: ServerProcess) -> None:
    """A newer login closed the older session (1000, no reason): two processes with the
    same key took turns, ~10 logins a second each, without a word in the log. The
    server now says ``session_replaced`` (an error, then 1008) and the older run ends
    with it; the newer one runs on."""
    name = unique("mm-twice")
    key = await server.add_bidder(name)
    older, newer = BidderClient(server.url, name, key), BidderClient(server.url, name, key)
    first = asyncio.create_task(older.arun(lambda *args: None, duration_s=30))
    for _ in range(200):  # until the older one is logged in
        if older.status is not None:
            break
        await asyncio.sleep(0.05)
    second = asyncio.create_task(newer.arun(lambda *args: None, duration_s=3))
    with pytest.raises(BidderRemovedError) as ended:
        await asyncio.wait_for(first, 30)
    assert ended.value.reason == "session_replaced" and name in ended.value.detail
    assert ended.value.report is not None
    report = await asyncio.wait_for(second, 30)  # ran its 3 s, never replaced
    assert report is not None


async def test_a_blocked_bidder_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """Blocked (no-reveal penalty), a bidder is announced no auction: its run went quiet
    with nothing in the log, at login (``welcome``) or when the block came (``blocked``)."""
    from websockets.asyncio.server import ServerConnection, serve

    from .service_harness import free_port

    status = {
        "bidder_id": "mm",
        "no_reveal_rate": 0.6,
        "no_reveal_threshold": 0.5,
        "blocked": True,
        "blocked_until": "2026-12-08T06:00:00+00:00",
        "block_count": 1,
        "reason": "no-reveal rate 0.60 over 0.50",
    }

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "challenge", "challenge": "cd" * 32}))
        await ws.recv()
        await ws.send(json.dumps({"type": "welcome", **status}))
        await ws.send(json.dumps({"type": "blocked", **status, "block_count": 2}))
        await ws.wait_closed()

    caplog.set_level("WARNING", logger="phantom_auction.client")
    port = free_port()
    async with serve(handler, "127.0.0.1", port):
        client = BidderClient(f"http://127.0.0.1:{port}", "mm", "11" * 32)
        report = await asyncio.wait_for(client.arun(lambda *args: None, duration_s=1), 30)
    assert report.status is not None and report.status["block_count"] == 2
    blocked = [r.getMessage() for r in caplog.records if "blocked until" in r.getMessage()]
    assert len(blocked) == 2 and "2026-12-08T06:00:00" in blocked[0], blocked


async def test_a_clock_behind_the_servers_does_not_make_every_timed_commit_late(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A commit is timed by this machine's clock against the server's ``opened_at``: a
    clock 2 s behind waited 2 s more than the bid's timestamp, past any collection
    window. It now waits at most the timestamp after the announcement came, and warns."""
    from datetime import UTC, datetime, timedelta

    from phantom_auction.client import _Round
    from phantom_auction.simulation.live import StrategyBidder

    from ..engine.engine_support import announcement

    caplog.set_level("WARNING", logger="phantom_auction.client")
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)

    class _Timed(_Shade):
        def generate_bid(self, price: float, qty: float, market: Any, rng: Any) -> Bid:
            return Bid(price=price * 1.003, quantity=qty, timestamp=20.0, priority_fee=0.0)

    bidder = StrategyBidder(_Timed(), "mm")
    ahead = datetime.now(UTC) + timedelta(seconds=2)  # the server's clock, 2 s ahead
    round_ = _Round(announcement(ahead, 80, 100, auction_id="skewed"))
    client._rounds["skewed"] = round_
    client._propose(bidder, round_)
    try:
        assert round_.timer is not None
        loop = asyncio.get_running_loop()
        assert round_.timer.when() - loop.time() <= 0.021  # 2.02 s before
    finally:
        round_.cancel_timer()
    assert any("ahead of this machine's" in r.getMessage() for r in caplog.records)
