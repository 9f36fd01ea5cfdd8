"""What a quant meets on a real cluster when the scheduler is not what it should be.

A peer on the scheduler's address that accepts and never answers (a stopped scheduler),
another service on that port (a web server, the dashboard's 8787), and a scheduler
killed mid-run: each ends in a bounded time with one line naming the address, not a
hang or a page of Dask's traceback. The clusters here are ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1 (free ports), stopped at the end of each test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed.client", reason="the distributed extra is not installed")

from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation.distributed import (
    ChunkKilledWorkers,
    SchedulerLost,
    open_client,
    run_monte_carlo_on_cluster,
)

from .cluster_helpers import (
    BASELINE_PRICE,
    BASELINE_QUANTITY,
    DaskProcesses,
    dask_processes,
    simulator,
)

# -- peers that are not a scheduler ------------------------------------------------------


@contextlib.contextmanager
def _peer(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that hands each connection to ``answer``; its address."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # accept() wakes up to see the test end (close() would not)
    held: list[socket.socket] = []
    over = threading.Event()

    def serve() -> None:
        while not over.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            held.append(conn)
            with contextlib.suppress(OSError):
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        over.set()
        thread.join(timeout=10)
        server.close()
        for conn in held:
            conn.close()


def _never_answers(conn: socket.socket) -> None:
    """Accepts and keeps the connection, as a stopped (SIGSTOP) scheduler's kernel does."""


def _answers_http(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.timeout(90)
def test_a_peer_that_never_answers_the_handshake_is_refused_within_the_timeout() -> None:
    # Dask's Client(address, timeout=...) bounds the TCP connect only: it waited for
    # the handshake for ever.
    with _peer(_never_answers) as address:
        started = time.monotonic()
        silent = "no Dask scheduler answered within 2 s"
        with (
            pytest.raises(InvalidBidParameters, match=silent) as caught,
            open_client(scheduler=address, timeout_s=2.0),
        ):
            pass
        assert time.monotonic() - started < 30
    assert caught.value.field == "scheduler" and caught.value.value == address


@pytest.mark.timeout(90)
def test_a_service_that_is_not_dask_is_named_in_one_line() -> None:
    # Dask read the HTTP reply as a frame count: MemoryError "3.07 EiB" and a traceback.
    with _peer(_answers_http) as address:
        with (
            pytest.raises(InvalidBidParameters, match="not a Dask scheduler") as caught,
            open_client(scheduler=address, timeout_s=5.0),
        ):
            pass
        assert caught.value.field == "scheduler" and caught.value.value == address
        result = CliRunner().invoke(
            app, ["simulate", "--scheduler", address, "--simulations", "10", "--seed", "1"]
        )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'--scheduler': '{address}'" in lines[0], result.stderr
    assert "not a Dask scheduler" in lines[0]


# -- a scheduler killed mid-run ----------------------------------------------------------


@pytest.fixture
def killable_cluster(tmp_path: Path) -> Iterator[DaskProcesses]:
    """``dask scheduler`` and two ``dask worker`` processes, each in its own session."""
    with dask_processes(tmp_path) as cluster:
        yield cluster


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# 40 chunks of about 0.1 s: the scheduler dies with most of them still to run.
N = 40_000
CHUNK = 1_000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_scheduler_killed_mid_run_raises_scheduler_lost_naming_it(
    killable_cluster: DaskProcesses,
) -> None:
    # Without it: Dask's CommClosedError or FutureCancelledError, naming no scheduler,
    # under pages of asyncio traceback that Dask's loggers printed as well.
    heard = _Records()
    loggers = [logging.getLogger(n) for n in ("distributed.batched", "distributed.client")]
    for logger in loggers:
        logger.addHandler(heard)
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    try:
        with open_client(scheduler=killable_cluster.address) as client:

            def kill_the_scheduler(done: int, total: int) -> None:
                if killable_cluster.scheduler.poll() is None:
                    os.killpg(killable_cluster.scheduler.pid, signal.SIGKILL)
                    killable_cluster.scheduler.wait(timeout=20)

            started = time.monotonic()
            with pytest.raises(SchedulerLost, match="lost the connection mid-run") as caught:
                run_monte_carlo_on_cluster(
                    simulator(N, chunk_size=CHUNK),
                    BASELINE_PRICE,
                    BASELINE_QUANTITY,
                    client,
                    progress=kill_the_scheduler,
                )
            assert time.monotonic() - started < 60
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(heard)
            logger.setLevel(level)
    lost = caught.value
    assert lost.field == "scheduler" and lost.value == killable_cluster.address
    assert str(lost).startswith(f"scheduler={killable_cluster.address!r}: ")
    assert isinstance(lost, ConnectionError)  # an `except OSError` still catches it
    tracebacks = [r for r in heard.records if r.exc_info]
    assert not tracebacks, [f"{r.name}: {r.getMessage()}" for r in tracebacks]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_cli_says_a_lost_scheduler_in_one_line(
    killable_cluster: DaskProcesses, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phantom_auction.cli.progress import MonteCarloProgress

    shown = MonteCarloProgress.__call__

    def kill_at_first_chunk(self: Any, done: int, total: int) -> None:
        if killable_cluster.scheduler.poll() is None:
            os.killpg(killable_cluster.scheduler.pid, signal.SIGKILL)
            killable_cluster.scheduler.wait(timeout=20)
        shown(self, done, total)

    monkeypatch.setattr(MonteCarloProgress, "__call__", kill_at_first_chunk)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f"[simulation]\nchunk_size = {CHUNK}\n")
    address = killable_cluster.address
    run = ["--config", str(scenario), "--simulations", str(N), "--seed", "3", "--json"]
    result = CliRunner().invoke(app, ["simulate", "--scheduler", address, *run])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"Error: scheduler='{address}': lost the connection mid-run")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_scheduler_stopped_mid_run_raises_scheduler_lost_in_bounded_time(
    killable_cluster: DaskProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stopped scheduler (SIGSTOP, a paused VM) keeps its connections open: the client
    # waited for the next chunk, or in the fetch of one, for ever.
    from phantom_auction.simulation import distributed

    monkeypatch.setattr(distributed, "_SILENCE_S", 2.0)
    monkeypatch.setattr(distributed, "_ANSWER_S", 2.0)
    scheduler = killable_cluster.scheduler
    try:
        with open_client(scheduler=killable_cluster.address) as client:

            def stop_the_scheduler(done: int, total: int) -> None:
                if not stopped:
                    stopped.append(done)
                    os.killpg(scheduler.pid, signal.SIGSTOP)

            stopped: list[int] = []
            started = time.monotonic()
            with pytest.raises(SchedulerLost, match="stopped answering mid-run") as caught:
                run_monte_carlo_on_cluster(
                    simulator(N, chunk_size=CHUNK),
                    BASELINE_PRICE,
                    BASELINE_QUANTITY,
                    client,
                    progress=stop_the_scheduler,
                )
            assert stopped and time.monotonic() - started < 60
    finally:
        os.killpg(scheduler.pid, signal.SIGCONT)  # so that the fixture can stop it
    assert caught.value.value == killable_cluster.address


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_chunk_that_kills_its_workers_is_said_in_one_line(tmp_path: Path) -> None:
    # Dask's KilledWorker (a chunk out of memory, say) was a page of traceback in the CLI.
    # allowed-failures 0: the first worker to die running a chunk fails the run.
    no_reruns = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with dask_processes(tmp_path, no_reruns) as cluster, open_client(cluster.address) as client:
        pids = list(client.run(os.getpid).values())

        def kill_the_workers(done: int, total: int) -> None:
            while pids:  # both are running a chunk: at least one chunk dies with them
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pids.pop(), signal.SIGKILL)

        with pytest.raises(ChunkKilledWorkers, match="killed every worker that ran it") as caught:
            run_monte_carlo_on_cluster(
                simulator(N, chunk_size=CHUNK),
                BASELINE_PRICE,
                BASELINE_QUANTITY,
                client,
                progress=kill_the_workers,
            )
    assert caught.value.field == "chunk_size" and caught.value.value == CHUNK
    assert str(caught.value).startswith(f"chunk_size={CHUNK}: chunk ")
