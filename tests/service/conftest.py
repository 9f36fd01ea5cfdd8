"""Fixtures for the service tests: stores on every backend and a real server on loopback."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from service_harness import ServerProcess

from phantom_auction.service.store import MemoryStore, SqlStore, Store

#: Where scripts/ensure-postgres.sh puts the test database unless the variable says otherwise.
DEFAULT_PG_URL = (
    "postgresql+asyncpg://phantom_auction:phantom_auction@127.0.0.1:5432/phantom_auction_test"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pg_url() -> str:
    return os.environ.get("PHANTOM_AUCTION_TEST_PG_URL", DEFAULT_PG_URL)


_pg_probe: str | bool | None = False  # False: not probed yet; None: reachable; str: why not


def _pg_unavailable() -> str | None:
    """None if the test PostgreSQL answers, else why not (probed once per session)."""
    global _pg_probe
    if _pg_probe is False:
        import asyncpg  # type: ignore[import-untyped]

        dsn = _pg_url().replace("postgresql+asyncpg://", "postgresql://")

        async def probe() -> None:
            conn = await asyncpg.connect(dsn, timeout=3)
            await conn.close()

        try:
            asyncio.run(probe())
            _pg_probe = None
        except Exception as exc:
            _pg_probe = (
                f"PostgreSQL at {_pg_url()} is unavailable ({type(exc).__name__}: {exc}); "
                "run `bash scripts/ensure-postgres.sh` or set PHANTOM_AUCTION_TEST_PG_URL"
            )
    assert _pg_probe is not False
    return _pg_probe


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema for one test: ``(url, schema)``; dropped afterwards."""
    reason = _pg_unavailable()
    if reason is not None:
        pytest.skip(reason)
    import asyncpg

    dsn = _pg_url().replace("postgresql+asyncpg://", "postgresql://")
    schema = f"t_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_url(), schema
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


def make_pg_store(url: str, schema: str) -> SqlStore:
    """A store whose tables live in ``schema`` (isolates concurrent test runs)."""
    return SqlStore(url, connect_args={"server_settings": {"search_path": schema}})


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A zero-argument callable making a new :class:`Store` on the same database each call."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        yield lambda: SqlStore(url)
    else:
        url, schema = request.getfixturevalue("pg_schema")
        yield lambda: make_pg_store(url, schema)


@pytest.fixture
async def store(store_factory: object) -> AsyncIterator[Store]:
    made: Store = store_factory()  # type: ignore[operator]
    await made.start()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Start servers on fresh SQLite files; every one is stopped after the module."""
    started: list[ServerProcess] = []

    def make(env: dict[str, str] | None = None, start: bool = True) -> ServerProcess:
        folder = tmp_path_factory.mktemp("server")
        server = ServerProcess(
            f"sqlite+aiosqlite:///{folder / 'service.db'}", env, log=folder / "server.log"
        )
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.stop()
