"""``serve --workers N``: N server processes behind one listening socket.

The supervisor (this module, in the ``serve`` process) binds the port once and starts
N ``serve`` processes that inherit the socket (the kernel hands each new connection to
one of the processes accepting on it). Each worker is a whole server: its own event
loop, auction house, group commit and store connections; they meet in PostgreSQL (the
store, plus LISTEN/NOTIFY: :mod:`phantom_auction.service.notify`).

Workers die with the supervisor (``PR_SET_PDEATHSIG``: a killed ``serve`` leaves no
server behind). A worker that dies is started again (the new one ends the dead one's
auctions, as a restarted single server does). One of the first workers that dies within
:data:`EARLY_EXIT_S` of its start stops everything (a configuration problem, not a
crash); a restarted one that does (the database is down, say) is started again after a
back-off that doubles up to :data:`RESTART_BACKOFF_MAX_S`, while the others serve on.
SIGTERM or SIGINT stop every worker gracefully. The database URL reaches the workers in
their environment (``AUCTION_SERVICE_DATABASE_URL``), not on their command lines, which
every local user can read.

Metrics: the workers share a directory for prometheus-client's multiprocess mode
(:mod:`.metrics`), made here (unless ``PROMETHEUS_MULTIPROC_DIR`` is already set) and
removed at the end; a dead worker's live gauges are dropped from it. A killed supervisor
cannot remove its directory: the next supervisor to start does. The directory holds a
lock file that its supervisor holds (``flock``) while it lives, and the kernel lets go
of the lock when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Final

from .metrics import MULTIPROCESS_ENV

__all__ = [
    "EARLY_EXIT_S",
    "die_with_parent",
    "inherited_socket",
    "remove_dead_metrics_folders",
    "supervise",
    "worker_argv",
]

#: One of the first workers exiting sooner than this after its start stops the server.
EARLY_EXIT_S: Final = 10.0
#: The longest wait before starting a restarted worker again that exited early (s).
RESTART_BACKOFF_MAX_S: Final = 30.0
_PR_SET_PDEATHSIG: Final = 1
#: The supervisor's pid, as its workers see it (they die with it).
SUPERVISOR_ENV: Final = "PHANTOM_AUCTION_SUPERVISOR_PID"
#: The metrics directories made here (in the temporary directory) and their owner's lock.
METRICS_PREFIX: Final = "phantom-auction-metrics-"
OWNER_LOCK: Final = "supervisor.lock"
#: A metrics directory whose lock is younger than this (seconds) is never taken for a
#: dead supervisor's: its owner may not have locked it yet.
STALE_AFTER_S: Final = 60.0


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its supervisor dies."""
    parent_pid = int(os.environ.get(SUPERVISOR_ENV, os.getppid()))
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def inherited_socket(fd: int) -> socket.socket:
    """The supervisor's listening socket, passed down as file descriptor ``fd``."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def supervise(
    workers: int,
    listener: socket.socket,
    worker_command: Callable[[int, int], list[str]],
    announce: Callable[[str], None],
    worker_env: dict[str, str] | None = None,
) -> int:
    """Run ``workers`` processes of ``worker_command(fd, port)`` (with ``worker_env``
    added to their environment) on the inheritable listening socket ``listener`` until
    SIGTERM/SIGINT; the exit status."""
    fd = listener.fileno()
    host, bound = listener.getsockname()[:2]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    metrics_folder = os.environ.get(MULTIPROCESS_ENV)
    own_folder = owner = None
    if not metrics_folder:
        for dead in remove_dead_metrics_folders():
            announce(f"supervisor: removed {dead} (the metrics of a killed supervisor)")
        metrics_folder = own_folder = tempfile.mkdtemp(prefix=METRICS_PREFIX)
        owner = os.open(os.path.join(own_folder, OWNER_LOCK), os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(owner, fcntl.LOCK_EX)  # held until this process ends (not inherited)

    def start() -> tuple[subprocess.Popen[bytes], float]:
        env = {**os.environ, **(worker_env or {})}
        env.update({SUPERVISOR_ENV: str(os.getpid()), MULTIPROCESS_ENV: metrics_folder})
        command = worker_command(fd, bound)
        return subprocess.Popen(command, pass_fds=(fd,), env=env), time.monotonic()

    def forget(pid: int) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        with contextlib.suppress(OSError):
            mark_process_dead(pid, metrics_folder)  # type: ignore[no-untyped-call]

    running: list[tuple[subprocess.Popen[bytes] | None, float]] = [start() for _ in range(workers)]
    restarted = [False] * workers
    #: Per slot: how long to wait before its next start after an early exit (s).
    backoff = [1.0] * workers
    announce(f"supervisor: {workers} workers on http://{host}:{bound} (pid {os.getpid()})")
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for index, (proc, since) in enumerate(running):
                if stopping:
                    break
                if proc is None:  # waiting out a back-off until ``since``
                    if time.monotonic() >= since:
                        running[index] = start()
                    continue
                code = proc.poll()
                if code is None:
                    continue
                forget(proc.pid)
                early = time.monotonic() - since < EARLY_EXIT_S
                if early and not restarted[index]:
                    announce(f"Error: worker {proc.pid} exited at start ({code}): stopping")
                    stopping, status = True, 1
                    break
                restarted[index] = True
                if early:
                    wait = backoff[index]
                    backoff[index] = min(RESTART_BACKOFF_MAX_S, 2 * wait)
                    announce(
                        f"worker {proc.pid} exited ({code}) soon after its start: "
                        f"starting another in {wait:g} s"
                    )
                    running[index] = (None, time.monotonic() + wait)
                    continue
                backoff[index] = 1.0
                announce(f"worker {proc.pid} exited ({code}): starting another")
                running[index] = start()
    finally:
        alive = [proc for proc, _ in running if proc is not None]
        for proc in alive:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in alive:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        listener.close()
        if own_folder is not None:
            shutil.rmtree(own_folder, ignore_errors=True)
        if owner is not None:
            os.close(owner)
    return status


def remove_dead_metrics_folders() -> list[str]:
    """Remove the metrics directories of supervisors that were killed (their lock is free
    and older than :data:`STALE_AFTER_S`); the directories removed. Directories without
    the lock file (made by hand, or by an older version) are left alone."""
    removed = []
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), METRICS_PREFIX + "*")):
        try:
            fd = os.open(os.path.join(folder, OWNER_LOCK), os.O_RDONLY)
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < STALE_AFTER_S:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its supervisor is alive
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


def worker_argv(base: list[str], fd: int) -> list[str]:
    """The ``serve`` command line of one worker on inherited socket ``fd``."""
    return [sys.executable, "-m", "phantom_auction.service", *base, "--worker-fd", str(fd)]
