"""``serve --workers 2`` on PostgreSQL: two processes behind one port, one auction house.

Auctions are opened over fresh connections until both processes own some (the owner is
stored with each auction), so every bidder, wherever the kernel put its WebSocket, sees
auctions of the other process: their announcements and results must reach it, and its
commits and reveals must be taken (forwarded to the owner) and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from phantom_auction.service.workers import (
    METRICS_PREFIX,
    OWNER_LOCK,
    STALE_AFTER_S,
    worker_argv,
)

from . import test_crash
from .service_harness import RawBidder, ServerProcess, order, reason

pytestmark = pytest.mark.anyio


@pytest.fixture
def workers_factory(pg_schema: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    """Make ``serve --workers 2`` servers on a fresh PostgreSQL schema."""
    url, schema = pg_schema
    started: list[ServerProcess] = []

    def make(env: dict[str, str] | None = None, start: bool = True) -> ServerProcess:
        server = ServerProcess(
            f"{url}?search_path={schema}",
            env,
            log=tmp_path / f"server-{len(started)}.log",
            args=["--workers", "2"],
        )
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.stop()


async def _owners(server: ServerProcess, auction_ids: list[str]) -> set[object]:
    store = await server.connect_store()
    try:
        owners = set()
        for auction_id in auction_ids:
            record = await store.auction(auction_id)
            assert record is not None
            owners.add(record.engine_params.get("owner"))
        return owners
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.postgres
async def test_bidders_on_either_process_take_part_in_every_auction(workers_factory: Any) -> None:
    server: ServerProcess = workers_factory({"AUCTION_SERVICE_PUBLIC_METRICS": "true"})
    token = await server.add_client("settlement")
    names = [f"mm-{i}" for i in range(4)]
    keys = {name: await server.add_bidder(name) for name in names}
    headers = {"Authorization": f"Bearer {token}"}
    async with contextlib.AsyncExitStack() as stack:
        bidders = [
            await stack.enter_async_context(RawBidder(server.ws_url, name, keys[name]))
            for name in names
        ]

        async def bid(index: int, b: RawBidder, auction_id: str) -> Any:
            sealed = b.bid(await b.opened(auction_id), 10.0 + 5 * index)
            assert reason(await b.commit(auction_id, sealed)) == "accepted"
            await b.push("reveal_open", auction_id)
            assert reason(await b.reveal(auction_id, sealed)) == "accepted"
            return await b.push("auction_closed", auction_id, timeout=30)

        for _ in range(6):  # explorer pages on both processes (likely), watching
            async with httpx.AsyncClient(base_url=server.url) as http:
                assert (await http.get("/explorer/api/feed")).status_code == 200
        opened: list[str] = []
        bids: list[asyncio.Task[Any]] = []
        for _ in range(40):  # each on a new connection: the kernel picks the process
            async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
                answer = await http.post(
                    "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=3000)
                )
            assert answer.status_code == 202, answer.text
            auction_id = answer.json()["auction_id"]
            opened.append(auction_id)
            bids += [asyncio.create_task(bid(i, b, auction_id)) for i, b in enumerate(bidders)]
            if len(opened) >= 2 and len(await _owners(server, opened)) == 2:
                break
        owners = await _owners(server, opened)
        assert len(owners) == 2 and all(isinstance(o, int) for o in owners), owners
        closed = await asyncio.gather(*bids)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        for n, auction_id in enumerate(opened):
            view = (await http.get(f"/v1/auctions/{auction_id}")).json()
            assert view["status"] == "finalized", view
            result = view["result"]
            # Every bidder's reveal reached the owner: all four real bids took part.
            assert result["num_participants"] - result["num_phantom_bids"] == len(names)
            assert result["unrevealed"] == []
            pushes = closed[n * len(names) : (n + 1) * len(names)]
            for name, push in zip(names, pushes, strict=True):
                fill = sum(f["volume"] for f in result["fills"] if f["bidder_id"] == name)
                assert push["revealed"] is True and push["filled"] == pytest.approx(fill)
            competition = (await http.get(f"/v1/auctions/{auction_id}/competition")).json()
            assert sorted(c["bidder_id"] for c in competition["commitments"]) == sorted(names)
    # The explorer shows every auction, whichever process answers, as it ended.
    for _ in range(4):
        async with httpx.AsyncClient(base_url=server.url) as http:
            feed = (await http.get("/explorer/api/feed")).json()
        listed = {a["auction_id"]: a for a in feed["auctions"]}
        assert set(opened) <= set(listed), (opened, list(listed))
        for auction_id in opened:
            assert listed[auction_id]["status"] == "finalized"
            assert listed[auction_id]["real_bids"] == len(names)
    # /metrics counts for both processes, whichever answers (each scrape a new connection).
    sent = 2 * len(names) * len(opened)
    for _ in range(4):
        async with httpx.AsyncClient(base_url=server.url) as http:
            text = (await http.get("/metrics")).text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("phantom_auction_bidder_messages_total{")
        )
        assert counted == sent, text


@pytest.mark.slow
@pytest.mark.postgres
async def test_sigkill_with_two_workers_loses_no_acknowledged_message(
    workers_factory: Any,
) -> None:
    await test_crash.test_sigkill_mid_load_loses_no_acknowledged_message(workers_factory)


@pytest.mark.parametrize("db", ["sqlite+aiosqlite:///{tmp}/x.db", "memory://"])
def test_more_workers_need_postgresql(db: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "phantom_auction.service",
            "serve",
            "--workers",
            "2",
            "--db",
            db.format(tmp=tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --workers: "), done.stderr
    assert "PostgreSQL" in lines[0]


def test_a_worker_started_while_the_database_is_down_says_so_in_one_line() -> None:
    """The fault audit: a worker restarted while PostgreSQL was down printed uvicorn's
    traceback of the app's startup. It now exits with one line naming itself and the
    store (without the password), for the supervisor to start it again later."""
    import socket

    with socket.socket() as listener, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nothing listens on
        down = f"postgresql+asyncpg://pa:hunter2@127.0.0.1:{closed.getsockname()[1]}/pa"
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        fd = listener.fileno()
        done = subprocess.run(
            worker_argv(["serve", "--workers", "2"], fd),
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=(fd,),
            env={**os.environ, "AUCTION_SERVICE_DATABASE_URL": down},
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(r"Error: worker \d+: 'postgresql\+asyncpg://pa:\*\*\*@", lines[0]), lines[0]
    assert "cannot open the store" in lines[0] and "hunter2" not in lines[0], lines[0]


@pytest.mark.parametrize("workers", ["0", "two", "-1"])
def test_workers_must_be_a_positive_integer(workers: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", "serve", "--workers", workers],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"Error: --workers: {workers!r}"), done.stderr


# The supervisor alone, its workers idle processes that die with it (no PostgreSQL).
_SUPERVISOR = """
import socket, sys
from phantom_auction.service.workers import supervise

idle = [sys.executable, "-c",
        "from phantom_auction.service.workers import die_with_parent; die_with_parent(); "
        "import time; time.sleep(120)"]
listener = socket.create_server(("127.0.0.1", 0))
listener.set_inheritable(True)
sys.exit(supervise(1, listener, lambda fd, port: idle, lambda line: print(line, flush=True)))
"""


@contextlib.contextmanager
def _supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A supervisor whose temporary directory is ``tmp_path``, once it has announced
    itself, and the lines it printed before; stopped by SIGTERM at the end unless gone."""
    with subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            before = []
            while not (line := proc.stdout.readline()).startswith("supervisor: 1 workers on"):
                assert line, f"the supervisor ended after printing {before}"
                before.append(line.strip())
            yield proc, before
        finally:
            proc.terminate()
            proc.wait(30)


def _metrics_folders(tmp_path: Path) -> set[Path]:
    return set(tmp_path.glob(f"{METRICS_PREFIX}*"))


def _age(folder: Path) -> None:
    """Make ``folder``'s lock older than ``STALE_AFTER_S``, as if made long ago."""
    lock = folder / OWNER_LOCK
    then = lock.stat().st_mtime - STALE_AFTER_S - 1
    os.utime(lock, (then, then))


def test_a_killed_supervisors_metrics_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    with _supervisor(tmp_path) as (killed, _):
        (dead,) = _metrics_folders(tmp_path)
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait(10)
    assert (dead / OWNER_LOCK).exists()
    handmade = tmp_path / f"{METRICS_PREFIX}by-hand"  # no lock file: not judged
    handmade.mkdir()
    with _supervisor(tmp_path) as (_, said):  # the dead one's lock is too young to judge
        assert said == []
        (live,) = _metrics_folders(tmp_path) - {dead, handmade}
        assert dead.is_dir()
        _age(dead)
        _age(live)
        with _supervisor(tmp_path) as (third, said):  # removes the dead one's, not the live's
            assert said == [f"supervisor: removed {dead} (the metrics of a killed supervisor)"]
            (mine,) = _metrics_folders(tmp_path) - {live, handmade}
            assert not dead.exists()
            assert live.is_dir() and mine.is_dir() and handmade.is_dir()
            third.terminate()
            assert third.wait(30) == 0
        assert not mine.exists()  # stopped by SIGTERM, a supervisor removes its own
    assert _metrics_folders(tmp_path) == {handmade}


@pytest.mark.slow
@pytest.mark.postgres
async def test_both_processes_prune_under_retention_each_auction_once(
    workers_factory: Any,
) -> None:
    """``service.retention_days`` under ``--workers 2``: both processes prune (one batch
    at a time, an advisory lock), every ended auction goes, whichever process owned it,
    and the summed counter says each was removed once."""
    server: ServerProcess = workers_factory(
        {
            "AUCTION_SERVICE_RETENTION_DAYS": str(1 / 86_400),
            "AUCTION_SERVICE_PUBLIC_METRICS": "true",
        }
    )
    token = await server.add_client("settlement")
    headers = {"Authorization": f"Bearer {token}"}
    opened: list[str] = []
    for _ in range(40):  # each on a new connection: the kernel picks the process
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            answer = await http.post(
                "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=300)
            )
        assert answer.status_code == 202, answer.text
        opened.append(answer.json()["auction_id"])
        if len(opened) >= 4 and len(await _owners(server, opened)) == 2:
            break
    assert len(await _owners(server, opened)) == 2
    deadline = asyncio.get_running_loop().time() + 20
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        for auction_id in opened:
            while (await http.get(f"/v1/auctions/{auction_id}")).status_code != 404:
                assert asyncio.get_running_loop().time() < deadline, auction_id
                await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    assert f"phantom_auction_pruned_auctions_total {float(len(opened))}" in text, text
    assert "the prune failed" not in server.log.read_text()


_SUPERVISED = """
import os, socket, sys, time
from pathlib import Path
import phantom_auction.service.workers as workers

workers.EARLY_EXIT_S = 1.0  # the test's first workers are past it after 1 s
folder = Path(sys.argv[1])
listener = socket.create_server(("127.0.0.1", 0))
listener.set_inheritable(True)
worker = '''
import os, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
with open(folder / "starts", "a") as f:
    f.write(f"{os.getpid()} {' '.join(sys.argv)} {os.environ['AUCTION_SERVICE_DATABASE_URL']}\\\\n")
starts = len((folder / "starts").read_text().splitlines())
if starts in (3, 4):
    sys.exit(3)  # a restarted worker that cannot start yet (the database is down, say)
time.sleep(60)
'''
def command(fd, port):
    return [sys.executable, "-c", worker, str(folder)]

def announce(line):
    print(line, flush=True)

env = {"AUCTION_SERVICE_DATABASE_URL": "secret-url"}
sys.exit(workers.supervise(2, listener, command, announce, env))
"""


def test_a_restarted_worker_that_exits_early_is_started_again_after_a_backoff(
    tmp_path: Path,
) -> None:
    """The audit: a worker killed while PostgreSQL was down was restarted, failed at
    start, and the supervisor stopped the whole service (the early-exit rule is for the
    first workers: a configuration problem). A restarted worker is now started again
    after a back-off; the other worker serves on. The database URL reaches the workers
    in their environment, never on their command lines (which every user can read)."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISED, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        starts = tmp_path / "starts"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            not starts.exists() or len(starts.read_text().splitlines()) < 2
        ):
            time.sleep(0.05)
        first = [line.split()[0] for line in starts.read_text().splitlines()]
        time.sleep(1.5)  # past the first workers' EARLY_EXIT_S (1 s here)
        os.kill(int(first[0]), signal.SIGKILL)  # a crash: restarted, fails twice, then runs
        while time.monotonic() < deadline and len(starts.read_text().splitlines()) < 5:
            time.sleep(0.05)
        lines = starts.read_text().splitlines()
        assert len(lines) == 5, lines
        assert proc.poll() is None  # still supervising
        assert all(line.endswith(" secret-url") for line in lines)
        assert not any("secret-url" in line.rsplit(" ", 1)[0] for line in lines)
        os.kill(int(first[1]), 0)  # the other first worker is still running
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "starting another in 1 s" in output and "starting another in 2 s" in output, output
    assert "stopping" not in output, output
