"""One deployment per PostgreSQL schema (:mod:`phantom_auction.service.claim`).

A server ends the auctions its store holds open when it starts (crash recovery), so a
second single-process ``serve`` on a running server's schema used to end that server's
auctions. Every server now holds an advisory lock on its schema: a single process
exclusively, the processes of ``serve --workers`` shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from phantom_auction.service.claim import SchemaClaim, SchemaInUse, claim_key

from .service_harness import ServerProcess, free_port, open_auction

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def test_claim_keys_differ_by_schema() -> None:
    assert claim_key("public") != claim_key("t_1")
    assert claim_key("public") == claim_key("public")


async def test_exclusive_and_shared_claims_exclude_each_other(
    pg_schema: tuple[str, str],
) -> None:
    url, schema = pg_schema
    here = f"{url}?search_path={schema}"
    single = SchemaClaim(here, shared=False)
    await single.take()
    try:
        with pytest.raises(SchemaInUse, match=schema):
            await SchemaClaim(here, shared=False).take(wait_s=0.2)
        with pytest.raises(SchemaInUse, match="single-process serve"):
            await SchemaClaim(here, shared=True).take(wait_s=0.2)
        # Another schema of the same database is another deployment.
        elsewhere = SchemaClaim(url, shared=False)
        await elsewhere.take(wait_s=0.2)
        await elsewhere.release()
    finally:
        await single.release()
    workers = [SchemaClaim(here, shared=True) for _ in range(2)]
    for claim in workers:
        await claim.take(wait_s=0.2)
    try:
        with pytest.raises(SchemaInUse):
            await SchemaClaim(here, shared=False).take(wait_s=0.2)
    finally:
        for claim in workers:
            await claim.release()


async def test_a_starting_server_waits_for_a_claim_let_go_meanwhile(
    pg_schema: tuple[str, str],
) -> None:
    # What a restart right after a crash sees: the dead server's lock, freed shortly.
    url, schema = pg_schema
    here = f"{url}?search_path={schema}"
    old = SchemaClaim(here, shared=False)
    await old.take()

    async def let_go() -> None:
        await asyncio.sleep(0.5)
        await old.release()

    releasing = asyncio.create_task(let_go())
    new = SchemaClaim(here, shared=False)
    started = time.monotonic()
    await new.take(wait_s=5.0)
    assert time.monotonic() - started >= 0.4
    await releasing
    await new.release()


def _serve(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    serve = ["serve", "--host", "127.0.0.1", "--port", str(free_port()), "--db", db_url]
    return subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", *serve, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize("running_args", [[], ["--workers", "2"]], ids=["single", "workers"])
async def test_serve_refuses_a_schema_another_server_holds_and_leaves_its_auctions(
    pg_schema: tuple[str, str], tmp_path: Path, running_args: list[str]
) -> None:
    url, schema = pg_schema
    here = f"{url}?search_path={schema}"
    running = ServerProcess(here, log=tmp_path / "running.log", args=running_args)
    running.start()
    try:
        async with running.settlement() as http:
            aid = await open_auction(http, 60_000)
            attempts: list[tuple[list[str], Any]] = [([], _serve(here))]
            if not running_args:  # workers beside a single process
                attempts.append((["--workers", "2"], _serve(here, "--workers", "2")))
            for args, run in attempts:
                assert run.returncode == 2, (args, run.stderr)
                lines = run.stderr.strip().splitlines()
                # Refused at once: the holder answers (no "waiting" line).
                assert len(lines) == 1 and lines[0].startswith("Error: --db: "), run.stderr
                assert schema in lines[0]
                assert "listening" not in run.stderr and "recovered" not in run.stderr
            still = await http.get(f"/v1/auctions/{aid}")
            assert still.json()["status"] == "open", still.text
    finally:
        running.stop()
    # Stopped, it lets go: the next server starts (and ends the auction it left).
    after = ServerProcess(here, log=tmp_path / "after.log")
    after.start()
    after.stop()


async def _terminate_holders_of(key: int) -> int:
    """Close, from PostgreSQL's side, the connections holding advisory lock ``key``
    (what a database restart does to them); how many."""
    import asyncpg

    from .service_harness import pg_url

    dsn = pg_url().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = $1 AND objid = $2",
            (key >> 32) & 0xFFFFFFFF,
            key & 0xFFFFFFFF,
        )
        for row in pids:
            await conn.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
        return len(pids)
    finally:
        await conn.close()


async def test_a_link_whose_connection_is_lost_says_so(pg_schema: tuple[str, str]) -> None:
    """The audit: after a PostgreSQL restart the workers' links were dead for good, their
    liveness locks gone, and they served on, so another server ended their auctions. A
    lost connection is now reported (and serve stops: the supervisor restarts it)."""
    from phantom_auction.service.notify import PeerLink

    url, schema = pg_schema
    lost: list[str] = []
    link = PeerLink(f"{url}?search_path={schema}", lambda kind, message: None, None, lost.append)
    await link.start()
    try:
        assert await _terminate_holders_of(link.me) == 1
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.05)
        assert lost and "PostgreSQL connection" in lost[0]
    finally:
        await link.close()
    quiet: list[str] = []
    link = PeerLink(f"{url}?search_path={schema}", lambda kind, message: None, None, quiet.append)
    await link.start()
    await link.close()
    await asyncio.sleep(0.2)
    assert quiet == []  # its own close is not a loss


@pytest.mark.slow
async def test_serve_stops_when_its_schema_claim_is_lost(
    pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = pg_schema
    here = f"{url}?search_path={schema}"
    server = ServerProcess(here, log=tmp_path / "server.log")
    server.start()
    try:
        assert await _terminate_holders_of(claim_key(schema)) == 1
        assert server.proc is not None
        assert server.proc.wait(30) == 1
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Error: lost the PostgreSQL connection that holds this server's schema claim" in log
    # Started again, it takes its claim and serves.
    server.start()
    server.stop()


class FreezableProxy:
    """A TCP relay in front of PostgreSQL that can go silent without closing anything:
    what a server sees when its machine's network drops (no FIN, no RST)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._relays: list[asyncio.Task[Any]] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.append(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                while self.frozen:  # hold the bytes: nothing passes, nothing closes
                    await asyncio.sleep(3600)
                dst.write(data)
                await dst.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        # Every relay ended and its streams closed while the loop runs: a stream left to
        # the garbage collector after the loop closed warned "loop is closed" (a CI run).
        for task in self._relays:
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def test_a_lock_holder_gives_up_well_before_postgresql_frees_its_lock() -> None:
    from phantom_auction.service import locks

    gives_up_within = locks.HEARTBEAT_S + locks.HEARTBEAT_TIMEOUT_S
    assert gives_up_within + 5 <= locks.FREED_AFTER_S <= locks.FREED_WITHIN_S
    from phantom_auction.service.claim import CLAIM_WAIT_S

    assert CLAIM_WAIT_S > locks.FREED_WITHIN_S


async def test_lock_holding_connections_ask_postgresql_to_drop_them_when_silent(
    pg_schema: tuple[str, str],
) -> None:
    """Before, a server whose machine vanished kept its schema claim (and its auctions)
    for Linux's TCP defaults: over two hours."""
    url, schema = pg_schema
    claim = SchemaClaim(f"{url}?search_path={schema}", shared=False)
    await claim.take()
    try:
        connection = claim._connection
        settings = {
            name: await connection.fetchval("SELECT current_setting($1)", name)
            for name in ("tcp_keepalives_idle", "tcp_keepalives_count", "tcp_user_timeout")
        }
    finally:
        await claim.release()
    assert settings == {
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "15000",
    }


@pytest.mark.slow
@pytest.mark.parametrize("holder", ["claim", "link"])
async def test_a_lock_holder_whose_connection_goes_silent_says_it_lost_it(
    pg_schema: tuple[str, str], holder: str
) -> None:
    """No close reaches a server cut off from PostgreSQL: its heartbeat finds out, within
    HEARTBEAT_S + HEARTBEAT_TIMEOUT_S, before PostgreSQL may give the lock to another."""
    from sqlalchemy.engine import make_url

    from phantom_auction.service import locks
    from phantom_auction.service.notify import PeerLink

    url, schema = pg_schema
    real = make_url(url)
    proxy = FreezableProxy(int(real.port or 5432))
    port = await proxy.start()
    here = real.set(port=port).render_as_string(hide_password=False) + f"?search_path={schema}"
    lost: list[str] = []
    closer: Any
    if holder == "claim":
        claim = SchemaClaim(here, shared=False, on_lost=lost.append)
        await claim.take()
        closer = claim.release
    else:
        link = PeerLink(here, lambda kind, message: None, None, lost.append)
        await link.start()
        closer = link.close
    try:
        await asyncio.sleep(2 * locks.HEARTBEAT_S)
        assert lost == []  # answering heartbeats: held
        proxy.frozen = True
        started = time.monotonic()
        while not lost and time.monotonic() - started < 3 * locks.HEARTBEAT_TIMEOUT_S:
            await asyncio.sleep(0.1)
        waited = time.monotonic() - started
        assert lost and "PostgreSQL connection" in lost[0], lost
        assert waited <= locks.HEARTBEAT_S + locks.HEARTBEAT_TIMEOUT_S + 1.0
        assert len(lost) == 1
    finally:
        await proxy.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closer(), 5)


async def test_a_holder_that_answers_is_refused_at_once_a_silent_one_is_waited_for(
    pg_schema: tuple[str, str],
) -> None:
    """A starting server waits for PostgreSQL to drop a silent holder (its machine died),
    but not for one whose heartbeat still runs (another server really serves there)."""
    from sqlalchemy.engine import make_url

    from phantom_auction.service import locks

    url, schema = pg_schema
    here = f"{url}?search_path={schema}"
    alive = SchemaClaim(here, shared=False)
    await alive.take()
    try:
        started = time.monotonic()
        with pytest.raises(SchemaInUse):
            await SchemaClaim(here, shared=False).take()  # the default wait: 18 s
        # Refused after its 1 s grace, not the 18 s: the rest is a loaded machine's margin.
        assert time.monotonic() - started < 9.0
    finally:
        await alive.release()

    real = make_url(url)
    proxy = FreezableProxy(int(real.port or 5432))
    port = await proxy.start()
    cut_off = SchemaClaim(
        real.set(port=port).render_as_string(hide_password=False) + f"?search_path={schema}",
        shared=False,
        on_lost=lambda what: None,
    )
    await cut_off.take()
    proxy.frozen = True
    await asyncio.sleep(locks.HOLDER_SILENT_S + 0.5)

    async def postgresql_drops_it() -> None:  # what its keepalives do, sooner
        await asyncio.sleep(2.0)
        await proxy.close()

    dropping = asyncio.create_task(postgresql_drops_it())
    new = SchemaClaim(here, shared=False)
    started = time.monotonic()
    await new.take()
    assert time.monotonic() - started >= 1.5
    await dropping
    await new.release()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(cut_off.release(), 5)
