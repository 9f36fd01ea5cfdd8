"""The red team's Medium and Low findings, each over the wire where it was found there."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from phantom_auction.client import signed_headers
from phantom_auction.engine import MAX_NONCE, MAX_TOKEN_ID
from phantom_auction.service.auth import commit_signing_bytes, verify_signature
from phantom_auction.service.store import SqlStore

from .service_harness import (
    RawBidder,
    ServerProcess,
    order,
    pg_unavailable_reason,
    pg_url,
    reason,
    unique,
)

pytestmark = pytest.mark.anyio

ENV = {
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
    "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "500",
    "AUCTION_SERVICE_READ_TIMEOUT_S": "1.0",
}


@pytest.fixture(scope="module")
def server(server_factory: Any) -> ServerProcess:
    made: ServerProcess = server_factory(ENV)
    return made


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def any_server(request: pytest.FixtureRequest, server_factory: Any) -> Any:
    if request.param == "sqlite":
        return server_factory(ENV)
    why = pg_unavailable_reason()
    if why is not None:
        pytest.skip(why)
    folder = request.getfixturevalue("tmp_path_factory").mktemp("pg-hardening")
    made = ServerProcess(pg_url(), ENV, log=folder / "server.log")
    made.start()
    request.addfinalizer(made.stop)
    return made


async def settlement(server: ServerProcess) -> httpx.AsyncClient:
    token = await server.add_client(unique("settlement"))
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    )


async def ended(http: httpx.AsyncClient, aid: str) -> dict[str, Any]:
    """The auction's view once it has ended (polled)."""
    for _ in range(300):
        view: dict[str, Any] = (await http.get(f"/v1/auctions/{aid}")).json()
        if view["status"] != "open":
            return view
        await asyncio.sleep(0.05)
    raise TimeoutError(aid)


# ---------------------------------------------------------------- Medium


async def test_sqlite_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "new-dir"
    store = SqlStore(f"sqlite+aiosqlite:///{folder / 'service.db'}")
    await store.start()
    await store.add_client("c", "a" * 64)
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = sorted(p.name for p in folder.iterdir())
        assert "service.db" in files and "service.db-wal" in files, files
        for name in files:
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    finally:
        await store.close()
    # A database made world-readable before (an older version) is narrowed on open.
    (folder / "service.db").chmod(0o644)
    again = SqlStore(f"sqlite+aiosqlite:///{folder / 'service.db'}")
    await again.start()
    await again.close()
    assert stat.S_IMODE((folder / "service.db").stat().st_mode) == 0o600


def _trickle(sock: socket.socket, chunks: list[bytes], gap_s: float, until: float) -> str:
    """Send ``chunks`` one by one every ``gap_s``; 'closed' once the server hangs up."""
    for chunk in chunks:
        if time.monotonic() > until:
            return "still open"
        try:
            sock.sendall(chunk)
        except OSError:
            return "closed"
        sock.settimeout(gap_s)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return "closed"
        return f"answered {data[:12]!r}" if data else "closed"
    return "still open"


async def test_slow_requests_are_cut_off(server: ServerProcess) -> None:
    # read_timeout_s = 1: each client trickles for up to 20 s; all must be dropped.
    port = server.port
    head = b"POST /v1/auctions HTTP/1.1\r\nHost: x\r\n"
    slow_headers = [bytes([b]) for b in head] * 50
    body_head = head + b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    slow_body = [body_head] + [b" "] * 400
    idle: list[bytes] = [b""] * 400

    def attack(chunks: list[bytes]) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return _trickle(sock, chunks, 0.2, time.monotonic() + 20.0)

    outcomes = await asyncio.gather(
        *(asyncio.to_thread(attack, c) for c in [slow_headers, slow_body, idle] * 3)
    )
    for outcome in outcomes:
        assert outcome == "closed" or outcome.startswith("answered b'HTTP/1.1 408"), outcomes
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200


@pytest.mark.slow
async def test_a_window_no_one_could_meet_does_not_penalize(server_factory: Any) -> None:
    # 20 ms auctions (10 ms to reveal) opened by a client: a bidder that commits and then
    # cannot reveal in time is not counted, however often it happens.
    env = {**ENV, "AUCTION_SECURITY_BLOCK_BASE_S": "60"}
    srv: ServerProcess = server_factory(env)
    bidder_id = unique("slow-mm")
    key = await srv.add_bidder(bidder_id)
    async with await settlement(srv) as http, RawBidder(srv.ws_url, bidder_id, key) as b:
        for _ in range(6):
            aid = (
                await http.post(
                    "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=20)
                )
            ).json()["auction_id"]
            op = await b.opened(aid)
            await b.commit(aid, b.bid(op))  # accepted or late: either way no reveal
            await ended(http, aid)
    store = await srv.connect_store()
    try:
        record = await store.bidder(bidder_id)
    finally:
        await store.close()
    assert record is not None
    assert (record.penalty.no_reveal_rate, record.penalty.block_count) == (0.0, 0)


async def test_a_window_one_could_meet_still_penalizes(server: ServerProcess) -> None:
    bidder_id = unique("faithless")
    key = await server.add_bidder(bidder_id)
    async with await settlement(server) as http, RawBidder(server.ws_url, bidder_id, key) as b:
        aid = (await http.post("/v1/auctions", params={"wait": "false"}, json=order())).json()[
            "auction_id"
        ]
        op = await b.opened(aid)
        assert reason(await b.commit(aid, b.bid(op))) == "accepted"
        await b.push("auction_closed", aid)
    store = await server.connect_store()
    try:
        record = await store.bidder(bidder_id)
    finally:
        await store.close()
    assert record is not None and record.penalty.no_reveal_rate > 0.0


# ---------------------------------------------------------------- Low


def _same_under_float64(text: str) -> None:
    """What a JavaScript client reads (every number a double) equals the exact values."""
    exact = json.loads(text)
    as_js = json.loads(text, parse_int=float)

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict):
            assert a.keys() == b.keys(), where
            for k in a:
                walk(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
        elif isinstance(a, int) and not isinstance(a, bool):
            assert int(b) == a, f"{where}: {a} reads as {b!r} in float64"
        else:
            assert a == b, where

    walk(exact, as_js, "$")


async def test_every_public_document_reads_exactly_in_float64(server: ServerProcess) -> None:
    bidder_id = unique("js-mm")
    key = await server.add_bidder(bidder_id)
    big = order(token_in=-MAX_TOKEN_ID, token_out=MAX_TOKEN_ID)
    async with await settlement(server) as http, RawBidder(server.ws_url, bidder_id, key) as b:
        opened = await http.post("/v1/auctions", params={"wait": "false"}, json=big)
        aid = opened.json()["auction_id"]
        op = await b.opened(aid)
        bid = b.bid(op, nonce=MAX_NONCE - 1)
        assert reason(await b.commit(aid, bid)) == "accepted"
        await b.push("reveal_open", aid)
        assert reason(await b.reveal(aid, bid)) == "accepted"
        await b.push("auction_closed", aid)
        for path in (f"/v1/auctions/{aid}", f"/v1/auctions/{aid}/competition"):
            response = await http.get(path)
            assert response.status_code == 200
            _same_under_float64(response.text)
        for push in b.pushes:
            _same_under_float64(json.dumps(push))
        competition = (await http.get(f"/v1/auctions/{aid}/competition")).json()
        assert competition["token_pair"] == [-MAX_TOKEN_ID, MAX_TOKEN_ID]
        assert [c["nonce"] for c in competition["commitments"]] == [MAX_NONCE - 1]


async def test_the_commit_signature_can_be_audited_from_the_competition(
    server: ServerProcess,
) -> None:
    bidder_id = unique("audited")
    key = await server.add_bidder(bidder_id)
    async with await settlement(server) as http, RawBidder(server.ws_url, bidder_id, key) as b:
        aid = (await http.post("/v1/auctions", params={"wait": "false"}, json=order())).json()[
            "auction_id"
        ]
        op = await b.opened(aid)
        assert reason(await b.commit(aid, b.bid(op))) == "accepted"
        await b.push("auction_closed", aid)
        competition = (await http.get(f"/v1/auctions/{aid}/competition")).json()
    public_key = bytes.fromhex(competition["bidder_keys"][bidder_id])
    (commit,) = competition["commitments"]
    signed = commit_signing_bytes(aid, bidder_id, commit["commitment"], commit["nonce"])
    assert verify_signature(public_key, commit["signature"], signed)
    forged = commit_signing_bytes(aid, bidder_id, commit["commitment"], commit["nonce"] + 1)
    assert not verify_signature(public_key, commit["signature"], forged)


async def test_unknown_bidders_look_like_bad_signatures(server: ServerProcess) -> None:
    known = unique("known")
    key = await server.add_bidder(known)
    other_key = await server.add_bidder(unique("other"))
    answers = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for bidder_id, signer in ((known, other_key), (unique("nobody"), other_key)):
            headers = signed_headers(bidder_id, signer, "GET", "/v1/bidders/me")
            r = await http.get("/v1/bidders/me", headers=headers)
            body = r.json()
            answers.append((r.status_code, body["reason"], body["detail"].replace(bidder_id, "ID")))
        assert answers[0] == answers[1] == (401, "bad_signature", answers[0][2])
        # Characters no bidder id has: the same answer, without a store lookup.
        headers = signed_headers("no/such id", other_key, "GET", "/v1/bidders/me")
        r = await http.get("/v1/bidders/me", headers=headers)
        assert (r.status_code, r.json()["reason"]) == (401, "bad_signature")
        del key


async def test_a_signed_request_is_taken_once(server: ServerProcess) -> None:
    bidder_id = unique("replayed")
    key = await server.add_bidder(bidder_id)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = signed_headers(bidder_id, key, "GET", "/v1/bidders/me")
        first = await http.get("/v1/bidders/me", headers=headers)
        assert first.status_code == 200
        again = await http.get("/v1/bidders/me", headers=headers)
        assert (again.status_code, again.json()["reason"]) == (401, "replayed_request")
        # Signed anew (the SDK keeps timestamps increasing), it goes through.
        for _ in range(3):
            fresh = signed_headers(bidder_id, key, "GET", "/v1/bidders/me")
            assert (await http.get("/v1/bidders/me", headers=fresh)).status_code == 200


async def test_deeply_nested_frames_are_malformed_and_bad_utf8_closes_1007(
    server: ServerProcess,
) -> None:
    bidder_id = unique("nester")
    key = await server.add_bidder(bidder_id)
    async with RawBidder(server.ws_url, bidder_id, key) as b:
        for depth in (1_000, 4_000):  # 4,000 deep fits in max_message_bytes
            ack = await b.send_text('{"type":"commit","ref":' + "[" * depth + "]" * depth + "}")
            assert reason(ack) == "malformed"
        assert b.ws is not None
        await b.ws.send(json.dumps({"type": "status", "ref": "still-here"}))
        assert (await b.push("status"))["bidder_id"] == bidder_id
    async with RawBidder(server.ws_url, bidder_id, key) as b:
        assert b.ws is not None
        # A text frame with invalid UTF-8 (the client library would refuse to build one).
        await b.ws.send(b'{"type":"status","ref":"\xff"}', text=True)
        await asyncio.wait_for(b.ws.wait_closed(), 10)
        assert b.ws.close_code == 1007
    log = server.log.read_text("utf-8", errors="replace") if server.log else ""
    assert "RecursionError" not in log


async def test_nul_bytes_and_odd_paths_are_clean_4xx(any_server: ServerProcess) -> None:
    srv = any_server
    async with await settlement(srv) as http:
        r = await http.post("/v1/auctions", json=order(idempotency_key="a\x00b"))
        assert (r.status_code, r.json()["reason"], r.json()["field"]) == (
            422,
            "malformed",
            "idempotency_key",
        )
        for path in ("/v1/auctions/a%00b/competition", "/v1/auctions/a%00b", "/v1/auctions/%ff"):
            r = await http.get(path)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
            assert r.json()["status"] == "rejected"
    bidder_id = unique("nul")
    key = await srv.add_bidder(bidder_id)
    async with RawBidder(srv.ws_url, bidder_id, key) as b:
        message = {
            "type": "commit",
            "auction_id": "a\x00b",
            "token_pair": [1, 2],
            "commitment": "ab" * 32,
            "nonce": 1,
            "signature": "00" * 64,
        }
        ack = await b.send(message)
        assert (reason(ack), ack.get("field")) == ("malformed", "auction_id")
    async with httpx.AsyncClient(base_url=srv.url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_no_coercion_and_no_self_trades(server: ServerProcess) -> None:
    async with await settlement(server) as http:
        for changes, field in (
            ({"token_out": 1}, "token_out"),
            ({"amount": "300"}, "amount"),
            ({"amount": True}, "amount"),
            ({"baseline_price": "2000"}, "baseline_price"),
            ({"token_in": "1"}, "token_in"),
            ({"token_in": 1.0}, "token_in"),
            ({"duration_ms": "300"}, "duration_ms"),
            ({"token_out": MAX_TOKEN_ID + 1}, "token_out"),
        ):
            r = await http.post("/v1/auctions", params={"wait": "false"}, json=order(**changes))
            assert (r.status_code, r.json()["reason"], r.json()["field"]) == (
                422,
                "malformed",
                field,
            ), (changes, r.text)
        ok = await http.post("/v1/auctions", params={"wait": "false"}, json=order(amount=300))
        assert ok.status_code == 202  # an integer where a float is expected is a number


@pytest.mark.slow
async def test_metrics_are_opt_in(server: ServerProcess, server_factory: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/metrics")).status_code == 404
    opted: ServerProcess = server_factory({**ENV, "AUCTION_SERVICE_PUBLIC_METRICS": "true"})
    async with httpx.AsyncClient(base_url=opted.url) as http:
        r = await http.get("/metrics")
        assert r.status_code == 200 and "phantom_auction_open_auctions" in r.text


# ---------------------------------------------------------------- operations


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
async def test_serve_logs_start_and_stop_and_refuses_bad_options(
    server_factory: Any, tmp_path: Path
) -> None:
    srv: ServerProcess = server_factory(ENV)
    async with await settlement(srv) as http:
        r = await http.post("/v1/auctions", json=order(duration_ms=200))
        assert r.status_code == 200
    srv.stop()
    assert srv.log is not None
    log = srv.log.read_text("utf-8")
    assert f"listening on http://127.0.0.1:{srv.port}, store sqlite+aiosqlite:///" in log
    assert "phantom-auction stopped after" in log and "1 auctions" in log
    for args, option in (
        (["--db", "foo://bar"], "--db"),
        (["--port", "99999"], "--port"),
        (["--log-level", "loud"], "--log-level"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "phantom_auction.service", "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {option}"), done.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "Default: [service] host." in helped.stdout


@pytest.mark.slow
async def test_clients_and_bidders_can_be_listed_and_revoked(server: ServerProcess) -> None:
    db = server.db_url
    name = unique("ops-client")
    token = await server.add_client(name)
    bidder_id = unique("ops-mm")
    key = await server.add_bidder(bidder_id)
    listed = _cli("clients", "list", db=db)
    assert listed.returncode == 0 and f"\t{name}\t" in listed.stdout
    assert any(line.endswith("active") for line in listed.stdout.splitlines() if name in line)
    bidders = _cli("bidders", "list", db=db)
    assert bidders.returncode == 0 and bidder_id in bidders.stdout
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        assert (
            await http.post("/v1/auctions", params={"wait": "false"}, json=order())
        ).status_code == 202
        assert _cli("clients", "revoke", name, db=db).returncode == 0
        assert _cli("bidders", "remove", bidder_id, db=db).returncode == 0
        assert (
            _cli("bidders", "remove", bidder_id, db=db).returncode == 2
        )  # no such NAME: a bad value
    listed = _cli("clients", "list", db=db)
    assert any(line.endswith("revoked") for line in listed.stdout.splitlines() if name in line)
    assert bidder_id not in _cli("bidders", "list", db=db).stdout
    # A fresh server (no cached identities) refuses both at once. It takes this one's
    # place (a SQLite file is served by one process), which comes back after it.
    server.stop()
    fresh = ServerProcess(db, ENV, log=server.log)
    fresh.start()
    try:
        async with httpx.AsyncClient(
            base_url=fresh.url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            r = await http.post("/v1/auctions", params={"wait": "false"}, json=order())
            assert r.status_code == 401
            headers = signed_headers(bidder_id, key, "GET", "/v1/bidders/me")
            assert (await http.get("/v1/bidders/me", headers=headers)).status_code == 401
    finally:
        fresh.stop()
        server.start(port=server.port)


@pytest.mark.parametrize(
    "command", [("clients", "add", "ops"), ("bidders", "add", "mm", "ab" * 32), ("clients", "list")]
)
def test_admin_commands_name_a_store_they_cannot_open(tmp_path: Path, command: tuple) -> None:
    """One ``Error: --db: …`` line and exit status 2, as ``serve`` says it (the audit: a
    171-line traceback for a PostgreSQL schema that does not exist)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for db in ("mysql://user@host/db", f"sqlite+aiosqlite:///{blocker}/service.db"):
        run = _cli(*command, db=db)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: --db: "), run.stderr
        # A command that only reads a SQLite file does not make one (the CLI audit).
        reads = command[1] == "list" and db.startswith("sqlite")
        assert ("no such database" if reads else "cannot open the store") in lines[0]


def test_a_command_that_reads_a_store_never_makes_one(tmp_path: Path) -> None:
    """The CLI audit: ``clients list --db <typo>`` made an empty database (and its
    directories) and listed nobody; ``clients add`` says when it makes a new one."""
    missing = tmp_path / "nope" / "x.db"
    for command in (("clients", "list"), ("bidders", "list"), ("clients", "revoke", "a")):
        run = _cli(*command, db=f"sqlite+aiosqlite:///{missing}")
        assert run.returncode == 2 and "no such database" in run.stderr, run.stderr
        assert not missing.parent.exists()
    run = _cli("clients", "add", "ops", db=f"sqlite+aiosqlite:///{missing}")
    assert run.returncode == 0, run.stderr
    assert f"created a new database at {missing}" in run.stderr
    run = _cli("clients", "list", db=f"sqlite+aiosqlite:///{missing}")
    assert run.returncode == 0 and "ops" in run.stdout, run.stderr


async def test_bidders_list_shows_only_blocks_that_have_not_ended(tmp_path: Path) -> None:
    """The operator audit: ``bidders list`` said "blocked until 20:19:54" at 20:20:26 (it
    looked at the count of blocks, not at their end)."""
    import time

    from phantom_auction.service.penalties import PenaltyState
    from phantom_auction.service.store import PenaltyUpdate, open_store

    db = f"sqlite+aiosqlite:///{tmp_path / 'list.db'}"
    store = open_store(db)
    await store.start()
    now_us = time.time_ns() // 1000
    try:
        for bidder_id, until_us in (("ended", now_us - 60_000_000), ("blocked", now_us + 3.6e9)):
            await store.add_bidder(bidder_id, bytes(32))
            penalty = PenaltyState(0.6, int(until_us), 2, "no-reveals")
            await store.apply([PenaltyUpdate(bidder_id, penalty)])
    finally:
        await store.close()
    listed = _cli("bidders", "list", db=db)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("\t")[0]: line for line in listed.stdout.splitlines()}
    assert lines["ended"].endswith("\t-")
    assert "\tblocked until " in lines["blocked"]


@pytest.mark.parametrize("age", ["1000000d", "99999999999999999999d"])
def test_prune_refuses_an_age_past_any_date_in_one_line(age: str, tmp_path: Path) -> None:
    """The operator audit: such ages pruned, then crashed on printing the date (year -711)
    or overflowed, with a traceback."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}"
    assert _cli("clients", "add", "ops", db=db).returncode == 0  # makes the database
    done = _cli("auctions", "prune", "--older-than", age, db=db)
    assert done.returncode == 2, done.stderr
    assert "--older-than" in done.stderr and "Traceback" not in done.stderr
    assert _cli("auctions", "prune", "--older-than", "36500d", db=db).returncode == 0


def test_a_bad_variable_is_named_not_config(tmp_path: Path) -> None:
    """The operator audit: a bad AUCTION_* value was reported as ``Error: --config: …``
    with no --config given."""
    done = subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AUCTION_SERVICE_PORT": "eighty"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: AUCTION_SERVICE_PORT: "), done.stderr


def test_serve_on_an_unreachable_postgresql_is_one_line() -> None:
    # The schema claim is checked before the store: a database that cannot be reached is
    # still the store check's one line, not the claim's connection traceback.
    from .service_harness import free_port

    url = f"postgresql+asyncpg://nobody:secret@127.0.0.1:{free_port()}/nothing"
    done = subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", "serve", "--port", "0", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --db: "), done.stderr
    assert "secret" not in done.stderr


@pytest.mark.parametrize("host", ["256.1.1.1", "no-such-host.invalid"])
def test_an_address_serve_cannot_listen_on_blames_host(host: str) -> None:
    """The operator audit: a bad AUCTION_SERVICE_HOST (or --host) was reported as
    ``Error: --port``; a port in use still is."""
    serve = ["serve", "--host", host, "--port", "0", "--db", "memory://"]
    done = subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", *serve],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"Error: --host: cannot listen on {host}:0"), done.stderr


def test_admin_refusals_are_bad_values_and_say_what_is_missing(tmp_path: Path) -> None:
    """The CLI audit: an unknown NAME exited 1 (every other bad value exits 2), and a
    missing key file was reported as a malformed key."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}"
    assert _cli("clients", "add", "ops", db=db).returncode == 0
    for command in (("clients", "revoke", "nobody"), ("bidders", "remove", "nobody")):
        run = _cli(*command, db=db)
        assert run.returncode == 2 and "'nobody'" in run.stderr, run.stderr
    run = _cli("bidders", "add", "b4", str(tmp_path / "missing.pem"), db=db)
    assert run.returncode == 2 and "no such file" in run.stderr, run.stderr
