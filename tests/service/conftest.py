"""Fixtures for the service tests: stores on every backend and a real server on loopback."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from phantom_auction.service.store import MemoryStore, SqlStore, Store

from .service_harness import ServerProcess, pg_unavailable_reason, pg_url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema for one test: ``(url, schema)``; dropped afterwards."""
    reason = pg_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import asyncpg

    dsn = pg_url().replace("postgresql+asyncpg://", "postgresql://")
    schema = f"t_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield pg_url(), schema
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

    def make(
        env: dict[str, str] | None = None, start: bool = True, args: list[str] | None = None
    ) -> ServerProcess:
        folder = tmp_path_factory.mktemp("server")
        server = ServerProcess(
            f"sqlite+aiosqlite:///{folder / 'service.db'}",
            env,
            log=folder / "server.log",
            args=args,
        )
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.stop()
